//! What the journal costs and how fast a journal replays (`docs/journal.md`).
//!
//! On the twin with `config/sim.toml` (5 agents), in one actix `System`:
//! - **paced**: `gamesa run`'s loop (`Runtime::run_until` at 10 Hz), alternating
//!   blocks of a runtime with a journal and one without: tick latency p50 and p99, and
//!   the CPU time per tick of the thread that runs the tick, of each (the peer,
//!   measured in the same run);
//! - **back to back**: [`TICKS`] ticks of each, mean tick time (the writer thread
//!   shares the two cores with the tick), then the writer thread's CPU time per tick
//!   (from `/proc/self/task/*/stat`), and the journal's bytes per tick;
//! - **replay**: the journal of the back-to-back run replayed, ticks per second, beside
//!   the in-place engine ticking the same twin (`TickEngine::step`, the peer).
//!
//! `cargo test --benches` runs it as a smoke test with few ticks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use gamesa_agent::AgentRegistry;
use gamesa_hw::twin::{Scenario, SharedTwin, Twin};
use gamesa_runtime::{
    Config, Runtime, assemble,
    journal::{
        JournalReader, JournalWriter, RunInfo, WriterSettings,
        replay::{self, TickRange},
    },
};

/// Back-to-back ticks per runtime (in `cargo bench` mode).
const TICKS: u64 = 20_000;
/// Paced ticks per runtime, in blocks of [`BLOCK`] alternating between the two.
const PACED_TICKS: usize = 300;
const BLOCK: usize = 25;
const IDLE: Duration = Duration::from_millis(100);

fn bench_mode() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// `mixed.toml` (load phases, a cap drop, thermal events) stretched so the twin never
/// reaches its end.
fn scenario() -> Scenario {
    let path = support::repo_root().join("scenarios/mixed.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let duration = text
        .lines()
        .find(|line| line.starts_with("duration_s"))
        .unwrap()
        .to_owned();
    Scenario::from_toml_str(&text.replace(&duration, "duration_s = 1000000")).unwrap()
}

/// `queue_ticks`: the back-to-back pass ticks far faster than 10 Hz, and every tick
/// is to reach the file for the size and replay figures.
fn start(
    config: &Config,
    registry: &AgentRegistry,
    journal: Option<&Path>,
    queue_ticks: usize,
) -> Runtime {
    let twin = SharedTwin::new(Twin::new(scenario()));
    let mut runtime = Runtime::start(
        config,
        registry,
        Box::new(twin.sensors()),
        Box::new(twin.actuator()),
    )
    .unwrap();
    if let Some(path) = journal {
        let settings = WriterSettings {
            queue_ticks,
            ..WriterSettings::from(&config.journal)
        };
        let run = RunInfo::of(config, registry, 0).unwrap();
        runtime.attach_journal(JournalWriter::open(path, settings, &run).unwrap());
    }
    runtime
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// The CPU time (user + system) of this process's thread named `name`.
fn thread_cpu(name: &str) -> Option<Duration> {
    let ticks_per_s = 100.0; // USER_HZ on Linux
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let task = task.ok()?.path();
        let comm = std::fs::read_to_string(task.join("comm")).ok()?;
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.join("stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        return Some(Duration::from_secs_f64((utime + stime) / ticks_per_s));
    }
    None
}

/// One runtime's paced ticks.
#[derive(Default)]
struct Paced {
    latency: Vec<Duration>,
    /// Per block, ns.
    cpu_per_tick: Vec<u64>,
}

impl Paced {
    fn sorted(mut self) -> Paced {
        self.latency.sort();
        self.cpu_per_tick.sort();
        self
    }
}

/// The time this thread has run on a CPU, in ns (`/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let full = bench_mode();
    let (ticks, paced) = if full {
        (TICKS, PACED_TICKS)
    } else {
        (200, 2 * BLOCK)
    };
    let registry = support::registry();
    let config = support::sim_config(&registry);
    let dir = tempfile::tempdir().unwrap();
    let system = actix::System::new();

    // Paced, as the daemon ticks (`Runtime::run_until` at 10 Hz): alternating blocks,
    // so drift hits both alike. Per tick: its latency (from its phase timings) and
    // the CPU time of the thread that runs it (the system arbiter: the tick, the core
    // actors, and the journal's hand-off), from /proc/thread-self/schedstat.
    let paced_path = dir.path().join("paced.sqlite");
    let (with, without) = system.block_on(async {
        let queue = config.journal.queue_ticks;
        let mut journaled = start(&config, &registry, Some(&paced_path), queue);
        let mut plain = start(&config, &registry, None, queue);
        let (mut with, mut without) = (Paced::default(), Paced::default());
        for block in 0..(2 * paced / BLOCK) {
            let (runtime, paced) = if block % 2 == 0 {
                (&mut journaled, &mut with)
            } else {
                (&mut plain, &mut without)
            };
            let cpu_before = thread_cpu_ns();
            let mut ticks = 0u32;
            let stop = tokio::time::sleep(IDLE * BLOCK as u32 - IDLE / 2);
            runtime
                .run_until(stop, |output| {
                    ticks += 1;
                    if let (Some(first), Some(last)) =
                        (output.timings.first(), output.timings.last())
                    {
                        paced.latency.push(last.end - first.start);
                    }
                })
                .await
                .unwrap();
            paced
                .cpu_per_tick
                .push((thread_cpu_ns() - cpu_before) / u64::from(ticks.max(1)));
        }
        let _ = journaled.shutdown().await;
        let _ = plain.shutdown().await;
        (with, without)
    });
    let (with, without) = (with.sorted(), without.sorted());
    println!(
        "journal/paced: tick p50 {:.1} µs with the journal, {:.1} µs without; p99 {:.1} µs, {:.1} µs ({} ticks each, {} ms apart)",
        micros(percentile(&with.latency, 0.5)),
        micros(percentile(&without.latency, 0.5)),
        micros(percentile(&with.latency, 0.99)),
        micros(percentile(&without.latency, 0.99)),
        with.latency.len(),
        IDLE.as_millis()
    );
    let (cpu_with, cpu_without) = (
        with.cpu_per_tick[with.cpu_per_tick.len() / 2],
        without.cpu_per_tick[without.cpu_per_tick.len() / 2],
    );
    println!(
        "journal/paced: the tick thread's CPU per tick {:.1} µs with the journal, {:.1} µs without (median of {} blocks of {BLOCK}): the journal adds {:.1} µs, {:.1} %",
        cpu_with as f64 / 1e3,
        cpu_without as f64 / 1e3,
        with.cpu_per_tick.len(),
        (cpu_with as f64 - cpu_without as f64) / 1e3,
        (cpu_with as f64 / cpu_without as f64 - 1.0) * 100.0
    );

    // Back to back.
    let path = dir.path().join("journal.sqlite");
    let (with_mean, without_mean, writer_cpu, stats) = system.block_on(async {
        let mut plain = start(&config, &registry, None, 0);
        let started = Instant::now();
        for _ in 0..ticks {
            plain.tick_as_task().await.unwrap();
        }
        let without_mean = started.elapsed() / ticks as u32;
        let _ = plain.shutdown().await;
        let mut journaled = start(&config, &registry, Some(&path), ticks as usize);
        let cpu_before = thread_cpu("gamesa-journal").unwrap_or_default();
        let started = Instant::now();
        for _ in 0..ticks {
            journaled.tick_as_task().await.unwrap();
        }
        let with_mean = started.elapsed() / ticks as u32;
        // The writer's CPU time once it has committed every tick (whole batches: none
        // waits for the flush timer), read while its thread is still there.
        let journal = journaled.conductor().journal().unwrap();
        while journal.stats().committed + journal.stats().dropped < ticks {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let drained = started.elapsed();
        let writer_cpu = thread_cpu("gamesa-journal").unwrap_or_default() - cpu_before;
        println!(
            "journal/back-to-back: the writer committed {ticks} ticks {:.1} s after the first, {:.0} ticks/s",
            drained.as_secs_f64(),
            ticks as f64 / drained.as_secs_f64()
        );
        let shutdown = journaled.shutdown().await;
        (
            with_mean,
            without_mean,
            writer_cpu,
            shutdown.journal.unwrap(),
        )
    });
    assert_eq!(stats.committed, ticks, "{stats:?}");
    println!(
        "journal/back-to-back: mean tick {:.1} µs with the journal, {:.1} µs without ({ticks} ticks each); the writer thread's CPU: {:.1} µs per tick ({:.2} % of a 100 ms tick period)",
        micros(with_mean),
        micros(without_mean),
        micros(writer_cpu / ticks as u32),
        micros(writer_cpu / ticks as u32) / 1000.0
    );

    let reader = JournalReader::open(&path).unwrap();
    let pragma = |name: &str| -> u64 {
        reader
            .connection()
            .query_row(&format!("PRAGMA {name}"), [], |row| row.get::<_, i64>(0))
            .unwrap() as u64
    };
    let used = (pragma("page_count") - pragma("freelist_count")) * pragma("page_size");
    let per_tick = used as f64 / ticks as f64;
    println!(
        "journal/size: {per_tick:.0} bytes per tick ({used} bytes for {ticks} ticks): {:.0} MB per day at 10 Hz",
        per_tick * 864_000.0 / 1e6
    );

    // Replay, and the engine alone on the same twin as the peer.
    let started = Instant::now();
    let report = replay::replay(&reader, &registry, None, TickRange::default()).unwrap();
    let replay_elapsed = started.elapsed();
    assert!(report.identical(), "{report}");
    let mut engine = assemble::engine(&config, &registry).unwrap();
    let twin = SharedTwin::new(Twin::new(scenario()));
    let (mut sensors, mut actuator) = (twin.sensors(), twin.actuator());
    let started = Instant::now();
    for _ in 0..ticks {
        engine.step(&mut sensors, &mut actuator, Default::default());
    }
    let engine_elapsed = started.elapsed();
    println!(
        "journal/replay: {:.0} ticks/s ({ticks} ticks in {:.2} s); the engine alone on the twin: {:.0} ticks/s",
        ticks as f64 / replay_elapsed.as_secs_f64(),
        replay_elapsed.as_secs_f64(),
        ticks as f64 / engine_elapsed.as_secs_f64()
    );
}
