//! Every point where GAMESA touches the machine: sensors, revertible actuators and the
//! simulated twin, and what `gamesa probe` reports of them. The pure crates never see
//! any of it.
//!
//! Two traits are the whole surface the runtime uses:
//! - [`Sensors`] produces one [`TelemetryFrame`] per sample;
//! - [`Actuator`] applies an [`Actuation`] and can put every original value back.
//!
//! Both have a real Linux implementation and a twin implementation, so `gamesa run` and
//! `gamesa sim` drive the same code path.

pub mod actuators;
mod drm;
mod error;
pub mod probe;
pub mod sensors;
mod sysfs;
pub mod twin;

pub use actuators::{
    ActuatorConfig, DryRunActuator, GpuNumbering, HwmonGpu, LinuxActuator, PowerLimitBinding,
    StartReport,
};
pub use error::HwError;
use gamesa_proto::{Actuation, TelemetryFrame, Tick};
pub use sensors::{LinuxSensors, LinuxSensorsOptions, NvmlReading, NvmlSource};

/// One sample: the frame, plus every problem met while taking it. A problem with one
/// source never loses the readings of the others.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub frame: TelemetryFrame,
    pub errors: Vec<HwError>,
}

/// A source of telemetry frames.
pub trait Sensors: Send {
    /// Reads the machine once. For the twin this also advances the model by one step.
    fn sample(&mut self, tick: Tick) -> Sample;
}

/// What an applied actuation did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    /// The knob, as [`Actuation::target`] names it.
    pub target: String,
    /// The value before the write, as text.
    pub previous: String,
    /// The value after the write (read back where the device allows), as text.
    pub current: String,
    /// `false` when the requested value equalled the current one and nothing was written.
    pub changed: bool,
    /// `true` when nothing reached the hardware (dry-run).
    pub dry_run: bool,
}

/// What `restore_all` or `restore_target` put back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Targets whose original value was written back.
    pub restored: Vec<String>,
    /// Targets that could not be restored, with why. Their records are kept.
    pub failed: Vec<(String, HwError)>,
}

/// Applies requested changes to the machine, and can revert every one of them.
pub trait Actuator: Send {
    /// Applies one change the guardian has allowed.
    fn apply(&mut self, actuation: &Actuation) -> Result<Applied, HwError>;
    /// Puts the original value of one target back and forgets it.
    fn restore_target(&mut self, target: &str) -> RestoreReport;
    /// Puts every original value back (graceful shutdown, isolation of everything).
    fn restore_all(&mut self) -> RestoreReport;
}
