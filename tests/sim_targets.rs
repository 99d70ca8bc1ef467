//! The evaluation's targets (`docs/evaluation.md`) on a committed hold-out subset,
//! `scenarios/holdout/` (`gamesa sim generate --seed 2027 --count 8`): the market, the
//! fair baselines and the optimum, so that a regression of the market fails CI. A
//! target the market misses is asserted in full by an `#[ignore]`d test whose reason
//! gives the figures (none today).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    path::PathBuf,
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
};

use gamesa_sim::{
    Comparison, Policy, RunSpec, SuiteTargets,
    compare::{MEAN_MARKET_SHARE_TARGET, ScenarioTargets},
    policy::FAIR_BASELINES,
    run,
};
use support::*;

/// The policies the targets need: the market, the optimum and the fair baselines.
fn policies() -> Vec<Policy> {
    let mut policies = vec![Policy::Optimum, Policy::Market];
    policies.extend(FAIR_BASELINES);
    policies
}

/// The subset's targets, computed once for every test of this file. The runs are
/// independent and deterministic, so they run on every core.
fn targets() -> &'static SuiteTargets {
    static TARGETS: OnceLock<SuiteTargets> = OnceLock::new();
    TARGETS.get_or_init(|| {
        let registry = builtin();
        let template = run::load_template(
            &repo_root().join("config/sim.toml"),
            std::iter::empty(),
            &registry,
        )
        .unwrap();
        let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("scenarios/holdout"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        files.sort();
        assert_eq!(files.len(), 8, "{files:?}");
        let scenarios: Vec<_> = files
            .iter()
            .map(|path| run::load_scenario(path).unwrap())
            .collect();
        let policies = policies();
        let jobs: Vec<(usize, Policy)> = (0..scenarios.len())
            .flat_map(|index| policies.iter().map(move |&policy| (index, policy)))
            .collect();
        let results = Mutex::new(vec![None; jobs.len()]);
        let next = AtomicUsize::new(0);
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    while let Some(&(index, policy)) =
                        jobs.get(next.fetch_add(1, Ordering::Relaxed))
                    {
                        let outcome = run::run(&RunSpec {
                            scenario: &scenarios[index],
                            scenario_path: &files[index],
                            template: &template,
                            registry: &registry,
                            policy,
                            seed: None,
                            trace: false,
                        })
                        .unwrap_or_else(|error| {
                            panic!("{} under {policy}: {error}", files[index].display())
                        });
                        let job = index * policies.len()
                            + policies.iter().position(|&p| p == policy).unwrap();
                        results.lock().unwrap()[job] = Some(outcome.metrics);
                    }
                });
            }
        });
        let mut runs = results
            .into_inner()
            .unwrap()
            .into_iter()
            .map(Option::unwrap);
        let comparisons: Vec<Comparison> = scenarios
            .iter()
            .map(|scenario| Comparison {
                scenario: scenario.name().to_owned(),
                runs: runs.by_ref().take(policies.len()).collect(),
            })
            .collect();
        let targets = SuiteTargets::check(&comparisons).unwrap();
        eprintln!("{}", targets.table());
        targets
    })
}

/// Every scenario meets `met`; the message names each miss by `figure`.
fn assert_each(
    met: impl Fn(&ScenarioTargets) -> bool,
    figure: impl Fn(&ScenarioTargets) -> String,
) {
    let targets = targets();
    let missed: Vec<String> = targets
        .scenarios
        .iter()
        .filter(|scenario| !met(scenario))
        .map(|scenario| format!("{}: {}", scenario.scenario, figure(scenario)))
        .collect();
    assert!(missed.is_empty(), "{missed:?}\n{}", targets.table());
}

#[test]
fn the_market_reaches_95_percent_of_the_optimum_in_every_scenario() {
    assert_each(
        |s| s.work_met,
        |s| format!("{:.1} % of the optimum", s.market_share * 100.0),
    );
}

#[test]
fn the_market_reaches_98_percent_of_the_optimum_on_average() {
    let targets = targets();
    assert!(
        targets.mean_market_share >= MEAN_MARKET_SHARE_TARGET,
        "{:.1} % of the optimum on average\n{}",
        targets.mean_market_share * 100.0,
        targets.table()
    );
}

#[test]
fn the_market_is_within_1_percent_of_the_best_fair_baseline_in_every_scenario() {
    assert_each(
        |s| s.fair_met,
        |s| {
            format!(
                "{:+.1} % against {}",
                s.market_vs_best_fair * 100.0,
                s.best_fair_baseline
            )
        },
    );
}

#[test]
fn the_market_closes_two_thirds_of_the_best_fair_baselines_gap_where_there_is_one() {
    assert_each(
        |s| s.gap_met != Some(false),
        |s| {
            format!(
                "{:.0} % of {}'s gap ({:.1} % of the optimum) closed",
                s.gap_closed.unwrap_or(1.0) * 100.0,
                s.best_fair_baseline,
                s.best_fair_share * 100.0
            )
        },
    );
}

#[test]
fn the_market_never_throttles_where_the_optimum_does_not() {
    assert_each(
        |s| s.throttle_met,
        |s| {
            format!(
                "{:.1} s throttled, the optimum {:.1} s",
                s.market_throttled_s, s.optimum_throttled_s
            )
        },
    );
}

#[test]
fn the_market_is_over_the_cap_only_right_after_a_cap_drop() {
    assert_each(
        |s| s.cap_met,
        |s| {
            format!(
                "{:.1} s over the cap outside drops",
                s.market_over_cap_outside_drops_s
            )
        },
    );
}
