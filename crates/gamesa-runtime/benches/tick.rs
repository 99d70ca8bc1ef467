//! One full tick of the runtime — sample, observe the five built-in agents, admit,
//! rank, match, guard, actuate — on the simulated twin with its dry-run actuator,
//! inside one actix `System`, in virtual time (the tick never waits for the clock).
//!
//! Three measurements:
//! - criterion (`iter_custom`), ticks back to back, for the mean and its confidence
//!   interval;
//! - a pass that times each of [`TIMED_TICKS`] back-to-back ticks with `Instant` and
//!   prints p50 / p99 / p99.9 / max, since criterion reports no tail percentiles;
//! - a pass of [`SPACED_TICKS`] ticks each after [`SPACED_IDLE`] of sleep, as
//!   `gamesa run` ticks at 10 Hz: the cold-cache cost the idle daemon pays.
//!
//! The first two also run the tick engine alone (`engine/tick`: `TickEngine::step`,
//! how `gamesa sim` ticks: the same phases in place, no actors, no threads), the peer
//! that says what the actor shell costs on top of the decisions themselves.
//!
//! The first two run twice for the shell: with each tick run as a task on the arbiter
//! (`Runtime::tick_as_task`, how `Runtime::run_until` ticks in `gamesa run`), and in
//! place, in the future `block_on` drives (`Runtime::tick`, how `gamesa sim` and the
//! tests tick). In place, every reply from an actor wakes the root future and costs one
//! extra scheduler turn (an `epoll_wait` syscall): 15 per tick; as a task, the tick and
//! the actors wake each other inside the arbiter's `LocalSet`, and the root future
//! wakes once per tick: 1 (`strace`, see `docs/performance.md`). The bench used to
//! time the whole tick loop spawned as one task instead: the experiment behind
//! `tick_as_task`, dropped once the runtime ticked as a task itself.
//!
//! The config is `config/sim.toml` (5 agents); the scenario is
//! `scenarios/gpu_bottleneck.toml` stretched from 60 s to 1,000,000 s (10⁷ steps of
//! 100 ms) so the twin never reaches its end during a run: once a scenario is finished
//! the twin stops advancing and every sample repeats the last step, which would measure
//! a frozen machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    cell::RefCell,
    hint::black_box,
    rc::Rc,
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use gamesa_agent::AgentRegistry;
use gamesa_engine::{Intake, TickEngine};
use gamesa_hw::twin::{Scenario, SharedTwin, Twin, TwinActuator, TwinSensors};
use gamesa_runtime::{Config, Runtime, TickOutput, assemble};

/// Ticks timed one by one in the percentile pass (in `cargo bench` mode).
const TIMED_TICKS: usize = 20_000;
/// Ticks timed in the spaced pass, each after [`SPACED_IDLE`] of idle time.
const SPACED_TICKS: usize = 100;
/// The idle time between two ticks of `gamesa run` at 10 Hz, less the tick itself.
const SPACED_IDLE: Duration = Duration::from_millis(100);
/// Ticks run before anything is timed, so the market is past its opening transient and
/// allocations have settled.
const WARM_UP_TICKS: usize = 1_000;

/// Whether criterion runs as `cargo bench` (with `--bench`) rather than as the quick
/// smoke test `cargo test --benches` makes of it.
fn bench_mode() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// Warm-up ticks: a few in smoke-test mode, where the build is unoptimized.
fn warm_up_ticks() -> u64 {
    if bench_mode() {
        WARM_UP_TICKS as u64
    } else {
        20
    }
}

fn sim_config(registry: &AgentRegistry) -> Config {
    let config = support::sim_config(registry);
    assert_eq!(config.agents.len(), 5);
    config
}

/// `gpu_bottleneck.toml`, 60 s stretched to the longest duration the twin accepts.
fn long_gpu_bottleneck() -> Scenario {
    let path = support::repo_root().join("scenarios/gpu_bottleneck.toml");
    let input = std::fs::read_to_string(path)
        .unwrap()
        .replace("duration_s = 60", "duration_s = 1000000");
    let scenario = Scenario::from_toml_str(&input).unwrap();
    assert_eq!(scenario.steps(), 10_000_000);
    scenario
}

/// How each tick runs inside the actix system.
#[derive(Debug, Clone, Copy)]
enum Driver {
    /// As a task on the arbiter, like the actors it talks to (`Runtime::tick_as_task`):
    /// how `Runtime::run_until` ticks in `gamesa run`.
    Task,
    /// In the future `System::block_on` drives (`Runtime::tick`): how `gamesa sim`
    /// ticks.
    InPlace,
}

/// A running runtime on a fresh twin, with the actix system that hosts its actors.
/// The actors only make progress inside `system.block_on`.
struct Bench {
    system: actix::SystemRunner,
    /// `None` only while a tick loop in [`Bench::run`] owns it.
    runtime: Option<Runtime>,
    twin: SharedTwin,
}

impl Bench {
    fn start() -> Bench {
        let registry = support::registry();
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
            runtime: Some(runtime),
            twin,
        }
    }

    /// Runs `ticks` ticks back to back, calling `each` with the duration of each tick
    /// and its report, and returns how long they took in all.
    fn run(
        &mut self,
        driver: Driver,
        ticks: u64,
        mut each: impl FnMut(Duration, TickOutput) + 'static,
    ) -> Duration {
        let mut runtime = self.runtime.take().unwrap();
        let tick_loop = async move {
            for _ in 0..ticks {
                let started = Instant::now();
                let report = match driver {
                    Driver::Task => runtime.tick_as_task().await,
                    Driver::InPlace => runtime.tick().await,
                };
                each(started.elapsed(), report.unwrap());
            }
            runtime
        };
        let started = Instant::now();
        let runtime = self.system.block_on(tick_loop);
        let elapsed = started.elapsed();
        self.runtime = Some(runtime);
        elapsed
    }

    fn assert_twin_still_running(&self) {
        assert!(
            !self.twin.with(|twin| twin.is_finished()),
            "the twin reached the end of its scenario: samples were repeating"
        );
    }
}

/// The tick engine alone on a fresh twin: what `gamesa sim` runs.
struct EngineBench {
    engine: TickEngine,
    sensors: TwinSensors,
    actuator: TwinActuator,
    twin: SharedTwin,
}

impl EngineBench {
    fn start() -> EngineBench {
        let registry = support::registry();
        let config = sim_config(&registry);
        let twin = SharedTwin::new(Twin::new(long_gpu_bottleneck()));
        EngineBench {
            engine: assemble::engine(&config, &registry).unwrap(),
            sensors: twin.sensors(),
            actuator: twin.actuator(),
            twin,
        }
    }

    fn run(&mut self, ticks: u64, mut each: impl FnMut(Duration, TickOutput)) -> Duration {
        let started = Instant::now();
        for _ in 0..ticks {
            let tick_started = Instant::now();
            let output = self
                .engine
                .step(&mut self.sensors, &mut self.actuator, Intake::default());
            each(tick_started.elapsed(), output);
        }
        started.elapsed()
    }

    fn assert_twin_still_running(&self) {
        assert!(!self.twin.with(|twin| twin.is_finished()));
    }
}

fn discard(_: Duration, report: TickOutput) {
    drop(black_box(report));
}

fn full_tick(c: &mut Criterion) {
    for (name, driver) in [
        ("runtime/tick (5 agents, twin, dry-run)", Driver::Task),
        (
            "runtime/tick (5 agents, twin, dry-run; in place)",
            Driver::InPlace,
        ),
    ] {
        let mut bench = Bench::start();
        bench.run(driver, warm_up_ticks(), discard);
        c.bench_function(name, |b| {
            b.iter_custom(|ticks| bench.run(driver, ticks, discard));
        });
        bench.assert_twin_still_running();
    }
    let mut engine = EngineBench::start();
    engine.run(warm_up_ticks(), discard);
    c.bench_function("engine/tick (5 agents, twin, dry-run)", |b| {
        b.iter_custom(|ticks| engine.run(ticks, discard));
    });
    engine.assert_twin_still_running();
}

/// The `p`-th quantile (0..=1) of sorted durations, nearest rank.
fn quantile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Per-tick figures gathered by the percentile pass.
#[derive(Default)]
struct Tally {
    durations: Vec<Duration>,
    fills: usize,
    actuations: usize,
    market_events: usize,
}

/// Times each tick on its own and prints the tail. Under `cargo test --benches` (no
/// `--bench` argument) it runs a short pass only, so the target stays a smoke test.
fn tick_percentiles(_: &mut Criterion) {
    let timed = if bench_mode() { TIMED_TICKS } else { 200 };
    let mut engine = EngineBench::start();
    engine.run(warm_up_ticks(), discard);
    let mut tally = Tally::default();
    engine.run(timed as u64, |elapsed, report| tally.add(elapsed, report));
    engine.assert_twin_still_running();
    tally.print("engine/tick", timed);
    for (name, driver) in [
        ("runtime/tick", Driver::Task),
        ("runtime/tick, in place", Driver::InPlace),
    ] {
        let mut bench = Bench::start();
        bench.run(driver, warm_up_ticks(), discard);
        let tally = Rc::new(RefCell::new(Tally::default()));
        let sink = Rc::clone(&tally);
        bench.run(driver, timed as u64, move |elapsed, report| {
            sink.borrow_mut().add(elapsed, report);
        });
        bench.assert_twin_still_running();
        tally.take().print(name, timed);
    }
}

impl Tally {
    fn add(&mut self, elapsed: Duration, report: TickOutput) {
        self.durations.push(elapsed);
        self.fills += report.fills.len();
        self.actuations += report.actuations.len();
        self.market_events += report.market_events.len();
        drop(black_box(report));
    }

    fn print(mut self, name: &str, timed: usize) {
        let durations = &mut self.durations;
        durations.sort_unstable();
        let mean = durations.iter().sum::<Duration>() / timed as u32;
        println!(
            "{name}: {timed} ticks timed one by one after {} warm-up ticks: \
             p50 {:.2?}  p99 {:.2?}  p99.9 {:.2?}  max {:.2?}  mean {:.2?}",
            warm_up_ticks(),
            quantile(durations, 0.50),
            quantile(durations, 0.99),
            quantile(durations, 0.999),
            durations[timed - 1],
            mean,
        );
        println!(
            "{name}: per tick {:.2} fills, {:.2} actuations, {:.2} market events",
            self.fills as f64 / timed as f64,
            self.actuations as f64 / timed as f64,
            self.market_events as f64 / timed as f64,
        );
    }
}

/// 10 Hz: each tick starts with caches, TLB and branch predictors cooled by the idle
/// time (and by whatever else the machine ran). This, not the back-to-back figure, is
/// what the idle daemon pays per tick.
fn spaced_ticks(_: &mut Criterion) {
    let timed = if bench_mode() { SPACED_TICKS } else { 5 };
    let mut bench = Bench::start();
    bench.run(Driver::Task, warm_up_ticks(), discard);
    let mut durations = Vec::with_capacity(timed);
    for _ in 0..timed {
        std::thread::sleep(SPACED_IDLE);
        let elapsed = Rc::new(RefCell::new(Duration::ZERO));
        let sink = Rc::clone(&elapsed);
        bench.run(Driver::Task, 1, move |tick, report| {
            *sink.borrow_mut() = tick;
            drop(black_box(report));
        });
        durations.push(*elapsed.borrow());
    }
    bench.assert_twin_still_running();
    print_spaced("runtime/tick", durations);

    let mut engine = EngineBench::start();
    engine.run(warm_up_ticks(), discard);
    let mut durations = Vec::with_capacity(timed);
    for _ in 0..timed {
        std::thread::sleep(SPACED_IDLE);
        engine.run(1, |tick, report| {
            durations.push(tick);
            drop(black_box(report));
        });
    }
    engine.assert_twin_still_running();
    print_spaced("engine/tick", durations);
}

fn print_spaced(name: &str, mut durations: Vec<Duration>) {
    durations.sort_unstable();
    println!(
        "{name} after {SPACED_IDLE:?} idle ({} ticks): p50 {:.2?}  p90 {:.2?}  max {:.2?}",
        durations.len(),
        quantile(&durations, 0.50),
        quantile(&durations, 0.90),
        durations[durations.len() - 1],
    );
}

criterion_group!(benches, tick_percentiles, spaced_ticks, full_tick);
criterion_main!(benches);
