//! Telemetry frames: one sample of the machine, real or simulated, in integer units.
//!
//! A source that is missing (no GPU, no powercap) is absent from its list and named
//! in [`TelemetryFrame::sources`] as unavailable; it is never reported as zero.

use serde::{Deserialize, Serialize};

use crate::Tick;

/// One sample of the whole machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelemetryFrame {
    pub tick: Tick,
    /// Time covered since the previous sample, in milliseconds (0 for the first).
    pub interval_ms: u64,
    pub cpu: Option<CpuTelemetry>,
    pub memory: Option<MemoryTelemetry>,
    pub pressure: Option<PressureTelemetry>,
    pub temperatures: Vec<TemperatureTelemetry>,
    pub power_domains: Vec<PowerDomainTelemetry>,
    pub gpus: Vec<GpuTelemetry>,
    /// The power-managed components (CPU package, each GPU) that agents trade for.
    pub components: Vec<ComponentTelemetry>,
    pub node: NodeTelemetry,
    /// Every source the sampler knows of, and whether it is available.
    pub sources: Vec<SourceStatus>,
}

impl TelemetryFrame {
    pub fn component(&self, id: &str) -> Option<&ComponentTelemetry> {
        self.components.iter().find(|component| component.id == id)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuTelemetry {
    /// Busy share of all cores, in permille.
    pub utilization_permille: u16,
    pub per_core_permille: Vec<u16>,
    /// Current frequency of each cpu that exposes cpufreq, in kHz.
    pub frequency_khz: Vec<Option<u64>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryTelemetry {
    pub total_mb: u64,
    pub used_mb: u64,
    pub available_mb: u64,
    pub swap_total_mb: u64,
    pub swap_used_mb: u64,
}

/// Pressure stall information (`/proc/pressure/memory`), in hundredths of a percent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PressureTelemetry {
    pub some_avg10_centipct: u32,
    pub some_avg60_centipct: u32,
    pub full_avg10_centipct: u32,
    pub full_avg60_centipct: u32,
    pub some_total_us: u64,
    pub full_total_us: u64,
}

/// One temperature sensor (a thermal zone or an hwmon input).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemperatureTelemetry {
    /// A stable id such as `thermal_zone0` or `hwmon2/temp1`.
    pub id: String,
    /// The sensor's own label (`x86_pkg_temp`, `Package id 0`), when it has one.
    pub label: Option<String>,
    pub temp_mc: i32,
    /// The critical trip point, when the sensor publishes one.
    pub critical_mc: Option<i32>,
}

/// One RAPL power domain (`intel-rapl:0` package, its `dram` subzone, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerDomainTelemetry {
    /// The sysfs directory name, such as `intel-rapl:0`.
    pub id: String,
    /// The domain's `name` file, such as `package-0` or `dram`.
    pub name: String,
    pub energy_uj: u64,
    /// Average power since the previous sample; `None` on the first sample.
    pub power_mw: Option<u64>,
    /// `constraint_0_power_limit_uw`, in milliwatts, when present.
    pub limit_mw: Option<u64>,
}

/// One NVIDIA GPU as NVML reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuTelemetry {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub utilization_pct: u32,
    pub memory_used_mb: u64,
    pub memory_total_mb: u64,
    pub temp_mc: i32,
    pub power_mw: u64,
    pub limit_mw: u64,
    pub limit_min_mw: u64,
    pub limit_max_mw: u64,
    pub sm_clock_mhz: u32,
    pub memory_clock_mhz: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentKind {
    Cpu,
    Gpu,
}

/// The unified view of one power-managed component, whatever its source.
/// Fields a source cannot read are `None`, never zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentTelemetry {
    /// The id agents and actuations use: `cpu`, `gpu0`, ...
    pub id: String,
    pub kind: ComponentKind,
    pub utilization_permille: u16,
    pub power_mw: Option<u64>,
    pub temp_mc: Option<i32>,
    /// The temperature the component must stay below, when known.
    pub t_max_mc: Option<i32>,
    /// The enforced power limit, when known.
    pub limit_mw: Option<u64>,
    pub limit_min_mw: Option<u64>,
    pub limit_max_mw: Option<u64>,
    /// Work the component has done so far, in millionths of its own progress unit
    /// (retired instructions, frames, training steps; the twin's work units), when a
    /// source reports it: a performance counter, a workload's `progress` reports over
    /// ingress, or the twin. A counter: only differences between frames mean anything.
    pub progress_micro: Option<u64>,
    /// Work left in the component's job, in the same unit, when the workload says how
    /// much it has to do (a training run knows its steps): its `progress` reports'
    /// `left`, or the twin's `[job]`. With the counter's rate it tells when the job
    /// ends, which the fleet uses to move power to the node that finishes last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_left_micro: Option<u64>,
}

impl ComponentTelemetry {
    /// A component of which nothing was read yet: idle, every reading `None`.
    pub fn unread(id: impl Into<String>, kind: ComponentKind) -> Self {
        Self {
            id: id.into(),
            kind,
            utilization_permille: 0,
            power_mw: None,
            temp_mc: None,
            t_max_mc: None,
            limit_mw: None,
            limit_min_mw: None,
            limit_max_mw: None,
            progress_micro: None,
            work_left_micro: None,
        }
    }
}

/// Node-wide figures: total draw of the managed components and the cap they share.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeTelemetry {
    pub draw_mw: Option<u64>,
    pub cap_mw: Option<u64>,
}

/// Whether a sensor source could be read, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// `cpu`, `memory`, `cpufreq`, `thermal`, `hwmon`, `powercap`, `nvml`, `psi`, `twin`.
    pub source: String,
    pub available: bool,
    /// Why it is unavailable, or what failed on this sample.
    pub detail: Option<String>,
}
