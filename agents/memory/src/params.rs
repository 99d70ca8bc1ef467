//! The memory agent's `params` table: every key, its default, and its validation.
//!
//! PSI figures are in hundredths of a percent (`centipct`: 1000 is 10 %), as in
//! `PressureTelemetry`; prices in credits per MB per lease (one epoch).

use gamesa_agent::{AgentError, pricing::validate_reserve_range, proto::Domain};
use serde::Deserialize;

/// The `params` of a `kind = "memory"` agent. Every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryParams {
    /// Available memory never sold, kept for the system, in MB. Default 1024.
    pub reserve_mb: u64,
    /// Capacity is re-declared only when it moves by this much, in MB. Default 256.
    pub capacity_deadband_mb: u64,
    /// Reserve price of one MB with all memory available and no pressure. Default 2.
    pub price_base: u64,
    /// The reserve never exceeds this. Default 1000.
    pub price_max: u64,
    /// Full-scale memory pressure multiplies the reserve by `1 + this/1000`.
    /// Default 4000.
    pub pressure_price_gain_permille: u32,
    /// `memory_pressure` starts when `some avg10` reaches this. Default 1000 (10 %).
    pub pressure_enter_centipct: u32,
    /// ... and stops only below `pressure_enter_centipct − this`. Default 500.
    pub pressure_hysteresis_centipct: u32,
    /// `memory_pressure_critical` starts when `full avg10` reaches this.
    /// Default 1000 (10 %).
    pub critical_enter_centipct: u32,
    /// ... and stops only below `critical_enter_centipct − this`. Default 500.
    pub critical_hysteresis_centipct: u32,
    /// A PSI average of this much is a signal of strength 1. Default 5000 (50 %).
    pub full_scale_centipct: u32,
    /// The domain both signals are raised in: `efficiency` (power spent while tasks
    /// stall on memory buys little, so CPU and GPU agents bid less), `performance` or
    /// `background`. Default `efficiency`.
    pub domain: Domain,
    /// Ticks a raised signal stays live unless refreshed; it is refreshed every tick
    /// while its condition holds. Default 3.
    pub signal_ttl_ticks: u32,
}

impl Default for MemoryParams {
    fn default() -> Self {
        MemoryParams {
            reserve_mb: 1_024,
            capacity_deadband_mb: 256,
            price_base: 2,
            price_max: 1_000,
            pressure_price_gain_permille: 4_000,
            pressure_enter_centipct: 1_000,
            pressure_hysteresis_centipct: 500,
            critical_enter_centipct: 1_000,
            critical_hysteresis_centipct: 500,
            full_scale_centipct: 5_000,
            domain: Domain::Efficiency,
            signal_ttl_ticks: 3,
        }
    }
}

impl MemoryParams {
    /// Checks the values serde cannot; the error names the offending key.
    pub fn validate(&self, agent: &str) -> Result<(), AgentError> {
        let invalid = |message: String| {
            Err(AgentError::InvalidParams {
                agent: agent.to_owned(),
                message,
            })
        };
        for (enter_key, enter, hysteresis_key, hysteresis) in [
            (
                "pressure_enter_centipct",
                self.pressure_enter_centipct,
                "pressure_hysteresis_centipct",
                self.pressure_hysteresis_centipct,
            ),
            (
                "critical_enter_centipct",
                self.critical_enter_centipct,
                "critical_hysteresis_centipct",
                self.critical_hysteresis_centipct,
            ),
        ] {
            if !(1..=10_000).contains(&enter) {
                return invalid(format!("`{enter_key}` must be in 1..=10000, got {enter}"));
            }
            if hysteresis >= enter {
                return invalid(format!(
                    "`{hysteresis_key}` ({hysteresis}) must be below `{enter_key}` ({enter})"
                ));
            }
        }
        if self.full_scale_centipct == 0 {
            return invalid("`full_scale_centipct` must be at least 1".into());
        }
        validate_reserve_range(
            agent,
            ("price_base", self.price_base),
            ("price_max", self.price_max),
        )?;
        if !matches!(
            self.domain,
            Domain::Performance | Domain::Efficiency | Domain::Background
        ) {
            return invalid(format!(
                "`domain` must be performance, efficiency or background, got {}: memory \
                 pressure is not a safety, thermal or power condition",
                self.domain
            ));
        }
        if self.signal_ttl_ticks == 0 {
            return invalid("`signal_ttl_ticks` must be at least 1".into());
        }
        Ok(())
    }
}
