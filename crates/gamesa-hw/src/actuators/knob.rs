//! Knobs: the individual hardware settings an actuation writes (a sysfs file, an NVML
//! power limit), read and written as text so that every original can be kept and put
//! back exactly.
//!
//! # Invariants
//! - a sysfs knob's value is the file's whole content, byte for byte, so restoring it
//!   writes back exactly what was read;
//! - an NVML power-limit knob's value is the management limit in mW, in decimal.

use std::{collections::BTreeSet, path::PathBuf};

use nvml_wrapper::{Device, Nvml};
use serde::{Deserialize, Serialize};

use crate::{HwError, sensors::nvml_error, sysfs};

/// One hardware setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Knob {
    /// A sysfs or cgroupfs attribute file (absolute path, root included).
    Sysfs { path: PathBuf },
    /// An NVIDIA GPU's power management limit. The uuid, when known, finds the same
    /// GPU again even if indices changed after a crash and reboot of the driver.
    NvmlPowerLimit { index: u32, uuid: String },
}

impl Knob {
    pub(crate) fn describe(&self) -> String {
        match self {
            Knob::Sysfs { path } => path.display().to_string(),
            Knob::NvmlPowerLimit { index, .. } => format!("nvml gpu{index} power limit"),
        }
    }
}

/// How two values of a knob are compared to tell a no-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compare {
    /// Equal once surrounding whitespace is trimmed.
    Trimmed,
    /// The same set of cpus (`0-3` equals `0,1,2,3`).
    CpuList,
}

impl Compare {
    pub(crate) fn same(self, a: &str, b: &str) -> bool {
        match self {
            Compare::Trimmed => a.trim() == b.trim(),
            Compare::CpuList => match (parse_cpu_list(a), parse_cpu_list(b)) {
                (Some(a), Some(b)) => a == b,
                _ => a.trim() == b.trim(),
            },
        }
    }
}

/// Parses a cpu list such as `0-3,6` (empty means no cpu). `None` when malformed.
pub(crate) fn parse_cpu_list(text: &str) -> Option<BTreeSet<u32>> {
    let mut cpus = BTreeSet::new();
    let text = text.trim();
    if text.is_empty() {
        return Some(cpus);
    }
    for part in text.split(',') {
        let (first, last): (u32, u32) = match part.split_once('-') {
            Some((first, last)) => (first.parse().ok()?, last.parse().ok()?),
            None => {
                let cpu = part.parse().ok()?;
                (cpu, cpu)
            }
        };
        if first > last || last - first > 65_536 {
            return None;
        }
        cpus.extend(first..=last);
    }
    Some(cpus)
}

/// NVML for the actuator, initialised on first use. A failed initialisation is kept,
/// so a GPU target applied every tick does not reload the library every tick.
#[derive(Default)]
pub(crate) struct NvmlHandle {
    state: Option<Result<Nvml, String>>,
}

impl std::fmt::Debug for NvmlHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            None => "not initialised",
            Some(Ok(_)) => "ready",
            Some(Err(_)) => "unavailable",
        };
        f.debug_struct("NvmlHandle").field("state", &state).finish()
    }
}

impl NvmlHandle {
    /// A handle whose initialisation failed with `reason`: a machine without NVML, on
    /// any machine.
    #[cfg(test)]
    pub(crate) fn unavailable(reason: &str) -> NvmlHandle {
        NvmlHandle {
            state: Some(Err(reason.to_owned())),
        }
    }

    pub(crate) fn nvml(&mut self) -> Result<&Nvml, HwError> {
        let state = self
            .state
            .get_or_insert_with(|| Nvml::init().map_err(|err| err.to_string()));
        state.as_ref().map_err(|reason| HwError::NvmlUnavailable {
            reason: reason.clone(),
        })
    }

    /// The device a knob names: by uuid when it has one, else by index.
    pub(crate) fn device(&mut self, index: u32, uuid: &str) -> Result<Device<'_>, HwError> {
        let nvml = self.nvml()?;
        if uuid.is_empty() {
            nvml.device_by_index(index)
                .map_err(|err| nvml_error(index, "device_by_index", &err))
        } else {
            nvml.device_by_uuid(uuid)
                .map_err(|err| nvml_error(index, "device_by_uuid", &err))
        }
    }
}

/// Reads and writes knobs.
#[derive(Debug)]
pub(crate) struct KnobIo<'a> {
    pub(crate) nvml: &'a mut NvmlHandle,
}

impl KnobIo<'_> {
    /// The knob's current value, exactly (a sysfs file's whole content).
    pub(crate) fn read(&mut self, knob: &Knob) -> Result<String, HwError> {
        match knob {
            Knob::Sysfs { path } => sysfs::read_text(path),
            Knob::NvmlPowerLimit { index, uuid } => self
                .nvml
                .device(*index, uuid)?
                .power_management_limit()
                .map(|mw| mw.to_string())
                .map_err(|err| nvml_error(*index, "power_management_limit", &err)),
        }
    }

    pub(crate) fn write(&mut self, knob: &Knob, value: &str) -> Result<(), HwError> {
        match knob {
            Knob::Sysfs { path } => sysfs::write_text(path, value),
            Knob::NvmlPowerLimit { index, uuid } => {
                let limit_mw: u32 = value.trim().parse().map_err(|_| HwError::Parse {
                    path: PathBuf::from(knob.describe()),
                    content: value.to_string(),
                    expected: "a power limit in mW that fits in 32 bits",
                })?;
                self.nvml
                    .device(*index, uuid)?
                    .set_power_management_limit(limit_mw)
                    .map_err(|err| nvml_error(*index, "set_power_management_limit", &err))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_compare_as_sets() {
        assert!(Compare::CpuList.same("0-3\n", "0,1,2,3"));
        assert!(Compare::CpuList.same("", "\n"));
        assert!(!Compare::CpuList.same("0-3", "0-2"));
        assert!(Compare::Trimmed.same("max 100000\n", "max 100000"));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("0-x"), None);
        assert_eq!(parse_cpu_list("1,4-5"), Some(BTreeSet::from([1, 4, 5])));
    }
}
