//! One full tick of the runtime — sample, observe the five built-in agents, admit,
//! rank, match, guard, actuate — on the simulated twin with its dry-run actuator,
//! driven as fast as it goes inside one actix `System` (virtual time, no sleeping).
//!
//! Two measurements:
//! - criterion (`iter_custom`) for the mean tick time and its confidence interval;
//! - a separate pass that times each of [`TIMED_TICKS`] ticks with `Instant` and prints
//!   p50 / p99 / p99.9 / max, since criterion reports no tail percentiles.
//!
//! The config is `config/sim.toml` (5 agents); the scenario is
//! `scenarios/gpu_bottleneck.toml` stretched from 60 s to 1,000,000 s (10⁷ steps of
//! 100 ms) so the twin never reaches its end during a run: once a scenario is finished
//! the twin stops advancing and every sample repeats the last step, which would measure
//! a frozen machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    hint::black_box,
    path::PathBuf,
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use gamesa_agent::AgentRegistry;
use gamesa_hw::twin::{Scenario, SharedTwin, Twin};
use gamesa_runtime::{Config, Runtime};

/// Ticks timed one by one in the percentile pass (in `cargo bench` mode).
const TIMED_TICKS: usize = 20_000;
/// Ticks run before the percentile pass starts timing, so the market is past its
/// opening transient and allocations have settled.
const WARM_UP_TICKS: usize = 1_000;

fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The five built-in agents, as `gamesa::builtin_registry()` registers them (the
/// runtime crate cannot depend on the root package).
fn registry() -> AgentRegistry {
    let mut registry = AgentRegistry::new();
    gamesa_agent_cpu::register(&mut registry).unwrap();
    gamesa_agent_gpu::register(&mut registry).unwrap();
    gamesa_agent_memory::register(&mut registry).unwrap();
    gamesa_agent_thermal::register(&mut registry).unwrap();
    gamesa_agent_power::register(&mut registry).unwrap();
    registry
}

fn sim_config(registry: &AgentRegistry) -> Config {
    let path = repo_root().join("config/sim.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = Config::from_toml_str(&text, &path, std::iter::empty(), registry).unwrap();
    assert_eq!(config.agents.len(), 5);
    config
}

/// `gpu_bottleneck.toml`, 60 s stretched to the longest duration the twin accepts.
fn long_gpu_bottleneck() -> Scenario {
    let path = repo_root().join("scenarios/gpu_bottleneck.toml");
    let input = std::fs::read_to_string(path)
        .unwrap()
        .replace("duration_s = 60", "duration_s = 1000000");
    let scenario = Scenario::from_toml_str(&input).unwrap();
    assert_eq!(scenario.steps(), 10_000_000);
    scenario
}

/// A running runtime on a fresh twin, with the actix system that hosts its actors.
/// The actors only make progress inside `system.block_on`.
struct Bench {
    system: actix::SystemRunner,
    runtime: Runtime,
    twin: SharedTwin,
}

impl Bench {
    fn start() -> Bench {
        let registry = registry();
        let config = sim_config(&registry);
        let twin = SharedTwin::new(Twin::new(long_gpu_bottleneck()));
        let system = actix::System::new();
        let runtime = system.block_on(async {
            Runtime::start(
                &config,
                &registry,
                Box::new(twin.sensors()),
                Box::new(twin.actuator()),
            )
            .unwrap()
        });
        Bench {
            system,
            runtime,
            twin,
        }
    }

    /// Runs `ticks` ticks back to back and returns how long they took in all.
    fn run(&mut self, ticks: u64) -> Duration {
        let runtime = &mut self.runtime;
        let started = Instant::now();
        self.system.block_on(async {
            for _ in 0..ticks {
                black_box(runtime.tick().await.unwrap());
            }
        });
        started.elapsed()
    }

    fn assert_twin_still_running(&self) {
        assert!(
            !self.twin.with(|twin| twin.is_finished()),
            "the twin reached the end of its scenario: samples were repeating"
        );
    }
}

fn full_tick(c: &mut Criterion) {
    let mut bench = Bench::start();
    bench.run(WARM_UP_TICKS as u64);
    c.bench_function(
        "runtime/tick (5 agents, twin gpu_bottleneck, dry-run)",
        |b| {
            b.iter_custom(|ticks| bench.run(ticks));
        },
    );
    bench.assert_twin_still_running();
}

/// The `p`-th quantile (0..=1) of sorted durations, nearest rank.
fn quantile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Times each tick on its own and prints the tail. Under `cargo test --benches` (no
/// `--bench` argument) it runs a short pass only, so the target stays a smoke test.
fn tick_percentiles(_: &mut Criterion) {
    let bench_mode = std::env::args().any(|arg| arg == "--bench");
    let timed = if bench_mode { TIMED_TICKS } else { 200 };
    let mut bench = Bench::start();
    bench.run(WARM_UP_TICKS as u64);

    let runtime = &mut bench.runtime;
    let (mut durations, totals) = bench.system.block_on(async {
        let mut durations = Vec::with_capacity(timed);
        let (mut fills, mut actuations, mut events) = (0usize, 0usize, 0usize);
        for _ in 0..timed {
            let started = Instant::now();
            let report = runtime.tick().await.unwrap();
            durations.push(started.elapsed());
            fills += report.fills.len();
            actuations += report.actuations.len();
            events += report.market_events.len();
            drop(black_box(report));
        }
        (durations, (fills, actuations, events))
    });
    bench.assert_twin_still_running();

    durations.sort_unstable();
    let mean = durations.iter().sum::<Duration>() / timed as u32;
    let (fills, actuations, events) = totals;
    println!(
        "runtime/tick percentiles over {timed} ticks (after {WARM_UP_TICKS} warm-up ticks): \
         p50 {:.2?}  p99 {:.2?}  p99.9 {:.2?}  max {:.2?}  mean {:.2?}",
        quantile(&durations, 0.50),
        quantile(&durations, 0.99),
        quantile(&durations, 0.999),
        durations[timed - 1],
        mean,
    );
    println!(
        "runtime/tick work per tick: {:.2} fills, {:.2} actuations, {:.2} market events",
        fills as f64 / timed as f64,
        actuations as f64 / timed as f64,
        events as f64 / timed as f64,
    );
}

criterion_group!(benches, tick_percentiles, full_tick);
criterion_main!(benches);
