//! What the journal costs and how fast a journal replays (`docs/journal.md`).
//!
//! On the twin with `config/sim.toml` (5 agents), in one actix `System`:
//! - **paced**: ticks of `gamesa run`'s shell each after 100 ms of idle time (10 Hz),
//!   alternating blocks of a runtime with a journal and one without: p50 and p99 of
//!   each, the peer measured in the same run;
//! - **back to back**: [`TICKS`] ticks of each, mean tick time (the writer thread
//!   shares the two cores with the tick), then the writer thread's CPU time per tick
//!   (from `/proc/self/task/*/stat`), and the journal's bytes per tick;
//! - **replay**: the journal of the back-to-back run replayed, ticks per second, beside
//!   the in-place engine ticking the same twin (`TickEngine::step`, the peer).
//!
//! `cargo test --benches` runs it as a smoke test with few ticks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
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

fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

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
    Config::from_toml_str(&text, &path, std::iter::empty(), registry).unwrap()
}

/// `mixed.toml` (load phases, a cap drop, thermal events) stretched so the twin never
/// reaches its end.
fn scenario() -> Scenario {
    let path = repo_root().join("scenarios/mixed.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let duration = text
        .lines()
        .find(|line| line.starts_with("duration_s"))
        .unwrap()
        .to_owned();
    Scenario::from_toml_str(&text.replace(&duration, "duration_s = 1000000")).unwrap()
}

fn start(config: &Config, registry: &AgentRegistry, journal: Option<&Path>) -> Runtime {
    let twin = SharedTwin::new(Twin::new(scenario()));
    let mut runtime = Runtime::start(
        config,
        registry,
        Box::new(twin.sensors()),
        Box::new(twin.actuator()),
    )
    .unwrap();
    if let Some(path) = journal {
        let settings = WriterSettings::from(&config.journal);
        let run = RunInfo::of(config, 0).unwrap();
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

fn main() {
    let full = bench_mode();
    let (ticks, paced) = if full {
        (TICKS, PACED_TICKS)
    } else {
        (200, 2 * BLOCK)
    };
    let registry = registry();
    let config = sim_config(&registry);
    let dir = tempfile::tempdir().unwrap();
    let system = actix::System::new();

    // Paced: alternating blocks, so drift hits both alike.
    let paced_path = dir.path().join("paced.sqlite");
    let (with, without) = system.block_on(async {
        let mut journaled = start(&config, &registry, Some(&paced_path));
        let mut plain = start(&config, &registry, None);
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for block in 0..(2 * paced / BLOCK) {
            let (runtime, times) = if block % 2 == 0 {
                (&mut journaled, &mut with)
            } else {
                (&mut plain, &mut without)
            };
            for _ in 0..BLOCK {
                tokio::time::sleep(IDLE).await;
                let started = Instant::now();
                runtime.tick_as_task().await.unwrap();
                times.push(started.elapsed());
            }
        }
        let _ = journaled.shutdown().await;
        let _ = plain.shutdown().await;
        (with, without)
    });
    let (mut with, mut without) = (with, without);
    with.sort();
    without.sort();
    println!(
        "journal/paced: tick p50 {:.1} µs with the journal, {:.1} µs without; p99 {:.1} µs, {:.1} µs ({} ticks each, {} ms apart)",
        micros(percentile(&with, 0.5)),
        micros(percentile(&without, 0.5)),
        micros(percentile(&with, 0.99)),
        micros(percentile(&without, 0.99)),
        with.len(),
        IDLE.as_millis()
    );

    // Back to back.
    let path = dir.path().join("journal.sqlite");
    let (with_mean, without_mean, writer_cpu, stats) = system.block_on(async {
        let mut plain = start(&config, &registry, None);
        let started = Instant::now();
        for _ in 0..ticks {
            plain.tick_as_task().await.unwrap();
        }
        let without_mean = started.elapsed() / ticks as u32;
        let _ = plain.shutdown().await;
        let mut journaled = start(&config, &registry, Some(&path));
        let cpu_before = thread_cpu("gamesa-journal").unwrap_or_default();
        let started = Instant::now();
        for _ in 0..ticks {
            journaled.tick_as_task().await.unwrap();
        }
        let with_mean = started.elapsed() / ticks as u32;
        // The writer's CPU time once it has committed every tick (whole batches: none
        // waits for the flush timer), read while its thread is still there.
        let journal = journaled.conductor().journal().unwrap();
        while journal.stats().committed < ticks {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let writer_cpu = thread_cpu("gamesa-journal").unwrap_or_default() - cpu_before;
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
