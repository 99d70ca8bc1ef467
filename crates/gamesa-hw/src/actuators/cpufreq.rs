//! The cpufreq writers: `scaling_max_freq` (validated against `cpuinfo_min_freq` and
//! `cpuinfo_max_freq`) and `energy_performance_preference` (validated against
//! `energy_performance_available_preferences` when present).

use std::path::{Path, PathBuf};

use super::{
    knob::{Compare, Knob},
    plan::{Plan, Unit},
};
use crate::{HwError, sysfs};

fn cpufreq_dir(root: &Path, cpu: u32) -> PathBuf {
    root.join(format!("sys/devices/system/cpu/cpu{cpu}/cpufreq"))
}

pub(crate) fn max_freq_plan(
    root: &Path,
    target: &str,
    cpu: u32,
    max_khz: u64,
) -> Result<Plan, HwError> {
    let dir = cpufreq_dir(root, cpu);
    let min = sysfs::read_u64(&dir.join("cpuinfo_min_freq"))?;
    let max = sysfs::read_u64(&dir.join("cpuinfo_max_freq"))?;
    if !(min..=max).contains(&max_khz) {
        return Err(HwError::OutOfRange {
            target: target.to_string(),
            value: max_khz,
            min,
            max,
        });
    }
    Ok(Plan::single(
        Knob::Sysfs {
            path: dir.join("scaling_max_freq"),
        },
        max_khz.to_string(),
        Compare::Trimmed,
        Unit::Raw,
    ))
}

pub(crate) fn epp_plan(
    root: &Path,
    target: &str,
    cpu: u32,
    preference: &str,
) -> Result<Plan, HwError> {
    let dir = cpufreq_dir(root, cpu);
    let available_path = dir.join("energy_performance_available_preferences");
    if let Some(available) = sysfs::read_optional(&available_path)? {
        // `default` is accepted by the kernel without being listed.
        let listed = available.split_whitespace().any(|p| p == preference);
        if !listed && preference != "default" {
            return Err(HwError::NotAllowed {
                target: target.to_string(),
                value: preference.to_string(),
                allowed: available.trim().to_string(),
            });
        }
    }
    Ok(Plan::single(
        Knob::Sysfs {
            path: dir.join("energy_performance_preference"),
        },
        preference.to_string(),
        Compare::Trimmed,
        Unit::Raw,
    ))
}
