//! The GPU agent's `params` table: every key, its default, and its validation.
//!
//! Prices are in credits per unit per lease (one epoch). The defaults suit the guardian's
//! default allowance (1 000 000 credits per epoch shared by weight); scale the price keys
//! with the allowance.

use gamesa_agent::{AgentError, power_demand::PowerDemandConfig};
use serde::Deserialize;

/// The `params` of a `kind = "gpu"` agent. Every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpuParams {
    /// Component id in telemetry and in `PowerLimit` actuations. Default `"gpu0"`.
    pub component: String,
    /// Which NVML GPU (`TelemetryFrame::gpus[].index`) backs the component, for its
    /// memory. Default: the number the component id ends with (`gpu0` → 0).
    pub gpu_index: Option<u32>,
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
    /// Power bids are whole multiples of this, in mW. Default 5000.
    pub step_mw: u64,
    /// At or below this utilization (‰) the GPU is idle and buys nothing. Default 200.
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

impl Default for GpuParams {
    fn default() -> Self {
        GpuParams {
            component: "gpu0".into(),
            gpu_index: None,
            baseline_mw: None,
            max_mw: None,
            power_price: 10,
            headroom_price: 2,
            step_mw: 5_000,
            idle_permille: 200,
            saturated_permille: 900,
            bound_permille: 900,
            r_c_per_w: None,
            ambient_mc: 25_000,
            thermal_margin_mc: 4_000,
            performance_boost_permille: 1_000,
            efficiency_damping_permille: 500,
            thermal_damping_permille: 750,
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
        let invalid = |message: String| {
            Err(AgentError::InvalidParams {
                agent: agent.to_owned(),
                message,
            })
        };
        self.demand(1).validate(agent)?;
        if self.memory_price_idle > self.memory_price_busy {
            return invalid(format!(
                "`memory_price_idle` ({}) must not exceed `memory_price_busy` ({})",
                self.memory_price_idle, self.memory_price_busy
            ));
        }
        Ok(())
    }

    /// The NVML index backing the component: the param, or the id's trailing number.
    pub(crate) fn gpu_index(&self) -> Option<u32> {
        self.gpu_index.or_else(|| {
            let digits = self
                .component
                .trim_start_matches(|c: char| !c.is_ascii_digit());
            digits.parse().ok()
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_index_defaults_to_the_component_number() {
        let params = |component: &str| GpuParams {
            component: component.into(),
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
