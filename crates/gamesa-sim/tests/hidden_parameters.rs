//! The market sees only what a deployment would give it: every parameter of the twin
//! that a real machine does not report (TDP, idle power, thermal resistance and
//! capacity, the work law's exponent, the utilization bias, the sensors' noise, the
//! ambient temperature) can change in the scenario file without changing anything the
//! runtime is configured with, and agents built from either config decide the same
//! intents from the same telemetry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;

use gamesa_agent::{AgentSpec, MarketView, Observation};
use gamesa_hw::{
    Sensors,
    twin::{Scenario, SharedTwin},
};
use gamesa_proto::{AgentId, Credits, Tick};
use gamesa_sim::{Policy, fit, run};
use support::{registry, repo_root};

/// A desktop whose visible facts (limit ranges, t_max, cap, weights, phases' timing)
/// stay put while `hidden` sets everything a real machine would not report.
fn desktop(hidden: &Hidden, gpu_weight: f64) -> Scenario {
    let Hidden {
        tdp_w,
        idle_w,
        r_c_per_w,
        c_j_per_c,
        perf_exponent,
        util_bias,
        temp_noise_c,
        ambient_c,
    } = hidden;
    Scenario::from_toml_str(&format!(
        r#"
name = "desktop"
seed = 11
duration_s = 20
step_ms = 100
ambient_c = {ambient_c}

[node]
cap_w = 300

[components.cpu]
kind = "cpu"
tdp_w = {cpu_tdp}
idle_w = {idle_w}
min_w = 30
max_w = 150
r_c_per_w = {r_c_per_w}
c_j_per_c = {c_j_per_c}
t_max_c = 95
perf_exponent = {perf_exponent}
util_bias = {util_bias}
temp_noise_c = {temp_noise_c}

[components.gpu0]
kind = "gpu"
tdp_w = {tdp_w}
idle_w = {idle_w}
min_w = 100
max_w = 350
r_c_per_w = {r_c_per_w}
c_j_per_c = {c_j_per_c}
t_max_c = 87
weight = {gpu_weight}
perf_exponent = {perf_exponent}

[[phases]]
at_s = 0
cpu = 0.6
gpu0 = 0.9

[[phases]]
at_s = 10
cpu = 0.9
gpu0 = 0.3
"#,
        cpu_tdp = tdp_w / 2.0,
    ))
    .unwrap()
}

struct Hidden {
    tdp_w: f64,
    idle_w: f64,
    r_c_per_w: f64,
    c_j_per_c: f64,
    perf_exponent: f64,
    util_bias: f64,
    temp_noise_c: f64,
    ambient_c: f64,
}

const ONE: Hidden = Hidden {
    tdp_w: 250.0,
    idle_w: 15.0,
    r_c_per_w: 0.25,
    c_j_per_c: 120.0,
    perf_exponent: 1.0 / 3.0,
    util_bias: 0.0,
    temp_noise_c: 0.0,
    ambient_c: 25.0,
};

const OTHER: Hidden = Hidden {
    tdp_w: 300.0,
    idle_w: 25.0,
    r_c_per_w: 0.32,
    c_j_per_c: 90.0,
    perf_exponent: 0.08,
    util_bias: 0.2,
    temp_noise_c: 0.7,
    ambient_c: 31.0,
};

#[test]
fn hidden_parameters_never_reach_the_runtime_config() {
    let registry = registry();
    let template = run::load_template(&repo_root().join("config/sim.toml"), [], &registry).unwrap();
    let path = Path::new("desktop.toml");
    for policy in [Policy::Market, Policy::Proportional, Policy::Balancer] {
        let one = fit::fit(&template, &desktop(&ONE, 2.0), path, policy, 1).unwrap();
        let other = fit::fit(&template, &desktop(&OTHER, 2.0), path, policy, 1).unwrap();
        assert_eq!(one, other, "{policy}");
    }
    // A visible fact does reach it: how much the GPU's work counts is its agent's
    // weight.
    let two = fit::fit(&template, &desktop(&ONE, 2.0), path, Policy::Market, 1).unwrap();
    let three = fit::fit(&template, &desktop(&ONE, 3.0), path, Policy::Market, 1).unwrap();
    assert_ne!(two.agents, three.agents);
}

#[test]
fn agents_from_either_config_decide_the_same_from_the_same_telemetry() {
    let registry = registry();
    let template = run::load_template(&repo_root().join("config/sim.toml"), [], &registry).unwrap();
    let path = Path::new("desktop.toml");
    let build = |hidden: &Hidden| {
        let config = fit::fit(&template, &desktop(hidden, 2.0), path, Policy::Market, 1).unwrap();
        config
            .agents
            .iter()
            .enumerate()
            .map(|(index, agent)| {
                registry
                    .create(&AgentSpec {
                        id: AgentId(index as u32 + 1),
                        name: agent.id.clone(),
                        kind: agent.kind.clone(),
                        weight: agent.weight,
                        params: agent.params.clone(),
                        module: None,
                    })
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };
    let mut one = build(&ONE);
    let mut other = build(&OTHER);
    assert_eq!(one.len(), other.len());
    // The telemetry of one machine, fed to both sets of agents.
    let twin = SharedTwin::new(gamesa_hw::twin::Twin::new(desktop(&ONE, 2.0)));
    let mut sensors = twin.sensors();
    let market = MarketView::default();
    let mut decided = 0;
    for tick in 0..200 {
        let frame = sensors.sample(Tick(tick)).frame;
        for (index, (a, b)) in one.iter_mut().zip(other.iter_mut()).enumerate() {
            let observation = Observation {
                tick: Tick(tick),
                agent: AgentId(index as u32 + 1),
                epoch_ticks: 10,
                frame: &frame,
                signals: &[],
                fills: &[],
                leases: &[],
                open_orders: &[],
                balance: Credits(1_000_000_000_000),
                market: &market,
            };
            let intents = a.observe(&observation).unwrap();
            assert_eq!(intents, b.observe(&observation).unwrap(), "tick {tick}");
            decided += intents.len();
        }
    }
    assert!(
        decided > 200,
        "the agents decided too little to compare: {decided}"
    );
}
