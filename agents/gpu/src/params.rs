//! The GPU agent's `params` table: every key, its default, and its validation.
//!
//! Prices are in credits per unit per lease (one epoch). The defaults suit the guardian's
//! default allowance (1 000 000 credits per epoch shared by weight); scale the price keys
//! with the allowance.

use gamesa_agent::{
    AgentError, fixed_offer::validate_reserves, params_with_power_demand,
    power_demand::PowerDemandParams,
};

params_with_power_demand! {
    /// The `params` of a `kind = "gpu"` agent. Every key is optional.
    #[derive(Debug, Clone, PartialEq)]
    pub struct GpuParams {
        /// The power-demand keys, in the same table: `component` (default `"gpu0"`),
        /// `step_mw` (default 5000) and the others [`PowerDemandParams`] documents.
        pub demand: PowerDemandParams,
        /// Which NVML GPU (`TelemetryFrame::gpus[].index`) backs the component, for its
        /// memory. Default: the number the component id ends with (`gpu0` → 0).
        pub gpu_index: Option<u32>,
        /// GPU memory sold to workloads as `gpu_memory_mb`. Default: the GPU's
        /// `memory_total_mb` from telemetry minus `reserved_memory_mb`; not sold when
        /// neither is known.
        pub memory_mb: Option<u64>,
        /// Memory kept back for the driver and display when `memory_mb` is derived.
        /// Default 512.
        pub reserved_memory_mb: u64,
        /// Reserve price of one MB per epoch when the GPU is idle. Default 10.
        pub memory_price_idle: u64,
        /// Reserve price of one MB per epoch when the GPU is saturated. Default 100.
        pub memory_price_busy: u64,
    }
}

impl Default for GpuParams {
    fn default() -> Self {
        GpuParams {
            demand: PowerDemandParams::new("gpu0", 5_000),
            gpu_index: None,
            memory_mb: None,
            reserved_memory_mb: 512,
            memory_price_idle: 10,
            memory_price_busy: 100,
        }
    }
}

impl GpuParams {
    /// Checks the values serde cannot; the error names the offending key.
    pub fn validate(&self, agent: &str) -> Result<(), AgentError> {
        self.demand.validate(agent)?;
        validate_reserves(
            agent,
            ("memory_price_idle", self.memory_price_idle),
            ("memory_price_busy", self.memory_price_busy),
        )
    }

    /// The NVML index backing the component: the param, or the id's trailing number.
    pub(crate) fn gpu_index(&self) -> Option<u32> {
        self.gpu_index.or_else(|| {
            let digits = self
                .demand
                .component
                .trim_start_matches(|c: char| !c.is_ascii_digit());
            digits.parse().ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_index_defaults_to_the_component_number() {
        let params = |component: &str| GpuParams {
            demand: PowerDemandParams::new(component, 5_000),
            ..GpuParams::default()
        };
        assert_eq!(params("gpu0").gpu_index(), Some(0));
        assert_eq!(params("gpu12").gpu_index(), Some(12));
        assert_eq!(params("dgpu").gpu_index(), None);
        assert_eq!(
            GpuParams {
                gpu_index: Some(3),
                ..params("gpu0")
            }
            .gpu_index(),
            Some(3)
        );
    }
}
