//! A plan: the knob writes one actuation comes down to, validated against the device
//! before anything is recorded or written.

use super::knob::{Compare, Knob};
use crate::HwError;

/// `limit_mw` in µW when it lies in the device's `min_uw..=max_uw`; else
/// [`out_of_range`].
pub(crate) fn limit_in_range_uw(
    target: &str,
    limit_mw: u64,
    min_uw: u64,
    max_uw: u64,
) -> Result<u64, HwError> {
    limit_mw
        .checked_mul(1000)
        .filter(|limit_uw| (min_uw..=max_uw).contains(limit_uw))
        .ok_or_else(|| out_of_range(target, limit_mw, min_uw, max_uw))
}

/// [`HwError::OutOfRange`] for `limit_mw`, with the device's range in mW (the minimum
/// rounded up).
pub(crate) fn out_of_range(target: &str, limit_mw: u64, min_uw: u64, max_uw: u64) -> HwError {
    HwError::OutOfRange {
        target: target.to_string(),
        value: limit_mw,
        min: min_uw.div_ceil(1000),
        max: max_uw / 1000,
    }
}

/// One knob to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) knob: Knob,
    /// The text to write.
    pub(crate) value: String,
    pub(crate) compare: Compare,
}

/// How the main knob's value reads in [`crate::Applied`], to match
/// `Actuation::value_text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// The text as it is, trimmed.
    Raw,
    /// A powercap value in µW, shown as `N mW`.
    Microwatts,
    /// An NVML value in mW, shown as `N mW`.
    Milliwatts,
}

impl Unit {
    pub(crate) fn present(self, value: &str) -> String {
        let value = value.trim();
        let number = value.parse::<u64>();
        match (self, number) {
            (Unit::Microwatts, Ok(uw)) => format!("{} mW", uw / 1000),
            (Unit::Milliwatts, Ok(mw)) => format!("{mw} mW"),
            _ => value.to_string(),
        }
    }
}

/// The writes for one actuation, in order; the last step carries the requested value
/// (earlier ones prepare it, such as a powercap time window).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) steps: Vec<Step>,
    pub(crate) unit: Unit,
}

impl Plan {
    pub(crate) fn single(knob: Knob, value: String, compare: Compare, unit: Unit) -> Plan {
        Plan {
            steps: vec![Step {
                knob,
                value,
                compare,
            }],
            unit,
        }
    }
}
