//! The `[telemetry]` table: where traces and metrics go, how they are sampled, and how
//! much the runtime keeps in memory for them. The standard `OTEL_*` variables win over
//! it (see `telemetry::settings`).

use std::{collections::BTreeMap, path::PathBuf};

use serde::{Deserialize, Serialize};

use super::Invalid;

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
    /// The JSON-lines file used when no endpoint is set. A relative path is taken from
    /// the state directory ([`crate::state_dir`]); an absolute one is used as it is.
    pub file: PathBuf,
    /// The file is rotated before a line would take it past this many MiB.
    pub file_max_mb: u64,
    /// Rotated files kept (`FILE.1`, the newest, to `FILE.<file_keep>`); older ones are
    /// deleted.
    pub file_keep: u32,
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
            file_max_mb: 64,
            file_keep: 3,
            queue_size: 8192,
            batch_size: 512,
            export_interval_ms: 1000,
            export_timeout_ms: 10_000,
            metrics_interval_s: 10,
            decision_log_ticks: 256,
        }
    }
}

/// `telemetry.file_max_mb`: at least 1 MiB, at most 64 GiB.
pub const FILE_MAX_MB_RANGE: std::ops::RangeInclusive<u64> = 1..=65_536;

/// `telemetry.file_keep`: at least one rotated file, at most 100.
pub const FILE_KEEP_RANGE: std::ops::RangeInclusive<u32> = 1..=100;

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
    if !FILE_MAX_MB_RANGE.contains(&config.file_max_mb) {
        return invalid(
            "file_max_mb",
            format!(
                "{} is out of range ({}..={} MiB)",
                config.file_max_mb,
                FILE_MAX_MB_RANGE.start(),
                FILE_MAX_MB_RANGE.end()
            ),
        );
    }
    if !FILE_KEEP_RANGE.contains(&config.file_keep) {
        return invalid(
            "file_keep",
            format!(
                "{} is out of range ({}..={} rotated files)",
                config.file_keep,
                FILE_KEEP_RANGE.start(),
                FILE_KEEP_RANGE.end()
            ),
        );
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

    #[test]
    fn rotation_keys_default_and_reject_zero_or_absurd_values() {
        let config: TelemetryConfig = toml::from_str("file_max_mb = 8\nfile_keep = 5\n").unwrap();
        assert_eq!((config.file_max_mb, config.file_keep), (8, 5));
        let defaults = TelemetryConfig::default();
        assert_eq!((defaults.file_max_mb, defaults.file_keep), (64, 3));
        for (key, edit) in [
            ("telemetry.file_max_mb", "file_max_mb = 0"),
            ("telemetry.file_max_mb", "file_max_mb = 65537"),
            ("telemetry.file_keep", "file_keep = 0"),
            ("telemetry.file_keep", "file_keep = 101"),
        ] {
            let config: TelemetryConfig = toml::from_str(edit).unwrap();
            let (named, message) = validate_telemetry(&config).unwrap_err();
            assert_eq!(named, key, "{edit}");
            assert!(message.contains("out of range"), "{edit}: {message}");
        }
        assert!(toml::from_str::<TelemetryConfig>("file_keep = -1").is_err());
    }
}
