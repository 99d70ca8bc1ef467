//! The optimum is an upper bound: on every sample scenario it does at least the work of
//! every policy that keeps to the cap (every one but `none`, which has no software limit),
//! the twin measures the work its solver promised, and it never throttles nor goes over
//! the cap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;

use gamesa_sim::{Policy, RunSpec, run};
use support::{registry, repo_root};

fn scenario_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("scenarios"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 9, "{files:?}");
    files
}

#[test]
fn the_optimum_is_measured_as_planned_without_throttling_or_going_over_the_cap() {
    let registry = registry();
    let template = run::load_template(
        &repo_root().join("config/sim.toml"),
        std::iter::empty(),
        &registry,
    )
    .unwrap();
    for path in scenario_files() {
        let scenario = run::load_scenario(&path).unwrap();
        let outcome = run::run(&RunSpec {
            scenario: &scenario,
            scenario_path: &path,
            template: &template,
            registry: &registry,
            policy: Policy::Optimum,
            seed: None,
            trace: false,
        })
        .unwrap();
        let metrics = &outcome.metrics;
        let name = scenario.name();
        let solver = metrics.optimum.as_ref().unwrap();
        assert!(
            (metrics.work - solver.objective).abs() <= 1e-5 * solver.objective,
            "{name}: the twin measured {} against the solver's {}",
            metrics.work,
            solver.objective
        );
        assert_eq!(metrics.throttled_s, 0.0, "{name}");
        assert_eq!(metrics.over_cap_s, 0.0, "{name}");
        assert_eq!(solver.status, "Solved", "{name}");
        assert!(solver.gap_rel < 1e-5, "{name}: {solver:?}");
    }
}

#[test]
#[ignore = "runs all 9 policies on all 9 sample scenarios through the runtime: minutes in a debug build; run with --release --ignored"]
fn the_optimum_does_at_least_the_work_of_every_policy_on_every_sample_scenario() {
    let registry = registry();
    let template = run::load_template(
        &repo_root().join("config/sim.toml"),
        std::iter::empty(),
        &registry,
    )
    .unwrap();
    for path in scenario_files() {
        let scenario = run::load_scenario(&path).unwrap();
        let work = |policy: Policy| {
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
            .work
        };
        let optimum = work(Policy::Optimum);
        for policy in Policy::ALL {
            if matches!(policy, Policy::Optimum | Policy::None) {
                continue;
            }
            let other = work(policy);
            assert!(
                optimum >= other * (1.0 - 1e-6),
                "{}: {policy} did {other}, more than the optimum's {optimum}",
                scenario.name()
            );
        }
    }
}
