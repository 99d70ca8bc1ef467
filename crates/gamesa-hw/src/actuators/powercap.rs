//! The powercap writer: a RAPL zone's `constraint_0_power_limit_uw`, and its
//! `constraint_0_time_window_us` when a window is configured.

use std::path::Path;

use super::{
    knob::{Compare, Knob},
    plan::{self, Plan, Step, Unit},
};
use crate::{HwError, sysfs};

/// The writes that set `zone`'s long-term power limit to `limit_mw`, validated against
/// the zone's `constraint_0_{min,max}_power_uw` where it publishes them.
pub(crate) fn plan(
    root: &Path,
    target: &str,
    zone: &str,
    time_window_us: Option<u64>,
    limit_mw: u64,
) -> Result<Plan, HwError> {
    let zone_ok = !zone.is_empty()
        && zone
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'-');
    if !zone_ok {
        return Err(HwError::InvalidActuation {
            target: target.to_string(),
            reason: format!("bad powercap zone name `{zone}` in the configuration"),
        });
    }
    let dir = root.join("sys/class/powercap").join(zone);
    let min_uw = sysfs::read_optional_u64(&dir.join("constraint_0_min_power_uw"))?.unwrap_or(0);
    // Some firmware publishes 0 for an unknown maximum.
    let max_uw = sysfs::read_optional_u64(&dir.join("constraint_0_max_power_uw"))?
        .filter(|uw| *uw > 0)
        .unwrap_or(u64::MAX);
    let limit_uw = plan::limit_in_range_uw(target, limit_mw, min_uw, max_uw)?;
    let mut steps = Vec::with_capacity(2);
    if let Some(window_us) = time_window_us {
        steps.push(Step {
            knob: Knob::Sysfs {
                path: dir.join("constraint_0_time_window_us"),
            },
            value: window_us.to_string(),
            compare: Compare::Trimmed,
        });
    }
    steps.push(Step {
        knob: Knob::Sysfs {
            path: dir.join("constraint_0_power_limit_uw"),
        },
        value: limit_uw.to_string(),
        compare: Compare::Trimmed,
    });
    Ok(Plan {
        steps,
        unit: Unit::Microwatts,
    })
}
