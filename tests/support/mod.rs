//! Shared set-up for the end-to-end tests: a runtime on the twin, built from the
//! bundled `config/sim.toml` with edits, in virtual time.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use gamesa_agent::AgentRegistry;
use gamesa_hw::twin::{Scenario, SharedTwin, Twin};
use gamesa_proto::{AgentId, Domain, Signal, SignalKind, Strength};
use gamesa_runtime::{Config, Runtime, TickOutput};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `config/sim.toml` with `edit` applied to its text, pointed at `scenario`.
pub fn sim_config(
    scenario: &Path,
    registry: &AgentRegistry,
    edit: impl FnOnce(&mut toml::Table),
) -> Config {
    let path = repo_root().join("config/sim.toml");
    let mut table: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    table["sensors"]["scenario"] = toml::Value::String(scenario.display().to_string());
    // The tests tick in virtual time and compare runs: a thread stalled on a loaded
    // machine must not count as an agent's missed deadline (tests/hung_agent.rs tests
    // deadlines with its own).
    table
        .entry("runtime")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap()
        .insert("agent_deadline_ms".into(), toml::Value::Integer(10_000));
    edit(&mut table);
    let text = toml::to_string(&table).unwrap();
    Config::from_toml_str(&text, &path, std::iter::empty(), registry).unwrap()
}

pub fn scenario(name: &str) -> PathBuf {
    let bundled = repo_root().join("scenarios").join(name);
    if bundled.exists() {
        bundled
    } else {
        repo_root().join("tests/scenarios").join(name)
    }
}

pub fn builtin() -> AgentRegistry {
    gamesa::builtin_registry().unwrap()
}

/// Starts a runtime on the twin of `scenario_path`; returns it with the twin handle.
pub fn start_on_twin(
    config: &Config,
    scenario_path: &Path,
    registry: &AgentRegistry,
) -> (Runtime, SharedTwin) {
    let twin = SharedTwin::new(Twin::new(Scenario::load(scenario_path).unwrap()));
    let runtime = Runtime::start(
        config,
        registry,
        Box::new(twin.sensors()),
        Box::new(twin.actuator()),
    )
    .unwrap();
    (runtime, twin)
}

pub async fn run_ticks(runtime: &mut Runtime, ticks: usize) -> Vec<TickOutput> {
    let mut reports = Vec::with_capacity(ticks);
    for _ in 0..ticks {
        reports.push(runtime.tick().await.unwrap());
    }
    reports
}

/// The twin's enforced limit of every component, in W, in component order.
pub fn twin_limits_w(twin: &SharedTwin) -> Vec<(String, f64)> {
    twin.with(|twin| {
        let names: Vec<String> = twin.component_names().map(str::to_owned).collect();
        names
            .into_iter()
            .enumerate()
            .map(|(index, name)| (name, twin.limit_w(index).unwrap()))
            .collect()
    })
}

/// A full-strength `game_started` performance signal from outside, live for one tick.
pub fn performance_signal() -> Signal {
    Signal {
        kind: SignalKind::new("game_started").unwrap(),
        domain: Domain::Performance,
        strength: Strength::MAX,
        source: AgentId(900),
        ttl_ticks: 1,
        correlation: None,
    }
}

/// A `thermal_critical` hold on the GPU, from outside, for a few ticks.
pub fn hold_gpu() -> Signal {
    Signal {
        kind: SignalKind::new("thermal_critical.gpu0").unwrap(),
        domain: Domain::Safety,
        strength: Strength::MAX,
        source: AgentId(900),
        ttl_ticks: 5,
        correlation: None,
    }
}

/// The supervisor's decision on each failure of `agent`, in order.
pub fn decisions_on(
    reports: &[TickOutput],
    agent: AgentId,
) -> Vec<gamesa_guardian::SupervisionDecision> {
    reports
        .iter()
        .flat_map(|report| &report.failures)
        .filter(|failure| failure.agent == agent)
        .map(|failure| failure.decision)
        .collect()
}

/// Three restarts and then isolation: what the bundled `[supervision]` decides for an
/// agent that fails every tick.
pub fn restarted_three_times_then_isolated() -> Vec<gamesa_guardian::SupervisionDecision> {
    use gamesa_guardian::SupervisionDecision::{Isolate, Restart};
    vec![
        Restart { restarts: 1 },
        Restart { restarts: 2 },
        Restart { restarts: 3 },
        Isolate { restarts: 3 },
    ]
}

/// The fills of the ticks after the first isolation in `reports` (panics if none).
pub fn fills_after_isolation(reports: &[TickOutput]) -> usize {
    let isolated_at = reports
        .iter()
        .position(|report| {
            report.failures.iter().any(|failure| {
                matches!(
                    failure.decision,
                    gamesa_guardian::SupervisionDecision::Isolate { .. }
                )
            })
        })
        .expect("an isolation");
    reports[isolated_at + 1..]
        .iter()
        .map(|report| report.fills.len())
        .sum()
}

/// `output` without its phase timings: what two runs of the same inputs must agree on.
pub fn untimed(mut output: TickOutput) -> TickOutput {
    output.timings.clear();
    output
}
