//! `gamesa sim` is deterministic: the same scenario and seed give byte-identical JSON,
//! through the library and through the binary; and every policy of a comparison runs
//! through the same guardian without breaking the cap, except `none`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

use gamesa_sim::{Comparison, Policy, RunSpec, run};
use support::*;

fn run_json(policy: Policy, seed: Option<u64>) -> Vec<u8> {
    let registry = builtin();
    let path = scenario("gpu_bottleneck.toml");
    let template = run::load_template(
        &repo_root().join("config/sim.toml"),
        std::iter::empty(),
        &registry,
    )
    .unwrap();
    let scenario = run::load_scenario(&path).unwrap();
    let outcome = run::run(&RunSpec {
        scenario: &scenario,
        scenario_path: &path,
        template: &template,
        registry: &registry,
        policy,
        seed,
        trace: false,
    })
    .unwrap();
    serde_json::to_vec(&outcome.metrics).unwrap()
}

#[test]
fn the_same_scenario_and_seed_give_the_same_bytes() {
    let first = run_json(Policy::Market, Some(7));
    let second = run_json(Policy::Market, Some(7));
    assert_eq!(
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second)
    );
    // The JSON carries the metrics, and no wall time.
    let text = String::from_utf8(first).unwrap();
    assert!(
        text.contains("\"work\":") && text.contains("\"seed\":7"),
        "{text}"
    );
    assert!(
        !text.contains("_us"),
        "wall time leaked into the JSON: {text}"
    );
}

#[test]
fn the_binary_prints_identical_json_twice() {
    let json = || {
        let output = Command::new(env!("CARGO_BIN_EXE_gamesa"))
            .current_dir(repo_root())
            .args([
                "sim",
                "--scenario",
                "scenarios/gpu_bottleneck.toml",
                "--compare",
                "--json",
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    };
    let first = json();
    assert_eq!(first, json());
    let report: serde_json::Value = serde_json::from_slice(&first).unwrap();
    let rows = report["comparisons"][0]["rows"].as_array().unwrap();
    let policies: Vec<&str> = rows
        .iter()
        .map(|row| row["policy"].as_str().unwrap())
        .collect();
    assert_eq!(
        policies,
        Policy::ALL.map(Policy::name).to_vec(),
        "every policy, in table order"
    );
    for row in rows {
        let policy = row["policy"].as_str().unwrap();
        if policy != "none" {
            assert_eq!(row["over_cap_s"], 0.0, "{policy} went over the cap");
        }
    }
    assert!(report["targets"]["scenarios"][0]["market_share"].is_number());
}

#[test]
fn a_comparison_has_a_row_per_policy_and_the_markets_gain() {
    let registry = builtin();
    let path = scenario("gpu_bottleneck.toml");
    let template = run::load_template(
        &repo_root().join("config/sim.toml"),
        std::iter::empty(),
        &registry,
    )
    .unwrap();
    let scenario = run::load_scenario(&path).unwrap();
    let runs: Vec<_> = [Policy::Market, Policy::StaticEqual]
        .into_iter()
        .map(|policy| {
            run::run(&RunSpec {
                scenario: &scenario,
                scenario_path: &path,
                template: &template,
                registry: &registry,
                policy,
                seed: None,
                trace: false,
            })
            .unwrap()
            .metrics
        })
        .collect();
    let comparison = Comparison {
        scenario: "gpu_bottleneck".into(),
        runs,
    };
    // The saturated GPU is worth more than an equal split gives it.
    let gain = comparison.market_gain_over(Policy::StaticEqual).unwrap();
    assert!(gain > 0.05, "market gain over static-equal: {gain}");
    let table = comparison.table(None);
    assert!(table.starts_with("policy"), "{table}");
    assert!(table.contains("static-equal"), "{table}");
}
