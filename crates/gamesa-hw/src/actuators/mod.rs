//! Applying actuations to the real machine, revertibly: [`LinuxActuator`] routes each
//! target to a real writer when configuration enables it, and to the
//! [`DryRunActuator`] otherwise (the default for every target).
//!
//! # Invariants
//! - nothing is written to the machine for a target that `enabled_targets` does not
//!   enable;
//! - before the first write to a target, the original value of every knob it writes
//!   is in the state file on disk (see [`state`](self::state));
//! - a write equal to the current value is not made (`changed: false`);
//! - after a failed write, the target's record either still restores every knob it
//!   changed, or is dropped because every knob still holds its original;
//! - a record is removed only once its originals read back from the machine.

mod cgroup;
mod cpufreq;
mod dry_run;
mod hwmon;
mod knob;
mod nvml;
mod plan;
mod powercap;
mod state;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

pub use dry_run::{DryRunActuator, UNKNOWN_PREVIOUS};
use gamesa_proto::Actuation;
use serde::{Deserialize, Serialize};

use self::{
    knob::{Compare, KnobIo, NvmlHandle},
    plan::Plan,
    state::{Original, StateStore},
};
use crate::{
    Actuator, Applied, HwError, RestoreReport,
    drm::{self, GpuHwmon},
};

/// Where `LinuxActuator` keeps its originals unless configured otherwise.
pub const DEFAULT_STATE_FILE: &str = "/var/lib/gamesa/actuator-state.json";

/// Which hardware a component's power limit is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum PowerLimitBinding {
    /// A RAPL zone under `sys/class/powercap/`, such as `intel-rapl:0`. With a window,
    /// `constraint_0_time_window_us` is written too (before the limit).
    Powercap {
        zone: String,
        #[serde(default)]
        time_window_us: Option<u64>,
    },
    /// An NVIDIA GPU, by NVML index.
    Nvml { index: u32 },
    /// An AMD or Intel GPU's hwmon limit file, by the card's PCI address
    /// (`0000:03:00.0`, stable across boots where `cardN` and `hwmonM` are not):
    /// `power1_cap` for amdgpu, `power1_max` for i915 and xe.
    Hwmon { pci: String, file: String },
}

/// Which device each `gpuN` is, numbered as the sensors number them: NVML's GPUs are
/// `gpu0`..`gpuK-1`, then the amdgpu, i915 and xe GPUs in PCI address order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuNumbering {
    /// K: how many GPUs NVML reports (0 without NVML).
    pub nvml_count: u32,
    /// The hwmon GPUs, in order.
    pub hwmon: Vec<HwmonGpu>,
}

/// An amdgpu, i915 or xe GPU in the numbering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HwmonGpu {
    /// Its PCI address, `0000:03:00.0`.
    pub pci: String,
    /// Its limit file, `power1_cap` or `power1_max`; `None` when it has none.
    pub limit_file: Option<String>,
}

impl GpuNumbering {
    /// No GPU known: `gpuN` is NVML index N, as without this numbering.
    pub const NONE: GpuNumbering = GpuNumbering {
        nvml_count: 0,
        hwmon: Vec::new(),
    };

    /// The numbering of the machine under `root`: NVML's device count (0 when NVML
    /// cannot load), and the hwmon GPUs the sensors make components, in their order.
    fn discover(root: &Path, nvml: &mut NvmlHandle) -> GpuNumbering {
        let nvml_count = nvml
            .nvml()
            .ok()
            .and_then(|nvml| nvml.device_count().ok())
            .unwrap_or(0);
        let mut errors = Vec::new();
        let hwmon = drm::find(root, &mut errors)
            .into_iter()
            .filter(GpuHwmon::is_component)
            .map(|gpu| {
                let file = gpu.driver.limit_file();
                HwmonGpu {
                    limit_file: gpu.dir.join(file).exists().then(|| file.to_owned()),
                    pci: gpu.pci,
                }
            })
            .collect();
        for err in errors {
            tracing::warn!(error = %err, "actuator: while numbering the GPUs");
        }
        GpuNumbering { nvml_count, hwmon }
    }
}

/// How [`LinuxActuator`] reaches the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActuatorConfig {
    /// Every sysfs and cgroupfs path is written under this root (`/`; a temp dir in
    /// tests).
    pub root: PathBuf,
    /// The durable record of original values. Absolute; not under `root`.
    pub state_file: PathBuf,
    /// Targets, as `Actuation::target` names them, that the real writers may touch:
    /// exact (`power.limit:gpu0`) or a prefix ending in `*` (`cgroup.cpu_max:*`).
    /// Empty by default: everything is dry-run.
    pub enabled_targets: Vec<String>,
    /// Component to hardware, for `power.limit`. Without an entry, `cpu` is the
    /// powercap zone `intel-rapl:0` and `gpuN` is the Nth GPU as the sensors number
    /// them (see [`GpuNumbering`]).
    pub power_limits: BTreeMap<String, PowerLimitBinding>,
}

impl Default for ActuatorConfig {
    fn default() -> Self {
        ActuatorConfig {
            root: PathBuf::from("/"),
            state_file: PathBuf::from(DEFAULT_STATE_FILE),
            enabled_targets: Vec::new(),
            power_limits: BTreeMap::new(),
        }
    }
}

impl ActuatorConfig {
    /// Whether the real writers may touch `target`.
    pub fn is_enabled(&self, target: &str) -> bool {
        self.enabled_targets
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => target.starts_with(prefix),
                None => pattern == target,
            })
    }

    /// The hardware behind a component's power limit: the configured binding, else
    /// `cpu` is `intel-rapl:0` and `gpuN` is N in `gpus` (NVML index N past its end).
    pub fn power_limit_binding(
        &self,
        component: &str,
        gpus: &GpuNumbering,
    ) -> Result<PowerLimitBinding, HwError> {
        if let Some(binding) = self.power_limits.get(component) {
            return Ok(binding.clone());
        }
        if component == "cpu" {
            return Ok(PowerLimitBinding::Powercap {
                zone: "intel-rapl:0".into(),
                time_window_us: None,
            });
        }
        let Some(index) = component
            .strip_prefix("gpu")
            .and_then(|index| index.parse::<u32>().ok())
        else {
            return Err(HwError::UnknownComponent {
                component: component.to_string(),
            });
        };
        let hwmon = index
            .checked_sub(gpus.nvml_count)
            .and_then(|n| gpus.hwmon.get(usize::try_from(n).ok()?));
        match hwmon {
            None => Ok(PowerLimitBinding::Nvml { index }),
            Some(HwmonGpu {
                pci,
                limit_file: Some(file),
            }) => Ok(PowerLimitBinding::Hwmon {
                pci: pci.clone(),
                file: file.clone(),
            }),
            Some(HwmonGpu {
                pci,
                limit_file: None,
            }) => Err(HwError::NoPowerLimit {
                component: component.to_string(),
                device: pci.clone(),
            }),
        }
    }
}

/// What [`LinuxActuator::new`] found and did at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartReport {
    /// Records left by a previous run that did not restore them (a crash), restored now.
    pub recovered: RestoreReport,
    /// The state file could not be understood: [`HwError::CorruptState`], saying where
    /// it was moved. Its originals were not restored.
    pub quarantined: Option<HwError>,
}

/// The Linux actuator: real writers for enabled targets, dry-run for the rest, and a
/// durable record of every original it changed.
#[derive(Debug)]
pub struct LinuxActuator {
    config: ActuatorConfig,
    state: StateStore,
    dry_run: DryRunActuator,
    nvml: NvmlHandle,
    /// The sensors' numbering when given ([`LinuxActuator::with_gpu_numbering`]), else
    /// looked up on the first `gpuN` without a configured binding; then kept (GPUs are
    /// not hot-plugged).
    gpus: Option<GpuNumbering>,
    start: StartReport,
}

impl LinuxActuator {
    /// Opens the state file and restores whatever a previous run left recorded. Fails
    /// only when the state file exists but cannot be read (then nothing could be
    /// reverted safely).
    pub fn new(config: ActuatorConfig) -> Result<LinuxActuator, HwError> {
        let (state, quarantined) = StateStore::open(&config.state_file)?;
        let mut actuator = LinuxActuator {
            config,
            state,
            dry_run: DryRunActuator::new(),
            nvml: NvmlHandle::default(),
            gpus: None,
            start: StartReport::default(),
        };
        let leftovers = actuator.state.targets();
        if !leftovers.is_empty() {
            tracing::warn!(targets = ?leftovers, state_file = %actuator.state.path().display(),
                "restoring originals left recorded by a previous run");
        }
        let recovered = actuator.restore_real(leftovers);
        actuator.start = StartReport {
            recovered,
            quarantined,
        };
        Ok(actuator)
    }

    pub fn config(&self) -> &ActuatorConfig {
        &self.config
    }

    /// Numbers `gpuN` as the sensors do (`LinuxSensors::gpu_numbering`), so that a
    /// default binding writes the GPU whose readings the agents saw as `gpuN`, even
    /// when NVML loaded for one of them and not for the other.
    pub fn with_gpu_numbering(mut self, gpus: GpuNumbering) -> LinuxActuator {
        self.gpus = Some(gpus);
        self
    }

    pub fn start_report(&self) -> &StartReport {
        &self.start
    }

    /// Targets whose originals are recorded (changed on the real machine, not restored).
    pub fn recorded_targets(&self) -> Vec<String> {
        self.state.targets()
    }

    /// The dry-run side, for what it has "set".
    pub fn dry_run(&self) -> &DryRunActuator {
        &self.dry_run
    }

    /// Numbers the GPUs when `component` is a `gpuN` without a configured binding and
    /// they are not numbered yet.
    fn number_gpus_for(&mut self, component: &str) {
        if self.gpus.is_none()
            && component.starts_with("gpu")
            && !self.config.power_limits.contains_key(component)
        {
            self.gpus = Some(GpuNumbering::discover(&self.config.root, &mut self.nvml));
        }
    }

    fn plan(&mut self, actuation: &Actuation, target: &str) -> Result<Plan, HwError> {
        if let Actuation::PowerLimit { component, .. } = actuation {
            self.number_gpus_for(component);
        }
        let root = &self.config.root;
        match actuation {
            Actuation::PowerLimit {
                component,
                limit_mw,
            } => {
                let none = GpuNumbering::NONE;
                let gpus = self.gpus.as_ref().unwrap_or(&none);
                match self.config.power_limit_binding(component, gpus)? {
                    PowerLimitBinding::Powercap {
                        zone,
                        time_window_us,
                    } => powercap::plan(root, target, &zone, time_window_us, *limit_mw),
                    PowerLimitBinding::Nvml { index } => {
                        nvml::plan(&mut self.nvml, target, index, *limit_mw)
                    }
                    PowerLimitBinding::Hwmon { pci, file } => {
                        hwmon::plan(root, target, &pci, &file, *limit_mw)
                    }
                }
            }
            Actuation::CgroupCpuMax {
                cgroup,
                quota_us,
                period_us,
            } => cgroup::cpu_max_plan(root, target, cgroup, *quota_us, *period_us),
            Actuation::CgroupCpuset { cgroup, cpus } => {
                cgroup::cpuset_plan(root, target, cgroup, cpus)
            }
            Actuation::CpufreqMax { cpu, max_khz } => {
                cpufreq::max_freq_plan(root, target, *cpu, *max_khz)
            }
            Actuation::EnergyPreference { cpu, preference } => {
                cpufreq::epp_plan(root, target, *cpu, preference)
            }
        }
    }

    fn apply_real(&mut self, actuation: &Actuation, target: String) -> Result<Applied, HwError> {
        let plan = self.plan(actuation, &target)?;
        let mut io = KnobIo {
            nvml: &mut self.nvml,
        };
        let currents = plan
            .steps
            .iter()
            .map(|step| io.read(&step.knob))
            .collect::<Result<Vec<String>, HwError>>()?;
        let main = currents.last().map(String::as_str).unwrap_or_default();
        let previous = plan.unit.present(main);
        let pending: Vec<bool> = plan
            .steps
            .iter()
            .zip(&currents)
            .map(|(step, current)| !step.compare.same(current, &step.value))
            .collect();
        if !pending.contains(&true) {
            return Ok(Applied {
                target,
                current: previous.clone(),
                previous,
                changed: false,
                dry_run: false,
            });
        }

        // The originals reach the disk before the first write.
        let originals = plan
            .steps
            .iter()
            .zip(&currents)
            .map(|(step, current)| Original {
                knob: step.knob.clone(),
                value: current.clone(),
            })
            .collect();
        self.state.add(&target, originals)?;

        for (step, pending) in plan.steps.iter().zip(pending) {
            if !pending {
                continue;
            }
            tracing::info!(target = %target, knob = %step.knob.describe(), value = %step.value, "actuator: writing");
            if let Err(err) = io.write(&step.knob, &step.value) {
                tracing::warn!(target = %target, error = %err, "actuator: write failed");
                self.settle_after_failure(&target);
                return Err(err);
            }
        }
        let mut io = KnobIo {
            nvml: &mut self.nvml,
        };
        let current = match plan.steps.last() {
            Some(step) => read_back(&mut io, &step.knob, plan.unit)?,
            None => previous.clone(),
        };
        Ok(Applied {
            target,
            previous,
            current,
            changed: true,
            dry_run: false,
        })
    }

    /// After a failed write: a record whose knobs all still hold their originals has
    /// nothing to restore and is dropped; otherwise it is kept for restore.
    fn settle_after_failure(&mut self, target: &str) {
        let Some(record) = self.state.record(target).map(<[Original]>::to_vec) else {
            return;
        };
        let mut io = KnobIo {
            nvml: &mut self.nvml,
        };
        let untouched = record.iter().all(|original| {
            io.read(&original.knob)
                .is_ok_and(|now| Compare::Trimmed.same(&now, &original.value))
        });
        if untouched && let Err(err) = self.state.remove(target) {
            // Keeping the record is safe: restoring an unchanged knob writes nothing.
            tracing::warn!(target, error = %err, "could not drop the record of an unchanged target");
        }
    }

    /// Restores each target's recorded originals (last written first) and removes the
    /// records that read back as restored.
    fn restore_real(&mut self, targets: Vec<String>) -> RestoreReport {
        let mut report = RestoreReport::default();
        for target in targets {
            let Some(record) = self.state.record(&target).map(<[Original]>::to_vec) else {
                continue;
            };
            let mut io = KnobIo {
                nvml: &mut self.nvml,
            };
            let outcome = record
                .iter()
                .rev()
                .try_for_each(|original| restore_one(&mut io, &target, original))
                .and_then(|()| self.state.remove(&target));
            match outcome {
                Ok(()) => {
                    tracing::info!(target = %target, "actuator: original restored");
                    report.restored.push(target);
                }
                Err(err) => {
                    tracing::error!(target = %target, error = %err, "actuator: restore failed; record kept");
                    report.failed.push((target, err));
                }
            }
        }
        report
    }
}

/// The value the device settled on after a write, as `Applied::current` shows it: the
/// file's content, or for NVML the management limit, with the enforced limit when it
/// differs (another limit, or the driver not having applied it yet).
fn read_back(io: &mut KnobIo<'_>, knob: &knob::Knob, unit: plan::Unit) -> Result<String, HwError> {
    let value = unit.present(&io.read(knob)?);
    let knob::Knob::NvmlPowerLimit { index, uuid } = knob else {
        return Ok(value);
    };
    let enforced_mw = io
        .nvml
        .device(*index, uuid)?
        .enforced_power_limit()
        .map_err(|err| crate::sensors::nvml_error(*index, "enforced_power_limit", &err))?;
    let enforced = unit.present(&enforced_mw.to_string());
    if enforced == value {
        Ok(value)
    } else {
        Ok(format!("{value} (enforced {enforced})"))
    }
}

/// Writes one original back (unless it is already there) and checks it reads back.
fn restore_one(io: &mut KnobIo<'_>, target: &str, original: &Original) -> Result<(), HwError> {
    let now = io.read(&original.knob)?;
    if Compare::Trimmed.same(&now, &original.value) {
        return Ok(());
    }
    io.write(&original.knob, &original.value)?;
    let after = io.read(&original.knob)?;
    if Compare::Trimmed.same(&after, &original.value) {
        Ok(())
    } else {
        Err(HwError::ReadBack {
            target: target.to_string(),
            wanted: original.value.trim().to_string(),
            found: after.trim().to_string(),
        })
    }
}

fn merge(mut into: RestoreReport, other: RestoreReport) -> RestoreReport {
    into.restored.extend(other.restored);
    into.failed.extend(other.failed);
    into
}

impl Actuator for LinuxActuator {
    fn apply(&mut self, actuation: &Actuation) -> Result<Applied, HwError> {
        let target = actuation.target();
        if !self.config.is_enabled(&target) {
            return self.dry_run.apply(actuation);
        }
        actuation
            .validate()
            .map_err(|err| HwError::InvalidActuation {
                target: target.clone(),
                reason: err.to_string(),
            })?;
        self.apply_real(actuation, target)
    }

    fn restore_target(&mut self, target: &str) -> RestoreReport {
        let real = self.restore_real(vec![target.to_string()]);
        merge(real, self.dry_run.restore_target(target))
    }

    fn restore_all(&mut self) -> RestoreReport {
        let targets = self.state.targets();
        let real = self.restore_real(targets);
        merge(real, self.dry_run.restore_all())
    }
}

#[cfg(test)]
mod tests;
