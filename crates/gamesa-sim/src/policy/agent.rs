//! The baselines as agent plugins: one agent computes the whole split each tick and asks
//! for every limit that differs from the enforced one, so each baseline goes through the
//! same guardian (effects, contracts, gate, safety) and the same tick as the market.
//!
//! Kinds are `policy.<name>` (`policy.static-equal`); an agent of one needs the
//! `power.set_limit:*` effect. Lowerings come before raisings, so the node-cap contract
//! sees every limit that makes room before the limits that use it.
//!
//! Each limit is asked for the way the market's agents ask (`limit_change` in
//! `gamesa_agent::power_demand`), so no baseline is handicapped by how it asks:
//! - **a refused raise is retried smaller**: a raise after which the enforced limit did
//!   not rise (the guardian refused it) is asked again at half the size, then a quarter,
//!   and so on (at least [`MIN_RETRY_STEP_MW`]), until one passes; a raise the gate
//!   clamped to its step limit did move the limit, and is asked again whole;
//! - **safety first**: while a safety signal concerns a component (a `Domain::Safety`
//!   signal that is global or whose kind names the component after a dot,
//!   `thermal_critical.gpu0`) only a lower limit is ever asked for it, so the baseline
//!   never fights the guardian's safe limit.

use std::sync::Arc;

use gamesa_agent::{
    Agent, AgentError, AgentRegistry, Intent, Observation,
    proto::{Actuation, Domain, Signal, TelemetryFrame},
};
use gamesa_hw::twin::{Scenario, Schedule};

use super::{
    ComponentBounds, Policy,
    balancer::Balancer,
    greedy_oracle::{self, OracleComponent},
    none, proportional, static_equal, static_tdp,
    thermal_proportional::ThermalProportional,
};

/// Computes one split, in watts per component (scenario order), from an observation.
type Decide = Box<dyn FnMut(&Observation<'_>) -> Vec<f64> + Send>;

/// The smallest raise a retry asks for, in mW: halving stops here.
pub const MIN_RETRY_STEP_MW: u64 = 1_000;

/// An agent that applies a baseline's split every tick.
pub struct SplitAgent {
    components: Vec<String>,
    decide: Decide,
    /// How each component's limit is asked for, in `components` order.
    asks: Vec<LimitAsks>,
}

impl SplitAgent {
    fn new(components: Vec<String>, decide: Decide) -> SplitAgent {
        let asks = vec![LimitAsks::default(); components.len()];
        SplitAgent {
            components,
            decide,
            asks,
        }
    }
}

impl std::fmt::Debug for SplitAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplitAgent")
            .field("components", &self.components)
            .field("asks", &self.asks)
            .finish_non_exhaustive()
    }
}

impl Agent for SplitAgent {
    fn observe(&mut self, obs: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        let split = (self.decide)(obs);
        let mut lower = Vec::new();
        let mut raise = Vec::new();
        for ((component, limit_w), asks) in self.components.iter().zip(split).zip(&mut self.asks) {
            // Rounded down, so the limits never add up to more than the split.
            let wanted_mw = (limit_w * 1000.0).floor().max(0.0) as u64;
            let enforced = obs
                .frame
                .component(component)
                .and_then(|telemetry| telemetry.limit_mw);
            let safety = under_safety(obs.signals, component);
            let Some(limit_mw) = asks.next(enforced, wanted_mw, safety) else {
                continue;
            };
            let actuation = Intent::Actuate(Actuation::PowerLimit {
                component: component.clone(),
                limit_mw,
            });
            match enforced {
                Some(enforced) if limit_mw < enforced => lower.push(actuation),
                _ => raise.push(actuation),
            }
        }
        lower.append(&mut raise);
        Ok(lower)
    }
}

/// Whether a live safety signal concerns `component`: one that names no component
/// (`power_over_cap`) or names it after a dot (`thermal_critical.gpu0`), as the
/// guardian reads them (`gamesa_guardian::safety`).
pub fn under_safety(signals: &[Signal], component: &str) -> bool {
    signals
        .iter()
        .filter(|signal| signal.domain == Domain::Safety)
        .any(|signal| match signal.kind.as_str().split_once('.') {
            Some((_, target)) if !target.is_empty() => target == component,
            _ => true,
        })
}

/// One component's limit requests: what the last raise asked for, so that a refused one
/// is retried smaller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitAsks {
    /// The enforced limit the last request raised from, if it was a raise: the raise
    /// was refused when the enforced limit has not risen above it since.
    raised_from_mw: Option<u64>,
    /// Consecutive raises that did not move the limit: each halves the next.
    refused_raises: u32,
}

impl LimitAsks {
    /// The limit to ask for this tick, in mW, when the split wants `wanted_mw` and the
    /// enforced limit is `enforced_mw`; `None` when nothing should be asked.
    pub fn next(&mut self, enforced_mw: Option<u64>, wanted_mw: u64, safety: bool) -> Option<u64> {
        let wanted = match enforced_mw {
            _ if wanted_mw == 0 => false,
            Some(enforced) if safety => wanted_mw < enforced,
            Some(enforced) => wanted_mw != enforced,
            None => !safety,
        };
        let raised_from = self.raised_from_mw.take();
        let Some(enforced) = enforced_mw.filter(|_| wanted) else {
            self.refused_raises = 0;
            return wanted.then_some(wanted_mw);
        };
        let mut limit_mw = wanted_mw;
        match raised_from {
            Some(raised_from) if limit_mw > enforced && enforced <= raised_from => {
                // The last raise did not happen: ask for less, halving each time.
                self.refused_raises = self.refused_raises.saturating_add(1).min(16);
                let step = (limit_mw - enforced) >> self.refused_raises;
                limit_mw = enforced + step.max(MIN_RETRY_STEP_MW.min(limit_mw - enforced));
            }
            _ => self.refused_raises = 0,
        }
        if limit_mw > enforced {
            self.raised_from_mw = Some(enforced);
        }
        Some(limit_mw)
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
    /// Steps in one second: how far ahead the greedy oracle looks for a lower cap.
    lookahead_steps: u64,
}

/// The split function of `policy` (`None` for the market, which has no single agent).
fn decide_for(policy: Policy, known: Arc<Known>) -> Option<Decide> {
    let cap = known.scenario.cap_w();
    let decide: Decide = match policy {
        Policy::Market | Policy::Optimum => return None,
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
        Policy::ThermalProportional => {
            let mut policy = ThermalProportional::new(known.bounds.clone());
            Box::new(move |obs| policy.decide(obs.frame, cap_w(obs.frame, cap)))
        }
        Policy::Balancer => {
            let weights: Vec<f64> = known
                .scenario
                .components()
                .iter()
                .map(|spec| spec.weight)
                .collect();
            let mut policy = Balancer::new(known.bounds.clone(), &weights);
            Box::new(move |obs| policy.decide(obs.frame, cap_w(obs.frame, cap)))
        }
        Policy::GreedyOracle => Box::new(move |obs| {
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
                    thermal_limit_w: greedy_oracle::thermal_limit_w(
                        spec.t_max_c,
                        ambient_c,
                        conditions.r_c_per_w[index],
                    ),
                })
                .collect();
            greedy_oracle::split(conditions.cap_w, &components)
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
            Ok(Box::new(SplitAgent::new(components, decide)) as Box<dyn Agent>)
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use gamesa_agent::{
        proto::{AgentId, ComponentKind, Domain},
        testkit::{World, component_with_limits, signal},
    };

    use super::*;

    #[test]
    fn a_refused_raise_is_retried_at_half_then_a_quarter() {
        let mut asks = LimitAsks::default();
        assert_eq!(asks.next(Some(100_000), 300_000, false), Some(300_000));
        // Still at 100 W: refused. Half of the raise, then a quarter.
        assert_eq!(asks.next(Some(100_000), 300_000, false), Some(200_000));
        assert_eq!(asks.next(Some(100_000), 300_000, false), Some(150_000));
        // That one passed: the next raise asks for everything again.
        assert_eq!(asks.next(Some(150_000), 300_000, false), Some(300_000));
        // Halving stops at 1 W.
        let mut small = LimitAsks::default();
        assert_eq!(small.next(Some(100_000), 101_500, false), Some(101_500));
        assert_eq!(small.next(Some(100_000), 101_500, false), Some(101_000));
        assert_eq!(small.next(Some(100_000), 101_500, false), Some(101_000));
    }

    #[test]
    fn a_raise_the_gate_clamped_is_asked_again_whole() {
        let mut asks = LimitAsks::default();
        assert_eq!(asks.next(Some(100_000), 300_000, false), Some(300_000));
        // The gate let 25 W through: the limit moved, so nothing was refused.
        assert_eq!(asks.next(Some(125_000), 300_000, false), Some(300_000));
        // Lowerings are asked as they are, and reset the retries.
        assert_eq!(asks.next(Some(125_000), 110_000, false), Some(110_000));
        assert_eq!(asks.next(Some(110_000), 110_000, false), None);
    }

    #[test]
    fn under_a_safety_signal_only_lower_limits_are_asked() {
        let mut asks = LimitAsks::default();
        assert_eq!(asks.next(Some(100_000), 250_000, true), None);
        assert_eq!(asks.next(Some(200_000), 150_000, true), Some(150_000));
        assert_eq!(asks.next(None, 150_000, true), None);
        // Once the signal is gone the raise is asked whole.
        assert_eq!(asks.next(Some(150_000), 250_000, false), Some(250_000));
    }

    #[test]
    fn safety_signals_concern_the_component_they_name_or_every_one() {
        let critical = [signal("thermal_critical.gpu0", Domain::Safety, 1000)];
        assert!(under_safety(&critical, "gpu0"));
        assert!(!under_safety(&critical, "cpu"));
        let over_cap = [signal("power_over_cap", Domain::Safety, 1000)];
        assert!(under_safety(&over_cap, "cpu") && under_safety(&over_cap, "gpu0"));
        let warning = [signal("thermal_warning.gpu0", Domain::Thermal, 1000)];
        assert!(!under_safety(&warning, "gpu0"));
    }

    fn world(cpu_limit_mw: u64, gpu_limit_mw: u64) -> World {
        let mut cpu = component_with_limits("cpu", ComponentKind::Cpu);
        cpu.limit_mw = Some(cpu_limit_mw);
        let mut gpu = component_with_limits("gpu0", ComponentKind::Gpu);
        gpu.limit_mw = Some(gpu_limit_mw);
        World::with_components(vec![cpu, gpu])
    }

    fn asked(intents: &[Intent]) -> Vec<(String, u64)> {
        intents
            .iter()
            .filter_map(|intent| match intent {
                Intent::Actuate(Actuation::PowerLimit {
                    component,
                    limit_mw,
                }) => Some((component.clone(), *limit_mw)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_agent_lowers_first_and_holds_back_a_component_under_safety() {
        let mut agent = SplitAgent::new(
            vec!["cpu".into(), "gpu0".into()],
            Box::new(|_| vec![250.0, 150.0]),
        );
        let mut world = world(150_000, 250_000);
        let mut ask =
            |world: &World| asked(&agent.observe(&world.observation(AgentId(1))).unwrap());
        // The GPU comes down before the CPU goes up.
        assert_eq!(
            ask(&world),
            vec![("gpu0".to_owned(), 150_000), ("cpu".to_owned(), 250_000)]
        );
        // The CPU runs hot: the guardian holds it at 100 W; its raise is not asked
        // while the signal lives, and the GPU's lowering still is.
        world.components_mut()[0].limit_mw = Some(100_000);
        world.signals = vec![signal("thermal_critical.cpu", Domain::Safety, 1000)];
        assert_eq!(ask(&world), vec![("gpu0".to_owned(), 150_000)]);
        // The signal is gone and the GPU is at 150 W: the CPU's raise is asked whole,
        // then, refused, at half the size.
        world.signals.clear();
        world.components_mut()[1].limit_mw = Some(150_000);
        assert_eq!(ask(&world), vec![("cpu".to_owned(), 250_000)]);
        assert_eq!(ask(&world), vec![("cpu".to_owned(), 175_000)]);
    }
}
