//! `gamesa sim` simulates the scenario's own machine: the guardian's device bounds, safe
//! limits and step limits come from the scenario's components, for a laptop as for an
//! 8-GPU server, and a config that contradicts the scenario is an error naming both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use gamesa_agent::AgentRegistry;
use gamesa_hw::twin::Scenario;
use gamesa_sim::{Policy, RunSpec, SimError, fit, run};
use support::{registry, repo_root};

/// A laptop: CPU 15–45 W and GPU 20–115 W under a 100 W cap. The GPU works flat out
/// for 15 s while the CPU idles along, then the CPU takes over.
const LAPTOP: &str = r#"
name = "laptop"
seed = 3
duration_s = 30
step_ms = 100
ambient_c = 25

[node]
cap_w = 100

[components.cpu]
kind = "cpu"
tdp_w = 28
idle_w = 3
min_w = 15
max_w = 45
r_c_per_w = 1.2
c_j_per_c = 20
t_max_c = 100

[components.gpu0]
kind = "gpu"
tdp_w = 80
idle_w = 8
min_w = 20
max_w = 115
r_c_per_w = 0.5
c_j_per_c = 40
t_max_c = 87

[[phases]]
at_s = 0
cpu = 0.3
gpu0 = 1.0

[[phases]]
at_s = 15
cpu = 1.0
gpu0 = 0.1
"#;

/// A server: one CPU (100–350 W) and eight GPUs (200–700 W) under a 5 kW cap.
fn server() -> String {
    let mut text = String::from(
        "name = \"server\"\nseed = 4\nduration_s = 20\nstep_ms = 100\nambient_c = 25\n\n\
         [node]\ncap_w = 5000\n\n\
         [components.cpu]\nkind = \"cpu\"\ntdp_w = 300\nidle_w = 40\nmin_w = 100\nmax_w = 350\n\
         r_c_per_w = 0.15\nc_j_per_c = 150\nt_max_c = 95\n",
    );
    for gpu in 0..8 {
        text.push_str(&format!(
            "\n[components.gpu{gpu}]\nkind = \"gpu\"\ntdp_w = 700\nidle_w = 70\nmin_w = 200\n\
             max_w = 700\nr_c_per_w = 0.08\nc_j_per_c = 400\nt_max_c = 87\n"
        ));
    }
    text.push_str("\n[[phases]]\nat_s = 0\ncpu = 0.3\n");
    for gpu in 0..8 {
        text.push_str(&format!("gpu{gpu} = 0.9\n"));
    }
    text
}

fn template(registry: &AgentRegistry) -> gamesa_config::Config {
    run::load_template(&repo_root().join("config/sim.toml"), [], registry).unwrap()
}

/// The limits each component had over the run, as (lowest, highest), in scenario order.
fn limit_ranges(scenario: &Scenario, policy: Policy) -> Vec<(f64, f64)> {
    let registry = registry();
    let template = template(&registry);
    let outcome = run::run(&RunSpec {
        scenario,
        scenario_path: Path::new("machine.toml"),
        template: &template,
        registry: &registry,
        policy,
        seed: None,
        trace: true,
    })
    .unwrap_or_else(|error| panic!("{policy}: {error}"));
    assert_eq!(
        outcome.metrics.over_cap_s, 0.0,
        "{policy}: {:?}",
        outcome.metrics
    );
    let trace = outcome.trace.unwrap().twin;
    (0..scenario.components().len())
        .map(|index| {
            trace
                .steps
                .iter()
                .map(|step| step.components[index].limit_w)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), limit| {
                    (low.min(limit), high.max(limit))
                })
        })
        .collect()
}

fn within_bounds(scenario: &Scenario, ranges: &[(f64, f64)]) -> bool {
    scenario
        .components()
        .iter()
        .zip(ranges)
        .all(|(spec, (low, high))| *low >= spec.min_w - 1e-9 && *high <= spec.max_w + 1e-9)
}

#[test]
fn the_guardian_gets_the_scenarios_bounds_safe_limits_and_scaled_steps() {
    let registry = registry();
    let scenario = Scenario::from_toml_str(LAPTOP).unwrap();
    let config = fit::fit(
        &template(&registry),
        &scenario,
        Path::new("laptop.toml"),
        Policy::Proportional,
        1,
    )
    .unwrap();
    let gpu = &config.guardian.limits["power.limit:gpu0"];
    assert_eq!((gpu.min, gpu.max), (Some(20_000), Some(115_000)));
    // A tenth of the 95 W range per 100 ms tick, under the config's 25 W ceiling.
    assert_eq!(gpu.max_step, Some(9_500));
    let cpu = &config.guardian.limits["power.limit:cpu"];
    assert_eq!(
        (cpu.min, cpu.max, cpu.max_step),
        (Some(15_000), Some(45_000), Some(3_000))
    );
    assert_eq!(config.guardian.safe_limits_mw["gpu0"], 20_000);
    assert_eq!(config.guardian.safe_limits_mw["cpu"], 15_000);
    // The baseline runs next to the config's safety agents, as the market does.
    let kinds: Vec<&str> = config
        .agents
        .iter()
        .map(|agent| agent.kind.as_str())
        .collect();
    assert_eq!(kinds, ["thermal", "power", "policy.proportional"]);

    let server = Scenario::from_toml_str(&server()).unwrap();
    let config = fit::fit(
        &template(&registry),
        &server,
        Path::new("server.toml"),
        Policy::Market,
        1,
    )
    .unwrap();
    assert_eq!(config.guardian.components.len(), 9);
    for gpu in 0..8 {
        let limit = &config.guardian.limits[&format!("power.limit:gpu{gpu}")];
        assert_eq!((limit.min, limit.max), (Some(200_000), Some(700_000)));
        // A tenth of 500 W would be 50 W: the config's 25 W ceiling holds.
        assert_eq!(limit.max_step, Some(25_000));
        assert_eq!(
            config.guardian.safe_limits_mw[&format!("gpu{gpu}")],
            200_000
        );
    }
}

#[test]
fn a_laptop_runs_within_its_own_ranges() {
    let scenario = Scenario::from_toml_str(LAPTOP).unwrap();
    for policy in [Policy::Proportional, Policy::Market] {
        let ranges = limit_ranges(&scenario, policy);
        assert!(within_bounds(&scenario, &ranges), "{policy}: {ranges:?}");
        let (cpu, gpu) = (ranges[0], ranges[1]);
        // The GPU rises from its 20 W minimum but, under a 100 W cap with the CPU at
        // 15 W or more, never reaches the 100 W a server GPU's minimum would force.
        assert!(gpu.1 > 40.0 && gpu.1 <= 85.0, "{policy}: {ranges:?}");
        assert!(cpu.1 > 30.0, "{policy}: {ranges:?}");
    }
    // Proportional gives the busy CPU its whole 45 W range in the second phase.
    let ranges = limit_ranges(&scenario, Policy::Proportional);
    assert_eq!(ranges[0].1, 45.0);
}

#[test]
fn an_eight_gpu_server_runs_within_its_own_ranges() {
    let scenario = Scenario::from_toml_str(&server()).unwrap();
    // Under proportional every GPU goes past 350 W, the maximum of the config's old GPU
    // (eight at 0.9 utilization and a CPU at 0.3 share 3.3 kW above the minimums).
    let ranges = limit_ranges(&scenario, Policy::Proportional);
    assert!(within_bounds(&scenario, &ranges), "{ranges:?}");
    assert!(
        ranges[1..].iter().all(|(_, high)| *high > 350.0),
        "{ranges:?}"
    );
    // The market splits it its own way, within the same bounds, and some GPU gets its
    // whole 700 W.
    let ranges = limit_ranges(&scenario, Policy::Market);
    assert!(within_bounds(&scenario, &ranges), "{ranges:?}");
    assert!(
        ranges[1..].iter().any(|(_, high)| *high == 700.0),
        "{ranges:?}"
    );
}

#[test]
fn a_config_that_contradicts_the_scenario_is_an_error_naming_both() {
    let registry = registry();
    let scenario = Scenario::from_toml_str(LAPTOP).unwrap();
    let mut config = template(&registry);
    config
        .guardian
        .limits
        .entry("power.limit:gpu0".into())
        .or_default()
        .min = Some(100_000);
    let error = fit::fit(
        &config,
        &scenario,
        Path::new("laptop.toml"),
        Policy::Market,
        1,
    )
    .unwrap_err();
    assert_eq!(
        error,
        SimError::ContradictsScenario {
            component: "gpu0".into(),
            setting: "guardian.limits.\"power.limit:gpu0\".min".into(),
            config_mw: 100_000,
            scenario: "min_w = 20 W".into(),
            scenario_path: "laptop.toml".into(),
        }
    );
    let message = error.to_string();
    assert!(
        message.contains("100000 mW") && message.contains("min_w = 20 W"),
        "{message}"
    );

    let mut config = template(&registry);
    config.guardian.safe_limits_mw.insert("cpu".into(), 10_000);
    let error = fit::fit(
        &config,
        &scenario,
        Path::new("laptop.toml"),
        Policy::Market,
        1,
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("safe_limits_mw.cpu` = 10000 mW")
            && error.to_string().contains("min_w = 15 W and max_w = 45 W"),
        "{error}"
    );
}
