//! Benchmarks of the twin: one core step with three components, and one sample through
//! the `Sensors` trait (a step plus building the telemetry frame).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gamesa_hw::{
    Sensors,
    twin::{Scenario, SharedTwin, Twin},
};
use gamesa_proto::Tick;

/// `two_gpus.toml` stretched to the longest duration at 1 ms steps (10⁹ steps), so the
/// twin never reaches its end, and frozen steps are never what is measured.
fn long_three_component_scenario() -> Scenario {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/two_gpus.toml");
    let input = std::fs::read_to_string(path)
        .unwrap()
        .replace("duration_s = 300", "duration_s = 1000000")
        .replace("step_ms = 100", "step_ms = 1");
    let scenario = Scenario::from_toml_str(&input).unwrap();
    assert_eq!(scenario.components().len(), 3);
    scenario
}

fn twin_step(c: &mut Criterion) {
    let mut twin = Twin::new(long_three_component_scenario());
    c.bench_function("twin/step (3 components)", |b| {
        b.iter(|| black_box(twin.step()));
    });
    assert!(!twin.is_finished());

    let shared = SharedTwin::new(Twin::new(long_three_component_scenario()));
    let mut sensors = shared.sensors();
    let mut tick = 0;
    c.bench_function("twin/sample via Sensors (3 components)", |b| {
        b.iter(|| {
            tick += 1;
            black_box(sensors.sample(Tick(tick)))
        });
    });
}

criterion_group!(benches, twin_step);
criterion_main!(benches);
