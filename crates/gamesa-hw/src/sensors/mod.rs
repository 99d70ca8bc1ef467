//! The real machine's telemetry: [`LinuxSensors`] reads every source once per sample
//! into one [`TelemetryFrame`], one module per source.
//!
//! # Invariants
//! - every frame lists every source in `frame.sources`: unavailable ones with the
//!   reason, available ones with what went wrong on this sample, if anything;
//! - a source missing at start (no GPU, no powercap, no thermal zone) is logged once
//!   (`tracing::warn`) and stays silent afterwards; a reading that fails is logged once
//!   per file (then at `debug`), and is returned in [`Sample::errors`] every time;
//! - a failure in one source never loses the readings of the others.
//!
//! Sources are discovered once, in [`LinuxSensors::new`]: the files to read each sample
//! and the labels, trip points and ranges that do not change.

mod components;
mod cpufreq;
mod gpu_hwmon;
mod hwmon;
mod nvml;
mod powercap;
mod psi;
mod system;
mod thermal;

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    time::Instant,
};

use gamesa_proto::{CpuTelemetry, SourceStatus, TelemetryFrame, TemperatureTelemetry, Tick};
pub(crate) use nvml::nvml_error;
pub use nvml::{NvmlReading, NvmlSource};
use serde::{Deserialize, Serialize};

pub(crate) use self::gpu_hwmon::GpuDevice;
use self::{
    cpufreq::CpufreqSource, gpu_hwmon::GpuHwmonSource, hwmon::HwmonSource,
    powercap::PowercapSource, system::SystemSource, thermal::ThermalSource,
};
use crate::{HwError, Sample, Sensors};

/// Source names, as [`SourceStatus::source`] carries them.
pub mod source {
    pub const CPU: &str = "cpu";
    pub const MEMORY: &str = "memory";
    pub const CPUFREQ: &str = "cpufreq";
    pub const THERMAL: &str = "thermal";
    pub const HWMON: &str = "hwmon";
    pub const POWERCAP: &str = "powercap";
    pub const NVML: &str = "nvml";
    pub const GPU_HWMON: &str = "gpu_hwmon";
    pub const PSI: &str = "psi";
}

/// How [`LinuxSensors`] reads the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinuxSensorsOptions {
    /// Every sysfs and procfs path is read under this root: `/` on a real machine, a
    /// fake tree in tests. (CPU utilization and memory come from sysinfo, which always
    /// reads the host's `/proc`.)
    pub root: PathBuf,
    /// The node's power cap, copied into every frame's `node.cap_mw`.
    pub cap_mw: Option<u64>,
    /// Whether to load NVML for NVIDIA GPUs. Off, the `nvml` source is unavailable.
    pub nvml: bool,
}

impl Default for LinuxSensorsOptions {
    fn default() -> Self {
        LinuxSensorsOptions {
            root: PathBuf::from("/"),
            cap_mw: None,
            nvml: true,
        }
    }
}

/// A temperature reading, marked when it measures the CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemperatureReading {
    pub(crate) telemetry: TemperatureTelemetry,
    pub(crate) cpu: bool,
}

/// The Linux telemetry source: sysinfo, sysfs, procfs and NVML.
#[derive(Debug)]
pub struct LinuxSensors {
    options: LinuxSensorsOptions,
    /// Each source, or why it is unavailable.
    system: Result<SystemSource, String>,
    cpufreq: Result<CpufreqSource, String>,
    thermal: Result<ThermalSource, String>,
    hwmon: Result<HwmonSource, String>,
    powercap: Result<PowercapSource, String>,
    psi: Result<PathBuf, String>,
    nvml: Result<NvmlSource, String>,
    /// amdgpu, i915 and xe GPUs, numbered after the NVML ones.
    gpu_hwmon: Result<GpuHwmonSource, String>,
    /// When the previous sample was taken, for `interval_ms`.
    last_sample_at: Option<Instant>,
    /// Problems met during discovery, handed out with the first sample.
    discovery_errors: Vec<HwError>,
    log: WarnOnce,
}

impl LinuxSensors {
    /// Discovers every source under `options.root`. Never fails: a source that cannot
    /// be used is unavailable, and says why in every frame.
    pub fn new(options: LinuxSensorsOptions) -> LinuxSensors {
        let root = options.root.clone();
        let mut discovery_errors = Vec::new();
        let psi_path = root.join("proc/pressure/memory");
        let nvml = if options.nvml {
            NvmlSource::init().map_err(|err| err.to_string())
        } else {
            Err("disabled in the sensor options".to_string())
        };
        // NVML GPUs are gpu0..K-1; the hwmon GPUs follow.
        let nvml_gpus = nvml.as_ref().map_or(0, NvmlSource::gpu_count);
        let gpu_hwmon = GpuHwmonSource::discover(&root, nvml_gpus, &mut discovery_errors);
        let mut sensors = LinuxSensors {
            system: SystemSource::new(),
            cpufreq: CpufreqSource::discover(&root),
            thermal: ThermalSource::discover(&root, &mut discovery_errors),
            hwmon: HwmonSource::discover(&root, &mut discovery_errors),
            powercap: PowercapSource::discover(&root, &mut discovery_errors),
            psi: if psi_path.exists() {
                Ok(psi_path)
            } else {
                Err(format!(
                    "{} absent (kernel without PSI)",
                    psi_path.display()
                ))
            },
            nvml,
            gpu_hwmon,
            options,
            last_sample_at: None,
            discovery_errors,
            log: WarnOnce::default(),
        };
        if let Ok(nvml) = &mut sensors.nvml {
            sensors
                .discovery_errors
                .extend(nvml.take_discovery_errors());
        }
        for (name, reason) in sensors.unavailable_sources() {
            tracing::warn!(source = name, reason = %reason, "sensor source unavailable");
        }
        sensors
    }

    /// Sensors on the real machine (`/`), with NVML.
    pub fn system() -> LinuxSensors {
        LinuxSensors::new(LinuxSensorsOptions::default())
    }

    /// How these sensors number `gpuN`: NVML's GPUs first, then the amdgpu, i915 and
    /// xe ones (`LinuxActuator::with_gpu_numbering` takes it).
    pub fn gpu_numbering(&self) -> crate::GpuNumbering {
        crate::GpuNumbering {
            nvml_count: self.nvml.as_ref().map_or(0, |nvml| {
                u32::try_from(nvml.gpu_count()).unwrap_or(u32::MAX)
            }),
            hwmon: self
                .gpu_hwmon
                .as_ref()
                .map(|source| {
                    source
                        .devices()
                        .map(|gpu| crate::HwmonGpu {
                            pci: gpu.device.pci.clone(),
                            limit_file: gpu.limit_file.map(str::to_owned),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    pub fn options(&self) -> &LinuxSensorsOptions {
        &self.options
    }

    /// The sources unavailable since start, with why.
    pub fn unavailable_sources(&self) -> Vec<(&'static str, String)> {
        let system = self.system.as_ref().err();
        [
            (source::CPU, system),
            (source::MEMORY, system),
            (source::CPUFREQ, self.cpufreq.as_ref().err()),
            (source::THERMAL, self.thermal.as_ref().err()),
            (source::HWMON, self.hwmon.as_ref().err()),
            (source::POWERCAP, self.powercap.as_ref().err()),
            (source::NVML, self.nvml.as_ref().err()),
            (source::GPU_HWMON, self.gpu_hwmon.as_ref().err()),
            (source::PSI, self.psi.as_ref().err()),
        ]
        .into_iter()
        .filter_map(|(name, reason)| reason.map(|reason| (name, reason.clone())))
        .collect()
    }

    /// The amdgpu, i915 and xe GPUs that are components, in `gpuN` order.
    pub(crate) fn hwmon_gpus(&self) -> Vec<GpuDevice<'_>> {
        self.gpu_hwmon
            .as_ref()
            .map_or_else(|_| Vec::new(), |source| source.devices().collect())
    }

    /// Reads the machine once, as of `now` (the energy counters' time base and the
    /// interval since the previous sample). [`Sensors::sample`] passes `Instant::now()`;
    /// tests pass chosen instants to pin the computed power.
    pub fn sample_at(&mut self, tick: Tick, now: Instant) -> Sample {
        let mut frame = TelemetryFrame {
            tick,
            interval_ms: self.last_sample_at.map_or(0, |then| {
                u64::try_from(now.saturating_duration_since(then).as_millis()).unwrap_or(u64::MAX)
            }),
            ..TelemetryFrame::default()
        };
        self.last_sample_at = Some(now);
        let mut report = Report::new(std::mem::take(&mut self.discovery_errors));

        // cpu, memory, cpufreq
        let mut utilization = None;
        let mut cpufreq_errors = Vec::new();
        let mut cpufreq_note = None;
        match &mut self.system {
            Ok(system) => {
                system.refresh();
                match system.utilization() {
                    Ok(measured) => {
                        utilization = Some(measured.total_permille);
                        let frequency_khz = match &self.cpufreq {
                            Ok(cpufreq) => cpufreq.read(system.cpu_count(), &mut cpufreq_errors),
                            Err(_) => vec![None; system.cpu_count()],
                        };
                        frame.cpu = Some(CpuTelemetry {
                            utilization_permille: measured.total_permille,
                            per_core_permille: measured.per_core_permille,
                            frequency_khz,
                        });
                        report.source(source::CPU, Ok(None), Vec::new());
                    }
                    Err(note) => {
                        cpufreq_note = Some("read once cpu utilization is measured".to_string());
                        report.source(source::CPU, Ok(Some(note)), Vec::new());
                    }
                }
                match system.memory() {
                    Ok(memory) => {
                        frame.memory = Some(memory);
                        report.source(source::MEMORY, Ok(None), Vec::new());
                    }
                    Err(reason) => report.source(source::MEMORY, Err(&reason), Vec::new()),
                }
            }
            Err(reason) => {
                cpufreq_note = Some(format!("needs the cpu source: {reason}"));
                report.source(source::CPU, Err(reason), Vec::new());
                report.source(source::MEMORY, Err(reason), Vec::new());
            }
        }
        match &self.cpufreq {
            Ok(_) => report.source(source::CPUFREQ, Ok(cpufreq_note), cpufreq_errors),
            Err(reason) => report.source(source::CPUFREQ, Err(reason), Vec::new()),
        }

        // temperatures
        let mut temperatures = Vec::new();
        for (name, result) in [
            (
                source::THERMAL,
                self.thermal.as_ref().map(TempSource::Thermal),
            ),
            (source::HWMON, self.hwmon.as_ref().map(TempSource::Hwmon)),
        ] {
            match result {
                Ok(temp_source) => {
                    let mut errors = Vec::new();
                    match temp_source {
                        TempSource::Thermal(thermal) => {
                            thermal.read(&mut temperatures, &mut errors)
                        }
                        TempSource::Hwmon(hwmon) => hwmon.read(&mut temperatures, &mut errors),
                    }
                    report.source(name, Ok(None), errors);
                }
                Err(reason) => report.source(name, Err(reason), Vec::new()),
            }
        }

        // power
        let domains = match &mut self.powercap {
            Ok(powercap) => {
                let mut errors = Vec::new();
                let domains = powercap.read(now, &mut errors);
                report.source(source::POWERCAP, Ok(None), errors);
                domains
            }
            Err(reason) => {
                report.source(source::POWERCAP, Err(reason), Vec::new());
                Vec::new()
            }
        };

        // GPUs
        let gpus = match &mut self.nvml {
            Ok(nvml) => {
                let reading = nvml.read();
                let note = (!reading.unsupported.is_empty())
                    .then(|| format!("not supported: {}", reading.unsupported.join(", ")));
                report.source(source::NVML, Ok(note), reading.errors);
                frame.gpus = reading.gpus;
                reading.components
            }
            Err(reason) => {
                report.source(source::NVML, Err(reason), Vec::new());
                Vec::new()
            }
        };
        let hwmon_gpus = match &mut self.gpu_hwmon {
            Ok(source) => {
                let mut errors = Vec::new();
                let components = source.read(now, &temperatures, &mut errors);
                report.source(source::GPU_HWMON, Ok(source.note()), errors);
                components
            }
            Err(reason) => {
                report.source(source::GPU_HWMON, Err(reason), Vec::new());
                Vec::new()
            }
        };

        // memory pressure
        match &self.psi {
            Ok(path) => match psi::read(path) {
                Ok(pressure) => {
                    frame.pressure = Some(pressure);
                    report.source(source::PSI, Ok(None), Vec::new());
                }
                Err(err) => report.source(source::PSI, Ok(None), vec![err]),
            },
            Err(reason) => report.source(source::PSI, Err(reason), Vec::new()),
        }

        frame.components = components::cpu(utilization, &domains, &temperatures)
            .into_iter()
            .chain(gpus)
            .chain(hwmon_gpus)
            .collect();
        frame.node = components::node(&frame.components, self.options.cap_mw);
        frame.temperatures = temperatures.into_iter().map(|t| t.telemetry).collect();
        frame.power_domains = domains.into_iter().map(|d| d.telemetry).collect();

        let (sources, errors) = report.finish(&mut self.log);
        frame.sources = sources;
        Sample { frame, errors }
    }
}

impl Sensors for LinuxSensors {
    fn sample(&mut self, tick: Tick) -> Sample {
        self.sample_at(tick, Instant::now())
    }
}

enum TempSource<'a> {
    Thermal(&'a ThermalSource),
    Hwmon(&'a HwmonSource),
}

/// Collects each source's status and errors while a sample is taken.
struct Report {
    /// Errors not tied to this sample's reading of one source (discovery).
    pending: Vec<HwError>,
    statuses: Vec<(SourceStatus, Vec<HwError>)>,
}

impl Report {
    fn new(pending: Vec<HwError>) -> Report {
        Report {
            pending,
            statuses: Vec::with_capacity(9),
        }
    }

    /// Records one source: available (with an optional note) or unavailable (with why),
    /// and the errors its readings met on this sample.
    fn source(
        &mut self,
        name: &'static str,
        state: Result<Option<String>, &String>,
        errors: Vec<HwError>,
    ) {
        let (available, note) = match state {
            Ok(note) => (true, note),
            Err(reason) => (false, Some(reason.clone())),
        };
        let failure = errors.first().map(|first| match errors.len() {
            1 => format!("a reading failed: {first}"),
            n => format!("{n} readings failed, first: {first}"),
        });
        let detail = match (note, failure) {
            (Some(note), Some(failure)) => Some(format!("{note}; {failure}")),
            (note, failure) => note.or(failure),
        };
        self.statuses.push((
            SourceStatus {
                source: name.to_string(),
                available,
                detail,
            },
            errors,
        ));
    }

    /// The statuses in a fixed order, and every error, each logged once per subject.
    fn finish(mut self, log: &mut WarnOnce) -> (Vec<SourceStatus>, Vec<HwError>) {
        const ORDER: [&str; 9] = [
            source::CPU,
            source::MEMORY,
            source::CPUFREQ,
            source::THERMAL,
            source::HWMON,
            source::POWERCAP,
            source::NVML,
            source::GPU_HWMON,
            source::PSI,
        ];
        self.statuses.sort_by_key(|(status, _)| {
            ORDER
                .iter()
                .position(|name| *name == status.source)
                .unwrap_or(ORDER.len())
        });
        let mut errors = self.pending;
        let mut sources = Vec::with_capacity(self.statuses.len());
        for (status, source_errors) in self.statuses {
            for err in &source_errors {
                log.error(&status.source, err);
            }
            errors.extend(source_errors);
            sources.push(status);
        }
        (sources, errors)
    }
}

/// Logs each failing file (or NVML query) at `warn` the first time, then at `debug`.
#[derive(Debug, Default)]
struct WarnOnce {
    warned: HashSet<String>,
}

impl WarnOnce {
    /// Subjects remembered, at most; past it everything logs at `debug`.
    const CAPACITY: usize = 1024;

    fn error(&mut self, source: &str, err: &HwError) {
        let subject = subject(err);
        if self.warned.len() < Self::CAPACITY && self.warned.insert(subject) {
            tracing::warn!(source, error = %err, "sensor reading failed (further failures of it are logged at debug)");
        } else {
            tracing::debug!(source, error = %err, "sensor reading failed");
        }
    }
}

/// What an error is about, so repeated failures of one file are recognised.
fn subject(err: &HwError) -> String {
    match err {
        HwError::Read { path, .. } | HwError::Parse { path, .. } => path_text(path),
        HwError::Nvml { device, call, .. } => format!("nvml {device} {call}"),
        other => other.to_string(),
    }
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod warn_once_tests {
    use super::*;

    #[test]
    fn each_failing_file_is_remembered_once() {
        let mut log = WarnOnce::default();
        let parse = |content: &str| HwError::Parse {
            path: "/sys/class/thermal/thermal_zone0/temp".into(),
            content: content.into(),
            expected: "an integer",
        };
        log.error("thermal", &parse("abc"));
        log.error("thermal", &parse("xyz"));
        log.error(
            "psi",
            &HwError::Read {
                path: "/proc/pressure/memory".into(),
                reason: "Is a directory".into(),
            },
        );
        assert_eq!(log.warned.len(), 2);
    }
}

#[cfg(test)]
mod tests;
