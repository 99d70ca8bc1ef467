//! The thermal agent's `params` table: every key, its default, and its validation.
//!
//! Temperatures are in milli-degrees Celsius (m°C); prices in credits per m°C of
//! headroom per lease (one epoch).

use std::collections::BTreeMap;

use gamesa_agent::{AgentError, pricing::validate_reserve_range};
use serde::Deserialize;

/// The `params` of a `kind = "thermal"` agent. Every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThermalParams {
    /// Headroom is sold only up to `t_max − margin_mc`. Default 5000 (5 °C).
    pub margin_mc: i32,
    /// `t_max` per zone, by component id (`gpu0`) or temperature sensor id
    /// (`thermal_zone0`, `hwmon2/temp1`). A component's entry overrides its telemetry
    /// `t_max_mc`; a sensor is a zone only when it has an entry. Default: none.
    pub t_max_mc: BTreeMap<String, i32>,
    /// Ambient temperature: a zone at ambient has all its headroom. Default 25000.
    pub ambient_mc: i32,
    /// Reserve price of one m°C while every zone has all its headroom. Default 1.
    pub price_base: u64,
    /// The reserve never exceeds this, however little headroom is left. Default 100.
    pub price_max: u64,
    /// `thermal_warning.<zone>` starts this far below the zone's `t_max`. Default 10000.
    pub warning_below_mc: i32,
    /// `thermal_critical.<zone>` starts this far below the zone's `t_max`. Default 3000.
    pub critical_below_mc: i32,
    /// Either signal stops only once the temperature is this far below where it
    /// started. Default 2000.
    pub hysteresis_mc: i32,
    /// A zone's signals follow the average of its last this many readings, so that
    /// sensor noise (and a sensor that reports whole degrees) does not trip the safety
    /// signal while the zone holds steady just below its threshold; a thermal mass
    /// heats over seconds, so a short window costs little reaction. Default 1 (each
    /// reading alone); at most 600.
    pub temp_average_ticks: u32,
    /// Headroom capacity is re-declared only when it moves by this much. Default 1000.
    pub capacity_deadband_mc: u64,
    /// Ticks a raised signal stays live unless refreshed; it is refreshed every tick
    /// while its condition holds. Default 3.
    pub signal_ttl_ticks: u32,
}

/// The longest window `temp_average_ticks` may ask for.
pub const MAX_TEMP_AVERAGE_TICKS: u32 = 600;

impl Default for ThermalParams {
    fn default() -> Self {
        ThermalParams {
            margin_mc: 5_000,
            t_max_mc: BTreeMap::new(),
            ambient_mc: 25_000,
            price_base: 1,
            price_max: 100,
            warning_below_mc: 10_000,
            critical_below_mc: 3_000,
            hysteresis_mc: 2_000,
            temp_average_ticks: 1,
            capacity_deadband_mc: 1_000,
            signal_ttl_ticks: 3,
        }
    }
}

impl ThermalParams {
    /// Checks the values serde cannot; the error names the offending key.
    pub fn validate(&self, agent: &str) -> Result<(), AgentError> {
        let invalid = |message: String| {
            Err(AgentError::InvalidParams {
                agent: agent.to_owned(),
                message,
            })
        };
        for (key, value) in [
            ("margin_mc", self.margin_mc),
            ("critical_below_mc", self.critical_below_mc),
            ("hysteresis_mc", self.hysteresis_mc),
        ] {
            if value < 0 {
                return invalid(format!("`{key}` must not be negative, got {value}"));
            }
        }
        if self.warning_below_mc <= self.critical_below_mc {
            return invalid(format!(
                "`warning_below_mc` ({}) must be above `critical_below_mc` ({}): a warning \
                 comes before the critical signal",
                self.warning_below_mc, self.critical_below_mc
            ));
        }
        validate_reserve_range(
            agent,
            ("price_base", self.price_base),
            ("price_max", self.price_max),
        )?;
        if self.signal_ttl_ticks == 0 {
            return invalid("`signal_ttl_ticks` must be at least 1".into());
        }
        if !(1..=MAX_TEMP_AVERAGE_TICKS).contains(&self.temp_average_ticks) {
            return invalid(format!(
                "`temp_average_ticks` must be from 1 to {MAX_TEMP_AVERAGE_TICKS}, got {}",
                self.temp_average_ticks
            ));
        }
        if let Some((zone, t_max)) = self.t_max_mc.iter().find(|(_, t_max)| {
            i64::from(**t_max) - i64::from(self.margin_mc) <= i64::from(self.ambient_mc)
        }) {
            return invalid(format!(
                "`t_max_mc.{zone}` ({t_max}) minus `margin_mc` must be above `ambient_mc` ({})",
                self.ambient_mc
            ));
        }
        Ok(())
    }
}
