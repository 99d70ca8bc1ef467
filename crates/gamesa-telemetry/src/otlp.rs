//! OTLP export over gRPC (tonic) or HTTP/protobuf (hyper), driven by a small private
//! tokio runtime so that neither the tick nor actix ever polls an export.

use std::time::Duration;

use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    metrics::{Temporality, data::ResourceMetrics, exporter::PushMetricExporter},
    trace::{SpanData, SpanExporter as _},
};
use tokio::runtime::{Handle, Runtime};

use super::{TelemetryError, queue::SpanSink};
use gamesa_config::OtlpProtocol;

/// The runtime every OTLP client runs on: one worker thread, so connections are
/// driven even between exports.
pub fn export_runtime() -> Result<Runtime, TelemetryError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("gamesa-otlp")
        .enable_all()
        .build()
        .map_err(|error| TelemetryError::Exporter(format!("cannot start its runtime: {error}")))
}

fn protocol(protocol: OtlpProtocol) -> Protocol {
    match protocol {
        OtlpProtocol::Grpc => Protocol::Grpc,
        OtlpProtocol::HttpProtobuf => Protocol::HttpBinary,
    }
}

fn build_error(error: impl std::fmt::Display) -> TelemetryError {
    TelemetryError::Exporter(error.to_string())
}

/// Spans to a collector.
#[derive(Debug)]
pub struct OtlpSpanSink {
    exporter: opentelemetry_otlp::SpanExporter,
    runtime: Handle,
    timeout: Duration,
}

impl OtlpSpanSink {
    pub fn new(
        runtime: &Runtime,
        transport: OtlpProtocol,
        endpoint: &str,
        timeout: Duration,
        resource: &Resource,
    ) -> Result<OtlpSpanSink, TelemetryError> {
        // tonic spawns its connection task when the channel is built.
        let _entered = runtime.enter();
        let builder = opentelemetry_otlp::SpanExporter::builder();
        let mut exporter = match transport {
            OtlpProtocol::Grpc => builder
                .with_tonic()
                .with_endpoint(endpoint)
                .with_timeout(timeout)
                .build(),
            OtlpProtocol::HttpProtobuf => builder
                .with_http()
                .with_protocol(protocol(transport))
                .with_endpoint(endpoint)
                .with_timeout(timeout)
                .build(),
        }
        .map_err(build_error)?;
        exporter.set_resource(resource);
        Ok(OtlpSpanSink {
            exporter,
            runtime: runtime.handle().clone(),
            timeout,
        })
    }
}

impl SpanSink for OtlpSpanSink {
    fn export(&mut self, batch: Vec<SpanData>) -> Result<(), String> {
        let export = self.exporter.export(batch);
        match self
            .runtime
            .block_on(async { tokio::time::timeout(self.timeout, export).await })
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }

    fn shutdown(&mut self) {
        let _ = self.exporter.shutdown();
    }
}

/// Metrics to a collector; exports run on the private runtime, whichever thread the
/// SDK's periodic reader calls from.
#[derive(Debug)]
pub struct OtlpMetricExporter {
    exporter: opentelemetry_otlp::MetricExporter,
    runtime: Handle,
    timeout: Duration,
}

impl OtlpMetricExporter {
    pub fn new(
        runtime: &Runtime,
        transport: OtlpProtocol,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<OtlpMetricExporter, TelemetryError> {
        let _entered = runtime.enter();
        let builder =
            opentelemetry_otlp::MetricExporter::builder().with_temporality(Temporality::Cumulative);
        let exporter = match transport {
            OtlpProtocol::Grpc => builder
                .with_tonic()
                .with_endpoint(endpoint)
                .with_timeout(timeout)
                .build(),
            OtlpProtocol::HttpProtobuf => builder
                .with_http()
                .with_protocol(protocol(transport))
                .with_endpoint(endpoint)
                .with_timeout(timeout)
                .build(),
        }
        .map_err(build_error)?;
        Ok(OtlpMetricExporter {
            exporter,
            runtime: runtime.handle().clone(),
            timeout,
        })
    }
}

impl PushMetricExporter for OtlpMetricExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let export = self.exporter.export(metrics);
        match self
            .runtime
            .block_on(async { tokio::time::timeout(self.timeout, export).await })
        {
            Ok(result) => result,
            Err(_) => Err(OTelSdkError::Timeout(self.timeout)),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.exporter.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.exporter.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.exporter.temporality()
    }
}
