//! The policies that decide the power split: the market (the GAMESA runtime with its
//! agents) and the baselines, each a function from what it knows (and, for
//! `thermal-proportional` and `balancer`, what it learned) to a limit per component (one
//! file each), run as a single agent plugin through the same guardian.
//!
//! Every split is in watts, one limit per component in scenario order (sorted by name).

pub mod agent;
pub mod balancer;
pub mod greedy_oracle;
pub mod none;
pub mod proportional;
pub mod static_equal;
pub mod static_tdp;
pub mod thermal_proportional;
pub mod water_fill;

use std::{fmt, str::FromStr};

use gamesa_hw::twin::Scenario;
use serde::{Deserialize, Serialize};

use crate::SimError;

/// The baselines that run with the market's safety machinery (the thermal and power
/// agents, the guardian, the same way of asking for limits) and know only what a
/// deployment knows (telemetry and datasheet limits): the ones the market must beat.
pub const FAIR_BASELINES: [Policy; 5] = [
    Policy::StaticEqual,
    Policy::StaticTdp,
    Policy::Proportional,
    Policy::ThermalProportional,
    Policy::Balancer,
];

/// What decides the power split of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// The GAMESA runtime with the config's agents: prices decide.
    Market,
    /// No software limit: every component may draw up to its hardware maximum.
    None,
    /// The cap split equally, clamped to each component's limits.
    StaticEqual,
    /// The cap split in proportion to TDP, clamped to each component's limits.
    StaticTdp,
    /// Each tick, the cap above the minimums shared by current utilization.
    Proportional,
    /// `Proportional`, each limit capped at its component's learned thermal limit.
    ThermalProportional,
    /// Feedback: budget moved step by step to the best measured progress per watt.
    Balancer,
    /// Each tick, the split that maximises the next step's weighted work, knowing the
    /// twin's parameters, each limit held to its steady-state thermal power.
    GreedyOracle,
    /// The physical limit: the best limits over the whole run, knowing everything
    /// (`crate::optimum`), set straight on the twin with no runtime and no guardian.
    Optimum,
}

impl Policy {
    /// Every policy, in the order tables list them.
    pub const ALL: [Policy; 9] = [
        Policy::Optimum,
        Policy::Market,
        Policy::GreedyOracle,
        Policy::StaticEqual,
        Policy::StaticTdp,
        Policy::Proportional,
        Policy::ThermalProportional,
        Policy::Balancer,
        Policy::None,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Policy::Market => "market",
            Policy::None => "none",
            Policy::StaticEqual => "static-equal",
            Policy::StaticTdp => "static-tdp",
            Policy::Proportional => "proportional",
            Policy::ThermalProportional => "thermal-proportional",
            Policy::Balancer => "balancer",
            Policy::GreedyOracle => "greedy-oracle",
            Policy::Optimum => "optimum",
        }
    }

    /// The agent kind a baseline runs as (`policy.static-equal`); the market and the
    /// optimum (which runs no runtime) have none.
    pub fn agent_kind(self) -> Option<String> {
        match self {
            Policy::Market | Policy::Optimum => None,
            other => Some(format!("policy.{}", other.name())),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = SimError;

    fn from_str(text: &str) -> Result<Policy, SimError> {
        Policy::ALL
            .into_iter()
            .find(|policy| policy.name() == text)
            .ok_or_else(|| SimError::UnknownPolicy {
                name: text.to_owned(),
                known: Policy::ALL.map(Policy::name).join(", "),
            })
    }
}

/// What the static and proportional baselines know of one component: its limit range
/// and its TDP, from the scenario (a datasheet would give the same).
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentBounds {
    pub name: String,
    pub min_w: f64,
    pub max_w: f64,
    pub tdp_w: f64,
}

impl ComponentBounds {
    /// Every component of `scenario`, in scenario order.
    pub fn of(scenario: &Scenario) -> Vec<ComponentBounds> {
        scenario
            .components()
            .iter()
            .map(|spec| ComponentBounds {
                name: spec.name.clone(),
                min_w: spec.min_w,
                max_w: spec.max_w,
                tdp_w: spec.tdp_w,
            })
            .collect()
    }

    fn clamp(&self, limit_w: f64) -> f64 {
        limit_w.clamp(self.min_w, self.max_w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_from_their_names_and_unknown_ones_list_the_known() {
        for policy in Policy::ALL {
            assert_eq!(policy.name().parse::<Policy>(), Ok(policy));
        }
        assert_eq!(
            "static_equal".parse::<Policy>(),
            Err(SimError::UnknownPolicy {
                name: "static_equal".into(),
                known: "optimum, market, greedy-oracle, static-equal, static-tdp, \
                        proportional, thermal-proportional, balancer, none"
                    .into()
            })
        );
        assert_eq!(
            Policy::StaticEqual.agent_kind().as_deref(),
            Some("policy.static-equal")
        );
        assert_eq!(Policy::Market.agent_kind(), None);
    }
}
