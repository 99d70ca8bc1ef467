//! The power agent's `params` table: every key, its default, and its validation.
//!
//! Power is in milliwatts; shares of the cap in permille (‰); prices in credits per mW
//! of budget per lease (one epoch).

use std::collections::BTreeMap;

use gamesa_agent::{AgentError, pricing::validate_reserve_range};
use serde::Deserialize;

/// The longest window `draw_average_ticks` may ask for.
pub const MAX_DRAW_AVERAGE_TICKS: u32 = 600;

/// The `params` of a `kind = "power"` agent. Every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PowerParams {
    /// The node's power cap, used when the frame carries none (`node.cap_mw`). Default:
    /// none, so without a cap in telemetry the agent neither sells nor signals.
    pub cap_mw: Option<u64>,
    /// Each component's baseline, the limit it has without buying, by component id.
    /// Default: the component's `limit_min_mw`. A component listed here but absent from
    /// the frame still counts.
    pub baselines_mw: BTreeMap<String, u64>,
    /// Reserve price per mW while draw is low. Default 1.
    pub price_floor: u64,
    /// Reserve price per mW once draw reaches the cap. Default 8.
    pub price_ceiling: u64,
    /// The reserve is the floor until draw reaches this share of the cap, then rises
    /// quadratically to the ceiling at the cap. Default 500.
    pub price_rise_from_permille: u16,
    /// `power_near_cap` starts when draw reaches this share of the cap. Default 950.
    pub near_cap_permille: u16,
    /// `power_over_cap` starts when draw exceeds this share of the cap. Default 1000.
    pub over_cap_permille: u16,
    /// Either signal stops only once draw is this share of the cap below where it
    /// started. Default 30.
    pub hysteresis_permille: u16,
    /// Draw is judged as its average over this many ticks, like a power cap that is
    /// defined over a time window (RAPL's, or a 1 s average at the PSU): a noisy
    /// reading above the cap does not stop the market, while a cap drop far below the
    /// draw still shows at once. Default 1 (each reading alone); at most 600.
    pub draw_average_ticks: u32,
    /// Ticks a raised signal stays live unless refreshed; it is refreshed every tick
    /// while its condition holds. Default 3.
    pub signal_ttl_ticks: u32,
}

impl Default for PowerParams {
    fn default() -> Self {
        PowerParams {
            cap_mw: None,
            baselines_mw: BTreeMap::new(),
            price_floor: 1,
            price_ceiling: 8,
            price_rise_from_permille: 500,
            near_cap_permille: 950,
            over_cap_permille: 1_000,
            hysteresis_permille: 30,
            draw_average_ticks: 1,
            signal_ttl_ticks: 3,
        }
    }
}

impl PowerParams {
    /// Checks the values serde cannot; the error names the offending key.
    pub fn validate(&self, agent: &str) -> Result<(), AgentError> {
        let invalid = |message: String| {
            Err(AgentError::InvalidParams {
                agent: agent.to_owned(),
                message,
            })
        };
        if self.cap_mw == Some(0) {
            return invalid("`cap_mw` must be positive".into());
        }
        if !(1..=MAX_DRAW_AVERAGE_TICKS).contains(&self.draw_average_ticks) {
            return invalid(format!(
                "`draw_average_ticks` must be from 1 to {MAX_DRAW_AVERAGE_TICKS}, got {}",
                self.draw_average_ticks
            ));
        }
        validate_reserve_range(
            agent,
            ("price_floor", self.price_floor),
            ("price_ceiling", self.price_ceiling),
        )?;
        if self.price_rise_from_permille >= 1000 {
            return invalid(format!(
                "`price_rise_from_permille` must be below 1000, got {}",
                self.price_rise_from_permille
            ));
        }
        if self.near_cap_permille == 0 || self.near_cap_permille >= self.over_cap_permille {
            return invalid(format!(
                "`near_cap_permille` ({}) must be positive and below `over_cap_permille` ({})",
                self.near_cap_permille, self.over_cap_permille
            ));
        }
        if self.hysteresis_permille >= self.near_cap_permille {
            return invalid(format!(
                "`hysteresis_permille` ({}) must be below `near_cap_permille` ({})",
                self.hysteresis_permille, self.near_cap_permille
            ));
        }
        if self.signal_ttl_ticks == 0 {
            return invalid("`signal_ttl_ticks` must be at least 1".into());
        }
        Ok(())
    }
}
