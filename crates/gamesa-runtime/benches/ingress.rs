//! Ingress throughput and latency over loopback TCP, against the real runtime ticking
//! the twin at 10 Hz:
//! - requests/s from one client pipelining `query health` (budget: >= 200 k/s);
//! - round-trip p50/p99 of `query health` sent at a steady 10 k requests/s (budget:
//!   p99 < 200 µs).
//!
//! Each figure is also measured, in the same run and with the same client, against a
//! peer: the protocol's codec (`gamesa-wire`'s decoder, a pre-built `health` reply) on a
//! bare tokio server with one thread, no session, hub or runtime behind it: the floor
//! that loopback TCP and the framing set.
//!
//! `cargo bench -p gamesa-runtime --bench ingress` (a plain `main`: criterion does not
//! fit an open-loop rate test). `INGRESS_BENCH_REQUESTS` and `INGRESS_BENCH_SECONDS`
//! shorten it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    io::{BufReader, Write},
    net::{SocketAddr, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use gamesa_hw::twin::{Scenario, SharedTwin, Twin};
use gamesa_proto::Tick;
use gamesa_runtime::{Config, Runtime, ingress::Ingress};
use gamesa_wire::{
    HealthResult, Hello, PROTOCOL_VERSION, QueryName, ReplyFrame, Request, decode_request,
    encode_frame, frame::read_frame,
};

/// The repository (for `config/sim.toml` and the scenario); `GAMESA_REPO_ROOT` points
/// a copied bench binary at another checkout.
fn config() -> Config {
    let registry = support::registry();
    let path = support::repo_root().join("config/sim.toml");
    let mut table: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    table["sensors"]["scenario"] = toml::Value::String(
        support::repo_root()
            .join("scenarios/gpu_bottleneck.toml")
            .display()
            .to_string(),
    );
    table["runtime"]["status_interval_s"] = 0.into();
    let extra: toml::Table = r#"
        [ingress]
        tcp_enabled = true
        tcp_address = "127.0.0.1:0"
        rate_limit_per_s = 100000000
        rate_burst = 100000000
        max_in_flight = 100000

        [[clients]]
        name = "bench"
        token = "bench-token-0001"
        effects = ["query:*"]
    "#
    .parse()
    .unwrap();
    table.extend(extra);
    Config::from_toml_str(
        &toml::to_string(&table).unwrap(),
        &path,
        std::iter::empty(),
        &registry,
    )
    .unwrap()
}

/// Starts the runtime (ticking at 10 Hz) with ingress on a thread; returns the address.
fn start_daemon() -> SocketAddr {
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let system = actix::System::new();
        system.block_on(async move {
            let config = config();
            let scenario = config.sensors.scenario.clone().unwrap();
            let twin = SharedTwin::new(Twin::new(Scenario::load(&scenario).unwrap()));
            let registry = support::registry();
            let mut runtime = Runtime::start(
                &config,
                &registry,
                Box::new(twin.sensors()),
                Box::new(twin.actuator()),
            )
            .unwrap();
            let ingress = Ingress::start(&config).unwrap();
            runtime.attach_ingress(Arc::clone(ingress.hub()));
            address_tx.send(ingress.tcp_address().unwrap()).unwrap();
            runtime
                .run_until(std::future::pending(), |_| {})
                .await
                .unwrap();
        });
    });
    address_rx.recv().unwrap()
}

/// The peer: decodes each request frame and answers it with a `health` reply of the
/// same shape as the server's, on a one-thread tokio runtime; returns the address.
fn start_peer() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    let health = HealthResult {
        status: "ok".into(),
        protocol_version: PROTOCOL_VERSION,
        server: "peer/0".into(),
        tick: Some(Tick(1)),
        uptime_ms: 1,
        connections: 1,
        isolated: Vec::new(),
    };
    std::thread::spawn(move || {
        runtime.block_on(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                let health = health.clone();
                tokio::spawn(async move {
                    let (reader, writer) = stream.into_split();
                    let (mut reader, mut writer) = (
                        BufReader::with_capacity(64 * 1024, reader),
                        BufWriter::with_capacity(64 * 1024, writer),
                    );
                    let (mut body, mut out) = (Vec::new(), Vec::new());
                    while let Ok(length) = reader.read_u32().await {
                        body.resize(length as usize, 0);
                        reader.read_exact(&mut body).await.unwrap();
                        let (id, _) = decode_request(&body).unwrap();
                        out.clear();
                        encode_frame(&ReplyFrame::ok(id, &health), &mut out).unwrap();
                        writer.write_all(&out).await.unwrap();
                        if reader.buffer().is_empty() {
                            writer.flush().await.unwrap();
                        }
                    }
                });
            }
        });
    });
    address
}

fn connect(address: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let stream = TcpStream::connect(address).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::with_capacity(256 * 1024, stream.try_clone().unwrap());
    let mut hello = Vec::new();
    Request::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        client: "bench".into(),
        token: "bench-token-0001".into(),
    })
    .encode(0, &mut hello)
    .unwrap();
    (&stream).write_all(&hello).unwrap();
    let mut body = Vec::new();
    assert!(read_frame(&mut reader, 1 << 20, &mut body).unwrap());
    (stream, reader)
}

fn health_frames(first_id: u64, count: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    for id in first_id..first_id + count {
        Request::query(QueryName::Health)
            .encode(id, &mut bytes)
            .unwrap();
    }
    bytes
}

/// Requests/s of one client writing `requests` pipelined requests while reading.
fn throughput(address: SocketAddr, requests: u64) -> f64 {
    let (stream, mut reader) = connect(address);
    let batches: Vec<Vec<u8>> = (0..requests.div_ceil(1000))
        .map(|batch| health_frames(1 + batch * 1000, 1000.min(requests - batch * 1000)))
        .collect();
    let started = Instant::now();
    let writer = std::thread::spawn(move || {
        let mut stream = stream;
        for batch in batches {
            stream.write_all(&batch).unwrap();
        }
        stream
    });
    let mut body = Vec::new();
    for _ in 0..requests {
        assert!(read_frame(&mut reader, 1 << 20, &mut body).unwrap());
    }
    let elapsed = started.elapsed();
    drop(writer.join().unwrap());
    requests as f64 / elapsed.as_secs_f64()
}

/// Round trips of requests sent at `rate_per_s` for `seconds`, in µs, sorted.
fn latency(address: SocketAddr, rate_per_s: u64, seconds: f64) -> Vec<f64> {
    let (stream, mut reader) = connect(address);
    let count = (rate_per_s as f64 * seconds) as u64;
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..=count).map(|_| AtomicU64::new(0)).collect());
    let epoch = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate_per_s as f64);
    let writer = {
        let sent_at = Arc::clone(&sent_at);
        std::thread::spawn(move || {
            let mut stream = stream;
            let mut frame = Vec::with_capacity(64);
            for id in 1..=count {
                // Open loop: each request has its due time; a late writer catches up
                // rather than slowing the rate. Sleeping, not spinning, leaves the
                // cores to the server (the machine has two).
                let due = interval * id as u32;
                let now = epoch.elapsed();
                if now < due {
                    std::thread::sleep(due - now);
                }
                frame.clear();
                Request::query(QueryName::Health)
                    .encode(id, &mut frame)
                    .unwrap();
                sent_at[id as usize].store(epoch.elapsed().as_nanos() as u64, Ordering::Release);
                stream.write_all(&frame).unwrap();
            }
            stream
        })
    };
    let mut round_trips = Vec::with_capacity(count as usize);
    let mut body = Vec::new();
    for _ in 0..count {
        assert!(read_frame(&mut reader, 1 << 20, &mut body).unwrap());
        let received = epoch.elapsed().as_nanos() as u64;
        let reply = gamesa_wire::decode_server_frame(&body).unwrap();
        let gamesa_wire::ServerFrame::Reply(reply) = reply else {
            panic!("unexpected event");
        };
        let id = reply.id.unwrap() as usize;
        let sent = sent_at[id].load(Ordering::Acquire);
        round_trips.push(received.saturating_sub(sent) as f64 / 1000.0);
    }
    drop(writer.join().unwrap());
    round_trips.sort_by(f64::total_cmp);
    round_trips
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    sorted[((sorted.len() as f64 * fraction) as usize).min(sorted.len() - 1)]
}

fn main() {
    let requests: u64 = std::env::var("INGRESS_BENCH_REQUESTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(500_000);
    let seconds: f64 = std::env::var("INGRESS_BENCH_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(5.0);
    let servers = [("ingress", start_daemon()), ("peer", start_peer())];
    for (name, address) in servers {
        // Warm up: connections, allocations, the first ticks.
        throughput(address, 20_000);
        let mut rates: Vec<f64> = (0..3).map(|_| throughput(address, requests)).collect();
        rates.sort_by(f64::total_cmp);
        println!(
            "{name}/pipelined query health, one tcp client: {:.0} requests/s (median of 3 runs of {requests}; min {:.0}, max {:.0})",
            rates[1], rates[0], rates[2]
        );
    }
    for (name, address) in servers {
        let round_trips = latency(address, 10_000, seconds);
        println!(
            "{name}/round trip at 10k requests/s over tcp ({} requests): p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
            round_trips.len(),
            percentile(&round_trips, 0.50),
            percentile(&round_trips, 0.99),
            percentile(&round_trips, 0.999),
            round_trips.last().copied().unwrap_or_default()
        );
    }
}
