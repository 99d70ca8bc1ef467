//! A collector that cannot be reached never holds up a tick: spans are dropped and
//! counted instead. One collector accepts connections and never answers (the worst
//! case: every export waits for its timeout); the other refuses them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    net::TcpListener,
    time::{Duration, Instant},
};

use gamesa_runtime::{
    Config,
    telemetry::{Telemetry, TelemetrySettings},
};
use support::*;
use tracing_subscriber::layer::SubscriberExt as _;

/// Export times out after this long: a tick that waited on an export would take it.
const EXPORT_TIMEOUT_MS: u64 = 1_000;

fn config_for(endpoint: &str, tick_hz: u32) -> (Config, std::path::PathBuf) {
    let registry = builtin();
    let scenario = scenario("gpu_bottleneck.toml");
    let endpoint = endpoint.to_owned();
    let config = sim_config(&scenario, &registry, move |table| {
        table["runtime"]["tick_hz"] = toml::Value::Integer(i64::from(tick_hz));
        let telemetry: toml::Table = toml::from_str(&format!(
            "endpoint = \"{endpoint}\"\nprotocol = \"grpc\"\nqueue_size = 64\nbatch_size = 16\n\
             export_interval_ms = 20\nexport_timeout_ms = {EXPORT_TIMEOUT_MS}\n\
             metrics_interval_s = 3600\n"
        ))
        .unwrap();
        table.insert("telemetry".into(), toml::Value::Table(telemetry));
    });
    (config, scenario)
}

fn start(config: &Config) -> Telemetry {
    let settings = TelemetrySettings::resolve(&config.telemetry, std::iter::empty()).unwrap();
    Telemetry::start(&settings).unwrap()
}

#[actix::test]
async fn a_silent_collector_costs_dropped_spans_not_ticks() {
    // Accepts TCP connections (the kernel's backlog) but never reads or answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let tick_hz = 20;
    let (config, scenario) =
        config_for(&format!("http://{}", silent.local_addr().unwrap()), tick_hz);
    let telemetry = start(&config);
    let stats = telemetry.stats();
    let guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(telemetry.layer()));
    let registry = builtin();
    let (mut runtime, _twin) = start_on_twin(&config, &scenario, &registry);
    runtime.instrument(&telemetry);

    // In virtual time: 200 ticks produce thousands of spans for a queue of 64.
    for _ in 0..200 {
        let started = Instant::now();
        runtime.tick().await.unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(EXPORT_TIMEOUT_MS / 2),
            "a tick waited on the exporter"
        );
    }
    let dropped = stats.dropped_spans();
    assert!(dropped > 1000, "only {dropped} spans dropped");
    assert_eq!(stats.exported_spans(), 0);

    // In wall-clock time: the ticks keep their rate while every export hangs.
    let run_for = Duration::from_secs(1);
    let mut ticks = 0u32;
    runtime
        .run_until(tokio::time::sleep(run_for), |_| ticks += 1)
        .await
        .unwrap();
    let expected = tick_hz as f64 * run_for.as_secs_f64();
    assert!(
        f64::from(ticks) >= 0.75 * expected,
        "{ticks} ticks in {run_for:?} at {tick_hz} Hz"
    );
    assert!(
        stats.dropped_spans() > dropped,
        "the counter stopped rising"
    );
    drop(guard);
    // The last exports time out; shutdown gives up after the export timeout.
    let _ = telemetry.shutdown();
    drop(silent);
}

#[actix::test]
async fn a_refused_connection_counts_every_span_of_the_failed_exports() {
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let (config, scenario) = config_for(&format!("http://127.0.0.1:{port}"), 10);
    let telemetry = start(&config);
    let stats = telemetry.stats();
    let guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(telemetry.layer()));
    let registry = builtin();
    let (mut runtime, _twin) = start_on_twin(&config, &scenario, &registry);
    runtime.instrument(&telemetry);
    run_ticks(&mut runtime, 3).await;
    drop(guard);
    // Waits for the exports of everything queued so far; the metric flush fails too.
    let _ = telemetry.force_flush();
    assert!(stats.failed_exports() > 0);
    assert!(stats.dropped_spans() > 0);
    assert_eq!(stats.exported_spans(), 0);
    let _ = telemetry.shutdown();
}
