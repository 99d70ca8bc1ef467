//! Benchmarks of the optimum: planning a whole sample scenario (building the program and
//! solving it with Clarabel), for a short two-component run and a long three-component
//! one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gamesa_hw::twin::Scenario;
use gamesa_sim::optimum;

fn sample(name: &str) -> Scenario {
    let path = format!("{}/../../scenarios/{name}", env!("CARGO_MANIFEST_DIR"));
    Scenario::load(path).unwrap()
}

fn plan(c: &mut Criterion) {
    let mut group = c.benchmark_group("optimum/plan");
    group.sample_size(10);
    for (label, file) in [
        ("cap_drop (2 components, 1200 steps)", "cap_drop.toml"),
        ("two_gpus (3 components, 3000 steps)", "two_gpus.toml"),
    ] {
        let scenario = sample(file);
        group.bench_function(label, |b| {
            b.iter(|| black_box(optimum::plan(black_box(&scenario)).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, plan);
criterion_main!(benches);
