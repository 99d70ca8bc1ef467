//! Resolving `[telemetry]` and the standard `OTEL_*` variables into one settings value;
//! a variable that is set wins over the config, and a malformed one is an error that
//! names it (`gamesa` exits 78 before anything starts). A relative `telemetry.file` is
//! placed under the state directory ([`gamesa_config::state_dir`]).
//!
//! The environment comes in as an argument, so resolution is pure and testable.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use gamesa_config::{OtlpProtocol, SamplerName, TelemetryConfig};

use gamesa_config::state_dir;

use super::{TelemetryError, rotate::FileRotation};

/// Bytes in the MiB of `telemetry.file_max_mb`.
const MIB: u64 = 1024 * 1024;

/// Header lists read by the OTLP exporter itself; checked here so a malformed one is
/// reported rather than skipped.
const HEADER_VARIABLES: [&str; 3] = [
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
];

/// Where spans and metrics go.
#[derive(Debug, Clone, PartialEq)]
pub enum Destination {
    /// Nothing is produced.
    Off,
    /// JSON lines, one span or metric per line, appended to a local file (its path
    /// resolved: absolute, or under the state directory).
    File(PathBuf),
    /// An OTLP collector.
    Otlp {
        protocol: OtlpProtocol,
        /// The full URL spans are sent to (`.../v1/traces` for HTTP).
        traces_endpoint: String,
        /// The full URL metrics are sent to (`.../v1/metrics` for HTTP).
        metrics_endpoint: String,
    },
}

/// Everything the export pipeline needs, after the environment was applied.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetrySettings {
    pub destination: Destination,
    pub service_name: String,
    /// Resource attributes besides `service.name`, in key order.
    pub resource_attributes: BTreeMap<String, String>,
    pub sampler: SamplerName,
    pub sampler_arg: f64,
    pub queue_size: usize,
    pub batch_size: usize,
    pub export_interval: Duration,
    pub export_timeout: Duration,
    pub metrics_interval: Duration,
    /// When the JSON-lines file is rotated (used with [`Destination::File`]).
    pub file_rotation: FileRotation,
}

impl TelemetrySettings {
    /// The settings of `config` with the `OTEL_*` variables of `env` applied, and a
    /// relative `file` placed under the state directory that `env` names.
    pub fn resolve(
        config: &TelemetryConfig,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<TelemetrySettings, TelemetryError> {
        let env: BTreeMap<String, String> = env
            .into_iter()
            .filter(|(name, value)| {
                (name.starts_with("OTEL_") || state_dir::STATE_VARIABLES.contains(&name.as_str()))
                    && !value.trim().is_empty()
            })
            .map(|(name, value)| (name, value.trim().to_owned()))
            .collect();
        let var = |name: &str| env.get(name).map(String::as_str);

        let disabled = match var("OTEL_SDK_DISABLED") {
            Some(value) => parse_bool("OTEL_SDK_DISABLED", value)?,
            None => false,
        };

        let protocol = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .map(|value| ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", value))
            .or_else(|| {
                var("OTEL_EXPORTER_OTLP_PROTOCOL")
                    .map(|value| ("OTEL_EXPORTER_OTLP_PROTOCOL", value))
            }) {
            Some((variable, value)) => parse_protocol(variable, value)?,
            None => config.protocol,
        };

        let base = var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .map(|endpoint| check_url("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint))
            .transpose()?
            .or_else(|| {
                config
                    .endpoint
                    .clone()
                    .filter(|endpoint| !endpoint.is_empty())
            });
        let signal_endpoint = |variable: &str, path: &str| -> Option<String> {
            var(variable)
                .map(str::to_owned)
                .or_else(|| base.as_deref().map(|base| signal_url(base, protocol, path)))
        };
        let traces_endpoint = signal_endpoint("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "v1/traces");
        let metrics_endpoint = signal_endpoint("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "v1/metrics");
        for (variable, endpoint) in [
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &traces_endpoint),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &metrics_endpoint),
        ] {
            if let Some(endpoint) = endpoint {
                check_url(variable, endpoint)?;
            }
        }
        for variable in HEADER_VARIABLES {
            if let Some(list) = var(variable) {
                parse_key_values(variable, list)?;
            }
        }

        let destination = if disabled || !config.enabled {
            Destination::Off
        } else {
            match (traces_endpoint, metrics_endpoint) {
                (Some(traces_endpoint), Some(metrics_endpoint)) => Destination::Otlp {
                    protocol,
                    traces_endpoint,
                    metrics_endpoint,
                },
                (Some(traces_endpoint), None) => Destination::Otlp {
                    protocol,
                    metrics_endpoint: traces_endpoint.clone(),
                    traces_endpoint,
                },
                (None, _) => Destination::File(state_dir::resolve_file(&config.file, var)?),
            }
        };

        let mut resource_attributes: BTreeMap<String, String> = config
            .resource_attributes
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        if let Some(list) = var("OTEL_RESOURCE_ATTRIBUTES") {
            resource_attributes.extend(parse_key_values("OTEL_RESOURCE_ATTRIBUTES", list)?);
        }
        let listed_name = resource_attributes.remove("service.name");
        let service_name = var("OTEL_SERVICE_NAME")
            .map(str::to_owned)
            .or(listed_name)
            .unwrap_or_else(|| config.service_name.clone());

        let sampler = match var("OTEL_TRACES_SAMPLER") {
            Some(value) => parse_sampler(value)?,
            None => config.sampler,
        };
        let sampler_arg = match var("OTEL_TRACES_SAMPLER_ARG") {
            Some(value) => value
                .parse::<f64>()
                .ok()
                .filter(|ratio| (0.0..=1.0).contains(ratio))
                .ok_or_else(|| TelemetryError::Env {
                    variable: "OTEL_TRACES_SAMPLER_ARG".into(),
                    message: format!("`{value}` is not a ratio between 0 and 1"),
                })?,
            None => config.sampler_arg,
        };
        let export_timeout_ms = match var("OTEL_EXPORTER_OTLP_TIMEOUT") {
            Some(value) => value
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .ok_or_else(|| TelemetryError::Env {
                    variable: "OTEL_EXPORTER_OTLP_TIMEOUT".into(),
                    message: format!("`{value}` is not a positive number of milliseconds"),
                })?,
            None => config.export_timeout_ms,
        };

        Ok(TelemetrySettings {
            destination,
            service_name,
            resource_attributes,
            sampler,
            sampler_arg,
            queue_size: config.queue_size.max(1),
            batch_size: config.batch_size.clamp(1, config.queue_size.max(1)),
            export_interval: Duration::from_millis(config.export_interval_ms.max(1)),
            export_timeout: Duration::from_millis(export_timeout_ms.max(1)),
            metrics_interval: Duration::from_secs(config.metrics_interval_s.max(1)),
            file_rotation: FileRotation {
                max_bytes: config.file_max_mb.max(1).saturating_mul(MIB),
                keep: config.file_keep.max(1),
            },
        })
    }
}

fn check_url(variable: &str, endpoint: &str) -> Result<String, TelemetryError> {
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        Ok(endpoint.to_owned())
    } else {
        Err(TelemetryError::Env {
            variable: variable.to_owned(),
            message: format!("`{endpoint}` is not an http:// or https:// URL"),
        })
    }
}

/// gRPC takes the base URL as it is; HTTP appends the signal's path to it.
fn signal_url(base: &str, protocol: OtlpProtocol, path: &str) -> String {
    match protocol {
        OtlpProtocol::Grpc => base.to_owned(),
        OtlpProtocol::HttpProtobuf => format!("{}/{path}", base.trim_end_matches('/')),
    }
}

fn parse_bool(variable: &str, value: &str) -> Result<bool, TelemetryError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(TelemetryError::Env {
            variable: variable.to_owned(),
            message: format!("`{value}` is neither true nor false"),
        }),
    }
}

fn parse_protocol(variable: &str, value: &str) -> Result<OtlpProtocol, TelemetryError> {
    match value {
        "grpc" => Ok(OtlpProtocol::Grpc),
        "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
        _ => Err(TelemetryError::Env {
            variable: variable.to_owned(),
            message: format!("`{value}` is not supported (grpc, http/protobuf)"),
        }),
    }
}

fn parse_sampler(value: &str) -> Result<SamplerName, TelemetryError> {
    Ok(match value {
        "always_on" => SamplerName::AlwaysOn,
        "always_off" => SamplerName::AlwaysOff,
        "traceidratio" => SamplerName::TraceIdRatio,
        "parentbased_always_on" => SamplerName::ParentbasedAlwaysOn,
        "parentbased_always_off" => SamplerName::ParentbasedAlwaysOff,
        "parentbased_traceidratio" => SamplerName::ParentbasedTraceIdRatio,
        _ => {
            return Err(TelemetryError::Env {
                variable: "OTEL_TRACES_SAMPLER".into(),
                message: format!(
                    "`{value}` is not supported (always_on, always_off, traceidratio, \
                     parentbased_always_on, parentbased_always_off, parentbased_traceidratio)"
                ),
            });
        }
    })
}

/// `key1=value1,key2=value2`, with `%XX` escapes in values (W3C baggage octets), as
/// `OTEL_RESOURCE_ATTRIBUTES` and the `OTEL_EXPORTER_OTLP_*HEADERS` take them.
fn parse_key_values(variable: &str, list: &str) -> Result<Vec<(String, String)>, TelemetryError> {
    list.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let invalid = |message: String| TelemetryError::Env {
                variable: variable.to_owned(),
                message,
            };
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| invalid(format!("`{pair}` is not key=value")))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(invalid(format!("`{pair}` has an empty key")));
            }
            let value = percent_decode(value.trim())
                .ok_or_else(|| invalid(format!("`{value}` has a malformed %-escape")))?;
            Ok((key.to_owned(), value))
        })
        .collect()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn without_an_endpoint_spans_go_to_the_file_under_the_state_directory() {
        let settings = TelemetrySettings::resolve(
            &TelemetryConfig::default(),
            env(&[("HOME", "/home/u"), ("STATE_DIRECTORY", "/var/lib/gamesa")]),
        )
        .unwrap();
        assert_eq!(
            settings.destination,
            Destination::File(PathBuf::from("/var/lib/gamesa/gamesa-trace.jsonl"))
        );
        assert_eq!(settings.service_name, "gamesa");
        assert_eq!(
            settings.file_rotation,
            FileRotation {
                max_bytes: 64 * 1024 * 1024,
                keep: 3
            }
        );
    }

    #[test]
    fn a_relative_file_without_a_state_directory_is_an_error_but_only_when_used() {
        let error = TelemetrySettings::resolve(&TelemetryConfig::default(), env(&[])).unwrap_err();
        assert!(matches!(error, TelemetryError::NoStateDirectory { .. }));
        let absolute = TelemetryConfig {
            file: PathBuf::from("/tmp/trace.jsonl"),
            ..TelemetryConfig::default()
        };
        assert_eq!(
            TelemetrySettings::resolve(&absolute, env(&[]))
                .unwrap()
                .destination,
            Destination::File(PathBuf::from("/tmp/trace.jsonl"))
        );
        let collector = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]);
        assert!(TelemetrySettings::resolve(&TelemetryConfig::default(), collector).is_ok());
    }

    #[test]
    fn the_timeout_variable_wins_over_the_config() {
        let settings = TelemetrySettings::resolve(
            &TelemetryConfig::default(),
            env(&[("HOME", "/h"), ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")]),
        )
        .unwrap();
        assert_eq!(settings.export_timeout, Duration::from_millis(2500));
    }

    #[test]
    fn the_environment_wins_over_the_config() {
        let config = TelemetryConfig {
            endpoint: Some("http://config:4317".into()),
            protocol: OtlpProtocol::Grpc,
            service_name: "from-config".into(),
            resource_attributes: [("deployment.environment".to_owned(), "lab".to_owned())].into(),
            ..TelemetryConfig::default()
        };
        let settings = TelemetrySettings::resolve(
            &config,
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_SERVICE_NAME", "node-7"),
                ("OTEL_RESOURCE_ATTRIBUTES", "host.name=rig%201,team=perf"),
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
                ("GAMESA__TELEMETRY__ENDPOINT", "ignored here"),
            ]),
        )
        .unwrap();
        assert_eq!(
            settings.destination,
            Destination::Otlp {
                protocol: OtlpProtocol::HttpProtobuf,
                traces_endpoint: "http://collector:4318/v1/traces".into(),
                metrics_endpoint: "http://collector:4318/v1/metrics".into(),
            }
        );
        assert_eq!(settings.service_name, "node-7");
        assert_eq!(settings.resource_attributes["host.name"], "rig 1");
        assert_eq!(
            settings.resource_attributes["deployment.environment"],
            "lab"
        );
        assert_eq!(settings.sampler, SamplerName::TraceIdRatio);
        assert_eq!(settings.sampler_arg, 0.5);
    }

    #[test]
    fn grpc_keeps_the_endpoint_and_signal_variables_are_taken_as_they_are() {
        let config = TelemetryConfig {
            endpoint: Some("http://127.0.0.1:4317".into()),
            protocol: OtlpProtocol::Grpc,
            ..TelemetryConfig::default()
        };
        let settings = TelemetrySettings::resolve(&config, env(&[])).unwrap();
        assert!(matches!(
            &settings.destination,
            Destination::Otlp { traces_endpoint, .. } if traces_endpoint == "http://127.0.0.1:4317"
        ));
        let settings = TelemetrySettings::resolve(
            &TelemetryConfig::default(),
            env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://x:1/custom")]),
        )
        .unwrap();
        assert!(matches!(
            &settings.destination,
            Destination::Otlp { traces_endpoint, metrics_endpoint, .. }
                if traces_endpoint == "http://x:1/custom" && metrics_endpoint == "http://x:1/custom"
        ));
    }

    #[test]
    fn disabled_by_config_or_by_the_sdk_variable() {
        let off = TelemetryConfig {
            enabled: false,
            ..TelemetryConfig::default()
        };
        assert_eq!(
            TelemetrySettings::resolve(&off, env(&[]))
                .unwrap()
                .destination,
            Destination::Off
        );
        let settings = TelemetrySettings::resolve(
            &TelemetryConfig::default(),
            env(&[("OTEL_SDK_DISABLED", "true")]),
        )
        .unwrap();
        assert_eq!(settings.destination, Destination::Off);
    }

    #[test]
    fn bad_variables_are_errors_that_name_them() {
        for (variable, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "bogus"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ("OTEL_TRACES_SAMPLER_ARG", "abc"),
            ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
            ("OTEL_RESOURCE_ATTRIBUTES", "a=%zz"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4317"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "collector:4317"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "=secret"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "a=b,c"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "-1"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "0"),
            ("OTEL_SDK_DISABLED", "maybe"),
        ] {
            let error = TelemetrySettings::resolve(
                &TelemetryConfig::default(),
                env(&[("HOME", "/home/u"), (variable, value)]),
            )
            .unwrap_err();
            assert!(
                matches!(&error, TelemetryError::Env { variable: named, .. } if named == variable),
                "{variable}: {error}"
            );
            assert!(error.to_string().contains(variable), "{error}");
        }
    }
}
