//! Drives one run: the runtime's tick engine (agents, exchange, guardian, scheduler,
//! the same phases `gamesa run` drives through its actors) against the twin, ticked in
//! virtual time as fast as the machine allows, one tick per twin step, until the
//! scenario ends. No actors and no threads: the run is a plain loop.
//!
//! Every policy starts from the same machine: the twin at ambient with each limit at
//! its `min_w` (the baseline the guardian and the agents count from), except `none`,
//! whose limits are at `max_w` from the first step (it has no software limit at all).
//!
//! The `optimum` runs no runtime: it is the physical limit, not a policy that must pass
//! the guardian. Its plan (`crate::optimum`) is set on the twin step by step, limits
//! before each step, and measured with the same [`Metrics`].

use std::{path::Path, time::Instant};

use gamesa_agent::AgentRegistry;
use gamesa_config::{Config, assemble};
use gamesa_engine::Intake;
use gamesa_hw::{
    Actuator,
    twin::{Scenario, SharedTwin, Trace, Twin},
};
use gamesa_proto::Resource;
use serde::{Deserialize, Serialize};

use crate::{
    Policy, SimError, fit,
    metrics::{Metrics, OverCapSteps, TickCost, TickTimer, VerdictCounts},
    optimum, policy,
};

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct RunSpec<'a> {
    pub scenario: &'a Scenario,
    /// The scenario's file, named in the config the run uses.
    pub scenario_path: &'a Path,
    /// The config the run is fitted from (`config/sim.toml`).
    pub template: &'a Config,
    /// The market's agent kinds; the baselines' kinds are added per run.
    pub registry: &'a AgentRegistry,
    pub policy: Policy,
    /// Seeds the runtime (correlation ids); the scenario's seed when `None`.
    pub seed: Option<u64>,
    /// Record the per-step series a plot needs.
    pub trace: bool,
}

/// The series a plot draws, step by step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTrace {
    pub twin: Trace,
    /// Each component's `t_max_c`, in the trace's component order.
    pub t_max_c: Vec<f64>,
    /// The last trade price of `power_budget_mw` after each tick, in credits per mW
    /// per lease; `None` until the first trade (and always, for the baselines).
    pub power_price: Vec<Option<f64>>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub metrics: Metrics,
    pub cost: TickCost,
    pub trace: Option<RunTrace>,
}

/// Runs `spec.policy` on `spec.scenario` to the end.
pub fn run(spec: &RunSpec<'_>) -> Result<RunOutcome, SimError> {
    let started = Instant::now();
    let seed = spec.seed.unwrap_or(spec.scenario.seed());
    if spec.policy == Policy::Optimum {
        return run_optimum(spec, seed, started);
    }
    let config = fit::fit(
        spec.template,
        spec.scenario,
        spec.scenario_path,
        spec.policy,
        seed,
    )?;
    let mut registry = spec.registry.clone();
    policy::agent::register(&mut registry, spec.scenario)
        .map_err(|error| SimError::Agent(error.to_string()))?;
    fit::validate(&config, &registry)?;

    let mut twin = Twin::new(spec.scenario.clone());
    for (index, component) in spec.scenario.components().iter().enumerate() {
        let start_w = match spec.policy {
            Policy::None => component.max_w,
            _ => component.min_w,
        };
        twin.set_limit_w(index, start_w);
    }
    if spec.trace {
        twin.record_trace();
    }
    let twin = SharedTwin::new(twin);

    let steps = spec.scenario.steps();
    let mut over_cap = OverCapSteps::new(spec.scenario);
    let (counts, timer, power_price) =
        drive(&config, &registry, &twin, steps, spec.trace, &mut over_cap)?;

    let report = twin.report();
    let metrics = Metrics::new(spec.policy, seed, &report, &counts, &over_cap);
    let trace = match (spec.trace, twin.trace()) {
        (true, Some(trace)) => Some(RunTrace {
            twin: trace,
            t_max_c: spec
                .scenario
                .components()
                .iter()
                .map(|component| component.t_max_c)
                .collect(),
            power_price,
        }),
        _ => None,
    };
    Ok(RunOutcome {
        metrics,
        cost: timer.finish(started.elapsed()),
        trace,
    })
}

/// The optimum's run: the plan set straight on the twin. Its one "tick" is the solve.
fn run_optimum(spec: &RunSpec<'_>, seed: u64, started: Instant) -> Result<RunOutcome, SimError> {
    let plan = optimum::plan(spec.scenario)?;
    let mut timer = TickTimer::default();
    timer.record(started.elapsed());
    let mut twin = Twin::new(spec.scenario.clone());
    if spec.trace {
        twin.record_trace();
    }
    let mut over_cap = OverCapSteps::new(spec.scenario);
    let mut over_cap_steps = 0;
    optimum::drive(&mut twin, &plan, |twin, step| {
        let now = twin.over_cap_steps();
        over_cap.record(step, now > over_cap_steps);
        over_cap_steps = now;
    });
    let mut metrics = Metrics::new(
        Policy::Optimum,
        seed,
        &twin.report(),
        &VerdictCounts::default(),
        &over_cap,
    );
    metrics.optimum = Some(plan.solver);
    let trace = match (spec.trace, twin.trace()) {
        (true, Some(trace)) => Some(RunTrace {
            twin: trace.clone(),
            t_max_c: spec
                .scenario
                .components()
                .iter()
                .map(|component| component.t_max_c)
                .collect(),
            power_price: vec![None; trace.steps.len()],
        }),
        _ => None,
    };
    Ok(RunOutcome {
        metrics,
        cost: timer.finish(started.elapsed()),
        trace,
    })
}

type Driven = (VerdictCounts, TickTimer, Vec<Option<f64>>);

fn drive(
    config: &Config,
    registry: &AgentRegistry,
    twin: &SharedTwin,
    steps: u64,
    trace: bool,
    over_cap: &mut OverCapSteps,
) -> Result<Driven, SimError> {
    let mut engine = assemble::engine(config, registry)
        .map_err(|(key, message)| SimError::Runtime(format!("`{key}`: {message}")))?;
    let mut sensors = twin.sensors();
    let mut actuator = twin.actuator();
    let mut counts = VerdictCounts::default();
    let mut timer = TickTimer::default();
    let mut power_price = Vec::with_capacity(if trace { steps as usize } else { 0 });
    let mut over_cap_steps = 0;
    for step in 0..steps {
        let tick_started = Instant::now();
        let output = engine.step(&mut sensors, &mut actuator, Intake::default());
        timer.record(tick_started.elapsed());
        counts.record(&output);
        // Each tick samples (steps) the twin once; a step over the cap adds one.
        let now = twin.with(|twin| twin.over_cap_steps());
        over_cap.record(step, now > over_cap_steps);
        over_cap_steps = now;
        if trace {
            power_price.push(
                output
                    .market
                    .last_price(Resource::PowerBudgetMw)
                    .map(|price| price.0 as f64),
            );
        }
    }
    // Stop as `gamesa run` stops: open orders cancelled, every original put back. The
    // twin has run its last step, so its report is already complete.
    let participants: Vec<_> = assemble::agent_specs(config)
        .into_iter()
        .map(|spec| spec.id)
        .chain(assemble::client_ids(config).into_iter().map(|(id, _)| id))
        .collect();
    engine.withdraw(&participants);
    let _restored = actuator.restore_all();
    Ok((counts, timer, power_price))
}

/// Loads a config template, with `GAMESA__SECTION__KEY` overrides from `env`, checking
/// its agent kinds against `registry`.
pub fn load_template(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
    registry: &AgentRegistry,
) -> Result<Config, SimError> {
    Config::load(path, env, registry).map_err(|error| SimError::Config(error.to_string()))
}

/// Loads a scenario file.
pub fn load_scenario(path: &Path) -> Result<Scenario, SimError> {
    Scenario::load(path).map_err(|error| SimError::Scenario(error.to_string()))
}
