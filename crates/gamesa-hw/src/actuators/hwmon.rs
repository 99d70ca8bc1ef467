//! The hwmon GPU writer: an amdgpu card's `power1_cap` or an i915/xe card's
//! `power1_max` (µW), found by PCI address and validated against the range the driver
//! publishes.
//!
//! The knob is written through `sys/bus/pci/devices/<address>/hwmon/hwmonM/`, so the
//! path a record keeps can only ever name that PCI device: after a reboot that
//! renumbered the hwmons, a restore fails on a missing file instead of writing another
//! device.

use std::path::Path;

use super::{
    knob::{Compare, Knob},
    plan::{self, Plan, Unit},
};
use crate::{HwError, drm};

/// The write that sets the limit in `file` of PCI device `pci` to `limit_mw`. amdgpu
/// keeps whole watts, so its request is rounded down to one.
pub(crate) fn plan(
    root: &Path,
    target: &str,
    pci: &str,
    file: &str,
    limit_mw: u64,
) -> Result<Plan, HwError> {
    let invalid = |reason: String| HwError::InvalidActuation {
        target: target.to_string(),
        reason,
    };
    if !drm::is_pci_address(pci) {
        return Err(invalid(format!(
            "bad PCI address `{pci}` in the configuration (expected one like 0000:03:00.0)"
        )));
    }
    let Some((min_file, max_file)) = drm::limit_bound_files(file) else {
        return Err(invalid(format!(
            "`{file}` is not a GPU power limit file (expected one of {})",
            drm::LIMIT_FILES.join(", ")
        )));
    };
    let Some((driver, dir)) = drm::bound_hwmon(root, pci, file)? else {
        return Err(invalid(format!(
            "no amdgpu, i915 or xe hwmon with {file} under {}",
            drm::stable_hwmon_parent(root, pci).display()
        )));
    };
    let step_uw = driver.limit_step_uw();
    let min_uw = match min_file {
        Some(min_file) => drm::read_bound_uw(&dir.join(min_file))?,
        None => None,
    }
    .unwrap_or(0)
    .max(step_uw);
    let max_uw = drm::read_bound_uw(&dir.join(max_file))?.unwrap_or(u64::MAX);
    let limit_uw = plan::limit_in_range_uw(target, limit_mw, min_uw, max_uw)?;
    // Rounded down to the driver's step, it must still be in range.
    let written_uw = limit_uw / step_uw * step_uw;
    if written_uw < min_uw {
        return Err(plan::out_of_range(target, limit_mw, min_uw, max_uw));
    }
    Ok(Plan::single(
        Knob::Sysfs {
            path: dir.join(file),
        },
        written_uw.to_string(),
        Compare::Trimmed,
        Unit::Microwatts,
    ))
}

#[cfg(test)]
mod tests;
