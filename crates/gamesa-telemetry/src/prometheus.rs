//! Prometheus exposition of the instruments the OTLP pipeline exports: a pull reader
//! on the same meter provider, collected at each scrape and written in Prometheus's
//! text format (0.0.4) under the OpenTelemetry-to-Prometheus naming rules.
//!
//! The rules (OpenTelemetry's "Prometheus and OpenMetrics compatibility"):
//! - a name's characters outside `[a-zA-Z0-9_:]` become `_`, and runs of `_` collapse
//!   (`hw.power` → `hw_power`);
//! - the unit becomes a suffix (`W` → `_watts`, `Cel` → `_celsius`, `s` → `_seconds`,
//!   `By` → `_bytes`, `J` → `_joules`; `1` on a gauge → `_ratio`); a unit in braces
//!   (`{veto}`) is only an annotation and is dropped;
//! - a monotonic sum is a counter and ends in `_total`; a non-monotonic sum is a gauge;
//! - attribute keys become label names by the same character rule (`hw.id` → `hw_id`);
//! - the resource's attributes go on one `target_info` gauge.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{Arc, Weak},
    time::Duration,
};

use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    metrics::{
        InstrumentKind, ManualReader, Pipeline, Temporality,
        data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics},
        reader::MetricReader,
    },
};

use super::TelemetryError;

/// The `Content-Type` of what [`PrometheusReader::scrape`] returns.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A reader the meter provider collects into when Prometheus scrapes; clones share it.
#[derive(Clone, Default)]
pub struct PrometheusReader {
    reader: Arc<ManualReader>,
}

impl std::fmt::Debug for PrometheusReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrometheusReader")
    }
}

impl MetricReader for PrometheusReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.reader.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.reader.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.reader.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.reader.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        // Prometheus counters are cumulative.
        self.reader.temporality(kind)
    }
}

impl PrometheusReader {
    /// Collects every instrument now (observable callbacks included) and renders it.
    pub fn scrape(&self) -> Result<String, TelemetryError> {
        let mut collected = ResourceMetrics::default();
        self.reader
            .collect(&mut collected)
            .map_err(|error| TelemetryError::Exporter(format!("collecting metrics: {error}")))?;
        Ok(render(&collected))
    }
}

/// One metric family: its type, help, and each point's sample lines by its labels
/// (sorted when written, so a scrape reads the same whatever order points come in).
struct Family {
    kind: &'static str,
    help: String,
    points: Vec<(Vec<(String, String)>, String)>,
}

/// Renders `metrics` in the text format, families in name order.
pub fn render(metrics: &ResourceMetrics) -> String {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let resource: Vec<(String, String)> = metrics
        .resource()
        .iter()
        .map(|(key, value)| (label_name(key.as_str()), value.as_str().into_owned()))
        .collect();
    if !resource.is_empty() {
        let mut samples = String::new();
        sample(&mut samples, "target_info", &resource, &1u64);
        families.insert(
            "target_info".into(),
            Family {
                kind: "gauge",
                help: "Target metadata: the OpenTelemetry resource's attributes.".into(),
                points: vec![(Vec::new(), samples)],
            },
        );
    }
    for scope in metrics.scope_metrics() {
        for metric in scope.metrics() {
            match metric.data() {
                AggregatedMetrics::F64(data) => add(&mut families, metric, data),
                AggregatedMetrics::U64(data) => add(&mut families, metric, data),
                AggregatedMetrics::I64(data) => add(&mut families, metric, data),
            }
        }
    }
    let mut out = String::with_capacity(8 * 1024);
    for (name, family) in &families {
        let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help));
        let _ = writeln!(out, "# TYPE {name} {}", family.kind);
        let mut points: Vec<&(Vec<(String, String)>, String)> = family.points.iter().collect();
        points.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, lines) in points {
            out.push_str(lines);
        }
    }
    out
}

/// A number as the text format writes it.
trait Number {
    fn write(&self, out: &mut String);
}

impl Number for f64 {
    fn write(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

impl Number for u64 {
    fn write(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Number for i64 {
    fn write(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

fn add<T: Number + Copy>(
    families: &mut BTreeMap<String, Family>,
    metric: &Metric,
    data: &MetricData<T>,
) {
    let (kind, counter) = match data {
        MetricData::Gauge(_) => ("gauge", false),
        MetricData::Sum(sum) if sum.is_monotonic() => ("counter", true),
        MetricData::Sum(_) => ("gauge", false),
        MetricData::Histogram(_) => ("histogram", false),
        // No instrument here makes one; Prometheus's text format has no such type.
        MetricData::ExponentialHistogram(_) => return,
    };
    let name = family_name(metric.name(), metric.unit(), kind == "gauge", counter);
    let family = families.entry(name.clone()).or_insert_with(|| Family {
        kind,
        help: metric.description().to_owned(),
        points: Vec::new(),
    });
    let points = &mut family.points;
    let point_of = |labels: Vec<(String, String)>, value: &dyn Number| {
        let mut text = String::new();
        sample(&mut text, &name, &labels, value);
        (labels, text)
    };
    match data {
        MetricData::Gauge(gauge) => {
            for point in gauge.data_points() {
                points.push(point_of(labels(point.attributes()), &point.value()));
            }
        }
        MetricData::Sum(sum) => {
            for point in sum.data_points() {
                points.push(point_of(labels(point.attributes()), &point.value()));
            }
        }
        MetricData::Histogram(histogram) => {
            for point in histogram.data_points() {
                let base = labels(point.attributes());
                let mut text = String::new();
                let out = &mut text;
                let bucket = format!("{name}_bucket");
                let mut cumulative = 0u64;
                let mut counts = point.bucket_counts();
                for bound in point.bounds() {
                    cumulative += counts.next().unwrap_or(0);
                    let mut with_le = base.clone();
                    let mut le = String::new();
                    bound.write(&mut le);
                    with_le.push(("le".into(), le));
                    sample(out, &bucket, &with_le, &cumulative);
                }
                let mut with_le = base.clone();
                with_le.push(("le".into(), "+Inf".into()));
                sample(out, &bucket, &with_le, &point.count());
                sample(out, &format!("{name}_sum"), &base, &point.sum());
                sample(out, &format!("{name}_count"), &base, &point.count());
                points.push((base, text));
            }
        }
        MetricData::ExponentialHistogram(_) => {}
    }
}

/// One sample line: `name{label="value",...} value`.
fn sample<T: Number + ?Sized>(
    out: &mut String,
    name: &str,
    labels: &[(String, String)],
    value: &T,
) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (index, (key, value)) in labels.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{}\"", escape_label(value));
        }
        out.push('}');
    }
    out.push(' ');
    value.write(out);
    out.push('\n');
}

fn labels<'a>(attributes: impl Iterator<Item = &'a KeyValue>) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = attributes
        .map(|pair| (label_name(pair.key.as_str()), value_text(&pair.value)))
        .collect();
    labels.sort();
    labels
}

fn value_text(value: &Value) -> String {
    value.as_str().into_owned()
}

/// The metric name Prometheus sees for an instrument.
pub fn family_name(name: &str, unit: &str, gauge: bool, counter: bool) -> String {
    let mut family = sanitize(name, false);
    if let Some(suffix) = unit_suffix(unit, gauge)
        && !family.ends_with(&format!("_{suffix}"))
    {
        family.push('_');
        family.push_str(suffix);
    }
    if counter && !family.ends_with("_total") {
        family.push_str("_total");
    }
    family
}

/// The suffix a unit (UCUM, as OpenTelemetry's conventions write it) gives a name.
fn unit_suffix(unit: &str, gauge: bool) -> Option<&'static str> {
    Some(match unit {
        "W" => "watts",
        "mW" => "milliwatts",
        "Cel" => "celsius",
        "J" => "joules",
        "s" => "seconds",
        "ms" => "milliseconds",
        "By" => "bytes",
        "Hz" => "hertz",
        "%" => "percent",
        "1" if gauge => "ratio",
        _ => return None,
    })
}

/// A label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn label_name(key: &str) -> String {
    sanitize(key, true)
}

fn sanitize(raw: &str, label: bool) -> String {
    let mut out = String::with_capacity(raw.len() + 1);
    for (index, character) in raw.chars().enumerate() {
        let keep =
            character.is_ascii_alphanumeric() || character == '_' || (!label && character == ':');
        let character = if keep { character } else { '_' };
        if index == 0 && character.is_ascii_digit() {
            out.push('_');
        }
        if character == '_' && out.ends_with('_') {
            continue;
        }
        out.push(character);
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::SdkMeterProvider;

    use super::*;

    #[test]
    fn names_follow_the_opentelemetry_rules() {
        assert_eq!(family_name("hw.power", "W", true, false), "hw_power_watts");
        assert_eq!(
            family_name("hw.temperature", "Cel", true, false),
            "hw_temperature_celsius"
        );
        assert_eq!(
            family_name("hw.energy", "J", false, true),
            "hw_energy_joules_total"
        );
        assert_eq!(
            family_name("gamesa.guardian.vetoes", "{veto}", false, true),
            "gamesa_guardian_vetoes_total"
        );
        assert_eq!(
            family_name("system.cpu.utilization", "1", true, false),
            "system_cpu_utilization_ratio"
        );
        assert_eq!(
            family_name("gamesa.tick.duration", "s", false, false),
            "gamesa_tick_duration_seconds"
        );
        assert_eq!(label_name("hw.id"), "hw_id");
        assert_eq!(label_name("9lives..x"), "_9lives_x");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn a_scrape_renders_gauges_counters_and_histograms_with_help() {
        let reader = PrometheusReader::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(reader.clone())
            .build();
        let meter = provider.meter("test");
        meter
            .f64_observable_gauge("hw.power")
            .with_unit("W")
            .with_description("Power drawn.")
            .with_callback(|observer| {
                observer.observe(
                    41.5,
                    &[
                        KeyValue::new("hw.id", "gpu0"),
                        KeyValue::new("hw.type", "gpu"),
                    ],
                )
            })
            .build();
        meter
            .u64_observable_counter("gamesa.ticks")
            .with_unit("{tick}")
            .with_description("Ticks run.")
            .with_callback(|observer| observer.observe(7, &[]))
            .build();
        let histogram = meter
            .f64_histogram("gamesa.tick.duration")
            .with_unit("s")
            .with_description("Tick time.")
            .with_boundaries(vec![0.001, 0.01])
            .build();
        histogram.record(0.0005, &[]);
        histogram.record(0.005, &[]);
        histogram.record(1.0, &[]);
        let text = reader.scrape().unwrap();
        for line in [
            "# HELP hw_power_watts Power drawn.",
            "# TYPE hw_power_watts gauge",
            "hw_power_watts{hw_id=\"gpu0\",hw_type=\"gpu\"} 41.5",
            "# TYPE gamesa_ticks_total counter",
            "gamesa_ticks_total 7",
            "# TYPE gamesa_tick_duration_seconds histogram",
            "gamesa_tick_duration_seconds_bucket{le=\"0.001\"} 1",
            "gamesa_tick_duration_seconds_bucket{le=\"0.01\"} 2",
            "gamesa_tick_duration_seconds_bucket{le=\"+Inf\"} 3",
            "gamesa_tick_duration_seconds_count 3",
            "gamesa_tick_duration_seconds_sum 1.0055",
        ] {
            assert!(text.lines().any(|got| got == line), "{line}\n---\n{text}");
        }
        // Cumulative: a second scrape counts from the start.
        histogram.record(0.5, &[]);
        let text = reader.scrape().unwrap();
        assert!(
            text.contains("gamesa_tick_duration_seconds_count 4"),
            "{text}"
        );
    }
}
