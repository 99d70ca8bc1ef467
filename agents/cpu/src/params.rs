//! The CPU agent's `params` table: every key, its default, and its validation.
//!
//! Prices are in credits per unit per lease (one epoch). The defaults suit the guardian's
//! default allowance (1 000 000 credits per epoch shared by weight); scale the price keys
//! with the allowance.

use gamesa_agent::{
    AgentError, fixed_offer::validate_reserves, params_with_power_demand,
    power_demand::PowerDemandParams,
};

params_with_power_demand! {
    /// The `params` of a `kind = "cpu"` agent. Every key is optional.
    #[derive(Debug, Clone, PartialEq)]
    pub struct CpuParams {
        /// The power-demand keys, in the same table: `component` (default `"cpu"`),
        /// `step_mw` (default 1000) and the others [`PowerDemandParams`] documents.
        pub demand: PowerDemandParams,
        /// Cores sold to workloads as `cpu_cores`. Default: the cores in telemetry minus
        /// `reserved_cores`.
        pub cores: Option<u64>,
        /// Cores kept back for the system when `cores` is derived. Default 1.
        pub reserved_cores: u64,
        /// Reserve price of a core per epoch when the CPU is idle. Default 1000.
        pub core_price_idle: u64,
        /// Reserve price of a core per epoch when the CPU is saturated. Default 20000.
        pub core_price_busy: u64,
        /// CPU time per epoch sold as `cpu_time_us`, in µs. Default: none (not sold). It
        /// draws on the same cores, so sell one or the other.
        pub cpu_time_us: Option<u64>,
        /// Reserve price of a µs of CPU time when idle. Default 1.
        pub cpu_time_price_idle: u64,
        /// Reserve price of a µs of CPU time when saturated. Default 4.
        pub cpu_time_price_busy: u64,
    }
}

impl Default for CpuParams {
    fn default() -> Self {
        CpuParams {
            demand: PowerDemandParams::new("cpu", 1_000),
            cores: None,
            reserved_cores: 1,
            core_price_idle: 1_000,
            core_price_busy: 20_000,
            cpu_time_us: None,
            cpu_time_price_idle: 1,
            cpu_time_price_busy: 4,
        }
    }
}

impl CpuParams {
    /// Checks the values serde cannot; the error names the offending key.
    pub fn validate(&self, agent: &str) -> Result<(), AgentError> {
        self.demand.validate(agent)?;
        validate_reserves(
            agent,
            ("core_price_idle", self.core_price_idle),
            ("core_price_busy", self.core_price_busy),
        )?;
        validate_reserves(
            agent,
            ("cpu_time_price_idle", self.cpu_time_price_idle),
            ("cpu_time_price_busy", self.cpu_time_price_busy),
        )
    }
}
