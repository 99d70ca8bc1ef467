//! The cgroup v2 writers: `cpu.max` and `cpuset.cpus` of a named cgroup under
//! `sys/fs/cgroup/<name>/`.

use std::path::{Path, PathBuf};

use super::{
    knob::{Compare, Knob, parse_cpu_list},
    plan::{Plan, Unit},
};
use crate::{HwError, sysfs};

/// The smallest `cpu.max` quota the kernel accepts, in µs.
pub(crate) const MIN_QUOTA_US: u64 = 1_000;

fn cgroup_dir(root: &Path, cgroup: &str) -> PathBuf {
    root.join("sys/fs/cgroup").join(cgroup.trim_matches('/'))
}

/// The write of `cpu.max`: `quota period`, or `max period` without a quota.
pub(crate) fn cpu_max_plan(
    root: &Path,
    target: &str,
    cgroup: &str,
    quota_us: Option<u64>,
    period_us: u64,
) -> Result<Plan, HwError> {
    let value = match quota_us {
        Some(quota) if quota < MIN_QUOTA_US => {
            return Err(HwError::OutOfRange {
                target: target.to_string(),
                value: quota,
                min: MIN_QUOTA_US,
                max: u64::MAX,
            });
        }
        Some(quota) => format!("{quota} {period_us}"),
        None => format!("max {period_us}"),
    };
    Ok(Plan::single(
        Knob::Sysfs {
            path: cgroup_dir(root, cgroup).join("cpu.max"),
        },
        value,
        Compare::Trimmed,
        Unit::Raw,
    ))
}

/// The write of `cpuset.cpus`, validated against the parent's `cpuset.cpus.effective`
/// when it publishes one.
pub(crate) fn cpuset_plan(
    root: &Path,
    target: &str,
    cgroup: &str,
    cpus: &str,
) -> Result<Plan, HwError> {
    let wanted = parse_cpu_list(cpus).ok_or_else(|| HwError::InvalidActuation {
        target: target.to_string(),
        reason: format!("bad cpu list `{cpus}`"),
    })?;
    let dir = cgroup_dir(root, cgroup);
    if let Some(parent) = dir.parent() {
        let effective_path = parent.join("cpuset.cpus.effective");
        if let Some(effective) = sysfs::read_optional(&effective_path)? {
            let allowed = parse_cpu_list(&effective).ok_or_else(|| {
                sysfs::parse_error(&effective_path, &effective, "a cpu list such as `0-3,6`")
            })?;
            if !wanted.is_subset(&allowed) {
                return Err(HwError::NotAllowed {
                    target: target.to_string(),
                    value: cpus.to_string(),
                    allowed: effective.trim().to_string(),
                });
            }
        }
    }
    Ok(Plan::single(
        Knob::Sysfs {
            path: dir.join("cpuset.cpus"),
        },
        cpus.to_string(),
        Compare::CpuList,
        Unit::Raw,
    ))
}
