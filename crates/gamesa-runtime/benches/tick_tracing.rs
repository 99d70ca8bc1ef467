//! What observability costs the tick: one full tick of the runtime on the twin (the
//! set-up of `benches/tick.rs`: `config/sim.toml`, five agents, dry-run, virtual time)
//! with
//! - `off`: no telemetry layer, no metrics, no decision log — the tick as it was;
//! - `decision_log`: telemetry off, decision log on (`decision_log_ticks = 256`, the
//!   default);
//! - `jsonl`: spans, metrics and the decision log, spans written as JSON lines (to
//!   `/dev/null`, so a long run does not fill the disk; the serialisation is the same);
//! - `otlp`: the same, exported over OTLP/gRPC to an in-process receiver that decodes
//!   and discards every request;
//! - `otlp_unreachable`: exported to a collector that accepts connections and never
//!   answers, so spans are dropped and counted.
//!
//! Three measurements:
//! - back to back, interleaved: rounds of [`BLOCK_TICKS`] ticks per mode, modes taking
//!   turns, so that a noisy shared machine disturbs every mode alike; it prints each
//!   mode's median block mean and its overhead over `off` (the median of per-round
//!   ratios). Ticks back to back make the export thread work flat out beside the tick
//!   (about 15,000 ticks/s), so on a small machine this includes its competition for
//!   the cores;
//! - paced, interleaved: ticks [`PACED_PERIOD`] apart (`tick_hz = 1000`, the highest
//!   rate `gamesa run` allows), each timed alone: the cost of a tick as the daemon
//!   pays it, with the export done between ticks;
//! - criterion (`iter_custom`), one mode after another, for confidence intervals.
//!
//! Under `cargo test --benches` (no `--bench` argument) only a short interleaved pass
//! runs, as a smoke test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    hint::black_box,
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use gamesa_agent::AgentRegistry;
use gamesa_hw::twin::{Scenario, SharedTwin, Twin};
use gamesa_runtime::{
    Config, Runtime,
    config::{OtlpProtocol, TelemetryConfig},
    telemetry::{Telemetry, TelemetrySettings},
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt as _;

/// Ticks per block of the interleaved pass.
const BLOCK_TICKS: u64 = 500;
/// Rounds of the interleaved pass (each runs one block of every mode).
const ROUNDS: usize = 30;
/// Ticks run by every mode before anything is timed.
const WARM_UP_TICKS: u64 = 1_000;
/// The period of the paced pass: `tick_hz = 1000`.
const PACED_PERIOD: Duration = Duration::from_millis(1);
/// Ticks per mode and round of the paced pass, and its rounds.
const PACED_TICKS: u64 = 200;
const PACED_ROUNDS: usize = 10;

/// The repository (`GAMESA_REPO_ROOT` overrides where the binary was built).
fn sim_config(registry: &AgentRegistry, telemetry: TelemetryConfig) -> Config {
    let mut config = support::sim_config(registry);
    config.telemetry = telemetry;
    config
}

/// `gpu_bottleneck.toml`, stretched so the twin never reaches its end.
fn long_gpu_bottleneck() -> Scenario {
    let path = support::repo_root().join("scenarios/gpu_bottleneck.toml");
    let input = std::fs::read_to_string(path)
        .unwrap()
        .replace("duration_s = 60", "duration_s = 1000000");
    Scenario::from_toml_str(&input).unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    DecisionLog,
    JsonLines,
    Otlp,
    OtlpUnreachable,
}

const MODES: [Mode; 5] = [
    Mode::Off,
    Mode::DecisionLog,
    Mode::JsonLines,
    Mode::Otlp,
    Mode::OtlpUnreachable,
];

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::DecisionLog => "decision_log",
            Mode::JsonLines => "jsonl",
            Mode::Otlp => "otlp",
            Mode::OtlpUnreachable => "otlp_unreachable",
        }
    }

    fn telemetry(self, receiver: SocketAddr, silent: SocketAddr) -> TelemetryConfig {
        let otlp = |address: SocketAddr| TelemetryConfig {
            endpoint: Some(format!("http://{address}")),
            protocol: OtlpProtocol::Grpc,
            metrics_interval_s: 3600,
            ..TelemetryConfig::default()
        };
        match self {
            Mode::Off => TelemetryConfig {
                enabled: false,
                decision_log_ticks: 0,
                ..TelemetryConfig::default()
            },
            Mode::DecisionLog => TelemetryConfig {
                enabled: false,
                ..TelemetryConfig::default()
            },
            Mode::JsonLines => TelemetryConfig {
                file: PathBuf::from("/dev/null"),
                metrics_interval_s: 3600,
                ..TelemetryConfig::default()
            },
            Mode::Otlp => otlp(receiver),
            Mode::OtlpUnreachable => TelemetryConfig {
                export_timeout_ms: 1000,
                ..otlp(silent)
            },
        }
    }
}

struct Discard;

#[tonic::async_trait]
impl TraceService for Discard {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        drop(black_box(request));
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// An OTLP/gRPC receiver that decodes and discards, on its own thread.
fn receiver() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            tonic::transport::Server::builder()
                .serve_with_incoming(
                    TraceServiceServer::new(Discard),
                    tonic::transport::server::TcpIncoming::from(listener),
                )
                .await
                .unwrap();
        });
    });
    address
}

/// One runtime on its own twin, with its telemetry and the dispatcher its ticks run
/// under.
struct Traced {
    mode: Mode,
    runtime: Option<Runtime>,
    dispatch: Dispatch,
    telemetry: Telemetry,
    _twin: SharedTwin,
}

/// Every mode's runtime, on one actix system.
struct Bench {
    system: actix::SystemRunner,
    modes: Vec<Traced>,
    _silent: std::net::TcpListener,
}

impl Bench {
    fn start() -> Bench {
        let registry = support::registry();
        let receiver = receiver();
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let silent_address = silent.local_addr().unwrap();
        let system = actix::System::new();
        let modes = MODES
            .into_iter()
            .map(|mode| {
                let config = sim_config(&registry, mode.telemetry(receiver, silent_address));
                let settings =
                    TelemetrySettings::resolve(&config.telemetry, std::iter::empty()).unwrap();
                let telemetry = Telemetry::start(&settings).unwrap();
                let dispatch = match telemetry.layer() {
                    Some(layer) => Dispatch::new(tracing_subscriber::registry().with(layer)),
                    None => Dispatch::none(),
                };
                let twin = SharedTwin::new(Twin::new(long_gpu_bottleneck()));
                let mut runtime = system.block_on(async {
                    Runtime::start(
                        &config,
                        &registry,
                        Box::new(twin.sensors()),
                        Box::new(twin.actuator()),
                    )
                    .unwrap()
                });
                runtime.instrument(&telemetry);
                Traced {
                    mode,
                    runtime: Some(runtime),
                    dispatch,
                    telemetry,
                    _twin: twin,
                }
            })
            .collect();
        let mut bench = Bench {
            system,
            modes,
            _silent: silent,
        };
        for index in 0..bench.modes.len() {
            bench.run(index, WARM_UP_TICKS);
        }
        bench
    }

    /// Runs `ticks` ticks of mode `index` back to back; returns how long they took.
    fn run(&mut self, index: usize, ticks: u64) -> Duration {
        let traced = &mut self.modes[index];
        let mut runtime = traced.runtime.take().unwrap();
        let system = &self.system;
        let (elapsed, runtime) = tracing::dispatcher::with_default(&traced.dispatch, || {
            let started = Instant::now();
            let runtime = system.block_on(async move {
                for _ in 0..ticks {
                    black_box(runtime.tick().await.unwrap());
                }
                runtime
            });
            (started.elapsed(), runtime)
        });
        traced.runtime = Some(runtime);
        elapsed
    }
}

impl Bench {
    /// Runs `ticks` ticks of mode `index`, each starting `PACED_PERIOD` after the one
    /// before; returns each tick's own duration.
    fn run_paced(&mut self, index: usize, ticks: u64) -> Vec<Duration> {
        let traced = &mut self.modes[index];
        let mut runtime = traced.runtime.take().unwrap();
        let system = &self.system;
        let (durations, runtime) = tracing::dispatcher::with_default(&traced.dispatch, || {
            system.block_on(async move {
                let mut durations = Vec::with_capacity(ticks as usize);
                for _ in 0..ticks {
                    let started = Instant::now();
                    black_box(runtime.tick().await.unwrap());
                    let elapsed = started.elapsed();
                    durations.push(elapsed);
                    std::thread::sleep(PACED_PERIOD.saturating_sub(elapsed));
                }
                (durations, runtime)
            })
        });
        traced.runtime = Some(runtime);
        durations
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Rounds of one block per mode, modes taking turns.
fn interleaved(_: &mut Criterion) {
    if std::env::var_os("TICK_TRACING_SKIP_INTERLEAVED").is_some() {
        return;
    }
    let bench_mode = std::env::args().any(|arg| arg == "--bench");
    let (rounds, block) = if bench_mode {
        (ROUNDS, BLOCK_TICKS)
    } else {
        (2, 20)
    };
    let mut bench = Bench::start();
    let mut means: Vec<Vec<f64>> = vec![Vec::new(); MODES.len()];
    for round in 0..rounds {
        // Rotate the order so no mode always runs right after another.
        for offset in 0..MODES.len() {
            let index = (round + offset) % MODES.len();
            let elapsed = bench.run(index, block);
            means[index].push(elapsed.as_secs_f64() / block as f64);
        }
    }
    let mut baseline = means[0].clone();
    let off = median(&mut baseline);
    println!(
        "tick_tracing: {rounds} rounds x {block} ticks per mode, after {WARM_UP_TICKS} warm-up ticks"
    );
    for (index, traced) in bench.modes.iter().enumerate() {
        let mut ratios: Vec<f64> = means[index]
            .iter()
            .zip(&means[0])
            .map(|(mean, off)| mean / off)
            .collect();
        let stats = traced.telemetry.stats();
        println!(
            "tick_tracing/{:<16} median {:>7.2} µs/tick  overhead vs off {:>+6.1}%  \
             (exported {} spans, dropped {})",
            traced.mode.name(),
            median(&mut means[index].clone()) * 1e6,
            (median(&mut ratios) - 1.0) * 100.0,
            stats.exported_spans(),
            stats.dropped_spans(),
        );
    }
    println!("tick_tracing/off median block mean: {:.2} µs", off * 1e6);
}

/// Ticks at 1 kHz, modes taking turns; each tick timed alone.
fn paced(_: &mut Criterion) {
    if std::env::var_os("TICK_TRACING_SKIP_INTERLEAVED").is_some() {
        return;
    }
    let bench_mode = std::env::args().any(|arg| arg == "--bench");
    let (rounds, ticks) = if bench_mode {
        (PACED_ROUNDS, PACED_TICKS)
    } else {
        (1, 10)
    };
    let mut bench = Bench::start();
    let mut durations: Vec<Vec<f64>> = vec![Vec::new(); MODES.len()];
    for round in 0..rounds {
        for offset in 0..MODES.len() {
            let index = (round + offset) % MODES.len();
            durations[index].extend(
                bench
                    .run_paced(index, ticks)
                    .into_iter()
                    .map(|duration| duration.as_secs_f64()),
            );
        }
    }
    let off_median = median(&mut durations[0].clone());
    let off_mean = durations[0].iter().sum::<f64>() / durations[0].len() as f64;
    println!(
        "tick_tracing paced: {rounds} rounds x {ticks} ticks per mode, {PACED_PERIOD:?} apart"
    );
    for (index, traced) in bench.modes.iter().enumerate() {
        let mean = durations[index].iter().sum::<f64>() / durations[index].len() as f64;
        let p50 = median(&mut durations[index]);
        let p99 = durations[index][(durations[index].len() * 99) / 100];
        println!(
            "tick_tracing paced/{:<16} p50 {:>7.2} µs ({:>+6.1}%)  mean {:>7.2} µs ({:>+6.1}%)  p99 {:>7.2} µs  \
             (exported {}, dropped {})",
            traced.mode.name(),
            p50 * 1e6,
            (p50 / off_median - 1.0) * 100.0,
            mean * 1e6,
            (mean / off_mean - 1.0) * 100.0,
            p99 * 1e6,
            traced.telemetry.stats().exported_spans(),
            traced.telemetry.stats().dropped_spans(),
        );
    }
}

fn criterion_modes(c: &mut Criterion) {
    let mut bench = Bench::start();
    for (index, mode) in MODES.into_iter().enumerate() {
        c.bench_function(&format!("tick_tracing/{}", mode.name()), |b| {
            b.iter_custom(|ticks| bench.run(index, ticks));
        });
    }
}

criterion_group!(benches, interleaved, paced, criterion_modes);
criterion_main!(benches);
