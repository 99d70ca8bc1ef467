//! Observability: an OpenTelemetry trace of every tick and decision, metrics under the
//! semantic-convention names, and a decision log that can be queried.
//!
//! - [`settings`]: `[telemetry]` and the `OTEL_*` variables, resolved (the variables win);
//! - [`pipeline`]: the export pipeline ([`Telemetry`]) and its `tracing` layer;
//! - [`queue`]: the batch processor that never blocks the tick and counts what it drops;
//! - [`otlp`] and [`jsonl`]: export to a collector, or to a local JSON-lines file;
//! - [`rotate`]: the JSON-lines file's writer, which rotates it by size;
//! - [`trace`]: the trace of one tick, recorded as plain data and built into spans on
//!   the export thread;
//! - [`tracer`]: which ticks are traced, and the hand-over of their traces to export;
//! - [`spans`]: the span tree of a tick, built from the engine's output;
//! - [`metrics`]: the instruments;
//! - [`decision`]: the decision log;
//! - [`ingress`]: the hook that links a client request to the tick that acts on it;
//! - [`recorder`]: what the conductor keeps for all of the above between ticks.
//!
//! The pure crates know nothing of this: telemetry reads the engine's `TickOutput`
//! after the tick, so it never changes a decision.
//! `docs/observability.md` lists every span, attribute and metric.

pub mod decision;
pub mod ingress;
pub mod jsonl;
pub mod metrics;
pub mod otlp;
pub mod pipeline;
pub mod prometheus;
pub mod queue;
pub mod recorder;
pub mod rotate;
pub mod settings;
pub mod spans;
pub mod trace;
pub mod tracer;

use std::path::PathBuf;

pub use decision::{Decision, DecisionLog, DecisionQuery};
pub use ingress::{IngressLink, request_span, route_requests_to, traceparent};
pub use metrics::{FleetFigures, TickMetrics};
pub use pipeline::Telemetry;
pub use prometheus::PrometheusReader;
pub use queue::ExportStats;
pub use recorder::TickRecorder;
pub use rotate::FileRotation;
pub use settings::{Destination, TelemetrySettings};
pub use trace::TickTrace;
pub use tracer::TickTracer;

/// Telemetry could not start or flush. Telemetry never stops the runtime once it runs.
///
/// [`TelemetryError::Env`] and [`TelemetryError::NoStateDirectory`] come from
/// [`TelemetrySettings::resolve`]: the configuration is unusable (`gamesa` exits 78).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelemetryError {
    #[error("environment variable `{variable}`: {message}")]
    Env { variable: String, message: String },
    #[error(
        "telemetry.file `{file}` is relative and no state directory is known: set \
         STATE_DIRECTORY, XDG_STATE_HOME or HOME, or make the path absolute"
    )]
    NoStateDirectory { file: PathBuf },
    #[error("trace file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("trace file directory {path}: cannot create it: {reason}")]
    Directory { path: PathBuf, reason: String },
    #[error("OTLP exporter: {0}")]
    Exporter(String),
    #[error("flushing telemetry: {0}")]
    Flush(String),
}

impl From<gamesa_config::state_dir::NoStateDirectory> for TelemetryError {
    fn from(error: gamesa_config::state_dir::NoStateDirectory) -> TelemetryError {
        TelemetryError::NoStateDirectory { file: error.file }
    }
}
