//! `gamesa sim --fleet FILE`: a fleet of twin nodes under one power budget, in virtual
//! time. Each node is the real runtime's engine (the market's agents, the guardian, the
//! exchange) on its own scenario, as `gamesa sim` runs one; over them, the fleet core of
//! `gamesa-fleet` (the same leases, leader and node bids `gamesa run` uses over NATS)
//! divides the budget beyond the safe shares every epoch, by the market or by one of its
//! two baselines, a static split and a split in proportion to demand. A fourth run, the
//! bound, has no budget and no leader: every node runs alone. Messages arrive
//! at once and clocks agree: what the fleet sim measures is the economics, while
//! `tests/fleet_daemons.rs` and `gamesa-fleet`'s safety test cover the failures.
//!
//! A fleet file names each node's scenario (relative to the file) and may override its
//! `[job]` and duration, so one scenario serves many nodes with different shares of a
//! job. Components that finish their job idle from then on (a worker at the job's
//! barrier), so the fleet's time to solution is its slowest node's.
//!
//! ```toml
//! name = "imbalanced_training"
//! budget_w = 2400
//! epoch_ms = 1000
//!
//! [[nodes]]
//! name = "n1"
//! scenario = "../training.toml"
//! job = { gpu0 = 300.0 }
//! duration_s = 1500
//! safe_share_w = 150
//! fails_at_s = 200      # optional: the node dies then (its process stops)
//! count = 1             # optional: this many nodes like it, named n1-1, n1-2, ...
//! ```

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use gamesa_agent::AgentRegistry;
use gamesa_config::{Config, assemble};
use gamesa_engine::{Intake, TickEngine};
use gamesa_fleet::{BidStep, JobPace, Leader, LeaderSettings, NodeLeases, Order, Split, Term};
use gamesa_hw::{
    Actuator, Sensors,
    twin::{Scenario, SharedTwin, Twin},
};
use gamesa_proto::Resource;
use serde::{Deserialize, Serialize};

use crate::{Policy, SimError, fit, policy};

fn default_epoch_ms() -> u64 {
    1_000
}

fn one() -> u32 {
    1
}

/// A fleet file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFile {
    name: String,
    budget_w: f64,
    #[serde(default = "default_epoch_ms")]
    epoch_ms: u64,
    lease_ms: Option<u64>,
    nodes: Vec<NodeEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeEntry {
    name: String,
    scenario: PathBuf,
    job: Option<BTreeMap<String, f64>>,
    duration_s: Option<f64>,
    /// Default: the node's lowest limits added up (it can always run at them).
    safe_share_w: Option<f64>,
    #[serde(default = "one")]
    weight: u32,
    fails_at_s: Option<f64>,
    #[serde(default = "one")]
    count: u32,
}

/// One node of a loaded fleet.
#[derive(Debug, Clone)]
pub struct FleetNode {
    pub name: String,
    pub scenario: Scenario,
    pub scenario_path: PathBuf,
    pub safe_share_mw: u64,
    pub weight: u32,
    pub fails_at_ms: Option<u64>,
}

/// A loaded fleet.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub name: String,
    pub budget_mw: u64,
    pub epoch_ms: u64,
    pub lease_ms: u64,
    pub margin_ms: u64,
    pub step_ms: u64,
    pub nodes: Vec<FleetNode>,
}

fn watts_to_mw(watts: f64) -> u64 {
    (watts * 1_000.0).round().max(0.0) as u64
}

/// Reads a fleet file and every scenario it names.
pub fn load(path: &Path) -> Result<Fleet, SimError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|error| SimError::Read {
            path: path.to_owned(),
            reason: error.to_string(),
        })
    };
    let bad = |message: String| SimError::Scenario(format!("{}: {message}", path.display()));
    let file: FleetFile = toml::from_str(&read(path)?).map_err(|error| bad(error.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    if !(file.budget_w.is_finite() && file.budget_w > 0.0) {
        return Err(bad("budget_w must be a positive number of watts".into()));
    }
    let mut nodes = Vec::new();
    for entry in &file.nodes {
        let scenario_path = base.join(&entry.scenario);
        let mut table: toml::Table = read(&scenario_path)?
            .parse()
            .map_err(|error| bad(format!("{}: {error}", scenario_path.display())))?;
        if let Some(job) = &entry.job {
            let job = job
                .iter()
                .map(|(component, units)| (component.clone(), toml::Value::Float(*units)))
                .collect();
            table.insert("job".into(), toml::Value::Table(job));
        }
        if let Some(duration_s) = entry.duration_s {
            table.insert("duration_s".into(), toml::Value::Float(duration_s));
        }
        for copy in 1..=entry.count.max(1) {
            let name = if entry.count > 1 {
                format!("{}-{copy}", entry.name)
            } else {
                entry.name.clone()
            };
            let mut table = table.clone();
            table.insert("name".into(), toml::Value::String(name.clone()));
            let scenario = Scenario::from_toml_str(&toml::to_string(&table).unwrap_or_default())
                .map_err(|error| bad(format!("node `{name}`: {error}")))?;
            let lowest_w: f64 = scenario.components().iter().map(|c| c.min_w).sum();
            nodes.push(FleetNode {
                name,
                safe_share_mw: watts_to_mw(entry.safe_share_w.unwrap_or(lowest_w)),
                weight: entry.weight.max(1),
                fails_at_ms: entry.fails_at_s.map(|s| (s * 1_000.0).max(0.0) as u64),
                scenario,
                scenario_path: scenario_path.clone(),
            });
        }
    }
    let Some(step_ms) = nodes.first().map(|node| node.scenario.step_ms()) else {
        return Err(bad("names no nodes".into()));
    };
    if let Some(node) = nodes.iter().find(|node| node.scenario.step_ms() != step_ms) {
        return Err(bad(format!(
            "node `{}` steps every {} ms, the first every {step_ms} ms: one fleet, one step",
            node.name,
            node.scenario.step_ms()
        )));
    }
    if file.epoch_ms == 0 || !file.epoch_ms.is_multiple_of(step_ms) {
        return Err(bad(format!(
            "epoch_ms ({}) must be a multiple of the step ({step_ms} ms)",
            file.epoch_ms
        )));
    }
    let budget_mw = watts_to_mw(file.budget_w);
    let safe = nodes
        .iter()
        .map(|node| node.safe_share_mw)
        .fold(0u64, u64::saturating_add);
    if safe > budget_mw {
        return Err(bad(format!(
            "the safe shares add up to {safe} mW, over the budget of {budget_mw} mW"
        )));
    }
    // A node reads its cap once a step: the margin covers a step.
    let margin_ms = (file.epoch_ms / 5).max(step_ms);
    Ok(Fleet {
        name: file.name,
        budget_mw,
        epoch_ms: file.epoch_ms,
        lease_ms: file
            .lease_ms
            .unwrap_or(3 * file.epoch_ms)
            .max(file.epoch_ms + 2 * margin_ms),
        margin_ms,
        step_ms,
        nodes,
    })
}

/// One node's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeMetrics {
    pub name: String,
    /// When its last job finished; `None`: not within its scenario (or it failed).
    pub time_to_solution_s: Option<f64>,
    /// Work done over work asked, over its components with a job.
    pub job_done: f64,
    pub energy_j: f64,
    /// Its mean cap from the fleet, W.
    pub mean_cap_w: f64,
    pub failed: bool,
}

/// A fleet run's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetMetrics {
    pub fleet: String,
    /// How the pool was divided; `None` for the bound ([`run_unconstrained`]): no
    /// budget and no leader, every node on its own machine's limits alone.
    pub split: Option<Split>,
    /// The budget it ran under: the fleet's, or for the bound, all its nodes could draw.
    pub budget_mw: u64,
    /// The slowest live node's time to solution; `None` when a live node did not finish.
    pub time_to_solution_s: Option<f64>,
    pub unfinished: usize,
    pub energy_j: f64,
    /// Steps in which the nodes' caps added up to more than the budget (never, if the
    /// fleet core holds).
    pub caps_over_budget_steps: u64,
    /// Steps in which the measured draws added up to more than the budget.
    pub draw_over_budget_steps: u64,
    pub nodes: Vec<NodeMetrics>,
}

struct SimNode {
    name: String,
    engine: TickEngine,
    sensors: Box<dyn Sensors>,
    actuator: Box<dyn Actuator>,
    twin: SharedTwin,
    leases: NodeLeases,
    pace: JobPace,
    bids: Vec<BidStep>,
    draw_mw: u64,
    safe_share_mw: u64,
    /// All its components could draw: its cap in the bound's run, which has no fleet cap.
    could_draw_mw: u64,
    weight: u32,
    fails_at_ms: Option<u64>,
    failed: bool,
    cap_sum_mw: u128,
    steps: u64,
}

fn start_node(
    node: &FleetNode,
    fleet: &Fleet,
    template: &Config,
    registry: &AgentRegistry,
) -> Result<SimNode, SimError> {
    let seed = node.scenario.seed();
    let config = fit::fit(
        template,
        &node.scenario,
        &node.scenario_path,
        Policy::Market,
        seed,
    )?;
    let mut registry = registry.clone();
    policy::agent::register(&mut registry, &node.scenario)
        .map_err(|error| SimError::Agent(error.to_string()))?;
    fit::validate(&config, &registry)?;
    let engine = assemble::engine(&config, &registry)
        .map_err(|(key, message)| SimError::Runtime(format!("`{key}`: {message}")))?;
    let mut twin = Twin::new(node.scenario.clone());
    for (index, component) in node.scenario.components().iter().enumerate() {
        twin.set_limit_w(index, component.min_w);
    }
    twin.idle_when_done();
    let twin = SharedTwin::new(twin);
    Ok(SimNode {
        name: node.name.clone(),
        engine,
        sensors: Box::new(twin.sensors()),
        actuator: Box::new(twin.actuator()),
        twin,
        leases: NodeLeases::new(
            node.name.clone(),
            node.safe_share_mw,
            fleet.lease_ms,
            fleet.margin_ms,
        ),
        pace: JobPace::default(),
        bids: Vec::new(),
        draw_mw: 0,
        safe_share_mw: node.safe_share_mw,
        could_draw_mw: could_draw_mw(node),
        weight: node.weight,
        fails_at_ms: node.fails_at_ms,
        failed: false,
        cap_sum_mw: 0,
        steps: 0,
    })
}

/// The bound on a fleet's time to solution: every node runs alone, with no fleet cap
/// and no leader, as `gamesa sim --scenario` runs it: its machine's own cap and limits
/// are all that hold it back. A twin's work never slows with more power (its agents
/// keep it under its thermal limits), so no split of the real budget ends sooner, up
/// to sensor noise and the agents' own choices; how much of the gap from the static
/// split to this a split closes says how near the best it comes. Its `budget_mw` is
/// everything the nodes' components could draw (their highest limits), so its caps
/// are judged against what they could reach.
pub fn run_unconstrained(
    fleet: &Fleet,
    template: &Config,
    registry: &AgentRegistry,
) -> Result<FleetMetrics, SimError> {
    let budget_mw = fleet
        .nodes
        .iter()
        .map(|node| could_draw_mw(node).max(node.safe_share_mw))
        .fold(0u64, u64::saturating_add)
        .max(fleet.budget_mw);
    let unconstrained = Fleet {
        budget_mw,
        ..fleet.clone()
    };
    simulate(&unconstrained, template, registry, None)
}

/// Everything a node's components could draw: the sum of their highest limits.
fn could_draw_mw(node: &FleetNode) -> u64 {
    node.scenario
        .components()
        .iter()
        .map(|component| watts_to_mw(component.max_w))
        .fold(0, u64::saturating_add)
}

/// Runs `fleet` to the end of its longest scenario with the pool divided by `split`.
pub fn run(
    fleet: &Fleet,
    template: &Config,
    registry: &AgentRegistry,
    split: Split,
) -> Result<FleetMetrics, SimError> {
    simulate(fleet, template, registry, Some(split))
}

/// Runs `fleet` with the pool divided by `split`, or with no fleet cap at all (`None`).
fn simulate(
    fleet: &Fleet,
    template: &Config,
    registry: &AgentRegistry,
    split: Option<Split>,
) -> Result<FleetMetrics, SimError> {
    let mut nodes: Vec<SimNode> = fleet
        .nodes
        .iter()
        .map(|node| start_node(node, fleet, template, registry))
        .collect::<Result<_, _>>()?;
    let safe: BTreeMap<String, u64> = nodes
        .iter()
        .map(|node| (node.name.clone(), node.safe_share_mw))
        .collect();
    // The leader took office a lease and a margin before the run, so that it may grant
    // from the first epoch.
    let start_ms = fleet.lease_ms + fleet.margin_ms;
    let mut leader = split
        .map(|split| {
            Leader::take_office(
                LeaderSettings {
                    budget_mw: fleet.budget_mw,
                    lease_ms: fleet.lease_ms,
                    margin_ms: fleet.margin_ms,
                },
                Term(1),
                split,
                safe,
                0,
                u64::MAX / 2,
            )
        })
        .transpose()
        .map_err(|error| SimError::Scenario(error.to_string()))?;
    let steps = fleet
        .nodes
        .iter()
        .map(|node| node.scenario.steps())
        .max()
        .unwrap_or(0);
    let (mut caps_over, mut draw_over) = (0u64, 0u64);
    for step in 0..steps {
        let now = start_ms + step * fleet.step_ms;
        let elapsed = step * fleet.step_ms;
        for node in &mut nodes {
            if node.fails_at_ms.is_some_and(|at| elapsed >= at) {
                node.failed = true;
            }
        }
        if let Some(leader) = leader.as_mut()
            && elapsed.is_multiple_of(fleet.epoch_ms)
        {
            let orders: Vec<Order> = nodes
                .iter_mut()
                .filter(|node| !node.failed)
                .map(|node| Order {
                    node: node.name.clone(),
                    request: node.leases.ask(now),
                    draw_mw: node.draw_mw,
                    weight: node.weight,
                    bids: node.bids.clone(),
                })
                .collect();
            for grant in leader.clear(now, &orders) {
                if let Some(node) = nodes.iter_mut().find(|node| node.name == grant.node) {
                    // Delivered at once; a refusal cannot happen here but changes nothing.
                    let _ = node.leases.accept(&grant, now);
                }
            }
        }
        let (mut caps, mut draws) = (0u64, 0u64);
        for node in nodes.iter_mut().filter(|node| !node.failed) {
            if node.twin.with(|twin| twin.is_finished()) {
                continue;
            }
            let fleet_cap_mw = leader.is_some().then(|| node.leases.cap_mw(now));
            let intake = Intake {
                fleet_cap_mw,
                ..Intake::default()
            };
            let cap = fleet_cap_mw.unwrap_or(node.could_draw_mw);
            let output = node
                .engine
                .step(node.sensors.as_mut(), node.actuator.as_mut(), intake);
            node.draw_mw = output.frame.node.draw_mw.unwrap_or(0);
            // The bound has no leader to bid to.
            if leader.is_some() {
                node.pace.observe(&output.frame);
                node.bids = gamesa_fleet::node_bid(
                    &output.frame,
                    output
                        .market
                        .last_price(Resource::PowerBudgetMw)
                        .map(|price| price.0),
                    node.safe_share_mw,
                    node.pace.outlook(),
                );
            }
            node.cap_sum_mw += u128::from(cap);
            node.steps += 1;
            caps = caps.saturating_add(cap);
            draws = draws.saturating_add(node.draw_mw);
        }
        caps_over += u64::from(caps > fleet.budget_mw);
        draw_over += u64::from(draws > fleet.budget_mw);
    }
    let nodes: Vec<NodeMetrics> = nodes
        .iter()
        .map(|node| {
            let report = node.twin.report();
            let with_job: Vec<_> = report
                .components
                .iter()
                .filter_map(|component| Some((component, component.job?)))
                .collect();
            let finished = !node.failed
                && !with_job.is_empty()
                && with_job.iter().all(|(c, _)| c.time_to_solution_s.is_some());
            let time_to_solution_s = finished.then(|| {
                with_job
                    .iter()
                    .filter_map(|(c, _)| c.time_to_solution_s)
                    .fold(0.0, f64::max)
            });
            let job_done = if with_job.is_empty() {
                1.0
            } else {
                with_job
                    .iter()
                    .map(|(c, job)| (c.work / job).min(1.0))
                    .sum::<f64>()
                    / with_job.len() as f64
            };
            NodeMetrics {
                name: node.name.clone(),
                time_to_solution_s,
                job_done,
                energy_j: report.energy_j,
                mean_cap_w: node.cap_sum_mw as f64 / node.steps.max(1) as f64 / 1_000.0,
                failed: node.failed,
            }
        })
        .collect();
    let live: Vec<&NodeMetrics> = nodes.iter().filter(|node| !node.failed).collect();
    let unfinished = live
        .iter()
        .filter(|node| node.time_to_solution_s.is_none())
        .count();
    Ok(FleetMetrics {
        fleet: fleet.name.clone(),
        split,
        budget_mw: fleet.budget_mw,
        time_to_solution_s: (unfinished == 0).then(|| {
            live.iter()
                .filter_map(|node| node.time_to_solution_s)
                .fold(0.0, f64::max)
        }),
        unfinished,
        energy_j: nodes.iter().map(|node| node.energy_j).sum(),
        caps_over_budget_steps: caps_over,
        draw_over_budget_steps: draw_over,
        nodes,
    })
}
