//! The hardware layer's error type: every way reading or writing the machine can fail.

use std::path::PathBuf;

use thiserror::Error;

/// A problem with one sensor, actuator, state file or scenario. Each names the file or
/// field involved, so the message alone says what to look at.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HwError {
    #[error("{path}: cannot read: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: cannot parse `{content}`: expected {expected}")]
    Parse {
        path: PathBuf,
        content: String,
        expected: &'static str,
    },
    #[error("{path}: cannot write `{value}`: {reason}")]
    Write {
        path: PathBuf,
        value: String,
        reason: String,
    },
    #[error("{target}: {value} is outside the device range {min}..={max}")]
    OutOfRange {
        target: String,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("{target}: `{value}` is not allowed here (allowed: {allowed})")]
    NotAllowed {
        target: String,
        value: String,
        allowed: String,
    },
    #[error("{target}: invalid actuation: {reason}")]
    InvalidActuation { target: String, reason: String },
    #[error("power.limit:{component}: no hardware is mapped to component `{component}`")]
    UnknownComponent { component: String },
    #[error("power.limit:{component}: the GPU at {device} publishes no power limit")]
    NoPowerLimit { component: String, device: String },
    #[error("NVML is unavailable: {reason}")]
    NvmlUnavailable { reason: String },
    #[error("NVML {device}: {call} failed: {reason}")]
    Nvml {
        device: String,
        call: &'static str,
        reason: String,
    },
    #[error("actuator state file {path}: {reason}")]
    State { path: PathBuf, reason: String },
    #[error("actuator state file {path} is corrupt ({reason}); moved aside to {moved_to}")]
    CorruptState {
        path: PathBuf,
        moved_to: PathBuf,
        reason: String,
    },
    #[error("{target}: wrote `{wanted}` but the device reads back `{found}`")]
    ReadBack {
        target: String,
        wanted: String,
        found: String,
    },
    /// The twin models power limits only; any other actuation is refused.
    #[error("{target}: not supported by the twin (it models power limits only)")]
    TwinUnsupported { target: String },
}
