//! The tradable resources and their integer units.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::ProtoError;

/// A resource traded on the exchange. The name carries the unit of its quantities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// Power budget above a component's baseline, in milliwatts.
    PowerBudgetMw,
    /// Thermal headroom below `t_max - margin`, in milli-degrees Celsius.
    ThermalHeadroomMc,
    /// Whole CPU cores.
    CpuCores,
    /// CPU time per epoch, in microseconds.
    CpuTimeUs,
    /// A share of GPU compute, in percent.
    GpuComputePct,
    /// GPU memory, in megabytes.
    GpuMemoryMb,
    /// Host memory, in megabytes.
    MemoryMb,
}

const EXPECTED: &str = "power_budget_mw, thermal_headroom_mc, cpu_cores, cpu_time_us, \
                        gpu_compute_pct, gpu_memory_mb, memory_mb";

impl Resource {
    /// Every resource, in canonical order (the order ticks process them in).
    pub const ALL: [Resource; 7] = [
        Resource::PowerBudgetMw,
        Resource::ThermalHeadroomMc,
        Resource::CpuCores,
        Resource::CpuTimeUs,
        Resource::GpuComputePct,
        Resource::GpuMemoryMb,
        Resource::MemoryMb,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Resource::PowerBudgetMw => "power_budget_mw",
            Resource::ThermalHeadroomMc => "thermal_headroom_mc",
            Resource::CpuCores => "cpu_cores",
            Resource::CpuTimeUs => "cpu_time_us",
            Resource::GpuComputePct => "gpu_compute_pct",
            Resource::GpuMemoryMb => "gpu_memory_mb",
            Resource::MemoryMb => "memory_mb",
        }
    }

    /// Position in [`Resource::ALL`], for dense per-resource tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Resource {
    type Err = ProtoError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Resource::ALL
            .into_iter()
            .find(|resource| resource.as_str() == name)
            .ok_or_else(|| ProtoError::UnknownResource {
                name: name.to_owned(),
                expected: EXPECTED,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_str_and_serde() {
        for resource in Resource::ALL {
            assert_eq!(resource.as_str().parse::<Resource>(), Ok(resource));
            let json = serde_json::to_string(&resource).unwrap();
            assert_eq!(json, format!("\"{}\"", resource.as_str()));
            assert_eq!(Resource::ALL[resource.index()], resource);
        }
    }

    #[test]
    fn unknown_name_is_a_typed_error() {
        let err = "power_watts".parse::<Resource>().unwrap_err();
        assert!(
            matches!(err, ProtoError::UnknownResource { ref name, .. } if name == "power_watts")
        );
    }
}
