//! The `[telemetry]` table: where traces and metrics go, how they are sampled, and how
//! much the runtime keeps in memory for them. The standard `OTEL_*` variables win over
//! it (see `telemetry::settings`).

use std::{collections::BTreeMap, path::PathBuf};

use serde::{Deserialize, Serialize};

use super::validate::Invalid;

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (collector port 4317).
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP over HTTP with protobuf bodies (collector port 4318).
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

/// The sampler names of `OTEL_TRACES_SAMPLER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplerName {
    AlwaysOn,
    AlwaysOff,
    #[serde(rename = "traceidratio")]
    TraceIdRatio,
    ParentbasedAlwaysOn,
    ParentbasedAlwaysOff,
    #[serde(rename = "parentbased_traceidratio")]
    ParentbasedTraceIdRatio,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `false`: no spans and no metrics are produced (the decision log still records).
    pub enabled: bool,
    /// The collector's base URL, such as `http://localhost:4317`. Unset: spans and
    /// metrics are written as JSON lines to `file`.
    pub endpoint: Option<String>,
    pub protocol: OtlpProtocol,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// More resource attributes, such as `"deployment.environment" = "lab"`.
    pub resource_attributes: BTreeMap<String, String>,
    pub sampler: SamplerName,
    /// The ratio of the `traceidratio` samplers, 0 to 1.
    pub sampler_arg: f64,
    /// The JSON-lines file used when no endpoint is set; `gamesa run` takes a relative
    /// path from the config file's directory.
    pub file: PathBuf,
    /// Finished spans waiting for export; when it is full, new spans are dropped and
    /// counted, so the tick never waits on the exporter.
    pub queue_size: usize,
    /// Spans per export request.
    pub batch_size: usize,
    /// The longest a finished span waits before it is exported, in milliseconds.
    pub export_interval_ms: u64,
    /// How long one export request may take before it is abandoned, in milliseconds.
    pub export_timeout_ms: u64,
    /// Seconds between metric exports.
    pub metrics_interval_s: u64,
    /// Ticks of allocation decisions kept in memory for queries (0: none).
    pub decision_log_ticks: usize,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            enabled: true,
            endpoint: None,
            protocol: OtlpProtocol::HttpProtobuf,
            service_name: "gamesa".to_owned(),
            resource_attributes: BTreeMap::new(),
            sampler: SamplerName::ParentbasedAlwaysOn,
            sampler_arg: 1.0,
            file: PathBuf::from("gamesa-trace.jsonl"),
            queue_size: 8192,
            batch_size: 512,
            export_interval_ms: 1000,
            export_timeout_ms: 10_000,
            metrics_interval_s: 10,
            decision_log_ticks: 256,
        }
    }
}

/// Ranges serde cannot express; each failure names its key.
pub fn validate_telemetry(config: &TelemetryConfig) -> Result<(), Invalid> {
    let invalid = |key: &str, message: String| Err((format!("telemetry.{key}"), message));
    if let Some(endpoint) = &config.endpoint
        && !endpoint.is_empty()
        && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
    {
        return invalid(
            "endpoint",
            format!("`{endpoint}` is not an http:// or https:// URL"),
        );
    }
    if !(0.0..=1.0).contains(&config.sampler_arg) {
        return invalid(
            "sampler_arg",
            format!("{} is not a ratio between 0 and 1", config.sampler_arg),
        );
    }
    if config.queue_size == 0 {
        return invalid("queue_size", "must be at least 1".into());
    }
    if config.batch_size == 0 || config.batch_size > config.queue_size {
        return invalid(
            "batch_size",
            format!(
                "{} must be between 1 and queue_size ({})",
                config.batch_size, config.queue_size
            ),
        );
    }
    if config.export_interval_ms == 0 {
        return invalid("export_interval_ms", "must be at least 1".into());
    }
    if config.export_timeout_ms == 0 {
        return invalid("export_timeout_ms", "must be at least 1".into());
    }
    if config.metrics_interval_s == 0 {
        return invalid("metrics_interval_s", "must be at least 1".into());
    }
    if config.file.as_os_str().is_empty() {
        return invalid("file", "must name a file".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_otel_variables() {
        let config: TelemetryConfig = toml::from_str(
            "protocol = \"grpc\"\nsampler = \"parentbased_traceidratio\"\nsampler_arg = 0.25\n",
        )
        .unwrap();
        assert_eq!(config.protocol, OtlpProtocol::Grpc);
        assert_eq!(config.sampler, SamplerName::ParentbasedTraceIdRatio);
        let http: TelemetryConfig = toml::from_str("protocol = \"http/protobuf\"\n").unwrap();
        assert_eq!(http.protocol, OtlpProtocol::HttpProtobuf);
        assert!(toml::from_str::<TelemetryConfig>("protocol = \"http/json\"\n").is_err());
    }

    #[test]
    fn bad_ranges_name_their_key() {
        let mut config = TelemetryConfig {
            sampler_arg: 2.0,
            ..TelemetryConfig::default()
        };
        assert_eq!(
            validate_telemetry(&config).unwrap_err().0,
            "telemetry.sampler_arg"
        );
        config.sampler_arg = 1.0;
        config.endpoint = Some("localhost:4317".into());
        assert_eq!(
            validate_telemetry(&config).unwrap_err().0,
            "telemetry.endpoint"
        );
        config.endpoint = None;
        config.batch_size = config.queue_size + 1;
        assert_eq!(
            validate_telemetry(&config).unwrap_err().0,
            "telemetry.batch_size"
        );
        assert!(validate_telemetry(&TelemetryConfig::default()).is_ok());
    }
}
