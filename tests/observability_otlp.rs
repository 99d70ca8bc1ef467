//! End to end on the twin with an in-process OTLP receiver: every tick arrives as one
//! trace with its phase spans under the tick span, the attributes carry the values the
//! tick reported, a veto forced by a contract is an event that names its clause, and
//! over HTTP the metrics arrive and an ingress request is linked to the tick that took
//! its signal in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener},
    sync::{Arc, Mutex},
};

use gamesa_guardian::{Reason, Verdict};
use gamesa_proto::{AgentId, CorrelationId, Domain, Signal, SignalKind, Strength};
use gamesa_runtime::{
    Config, TickOutput,
    telemetry::{IngressLink, Telemetry, TelemetrySettings, request_span, route_requests_to},
};
use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::ExportMetricsServiceRequest,
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::{KeyValue, any_value::Value},
    metrics::v1::metric::Data,
    trace::v1::Span,
};
use prost::Message as _;
use support::*;
use tracing_subscriber::layer::SubscriberExt as _;

const TICKS: usize = 20;

/// Every span the receiver got, in arrival order.
type Spans = Arc<Mutex<Vec<Span>>>;

#[derive(Clone, Default)]
struct Collector(Spans);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// An OTLP/gRPC trace receiver on 127.0.0.1:0, on its own thread and runtime so that
/// the daemon under test never has to poll it.
fn grpc_receiver() -> (SocketAddr, Spans) {
    let spans = Spans::default();
    let collector = Collector(Arc::clone(&spans));
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
                    TraceServiceServer::new(collector),
                    tonic::transport::server::TcpIncoming::from(listener),
                )
                .await
                .unwrap();
        });
    });
    (address, spans)
}

/// What an OTLP/HTTP receiver got.
#[derive(Default)]
struct HttpReceived {
    spans: Vec<Span>,
    metrics: Vec<opentelemetry_proto::tonic::metrics::v1::Metric>,
}

/// A minimal OTLP/HTTP (protobuf) receiver: HTTP/1.1 with keep-alive, answering 200.
fn http_receiver() -> (SocketAddr, Arc<Mutex<HttpReceived>>) {
    let received = Arc::new(Mutex::new(HttpReceived::default()));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let shared = Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    {
                        let mut received = shared.lock().unwrap();
                        if path.ends_with("/v1/traces") {
                            let request = ExportTraceServiceRequest::decode(&body[..]).unwrap();
                            for resource in request.resource_spans {
                                for scope in resource.scope_spans {
                                    received.spans.extend(scope.spans);
                                }
                            }
                        } else if path.ends_with("/v1/metrics") {
                            let request = ExportMetricsServiceRequest::decode(&body[..]).unwrap();
                            for resource in request.resource_metrics {
                                for scope in resource.scope_metrics {
                                    received.metrics.extend(scope.metrics);
                                }
                            }
                        }
                    }
                    writer
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
                        )
                        .unwrap();
                }
            });
        }
    });
    (address, received)
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|pair| pair.key == key)
        .and_then(|pair| pair.value.as_ref())
        .and_then(|value| value.value.as_ref())
}

fn int(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attribute(attributes, key)? {
        Value::IntValue(value) => Some(*value),
        other => panic!("`{key}` is not an integer: {other:?}"),
    }
}

fn text<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attribute(attributes, key)? {
        Value::StringValue(value) => Some(value),
        other => panic!("`{key}` is not a string: {other:?}"),
    }
}

/// `config/sim.toml` on the GPU-bottleneck scenario, exporting to `endpoint`, with one
/// more contract that forbids every raise of the GPU's power limit.
fn traced_config(endpoint: &str, protocol: &str) -> (Config, std::path::PathBuf) {
    let registry = builtin();
    let scenario = scenario("gpu_bottleneck.toml");
    let endpoint = endpoint.to_owned();
    let protocol = protocol.to_owned();
    let config = sim_config(&scenario, &registry, move |table| {
        let contract: toml::Table = toml::from_str(
            "name = \"no_gpu0_raise\"\nphase = \"post\"\nscope = \"power.limit:gpu0\"\n\
             expr = \"gpu0.delta_power_w <= 0\"\n",
        )
        .unwrap();
        table["guardian"]["contracts"]
            .as_array_mut()
            .unwrap()
            .push(toml::Value::Table(contract));
        let telemetry: toml::Table = toml::from_str(&format!(
            "endpoint = \"{endpoint}\"\nprotocol = \"{protocol}\"\nexport_interval_ms = 50\n\
             export_timeout_ms = 5000\nmetrics_interval_s = 3600\n"
        ))
        .unwrap();
        table.insert("telemetry".into(), toml::Value::Table(telemetry));
    });
    (config, scenario)
}

fn start_telemetry(config: &Config) -> Telemetry {
    let settings = TelemetrySettings::resolve(&config.telemetry, std::iter::empty()).unwrap();
    Telemetry::start(&settings).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[actix::test]
async fn every_tick_arrives_as_one_trace_with_its_phases_values_and_vetoes() {
    let (address, received) = grpc_receiver();
    let (config, scenario) = traced_config(&format!("http://{address}"), "grpc");
    let telemetry = start_telemetry(&config);
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    let guard = tracing::subscriber::set_default(subscriber);
    let registry = builtin();
    let (mut runtime, _twin) = start_on_twin(&config, &scenario, &registry);
    runtime.instrument(&telemetry);
    let reports: Vec<TickOutput> = run_ticks(&mut runtime, TICKS).await;
    drop(guard);
    let stats = telemetry.stats();
    // This receiver serves traces only, so the final metric export is refused.
    let _ = telemetry.shutdown();
    assert_eq!(stats.dropped_spans(), 0);

    let spans = received.lock().unwrap().clone();
    assert_eq!(spans.len() as u64, stats.exported_spans());
    let mut traces: BTreeMap<Vec<u8>, Vec<&Span>> = BTreeMap::new();
    for span in &spans {
        traces.entry(span.trace_id.clone()).or_default().push(span);
    }
    assert_eq!(traces.len(), TICKS, "one trace per tick");

    let agents: Vec<&str> = config
        .agents
        .iter()
        .map(|agent| agent.id.as_str())
        .collect();
    let mut seen_ticks = BTreeSet::new();
    let mut contract_vetoes = Vec::new();
    for trace in traces.values() {
        let roots: Vec<&&Span> = trace
            .iter()
            .filter(|span| span.parent_span_id.is_empty())
            .collect();
        assert_eq!(roots.len(), 1, "one root per trace");
        let root = roots[0];
        assert_eq!(root.name, "gamesa.tick");
        let seq = int(&root.attributes, "gamesa.tick.seq").unwrap();
        assert!(seen_ticks.insert(seq), "tick {seq} arrived twice");
        let report = &reports[seq as usize];

        // The tick span carries the tick's own figures.
        assert_eq!(
            text(&root.attributes, "gamesa.correlation_id"),
            Some(report.correlation.to_string().as_str())
        );
        assert_eq!(
            int(&root.attributes, "gamesa.tick.fills"),
            Some(report.fills.len() as i64)
        );
        assert_eq!(
            int(&root.attributes, "gamesa.tick.vetoes"),
            Some(report.vetoes().count() as i64)
        );

        // Every phase span hangs off the tick span (ingress signals off the rank).
        let names =
            |name: &str| -> Vec<&&Span> { trace.iter().filter(|span| span.name == name).collect() };
        for span in trace.iter().filter(|span| span.name != "gamesa.tick") {
            assert_eq!(
                span.parent_span_id, root.span_id,
                "tick {seq}: `{}` is not a child of the tick span",
                span.name
            );
        }
        assert_eq!(names("sensors.sample").len(), 1);
        assert_eq!(names("scheduler.rank").len(), 1);
        let observed: Vec<&str> = names("agent.observe")
            .iter()
            .map(|span| text(&span.attributes, "gamesa.agent.name").unwrap())
            .collect();
        assert_eq!(
            observed, agents,
            "tick {seq}: one agent.observe per agent, in order"
        );
        let stages: BTreeSet<&str> = names("guardian.check")
            .iter()
            .map(|span| text(&span.attributes, "gamesa.guardian.stage").unwrap())
            .collect();
        assert!(
            stages.contains("admit") && stages.contains("settle"),
            "{stages:?}"
        );

        // Per-resource match spans count the fills the tick reported.
        for span in names("exchange.match") {
            let resource = text(&span.attributes, "gamesa.resource").unwrap();
            let fills = report
                .fills
                .iter()
                .filter(|(fill, _)| fill.resource.as_str() == resource)
                .count();
            assert_eq!(int(&span.attributes, "gamesa.fills"), Some(fills as i64));
            let last_price = report
                .fills
                .iter()
                .filter(|(fill, _)| fill.resource.as_str() == resource)
                .map(|(fill, _)| fill.price.0 as i64)
                .next_back();
            assert_eq!(int(&span.attributes, "gamesa.price.clearing"), last_price);
            let fill_events = span
                .events
                .iter()
                .filter(|event| event.name == "fill")
                .count();
            assert_eq!(fill_events, fills);
        }

        // Each applied actuation shows the device's old and new value.
        let applied: Vec<(String, String, String)> = report
            .actuations
            .iter()
            .filter_map(|record| record.outcome.as_ref()?.as_ref().ok())
            .map(|done| {
                (
                    done.target.clone(),
                    done.previous.clone(),
                    done.current.clone(),
                )
            })
            .collect();
        let traced: Vec<(String, String, String)> = names("actuate")
            .iter()
            .flat_map(|span| span.events.iter())
            .filter(|event| event.name == "actuation")
            .map(|event| {
                (
                    text(&event.attributes, "gamesa.actuation.target")
                        .unwrap()
                        .to_owned(),
                    text(&event.attributes, "gamesa.actuation.old")
                        .unwrap()
                        .to_owned(),
                    text(&event.attributes, "gamesa.actuation.new")
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect();
        assert_eq!(traced, applied, "tick {seq}");

        for span in names("guardian.check") {
            for event in span.events.iter().filter(|event| event.name == "veto") {
                if text(&event.attributes, "gamesa.contract.name") == Some("no_gpu0_raise") {
                    contract_vetoes.push((seq, event.clone()));
                }
            }
        }
    }
    assert_eq!(seen_ticks.len(), TICKS);

    // The forced contract vetoed at least one raise, in exactly the ticks the reports
    // say, with its clause and margin.
    let reported: BTreeSet<i64> = reports
        .iter()
        .filter(|report| {
            report.actuations.iter().any(|record| {
                matches!(&record.verdict, Verdict::Deny { reason: Reason::Contract { failure } }
                    if failure.contract == "no_gpu0_raise")
            })
        })
        .map(|report| report.tick.0 as i64)
        .collect();
    assert!(!reported.is_empty(), "the forced contract never vetoed");
    let traced: BTreeSet<i64> = contract_vetoes.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(traced, reported);
    let (_, veto) = &contract_vetoes[0];
    assert_eq!(
        text(&veto.attributes, "gamesa.contract.clause"),
        Some("gpu0.delta_power_w <= 0")
    );
    assert_eq!(text(&veto.attributes, "gamesa.verdict"), Some("deny"));
    assert_eq!(
        text(&veto.attributes, "gamesa.reason.kind"),
        Some("contract")
    );
    assert_eq!(
        text(&veto.attributes, "gamesa.actuation.target"),
        Some("power.limit:gpu0")
    );
    assert!(matches!(
        attribute(&veto.attributes, "gamesa.contract.margin"),
        Some(Value::DoubleValue(margin)) if *margin < 0.0
    ));
    assert!(
        text(&veto.attributes, "gamesa.reason")
            .unwrap()
            .contains("no_gpu0_raise")
    );
}

#[actix::test]
async fn over_http_metrics_arrive_and_an_ingress_request_links_to_its_tick() {
    let (address, received) = http_receiver();
    let (config, scenario) = traced_config(&format!("http://{address}"), "http/protobuf");
    let telemetry = start_telemetry(&config);
    let subscriber = tracing_subscriber::registry().with(telemetry.layer());
    let guard = tracing::subscriber::set_default(subscriber);
    let registry = builtin();
    let (mut runtime, _twin) = start_on_twin(&config, &scenario, &registry);
    runtime.instrument(&telemetry);
    run_ticks(&mut runtime, 3).await;

    // A client request injects a signal; the next tick takes it in. The ingress server
    // runs on a thread of its own, so its spans are routed to the pipeline.
    let correlation = CorrelationId::from_parts(0xc11e, 42);
    route_requests_to(telemetry.dispatch());
    let (request, link) = std::thread::spawn(move || {
        let request = request_span("bench-client", "inject", "req-1", correlation);
        let link = IngressLink::of(&request, Some(correlation));
        (request, link)
    })
    .join()
    .unwrap();
    route_requests_to(None);
    let signal = Signal {
        kind: SignalKind::new("game_started").unwrap(),
        domain: Domain::Performance,
        strength: Strength::MAX,
        source: AgentId(900),
        ttl_ticks: 2,
        correlation: Some(correlation),
    };
    runtime.inject_linked(signal, link);
    drop(request);
    let taken_in = runtime.tick().await.unwrap();
    run_ticks(&mut runtime, 2).await;
    let decisions = runtime
        .decision_log()
        .query(&gamesa_runtime::telemetry::DecisionQuery {
            correlation: Some(correlation),
            ..Default::default()
        });
    assert!(
        !decisions.is_empty(),
        "the decision log knows nothing of the request"
    );
    assert!(
        decisions
            .iter()
            .all(|decision| decision.tick == taken_in.tick)
    );
    drop(guard);
    telemetry.shutdown().unwrap();

    let received = received.lock().unwrap();
    let spans = &received.spans;
    let request = spans
        .iter()
        .find(|span| span.name == "ingress.request")
        .expect("no ingress.request span");
    assert_eq!(
        text(&request.attributes, "gamesa.client"),
        Some("bench-client")
    );
    assert_eq!(
        text(&request.attributes, "gamesa.request.type"),
        Some("inject")
    );
    let correlation_text = correlation.to_string();
    assert_eq!(
        text(&request.attributes, "gamesa.correlation_id"),
        Some(correlation_text.as_str())
    );
    let tick = spans
        .iter()
        .find(|span| {
            span.name == "gamesa.tick"
                && int(&span.attributes, "gamesa.tick.seq") == Some(taken_in.tick.0 as i64)
        })
        .unwrap();
    assert!(
        tick.links
            .iter()
            .any(|link| link.span_id == request.span_id && link.trace_id == request.trace_id),
        "the tick that took the signal in does not link to the request"
    );
    assert_eq!(
        text(&tick.attributes, "gamesa.ingress.correlation_ids"),
        Some(correlation_text.as_str())
    );
    // Searching the correlation id finds the request and a span inside the tick's trace.
    let found: Vec<&Span> = spans
        .iter()
        .filter(|span| text(&span.attributes, "gamesa.correlation_id") == Some(&correlation_text))
        .collect();
    assert_eq!(
        found.len(),
        2,
        "{:?}",
        found.iter().map(|span| &span.name).collect::<Vec<_>>()
    );
    let signal = found
        .iter()
        .find(|span| span.name == "ingress.signal")
        .unwrap();
    assert_eq!(hex(&signal.trace_id), hex(&tick.trace_id));
    assert!(
        signal
            .links
            .iter()
            .any(|link| link.span_id == request.span_id)
    );

    // Metrics: semantic-convention names with hw.id and hw.type, and gamesa.* figures.
    let names: BTreeSet<&str> = received
        .metrics
        .iter()
        .map(|metric| metric.name.as_str())
        .collect();
    for expected in [
        "hw.temperature",
        "hw.power",
        "hw.energy",
        "hw.gpu.utilization",
        "gamesa.market.price",
        "gamesa.market.volume",
        "gamesa.market.fills",
        "gamesa.market.open_orders",
        "gamesa.guardian.vetoes",
        "gamesa.tick.duration",
        "gamesa.telemetry.dropped_spans",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
    let temperature = received
        .metrics
        .iter()
        .find(|metric| metric.name == "hw.temperature")
        .unwrap();
    let Some(Data::Gauge(gauge)) = &temperature.data else {
        panic!("hw.temperature is not a gauge")
    };
    let ids: BTreeSet<&str> = gauge
        .data_points
        .iter()
        .map(|point| {
            assert!(text(&point.attributes, "hw.type").is_some());
            text(&point.attributes, "hw.id").unwrap()
        })
        .collect();
    assert!(ids.contains("gpu0") && ids.contains("cpu"), "{ids:?}");
}
