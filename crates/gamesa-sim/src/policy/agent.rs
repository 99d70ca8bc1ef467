//! The baselines as agent plugins: one agent computes the whole split each tick and asks
//! for every limit that differs from the enforced one, so each baseline goes through the
//! same guardian (effects, contracts, gate) and the same tick as the market.
//!
//! Kinds are `policy.<name>` (`policy.static-equal`); an agent of one needs the
//! `power.set_limit:*` effect. Lowerings come before raisings, so the node-cap contract
//! sees every limit that makes room before the limits that use it.

use std::sync::Arc;

use gamesa_agent::{
    Agent, AgentError, AgentRegistry, Intent, Observation,
    proto::{Actuation, TelemetryFrame},
};
use gamesa_hw::twin::{Scenario, Schedule};

use super::{
    ComponentBounds, Policy, none,
    oracle::{self, OracleComponent},
    proportional, static_equal, static_tdp,
};

/// Computes one split, in watts per component (scenario order), from an observation.
type Decide = Box<dyn FnMut(&Observation<'_>) -> Vec<f64> + Send>;

/// An agent that applies a baseline's split every tick.
pub struct SplitAgent {
    components: Vec<String>,
    decide: Decide,
}

impl std::fmt::Debug for SplitAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplitAgent")
            .field("components", &self.components)
            .finish_non_exhaustive()
    }
}

impl Agent for SplitAgent {
    fn observe(&mut self, obs: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        let split = (self.decide)(obs);
        let mut lower = Vec::new();
        let mut raise = Vec::new();
        for (component, limit_w) in self.components.iter().zip(split) {
            // Rounded down, so the limits never add up to more than the split.
            let limit_mw = (limit_w * 1000.0).floor().max(0.0) as u64;
            let enforced = obs
                .frame
                .component(component)
                .and_then(|telemetry| telemetry.limit_mw);
            let actuation = Intent::Actuate(Actuation::PowerLimit {
                component: component.clone(),
                limit_mw,
            });
            match enforced {
                Some(enforced) if enforced == limit_mw => {}
                Some(enforced) if limit_mw < enforced => lower.push(actuation),
                _ => raise.push(actuation),
            }
        }
        lower.append(&mut raise);
        Ok(lower)
    }
}

/// The node cap in the frame, in W, else the scenario's.
fn cap_w(frame: &TelemetryFrame, scenario_cap_w: f64) -> f64 {
    frame
        .node
        .cap_mw
        .map_or(scenario_cap_w, |cap_mw| cap_mw as f64 / 1000.0)
}

/// What a baseline's agent is built from: the scenario, read once.
#[derive(Debug)]
struct Known {
    scenario: Scenario,
    bounds: Vec<ComponentBounds>,
    schedule: Schedule,
    /// Steps in one second: how far ahead the oracle looks for a lower cap.
    lookahead_steps: u64,
}

/// The split function of `policy` (`None` for the market, which has no single agent).
fn decide_for(policy: Policy, known: Arc<Known>) -> Option<Decide> {
    let cap = known.scenario.cap_w();
    let decide: Decide = match policy {
        Policy::Market => return None,
        Policy::None => Box::new(move |_| none::split(&known.bounds)),
        Policy::StaticEqual => {
            Box::new(move |obs| static_equal::split(cap_w(obs.frame, cap), &known.bounds))
        }
        Policy::StaticTdp => {
            Box::new(move |obs| static_tdp::split(cap_w(obs.frame, cap), &known.bounds))
        }
        Policy::Proportional => Box::new(move |obs| {
            let utilization: Vec<f64> = known
                .bounds
                .iter()
                .map(|bounds| {
                    obs.frame
                        .component(&bounds.name)
                        .map_or(0.0, |c| f64::from(c.utilization_permille) / 1000.0)
                })
                .collect();
            proportional::split(cap_w(obs.frame, cap), &known.bounds, &utilization)
        }),
        Policy::Oracle => Box::new(move |obs| {
            // Limits asked for at tick k govern the twin's step k + 1. The cap is the
            // lowest of the coming second, so that a gate's step limit cannot hold the
            // limits above a cap drop while they come down.
            let next = obs.tick.0.saturating_add(1);
            let mut conditions = known.schedule.at_step(next);
            conditions.cap_w = (next..next + known.lookahead_steps)
                .map(|step| known.schedule.at_step(step).cap_w)
                .fold(conditions.cap_w, f64::min);
            let ambient_c = conditions.ambient_c;
            let components: Vec<OracleComponent> = known
                .scenario
                .components()
                .iter()
                .enumerate()
                .map(|(index, spec)| OracleComponent {
                    min_w: spec.min_w,
                    max_w: spec.max_w,
                    idle_w: spec.idle_w,
                    tdp_w: spec.tdp_w,
                    weight: spec.weight,
                    perf_exponent: spec.perf_exponent,
                    demand: conditions.demand[index],
                    thermal_limit_w: oracle::thermal_limit_w(
                        spec.t_max_c,
                        ambient_c,
                        conditions.r_c_per_w[index],
                    ),
                })
                .collect();
            oracle::split(conditions.cap_w, &components)
        }),
    };
    Some(decide)
}

/// Registers every baseline of `scenario` under its `policy.<name>` kind.
pub fn register(registry: &mut AgentRegistry, scenario: &Scenario) -> Result<(), AgentError> {
    let known = Arc::new(Known {
        scenario: scenario.clone(),
        bounds: ComponentBounds::of(scenario),
        schedule: Schedule::new(scenario),
        lookahead_steps: 1000u64.div_ceil(scenario.step_ms()).max(1),
    });
    for policy in Policy::ALL {
        let Some(kind) = policy.agent_kind() else {
            continue;
        };
        let known = Arc::clone(&known);
        registry.register(kind, move |_spec| {
            let components = known.bounds.iter().map(|b| b.name.clone()).collect();
            let decide = decide_for(policy, Arc::clone(&known)).ok_or_else(|| {
                AgentError::InvalidParams {
                    agent: policy.name().to_owned(),
                    message: "the market is not a single agent".into(),
                }
            })?;
            Ok(Box::new(SplitAgent { components, decide }) as Box<dyn Agent>)
        })?;
    }
    Ok(())
}
