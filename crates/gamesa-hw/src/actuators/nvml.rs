//! The NVML writer: a GPU's power management limit, validated against the device's
//! power-limit constraints.

use super::{
    knob::{Compare, Knob, NvmlHandle},
    plan::{Plan, Unit},
};
use crate::{HwError, sensors::nvml_error};

/// The write that sets GPU `index`'s power management limit to `limit_mw`.
pub(crate) fn plan(
    nvml: &mut NvmlHandle,
    target: &str,
    index: u32,
    limit_mw: u64,
) -> Result<Plan, HwError> {
    let device = nvml.device(index, "")?;
    let uuid = device
        .uuid()
        .map_err(|err| nvml_error(index, "uuid", &err))?;
    let constraints = device
        .power_management_limit_constraints()
        .map_err(|err| nvml_error(index, "power_management_limit_constraints", &err))?;
    let (min, max) = (
        u64::from(constraints.min_limit),
        u64::from(constraints.max_limit),
    );
    if !(min..=max).contains(&limit_mw) {
        return Err(HwError::OutOfRange {
            target: target.to_string(),
            value: limit_mw,
            min,
            max,
        });
    }
    Ok(Plan::single(
        Knob::NvmlPowerLimit { index, uuid },
        limit_mw.to_string(),
        Compare::Trimmed,
        Unit::Milliwatts,
    ))
}
