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
}
