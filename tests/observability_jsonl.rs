//! With no collector configured, `gamesa` writes every span and metric as JSON lines to
//! a local file: the file parses, every tick's tree is complete, and nothing is lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use gamesa_runtime::telemetry::{Destination, Telemetry, TelemetrySettings};
use serde_json::Value;
use support::*;
use tracing_subscriber::layer::SubscriberExt as _;

const TICKS: usize = 10;

#[actix::test]
async fn the_default_writes_parseable_json_lines_and_loses_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("traces/gamesa.jsonl");
    let registry = builtin();
    let scenario = scenario("gpu_bottleneck.toml");
    let path = file.display().to_string();
    let config = sim_config(&scenario, &registry, move |table| {
        let mut telemetry = toml::Table::new();
        telemetry.insert("file".into(), toml::Value::String(path));
        table.insert("telemetry".into(), toml::Value::Table(telemetry));
    });
    // No endpoint anywhere: the embedded default.
    let settings = TelemetrySettings::resolve(&config.telemetry, std::iter::empty()).unwrap();
    assert_eq!(settings.destination, Destination::File(file.clone()));
    let telemetry = Telemetry::start(&settings).unwrap();
    let guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(telemetry.layer()));
    let (mut runtime, _twin) = start_on_twin(&config, &scenario, &registry);
    runtime.instrument(&telemetry);
    let reports = run_ticks(&mut runtime, TICKS).await;
    drop(guard);
    let stats = telemetry.stats();
    telemetry.shutdown().unwrap();
    assert_eq!(stats.dropped_spans(), 0);

    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a line that is not JSON"))
        .collect();
    assert_eq!(lines[0]["type"], "resource");
    assert_eq!(lines[0]["attributes"]["service.name"], "gamesa");
    let spans: Vec<&Value> = lines.iter().filter(|line| line["type"] == "span").collect();
    assert_eq!(
        spans.len() as u64,
        stats.exported_spans(),
        "a span was lost"
    );

    // Every span's parent is in the file: each tick's tree arrived whole.
    let ids: BTreeSet<&str> = spans
        .iter()
        .map(|span| span["span_id"].as_str().unwrap())
        .collect();
    for span in &spans {
        if let Some(parent) = span["parent_span_id"].as_str() {
            assert!(ids.contains(parent), "orphan {}", span["name"]);
        }
    }
    let ticks: BTreeMap<i64, &Value> = spans
        .iter()
        .filter(|span| span["name"] == "gamesa.tick")
        .map(|span| {
            (
                span["attributes"]["gamesa.tick.seq"].as_i64().unwrap(),
                *span,
            )
        })
        .collect();
    assert_eq!(ticks.len(), TICKS);
    for report in &reports {
        let tick = ticks[&(report.tick.0 as i64)];
        assert_eq!(
            tick["attributes"]["gamesa.correlation_id"],
            report.correlation.to_string()
        );
        let decisions = tick["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["name"] == "decision")
            .count();
        assert_eq!(decisions, report.fills.len() + report.actuations.len());
    }

    // Metrics are written on shutdown, under their semantic-convention names.
    let metrics: BTreeSet<&str> = lines
        .iter()
        .filter(|line| line["type"] == "metric")
        .map(|line| line["name"].as_str().unwrap())
        .collect();
    for name in [
        "hw.temperature",
        "hw.power",
        "gamesa.tick.duration",
        "gamesa.market.price",
    ] {
        assert!(metrics.contains(name), "{name} missing from {metrics:?}");
    }
}

/// Tracing reads each tick after the fact: a traced run decides exactly as an untraced
/// one.
#[actix::test]
async fn tracing_never_changes_a_decision() {
    let directory = tempfile::tempdir().unwrap();
    let registry = builtin();
    let scenario = scenario("gpu_bottleneck.toml");
    let path = directory.path().join("trace.jsonl").display().to_string();
    let config = sim_config(&scenario, &registry, move |table| {
        let mut telemetry = toml::Table::new();
        telemetry.insert("file".into(), toml::Value::String(path));
        table.insert("telemetry".into(), toml::Value::Table(telemetry));
    });
    let settings = TelemetrySettings::resolve(&config.telemetry, std::iter::empty()).unwrap();
    let telemetry = Telemetry::start(&settings).unwrap();
    let (mut traced, _traced_twin) = start_on_twin(&config, &scenario, &registry);
    traced.instrument(&telemetry);
    let (mut plain, _plain_twin) = start_on_twin(&config, &scenario, &registry);
    let outcome = |report: &gamesa_runtime::TickOutput| {
        format!(
            "{:?} {:?} {:?} {:?}",
            report.fills, report.actuations, report.denied_intents, report.market
        )
    };
    for _ in 0..60 {
        let with = traced.tick().await.unwrap();
        let without = plain.tick().await.unwrap();
        assert_eq!(outcome(&with), outcome(&without), "tick {}", with.tick);
    }
    telemetry.shutdown().unwrap();
    assert!(telemetry_spans(directory.path()) > 60);
}

fn telemetry_spans(directory: &std::path::Path) -> usize {
    std::fs::read_to_string(directory.join("trace.jsonl"))
        .unwrap()
        .lines()
        .filter(|line| line.contains("\"type\":\"span\""))
        .count()
}
