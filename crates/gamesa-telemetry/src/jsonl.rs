//! The embedded default when no collector is set: spans and metrics appended to a local
//! file as JSON lines, so `gamesa run` needs no collector and loses nothing.
//!
//! Every line is one JSON object with a `"type"`: `"resource"` (once, when the file is
//! opened), `"span"` or `"metric"`. Ids are lowercase hex, times are Unix nanoseconds.
//!
//! The file is rotated by size (`telemetry.file_max_mb`, `telemetry.file_keep`; see
//! [`super::rotate`]); every file starts with the resource line.
//!
//! # Invariants
//! - a line is written whole and followed by `\n`, never split across two files; each
//!   batch is flushed before export returns, so a crash loses at most the spans still
//!   queued

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use opentelemetry::{
    Array, KeyValue, Value,
    trace::{SpanId, SpanKind, Status},
};
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    metrics::{
        Temporality,
        data::{AggregatedMetrics, MetricData, ResourceMetrics},
        exporter::PushMetricExporter,
    },
    trace::SpanData,
};
use serde::{
    Serialize, Serializer,
    ser::{SerializeMap, SerializeSeq},
};
use serde_json::{Map, Value as Json, json};

use super::{
    TelemetryError,
    queue::ExportStats,
    rotate::{FileRotation, RotatingWriter},
};

/// One open JSON-lines file, shared by the span and the metric exporter.
#[derive(Debug, Clone)]
pub struct JsonLinesFile {
    path: PathBuf,
    writer: Arc<Mutex<RotatingWriter>>,
}

impl JsonLinesFile {
    /// Opens `path` for appending (creating it and its directory) and writes the
    /// resource line; the file is rotated as `rotation` says, counted in `stats`.
    pub fn open(
        path: &Path,
        rotation: FileRotation,
        resource: &Resource,
        stats: Arc<ExportStats>,
    ) -> Result<JsonLinesFile, TelemetryError> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|error| TelemetryError::Directory {
                path: parent.to_owned(),
                reason: error.to_string(),
            })?;
        }
        let cannot = |error: std::io::Error| TelemetryError::File {
            path: path.to_owned(),
            reason: error.to_string(),
        };
        let attributes = resource
            .iter()
            .map(|(key, value)| (key.to_string(), json_value(value)))
            .collect::<Map<_, _>>();
        let header = serde_json::to_vec(&json!({"type": "resource", "attributes": attributes}))
            .map_err(|error| cannot(error.into()))?;
        let mut writer = RotatingWriter::open(path, rotation, &header, stats).map_err(cannot)?;
        writer.flush().map_err(cannot)?;
        Ok(JsonLinesFile {
            path: path.to_owned(),
            writer: Arc::new(Mutex::new(writer)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes each value as one line and flushes.
    pub fn write_lines(&self, lines: impl IntoIterator<Item = Json>) -> Result<(), String> {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        for line in lines {
            writer
                .write_json(&line)
                .map_err(|error| error.to_string())?;
        }
        writer.flush().map_err(|error| error.to_string())
    }

    /// Writes a batch of spans, one line each, straight from the span data.
    pub fn write_spans(&self, batch: &[SpanData]) -> Result<(), String> {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        for span in batch {
            writer
                .write_json(&SpanLine(span))
                .map_err(|error| error.to_string())?;
        }
        writer.flush().map_err(|error| error.to_string())
    }
}

/// One span as a JSON object: `type`, ids, `name`, `kind`, times, `status`,
/// `attributes`, `events`, `links` and `scope`.
struct SpanLine<'a>(&'a SpanData);

impl Serialize for SpanLine<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let span = self.0;
        let mut line = serializer.serialize_map(None)?;
        line.serialize_entry("type", "span")?;
        line.serialize_entry("trace_id", &Hex(&span.span_context.trace_id()))?;
        line.serialize_entry("span_id", &Hex(&span.span_context.span_id()))?;
        if span.parent_span_id == SpanId::INVALID {
            line.serialize_entry("parent_span_id", &())?;
        } else {
            line.serialize_entry("parent_span_id", &Hex(&span.parent_span_id))?;
        }
        line.serialize_entry("name", &span.name)?;
        line.serialize_entry(
            "kind",
            match span.span_kind {
                SpanKind::Client => "client",
                SpanKind::Server => "server",
                SpanKind::Producer => "producer",
                SpanKind::Consumer => "consumer",
                SpanKind::Internal => "internal",
            },
        )?;
        line.serialize_entry("start_unix_nano", &unix_nanos(span.start_time))?;
        line.serialize_entry("end_unix_nano", &unix_nanos(span.end_time))?;
        match &span.status {
            Status::Unset => line.serialize_entry("status", "unset")?,
            Status::Ok => line.serialize_entry("status", "ok")?,
            Status::Error { description } => {
                line.serialize_entry("status", "error")?;
                line.serialize_entry("status_message", description.as_ref())?;
            }
        }
        line.serialize_entry("attributes", &Attributes(&span.attributes))?;
        line.serialize_entry("events", &Events(&span.events.events))?;
        line.serialize_entry("links", &Links(&span.links.links))?;
        line.serialize_entry("scope", span.instrumentation_scope.name())?;
        line.end()
    }
}

/// An id in lowercase hex, as its `Display` writes it.
struct Hex<'a, T>(&'a T);

impl<T: std::fmt::Display> Serialize for Hex<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

struct Attributes<'a>(&'a [KeyValue]);

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for pair in self.0 {
            map.serialize_entry(pair.key.as_str(), &AttributeValue(&pair.value))?;
        }
        map.end()
    }
}

struct AttributeValue<'a>(&'a Value);

impl Serialize for AttributeValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Bool(value) => serializer.serialize_bool(*value),
            Value::I64(value) => serializer.serialize_i64(*value),
            Value::F64(value) if value.is_finite() => serializer.serialize_f64(*value),
            Value::String(value) => serializer.serialize_str(value.as_str()),
            Value::Array(Array::Bool(values)) => values.serialize(serializer),
            Value::Array(Array::I64(values)) => values.serialize(serializer),
            Value::Array(Array::F64(values)) => values.serialize(serializer),
            Value::Array(Array::String(values)) => {
                serializer.collect_seq(values.iter().map(|value| value.as_str()))
            }
            other => serializer.collect_str(other),
        }
    }
}

struct Events<'a>(&'a [opentelemetry::trace::Event]);

impl Serialize for Events<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut list = serializer.serialize_seq(Some(self.0.len()))?;
        for event in self.0 {
            list.serialize_element(&EventLine(event))?;
        }
        list.end()
    }
}

struct EventLine<'a>(&'a opentelemetry::trace::Event);

impl Serialize for EventLine<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("name", &self.0.name)?;
        map.serialize_entry("time_unix_nano", &unix_nanos(self.0.timestamp))?;
        map.serialize_entry("attributes", &Attributes(&self.0.attributes))?;
        map.end()
    }
}

struct Links<'a>(&'a [opentelemetry::trace::Link]);

impl Serialize for Links<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut list = serializer.serialize_seq(Some(self.0.len()))?;
        for link in self.0 {
            list.serialize_element(&LinkLine(link))?;
        }
        list.end()
    }
}

struct LinkLine<'a>(&'a opentelemetry::trace::Link);

impl Serialize for LinkLine<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("trace_id", &Hex(&self.0.span_context.trace_id()))?;
        map.serialize_entry("span_id", &Hex(&self.0.span_context.span_id()))?;
        map.serialize_entry("attributes", &Attributes(&self.0.attributes))?;
        map.end()
    }
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn attributes(list: &[KeyValue]) -> Map<String, Json> {
    list.iter()
        .map(|pair| (pair.key.to_string(), json_value(&pair.value)))
        .collect()
}

fn json_value(value: &Value) -> Json {
    match value {
        Value::Bool(value) => Json::Bool(*value),
        Value::I64(value) => Json::from(*value),
        Value::F64(value) => serde_json::Number::from_f64(*value)
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(value.to_string())),
        Value::String(value) => Json::String(value.to_string()),
        Value::Array(Array::Bool(values)) => json!(values),
        Value::Array(Array::I64(values)) => json!(values),
        Value::Array(Array::F64(values)) => json!(values),
        Value::Array(Array::String(values)) => {
            Json::Array(values.iter().map(|v| Json::String(v.to_string())).collect())
        }
        other => Json::String(other.to_string()),
    }
}

/// Metrics to the same file: one line per metric and export.
#[derive(Debug, Clone)]
pub struct JsonLinesMetricExporter {
    file: JsonLinesFile,
}

impl JsonLinesMetricExporter {
    pub fn new(file: JsonLinesFile) -> JsonLinesMetricExporter {
        JsonLinesMetricExporter { file }
    }
}

fn points<T: Copy + Into<Json>>(data: &MetricData<T>) -> (&'static str, Vec<Json>) {
    match data {
        MetricData::Gauge(gauge) => (
            "gauge",
            gauge
                .data_points()
                .map(|point| {
                    json!({
                        "attributes": attributes(&point.attributes().cloned().collect::<Vec<_>>()),
                        "value": point.value().into(),
                    })
                })
                .collect(),
        ),
        MetricData::Sum(sum) => (
            if sum.is_monotonic() { "counter" } else { "sum" },
            sum.data_points()
                .map(|point| {
                    json!({
                        "attributes": attributes(&point.attributes().cloned().collect::<Vec<_>>()),
                        "value": point.value().into(),
                    })
                })
                .collect(),
        ),
        MetricData::Histogram(histogram) => (
            "histogram",
            histogram
                .data_points()
                .map(|point| {
                    json!({
                        "attributes": attributes(&point.attributes().cloned().collect::<Vec<_>>()),
                        "count": point.count(),
                        "sum": point.sum().into(),
                        "min": point.min().map(Into::into),
                        "max": point.max().map(Into::into),
                        "bounds": point.bounds().collect::<Vec<_>>(),
                        "bucket_counts": point.bucket_counts().collect::<Vec<_>>(),
                    })
                })
                .collect(),
        ),
        MetricData::ExponentialHistogram(histogram) => (
            "exponential_histogram",
            histogram
                .data_points()
                .map(|point| json!({"count": point.count(), "sum": point.sum().into()}))
                .collect(),
        ),
    }
}

impl PushMetricExporter for JsonLinesMetricExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let time = unix_nanos(SystemTime::now());
        let mut lines = Vec::new();
        for scope in metrics.scope_metrics() {
            for metric in scope.metrics() {
                let (kind, points) = match metric.data() {
                    AggregatedMetrics::F64(data) => points(data),
                    AggregatedMetrics::U64(data) => points(data),
                    AggregatedMetrics::I64(data) => points(data),
                };
                lines.push(json!({
                    "type": "metric",
                    "name": metric.name(),
                    "unit": metric.unit(),
                    "kind": kind,
                    "time_unix_nano": time,
                    "points": points,
                }));
            }
        }
        self.file
            .write_lines(lines)
            .map_err(OTelSdkError::InternalFailure)
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotate::rotated_path;

    /// The span and the metric exporter write from two threads at once: every line of
    /// every file is whole JSON, each file opens with the resource line, and each
    /// writer's lines keep their order across the files.
    #[test]
    fn two_writers_rotate_one_file_without_splitting_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/trace.jsonl");
        let stats = Arc::new(ExportStats::default());
        let rotation = FileRotation {
            max_bytes: 2_000,
            keep: 100,
        };
        let resource = Resource::builder_empty().with_service_name("t").build();
        let file = JsonLinesFile::open(&path, rotation, &resource, Arc::clone(&stats)).unwrap();
        let writers: Vec<_> = ["span", "metric"]
            .into_iter()
            .map(|kind| {
                let file = file.clone();
                std::thread::spawn(move || {
                    for n in 0..200 {
                        let lines = (0..3).map(|i| json!({"type": kind, "n": n * 3 + i}));
                        file.write_lines(lines).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        assert!(stats.rotations() > 10, "{}", stats.rotations());
        assert_eq!(stats.failed_rotations(), 0);
        let mut files: Vec<PathBuf> = (1..=100)
            .rev()
            .map(|n| rotated_path(&path, n))
            .filter(|rotated| rotated.exists())
            .collect();
        files.push(path.clone());
        let mut next = [0, 0];
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(
                text.len() as u64 <= rotation.max_bytes,
                "{}",
                file.display()
            );
            let lines: Vec<Json> = text
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect();
            assert_eq!(lines[0]["type"], "resource");
            assert_eq!(lines[0]["attributes"]["service.name"], "t");
            for line in &lines[1..] {
                let writer = usize::from(line["type"] == "metric");
                assert_eq!(line["n"], next[writer]);
                next[writer] += 1;
            }
        }
        assert_eq!(next, [600, 600]);
    }
}
