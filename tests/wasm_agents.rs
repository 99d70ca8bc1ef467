//! WASM agents in the runtime, on the twin: the example module (the `FixedCores`
//! strategy of `examples/fixed-cores`, built for `wasm32-wasip2`) sells cores to a
//! workload like a built-in agent would, and runs the same ticks twice; each kind of
//! hostile module is restarted three times and isolated while the others trade on; and
//! `check-config` refuses each kind of bad `kind = "wasm"` entry, naming the key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../crates/gamesa-wasm/tests/build_guest/mod.rs"]
mod build_guest;
mod support;

use std::{path::Path, process::Command};

use gamesa_agent::{Agent, AgentError, AgentRegistry, Intent, Observation, OrderIntent};
use gamesa_proto::{AgentId, Price, Quantity, Resource, Side, TimeInForce};
use support::*;

/// Bids every tick for more cores than the CPU agent has, above every reserve.
struct Workload;

impl Agent for Workload {
    fn observe(&mut self, observation: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        Ok(vec![Intent::Place(OrderIntent {
            resource: Resource::CpuCores,
            side: Side::Bid,
            price: Price(1_000),
            quantity: Quantity(10),
            time_in_force: TimeInForce::Limit {
                expires_at: Some(observation.tick),
            },
        })])
    }
}

fn registry() -> AgentRegistry {
    let mut registry = builtin();
    registry
        .register("workload", |_| Ok(Box::new(Workload) as Box<dyn Agent>))
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

fn with_example_and_workload(table: &mut toml::Table) {
    with_agent(
        table,
        &format!(
            r#"kind = "wasm"
               id = "cores0"
               module = "{}"
               effects = ["order:cpu_cores"]
               params = {{ cores = 2, price = 500 }}"#,
            build_guest::module(build_guest::EXAMPLE).display()
        ),
    );
    with_agent(
        table,
        r#"kind = "workload"
           id = "batch"
           effects = ["order:cpu_cores"]"#,
    );
}

#[actix::test]
async fn the_example_module_sells_its_cores_and_runs_the_same_ticks_twice() {
    let registry = registry();
    let scenario = scenario("gpu_bottleneck.toml");
    let config = sim_config(&scenario, &registry, with_example_and_workload);
    let wasm = AgentId(config.agents.len() as u32 - 1);
    let run = || async {
        let (mut runtime, _twin) = start_on_twin(&config, &scenario, &registry);
        run_ticks(&mut runtime, 40).await
    };
    let reports = run().await;
    let sold: u64 = reports
        .iter()
        .flat_map(|report| &report.fills)
        .filter(|(fill, verdict)| {
            fill.seller == wasm
                && fill.resource == Resource::CpuCores
                && matches!(verdict, gamesa_guardian::Verdict::Allow { .. })
        })
        .map(|(fill, _)| fill.quantity.0)
        .sum();
    assert!(sold >= 2, "the WASM agent sold {sold} cores");
    assert!(reports.iter().all(|report| report.failures.is_empty()));

    let again = run().await;
    let untimed = |reports: Vec<_>| reports.into_iter().map(untimed).collect::<Vec<_>>();
    assert_eq!(untimed(again), untimed(reports));
}

#[actix::test]
async fn each_hostile_module_is_isolated_and_the_others_trade_on() {
    let registry = registry();
    let scenario = scenario("gpu_bottleneck.toml");
    let module = build_guest::module(build_guest::HOSTILE);
    for behaviour in ["spin", "hog", "trap", "flood", "garbage", "invalid", "err"] {
        let config = sim_config(&scenario, &registry, |table| {
            with_example_and_workload(table);
            with_agent(
                table,
                &format!(
                    r#"kind = "wasm"
                       id = "hostile"
                       module = "{}"
                       effects = ["order:power_budget_mw"]
                       params = {{ behaviour = "{behaviour}" }}"#,
                    module.display()
                ),
            );
        });
        let hostile = AgentId(config.agents.len() as u32);
        let (mut runtime, _twin) = start_on_twin(&config, &scenario, &registry);
        let reports = run_ticks(&mut runtime, 40).await;
        assert_eq!(
            decisions_on(&reports, hostile),
            restarted_three_times_then_isolated(),
            "{behaviour}"
        );
        assert!(
            reports
                .iter()
                .flat_map(|report| &report.failures)
                .all(|failure| failure.agent == hostile),
            "{behaviour}: another agent failed"
        );
        let fills_after = fills_after_isolation(&reports);
        assert!(
            fills_after > 0,
            "{behaviour}: nobody traded after the isolation"
        );
    }
}

fn check_config(path: &Path) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .arg("check-config")
        .arg(path)
        .env("GAMESA_LOG", "error")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `config/sim.toml` plus `agent`, written next to a copy of the example module named
/// `agent.wasm`, and checked.
fn check_with_agent(agent: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        build_guest::module(build_guest::EXAMPLE),
        dir.path().join("agent.wasm"),
    )
    .unwrap();
    let mut text = std::fs::read_to_string(repo_root().join("config/sim.toml")).unwrap();
    text = text.replace(
        "\"../scenarios/",
        &format!("\"{}/scenarios/", repo_root().display()),
    );
    text.push_str("\n[[agents]]\n");
    text.push_str(agent);
    let path = dir.path().join("gamesa.toml");
    std::fs::write(&path, text).unwrap();
    check_config(&path)
}

#[test]
fn a_module_path_is_from_the_config_file_and_bad_entries_are_named() {
    let ok = "kind = \"wasm\"\nid = \"cores0\"\nmodule = \"agent.wasm\"\n";
    let (code, stderr) = check_with_agent(ok);
    assert_eq!(code, Some(0), "{stderr}");

    for (agent, key, says) in [
        (
            "kind = \"wasm\"\nid = \"w\"\n",
            "module",
            "required for kind = \"wasm\"",
        ),
        (
            "kind = \"memory\"\nid = \"m2\"\nmodule = \"agent.wasm\"\n",
            "module",
            "only for kind = \"wasm\"",
        ),
        (
            "kind = \"wasm\"\nid = \"w\"\nmodule = \"missing.wasm\"\n",
            "module",
            "cannot read",
        ),
        (
            "kind = \"wasm\"\nid = \"w\"\nmodule = \"agent.wasm\"\nmodule_xxh3 = \"0000000000000000\"\n",
            "module",
            "pins 0000000000000000",
        ),
        (
            "kind = \"wasm\"\nid = \"w\"\nmodule = \"agent.wasm\"\nfuel = 0\n",
            "fuel",
            "at least 1",
        ),
        (
            "kind = \"wasm\"\nid = \"w\"\nmodule = \"agent.wasm\"\nparams = { cores = \"two\" }\n",
            "params",
            "its init refused",
        ),
        (
            "kind = \"wasm\"\nid = \"w\"\nmodule = \"gamesa.toml\"\n",
            "",
            "not a WebAssembly component",
        ),
    ] {
        let (code, stderr) = check_with_agent(agent);
        assert_eq!(code, Some(78), "{agent}: {stderr}");
        assert!(stderr.contains(&format!("].{key}")), "{agent}: {stderr}");
        assert!(stderr.contains(says), "{agent}: {stderr}");
    }
}
