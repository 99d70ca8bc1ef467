//! Actuation requests: the changes to the machine an agent may ask the guardian for.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Effect, EffectAction, ProtoError};

/// A requested change to one hardware knob. The guardian checks it; the actuator
/// applies it (dry-run by default) and records the original value first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actuation {
    /// A component's power limit (RAPL package or NVML), in milliwatts.
    PowerLimit { component: String, limit_mw: u64 },
    /// A cgroup v2 `cpu.max`: `quota_us` per `period_us`, or no quota with `None`.
    CgroupCpuMax {
        cgroup: String,
        quota_us: Option<u64>,
        period_us: u64,
    },
    /// A cgroup v2 `cpuset.cpus` list, such as `0-3,6`.
    CgroupCpuset { cgroup: String, cpus: String },
    /// cpufreq `scaling_max_freq` of one cpu, in kHz.
    CpufreqMax { cpu: u32, max_khz: u64 },
    /// cpufreq `energy_performance_preference` of one cpu.
    EnergyPreference { cpu: u32, preference: String },
}

/// The kind of an [`Actuation`], without its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActuationKind {
    PowerLimit,
    CgroupCpuMax,
    CgroupCpuset,
    CpufreqMax,
    EnergyPreference,
}

const EPP_VALUES: [&str; 5] = [
    "default",
    "performance",
    "balance_performance",
    "balance_power",
    "power",
];

impl Actuation {
    pub fn kind(&self) -> ActuationKind {
        match self {
            Actuation::PowerLimit { .. } => ActuationKind::PowerLimit,
            Actuation::CgroupCpuMax { .. } => ActuationKind::CgroupCpuMax,
            Actuation::CgroupCpuset { .. } => ActuationKind::CgroupCpuset,
            Actuation::CpufreqMax { .. } => ActuationKind::CpufreqMax,
            Actuation::EnergyPreference { .. } => ActuationKind::EnergyPreference,
        }
    }

    /// The stable name of the knob this touches, such as `power.limit:gpu0`. Two
    /// actuations with the same target write the same file or device setting.
    pub fn target(&self) -> String {
        match self {
            Actuation::PowerLimit { component, .. } => format!("power.limit:{component}"),
            Actuation::CgroupCpuMax { cgroup, .. } => format!("cgroup.cpu_max:{cgroup}"),
            Actuation::CgroupCpuset { cgroup, .. } => format!("cgroup.cpuset:{cgroup}"),
            Actuation::CpufreqMax { cpu, .. } => format!("cpufreq.max:{cpu}"),
            Actuation::EnergyPreference { cpu, .. } => format!("cpufreq.epp:{cpu}"),
        }
    }

    /// The effect an agent needs to be granted to request this actuation.
    pub fn required_effect(&self) -> Effect {
        let (action, scope) = match self {
            Actuation::PowerLimit { component, .. } => {
                (EffectAction::SetPowerLimit, component.clone())
            }
            Actuation::CgroupCpuMax { cgroup, .. } => (EffectAction::SetCpuMax, cgroup.clone()),
            Actuation::CgroupCpuset { cgroup, .. } => (EffectAction::SetCpuset, cgroup.clone()),
            Actuation::CpufreqMax { cpu, .. } => (EffectAction::SetCpufreqMax, cpu.to_string()),
            Actuation::EnergyPreference { cpu, .. } => {
                (EffectAction::SetEnergyPreference, cpu.to_string())
            }
        };
        Effect { action, scope }
    }

    /// Checks the values are well-formed (ranges against the device are the gate's job).
    pub fn validate(&self) -> Result<(), ProtoError> {
        let invalid = |reason: String| Err(ProtoError::InvalidActuation(reason));
        let name_ok = |name: &str| {
            !name.is_empty()
                && !name.contains("..")
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b))
        };
        match self {
            Actuation::PowerLimit {
                component,
                limit_mw,
            } => {
                if !name_ok(component) {
                    return invalid(format!("bad component name `{component}`"));
                }
                if *limit_mw == 0 {
                    return invalid("a power limit of 0 mW".into());
                }
            }
            Actuation::CgroupCpuMax {
                cgroup,
                quota_us,
                period_us,
            } => {
                if !name_ok(cgroup) {
                    return invalid(format!("bad cgroup name `{cgroup}`"));
                }
                if !(1_000..=1_000_000).contains(period_us) {
                    return invalid(format!(
                        "cpu.max period {period_us} µs outside 1000..=1000000"
                    ));
                }
                if *quota_us == Some(0) {
                    return invalid("a cpu.max quota of 0 µs".into());
                }
            }
            Actuation::CgroupCpuset { cgroup, cpus } => {
                if !name_ok(cgroup) {
                    return invalid(format!("bad cgroup name `{cgroup}`"));
                }
                let list_ok = !cpus.is_empty()
                    && cpus
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b",-".contains(&b));
                if !list_ok {
                    return invalid(format!("bad cpu list `{cpus}`"));
                }
            }
            Actuation::CpufreqMax { max_khz, .. } => {
                if *max_khz == 0 {
                    return invalid("a maximum frequency of 0 kHz".into());
                }
            }
            Actuation::EnergyPreference { preference, .. } => {
                if !EPP_VALUES.contains(&preference.as_str()) {
                    return invalid(format!(
                        "unknown energy_performance_preference `{preference}`"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The value written, as the text that ends up in the device file.
    pub fn value_text(&self) -> String {
        match self {
            Actuation::PowerLimit { limit_mw, .. } => format!("{limit_mw} mW"),
            Actuation::CgroupCpuMax {
                quota_us,
                period_us,
                ..
            } => match quota_us {
                Some(quota) => format!("{quota} {period_us}"),
                None => format!("max {period_us}"),
            },
            Actuation::CgroupCpuset { cpus, .. } => cpus.clone(),
            Actuation::CpufreqMax { max_khz, .. } => max_khz.to_string(),
            Actuation::EnergyPreference { preference, .. } => preference.clone(),
        }
    }
}

impl fmt::Display for Actuation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.target(), self.value_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_limit_names_its_target_and_effect() {
        let act = Actuation::PowerLimit {
            component: "gpu0".into(),
            limit_mw: 200_000,
        };
        assert_eq!(act.target(), "power.limit:gpu0");
        assert_eq!(act.required_effect().to_string(), "power.set_limit:gpu0");
        assert_eq!(act.validate(), Ok(()));
    }

    #[test]
    fn malformed_actuations_are_rejected() {
        let bad = [
            Actuation::PowerLimit {
                component: "../../etc".into(),
                limit_mw: 1,
            },
            Actuation::PowerLimit {
                component: "gpu0".into(),
                limit_mw: 0,
            },
            Actuation::CgroupCpuMax {
                cgroup: "game".into(),
                quota_us: Some(0),
                period_us: 100_000,
            },
            Actuation::CgroupCpuset {
                cgroup: "game".into(),
                cpus: "0-3;rm".into(),
            },
            Actuation::EnergyPreference {
                cpu: 0,
                preference: "turbo".into(),
            },
        ];
        for act in bad {
            assert!(
                matches!(act.validate(), Err(ProtoError::InvalidActuation(_))),
                "{act}"
            );
        }
    }
}
