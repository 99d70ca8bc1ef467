//! An agent that hangs in `observe` costs the others nothing: each tick waits for it no
//! longer than `runtime.agent_deadline_ms`, every miss counts as a failure, the restarts
//! leave the stuck thread behind, and after the configured failures it is isolated.
//! Meanwhile the other agents are asked every tick, trade exactly as they do beside an
//! agent that answers at once with nothing (until the isolation changes how the epoch's
//! allowance is split), and go on trading after it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use gamesa_agent::{Agent, AgentError, AgentRegistry, Intent, Observation};
use gamesa_engine::AgentFailure;
use gamesa_guardian::SupervisionDecision;
use gamesa_proto::AgentId;
use support::*;

const TICKS: usize = 60;

/// Sleeps forever in `observe`, as a plugin stuck on a lock or a dead device would.
struct Hung;

impl Agent for Hung {
    fn observe(&mut self, _: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

/// Answers at once, with nothing.
struct Idle;

impl Agent for Idle {
    fn observe(&mut self, _: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        Ok(Vec::new())
    }
}

fn registry() -> AgentRegistry {
    let mut registry = builtin();
    registry
        .register("hung", |_| Ok(Box::new(Hung) as Box<dyn Agent>))
        .unwrap();
    registry
        .register("idle", |_| Ok(Box::new(Idle) as Box<dyn Agent>))
        .unwrap();
    registry
}

/// `config/sim.toml` with a 200 ms deadline (room for a loaded test machine) and two
/// restarts before isolation, and one
/// more agent of `kind` after every other (so their ids stay the same).
fn config(registry: &AgentRegistry, kind: &str) -> gamesa_runtime::Config {
    sim_config(&scenario("gpu_bottleneck.toml"), registry, |table| {
        let section = |table: &mut toml::Table, name: &str| {
            table
                .entry(name)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .unwrap()
                .clone()
        };
        let mut runtime = section(table, "runtime");
        runtime.insert("agent_deadline_ms".into(), toml::Value::Integer(200));
        table.insert("runtime".into(), toml::Value::Table(runtime));
        let mut supervision = section(table, "supervision");
        supervision.insert("max_restarts".into(), toml::Value::Integer(2));
        supervision.insert("window_s".into(), toml::Value::Float(60.0));
        table.insert("supervision".into(), toml::Value::Table(supervision));
        let agents = table["agents"].as_array_mut().unwrap();
        let mut extra = toml::Table::new();
        extra.insert("kind".into(), kind.into());
        extra.insert("id".into(), "extra".into());
        agents.push(toml::Value::Table(extra));
    })
}

#[actix::test]
async fn a_hung_agent_is_isolated_and_the_others_go_on() {
    let registry = registry();
    let scenario_path = scenario("gpu_bottleneck.toml");
    let with_hung = config(&registry, "hung");
    let beside_idle = config(&registry, "idle");
    let hung = AgentId(with_hung.agents.len() as u32);
    let others: Vec<AgentId> = (1..hung.0).map(AgentId).collect();

    let (mut runtime, _) = start_on_twin(&with_hung, &scenario_path, &registry);
    let (mut reference, _) = start_on_twin(&beside_idle, &scenario_path, &registry);
    let mut decisions = Vec::new();
    let mut isolated_at = None;
    let mut fills_after = 0;
    for tick in 0..TICKS {
        let output = runtime.tick().await.unwrap();
        let expected = reference.tick().await.unwrap();
        for failure in &output.failures {
            assert_eq!(failure.agent, hung, "tick {tick}: {failure:?}");
            assert_eq!(
                failure.failure,
                AgentFailure::MissedDeadline { deadline_ms: 200 }
            );
            decisions.push(failure.decision);
            if matches!(failure.decision, SupervisionDecision::Isolate { .. }) {
                isolated_at = Some(tick);
            }
        }
        let asked: Vec<AgentId> = output
            .intents_by_agent
            .iter()
            .map(|(agent, _)| *agent)
            .collect();
        assert_eq!(asked, others, "tick {tick}: every other agent answers");
        match isolated_at {
            Some(at) if tick > at => fills_after += output.fills.len(),
            _ => assert_eq!(
                output.fills, expected.fills,
                "tick {tick}: the others trade as they do beside an idle agent"
            ),
        }
    }
    assert!(fills_after > 0, "nothing traded after the isolation");
    assert_eq!(
        decisions,
        vec![
            SupervisionDecision::Restart { restarts: 1 },
            SupervisionDecision::Restart { restarts: 2 },
            SupervisionDecision::Isolate { restarts: 2 },
        ]
    );
    assert_eq!(runtime.conductor().isolated(), vec![hung]);
    let _ = runtime.shutdown().await;
    let _ = reference.shutdown().await;
}
