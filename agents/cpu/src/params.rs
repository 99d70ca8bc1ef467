//! The CPU agent's `params` table: every key, its default, and its validation.
//!
//! Prices are in credits per unit per lease (one epoch). The defaults suit the guardian's
//! default allowance (1 000 000 credits per epoch shared by weight); scale the price keys
//! with the allowance.

use gamesa_agent::{AgentError, power_demand::PowerDemandConfig};
use serde::Deserialize;

/// The `params` of a `kind = "cpu"` agent. Every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CpuParams {
    /// Component id in telemetry and in `PowerLimit` actuations. Default `"cpu"`.
    pub component: String,
    /// The limit the component has without buying anything, in mW. Default: the
    /// component's `limit_min_mw` from telemetry.
    pub baseline_mw: Option<u64>,
    /// The highest limit it buys up to, in mW. Default: `limit_max_mw` from telemetry.
    pub max_mw: Option<u64>,
    /// Credits per mW of power budget bid at full marginal utility and weight 1.
    /// Default 10.
    pub power_price: u64,
    /// Credits per m°C of thermal headroom bid at full marginal utility and weight 1.
    /// Default 2.
    pub headroom_price: u64,
    /// Power bids are whole multiples of this, in mW. Default 1000.
    pub step_mw: u64,
    /// At or below this utilization (‰) the component is idle and buys nothing.
    /// Default 200.
    pub idle_permille: u16,
    /// From this utilization (‰) on it is saturated and wants its maximum. Default 900.
    pub saturated_permille: u16,
    /// The limit binds when draw is at least this share (‰) of it; below, the agent wants
    /// no more than its draw can use. Default 900.
    pub bound_permille: u16,
    /// Thermal resistance in °C per W (m°C of headroom per mW). Default: estimated from
    /// telemetry as `(temp − ambient) / power`, smoothed.
    pub r_c_per_w: Option<f64>,
    /// Ambient temperature for that estimate, in m°C. Default 25000.
    pub ambient_mc: i32,
    /// The agent keeps its limit below what would heat the component past
    /// `t_max − thermal_margin_mc` (from its learned thermal model), in m°C. Default
    /// 4000: below the thermal agent's critical threshold (`t_max − 3 °C`).
    pub thermal_margin_mc: i32,
    /// A performance signal of strength 1 multiplies the bid by `1 + this/1000`.
    /// Default 1000 (doubles it).
    pub performance_boost_permille: u32,
    /// An efficiency signal of strength 1 multiplies the bid by `1 − this/1000`.
    /// Default 500.
    pub efficiency_damping_permille: u32,
    /// A `thermal_warning` for this component of strength 1 multiplies the bid by
    /// `1 − this/1000`. Default 750.
    pub thermal_damping_permille: u32,
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
    /// Reserve price of a µs of CPU time when saturated. Default 10.
    pub cpu_time_price_busy: u64,
}

impl Default for CpuParams {
    fn default() -> Self {
        CpuParams {
            component: "cpu".into(),
            baseline_mw: None,
            max_mw: None,
            power_price: 10,
            headroom_price: 2,
            step_mw: 1_000,
            idle_permille: 200,
            saturated_permille: 900,
            bound_permille: 900,
            r_c_per_w: None,
            ambient_mc: 25_000,
            thermal_margin_mc: 4_000,
            performance_boost_permille: 1_000,
            efficiency_damping_permille: 500,
            thermal_damping_permille: 750,
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
        let invalid = |message: String| {
            Err(AgentError::InvalidParams {
                agent: agent.to_owned(),
                message,
            })
        };
        self.demand(1).validate(agent)?;
        if self.core_price_idle > self.core_price_busy {
            return invalid(format!(
                "`core_price_idle` ({}) must not exceed `core_price_busy` ({})",
                self.core_price_idle, self.core_price_busy
            ));
        }
        if self.cpu_time_price_idle > self.cpu_time_price_busy {
            return invalid(format!(
                "`cpu_time_price_idle` ({}) must not exceed `cpu_time_price_busy` ({})",
                self.cpu_time_price_idle, self.cpu_time_price_busy
            ));
        }
        Ok(())
    }

    pub(crate) fn demand(&self, weight: u32) -> PowerDemandConfig {
        PowerDemandConfig {
            component: self.component.clone(),
            baseline_mw: self.baseline_mw,
            max_mw: self.max_mw,
            power_price: self.power_price,
            headroom_price: self.headroom_price,
            step_mw: self.step_mw,
            idle_permille: self.idle_permille,
            saturated_permille: self.saturated_permille,
            bound_permille: self.bound_permille,
            r_c_per_w: self.r_c_per_w,
            ambient_mc: self.ambient_mc,
            thermal_margin_mc: self.thermal_margin_mc,
            performance_boost_permille: self.performance_boost_permille,
            efficiency_damping_permille: self.efficiency_damping_permille,
            thermal_damping_permille: self.thermal_damping_permille,
            weight,
        }
    }
}
