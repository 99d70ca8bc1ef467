//! What a hung agent costs the others, in wall-clock time: `Runtime::run_until` at the
//! config's 10 Hz for [`RUN`], once with the five built-in agents and once with a sixth
//! that sleeps forever in `observe`, with a 20 ms agent deadline and two restarts before
//! isolation. Prints the tick rate of each run and when the hung agent was isolated.
//!
//! `cargo bench -p gamesa-runtime --bench hung_agent` (a plain binary, no criterion: the
//! figure is a rate over wall-clock time, not a duration to sample). Under
//! `cargo test --benches` it runs for a moment only, as a smoke test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use gamesa_agent::{Agent, AgentError, AgentRegistry, Intent, Observation};
use gamesa_hw::twin::{Scenario, SharedTwin, Twin};
use gamesa_runtime::{Config, Runtime};

/// How long each run ticks.
const RUN: Duration = Duration::from_secs(10);

/// Sleeps forever in `observe`.
struct Hung;

impl Agent for Hung {
    fn observe(&mut self, _: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

fn registry() -> AgentRegistry {
    let mut registry = support::registry();
    registry
        .register("hung", |_| Ok(Box::new(Hung) as Box<dyn Agent>))
        .unwrap();
    registry
}

/// `config/sim.toml` on the 600 s `training` scenario, with a 20 ms deadline and two
/// restarts within 60 s before isolation; with `hung`, a sixth agent that hangs.
fn config(registry: &AgentRegistry, hung: bool) -> Config {
    let path = support::repo_root().join("config/sim.toml");
    let mut table: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let mut set = |section: &str, key: &str, value: toml::Value| {
        table
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .unwrap()
            .insert(key.to_owned(), value);
    };
    set("runtime", "agent_deadline_ms", toml::Value::Integer(20));
    set("supervision", "max_restarts", toml::Value::Integer(2));
    set("supervision", "window_s", toml::Value::Float(60.0));
    let scenario = support::repo_root().join("scenarios/training.toml");
    set(
        "sensors",
        "scenario",
        toml::Value::String(scenario.display().to_string()),
    );
    if hung {
        let mut stuck = toml::Table::new();
        stuck.insert("kind".into(), "hung".into());
        stuck.insert("id".into(), "stuck".into());
        table["agents"].as_array_mut().unwrap().push(stuck.into());
    }
    let text = toml::to_string(&table).unwrap();
    Config::from_toml_str(&text, &path, std::iter::empty(), registry).unwrap()
}

/// Ticks for `run` of wall-clock time; the ticks, and the tick at which an agent was
/// isolated, if one was.
fn run(hung: bool, run: Duration) -> (u64, Option<u64>) {
    let registry = registry();
    let config = config(&registry, hung);
    let twin = SharedTwin::new(Twin::new(
        Scenario::load(support::repo_root().join("scenarios/training.toml")).unwrap(),
    ));
    let system = actix::System::new();
    system.block_on(async {
        let mut runtime = Runtime::start(
            &config,
            &registry,
            Box::new(twin.sensors()),
            Box::new(twin.actuator()),
        )
        .unwrap();
        let mut ticks = 0;
        let mut isolated_at = None;
        runtime
            .run_until(tokio::time::sleep(run), |output| {
                ticks += 1;
                if output.failures.iter().any(|failure| {
                    matches!(
                        failure.decision,
                        gamesa_guardian::SupervisionDecision::Isolate { .. }
                    )
                }) {
                    isolated_at = Some(output.tick.0);
                }
            })
            .await
            .unwrap();
        let _ = runtime.shutdown().await;
        (ticks, isolated_at)
    })
}

fn main() {
    let bench = std::env::args().any(|arg| arg == "--bench");
    let length = if bench {
        RUN
    } else {
        Duration::from_millis(500)
    };
    let started = Instant::now();
    let (ticks, _) = run(false, length);
    let (hung_ticks, isolated_at) = run(true, length);
    let rate = |ticks: u64| ticks as f64 / length.as_secs_f64();
    println!(
        "hung_agent: {:.2} ticks/s with five agents, {:.2} ticks/s with a sixth that hangs \
         ({:+.1} %); isolated at tick {isolated_at:?}; {:.1?} in all",
        rate(ticks),
        rate(hung_ticks),
        (rate(hung_ticks) / rate(ticks) - 1.0) * 100.0,
        started.elapsed(),
    );
}
