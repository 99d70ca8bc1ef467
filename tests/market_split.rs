//! End to end on the twin: when the GPU is the bottleneck and the CPU idles, the market
//! moves the node's power budget to the GPU without ever exceeding the cap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::*;

#[actix::test]
async fn budget_moves_to_the_bottleneck_and_never_exceeds_the_cap() {
    let registry = builtin();
    let scenario = scenario("gpu_bottleneck.toml");
    let config = sim_config(&scenario, &registry, |_| {});
    let (mut runtime, twin) = start_on_twin(&config, &scenario, &registry);
    let initial = twin_limits_w(&twin);
    assert_eq!(initial, vec![("cpu".into(), 125.0), ("gpu0".into(), 300.0)]);

    let mut history = Vec::new();
    for _ in 0..200 {
        let report = runtime.tick().await.unwrap();
        let cap_w = report.frame.node.cap_mw.unwrap() as f64 / 1000.0;
        let limits = twin_limits_w(&twin);
        let total: f64 = limits.iter().map(|(_, limit)| limit).sum();
        assert!(
            total <= cap_w,
            "tick {}: limits {limits:?} sum to {total} W over the {cap_w} W cap",
            report.tick
        );
        history.push(limits);
    }

    let mean = |component: usize, from: usize| {
        let window = &history[from..];
        window.iter().map(|limits| limits[component].1).sum::<f64>() / window.len() as f64
    };
    let (cpu, gpu) = (mean(0, 100), mean(1, 100));
    assert!(cpu < 40.0, "the idle CPU kept {cpu:.1} W on average");
    assert!(
        gpu > 330.0,
        "the saturated GPU got only {gpu:.1} W on average"
    );
    assert!(gpu > initial[1].1 && cpu < initial[0].1);

    let report = twin.report();
    assert_eq!(report.over_cap_s, 0.0, "{report:?}");
}
