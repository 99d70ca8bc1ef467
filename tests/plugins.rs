//! Agent plugins defined only here, in a test crate, register through the registry and
//! run from config: the runtime needs no change for a new kind. A plugin that panics on
//! every tick is restarted three times and then isolated, while the others trade on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use gamesa_agent::{
    Agent, AgentError, AgentRegistry, Intent, Observation, OrderIntent, SignalIntent,
};
use gamesa_proto::{Domain, Price, Quantity, Resource, Side, SignalKind, Strength, TimeInForce};
use support::*;

/// Panics on every tick.
struct Panicker;

impl Agent for Panicker {
    fn observe(&mut self, _: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        panic!("this agent always panics")
    }
}

/// A workload: bids for CPU cores every tick, well above the CPU agent's reserve price,
/// and says it is busy.
struct Workload {
    cores: u64,
}

impl Agent for Workload {
    fn observe(&mut self, observation: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        Ok(vec![
            Intent::Place(OrderIntent {
                resource: Resource::CpuCores,
                side: Side::Bid,
                price: Price(10_000),
                quantity: Quantity(self.cores),
                time_in_force: TimeInForce::Limit {
                    expires_at: Some(observation.tick),
                },
            }),
            Intent::Raise(SignalIntent {
                kind: SignalKind::new("workload_busy").unwrap(),
                domain: Domain::Performance,
                strength: Strength::try_from(0.5).unwrap(),
                ttl_ticks: 2,
            }),
        ])
    }
}

fn registry_with_test_kinds() -> AgentRegistry {
    let mut registry = builtin();
    registry
        .register("panicker", |_| Ok(Box::new(Panicker) as Box<dyn Agent>))
        .unwrap();
    registry
        .register("test_workload", |spec| {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Params {
                cores: u64,
            }
            let params: Params = spec.params()?;
            Ok(Box::new(Workload {
                cores: params.cores,
            }) as Box<dyn Agent>)
        })
        .unwrap();
    registry
}

fn with_agent(table: &mut toml::Table, agent: &str) {
    let agent: toml::Table = agent.parse().unwrap();
    table["agents"]
        .as_array_mut()
        .unwrap()
        .push(toml::Value::Table(agent));
}

#[actix::test]
async fn a_kind_defined_in_a_test_crate_runs_from_config() {
    let registry = registry_with_test_kinds();
    let scenario = scenario("gpu_bottleneck.toml");
    let config = sim_config(&scenario, &registry, |table| {
        with_agent(
            table,
            r#"kind = "test_workload"
               id = "batch"
               effects = ["order:cpu_cores", "signal:performance"]
               params = { cores = 2 }"#,
        );
    });
    let (mut runtime, _twin) = start_on_twin(&config, &scenario, &registry);
    let workload = gamesa_proto::AgentId(config.agents.len() as u32);
    let reports = run_ticks(&mut runtime, 30).await;
    let bought: u64 = reports
        .iter()
        .flat_map(|report| &report.fills)
        .filter(|(fill, verdict)| {
            fill.buyer == workload
                && fill.resource == Resource::CpuCores
                && matches!(verdict, gamesa_guardian::Verdict::Allow { .. })
        })
        .map(|(fill, _)| fill.quantity.0)
        .sum();
    assert!(bought >= 2, "the workload bought {bought} cores");
    assert!(
        reports
            .last()
            .unwrap()
            .signals
            .iter()
            .any(|signal| signal.kind.as_str() == "workload_busy" && signal.source == workload)
    );
}

#[actix::test]
async fn an_unknown_params_key_of_a_plugin_is_an_error_naming_it() {
    let registry = registry_with_test_kinds();
    let scenario = scenario("gpu_bottleneck.toml");
    let config = sim_config(&scenario, &registry, |table| {
        with_agent(
            table,
            r#"kind = "test_workload"
               id = "batch"
               params = { cores = 2, coers = 3 }"#,
        );
    });
    let twin = gamesa_hw::twin::SharedTwin::new(gamesa_hw::twin::Twin::new(
        gamesa_hw::twin::Scenario::load(&scenario).unwrap(),
    ));
    let error = gamesa_runtime::Runtime::start(
        &config,
        &registry,
        Box::new(twin.sensors()),
        Box::new(twin.actuator()),
    )
    .unwrap_err();
    assert!(error.to_string().contains("coers"), "{error}");
}

#[actix::test]
async fn a_panicking_agent_is_restarted_three_times_then_isolated() {
    let registry = registry_with_test_kinds();
    let scenario = scenario("gpu_bottleneck.toml");
    let config = sim_config(&scenario, &registry, |table| {
        with_agent(
            table,
            r#"kind = "panicker"
               id = "broken"
               effects = ["order:power_budget_mw"]"#,
        );
    });
    let (mut runtime, _twin) = start_on_twin(&config, &scenario, &registry);
    let broken = gamesa_proto::AgentId(config.agents.len() as u32);
    let reports = run_ticks(&mut runtime, 60).await;

    assert_eq!(
        decisions_on(&reports, broken),
        restarted_three_times_then_isolated()
    );
    assert!(runtime.conductor().isolated().contains(&broken));
    let fills_after = fills_after_isolation(&reports);
    assert!(fills_after > 0, "nobody traded after the isolation");
}
