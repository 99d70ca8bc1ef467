//! The installed export pipeline: tracer and meter providers, the span queue, the OTLP
//! runtime or the JSON-lines file, and the `tracing` layer that feeds them.
//!
//! Nothing here is global: `gamesa run` installs [`Telemetry::layer`] in its subscriber,
//! tests install it for one thread, and [`Telemetry::shutdown`] flushes what is queued.

use std::{sync::Arc, time::Duration};

use opentelemetry::{KeyValue, metrics::MeterProvider as _, trace::TracerProvider as _};
use opentelemetry_sdk::{
    Resource,
    metrics::{MeterProviderBuilder, PeriodicReader, SdkMeterProvider},
    resource::TelemetryResourceDetector,
    trace::{Sampler, SdkTracer, SdkTracerProvider},
};
use tracing::{Level, Subscriber};
use tracing_subscriber::{Layer, filter::Targets, layer::SubscriberExt as _, registry::LookupSpan};

use super::{
    TelemetryError,
    jsonl::{JsonLinesFile, JsonLinesMetricExporter},
    metrics::TickMetrics,
    otlp::{OtlpMetricExporter, OtlpSpanSink, export_runtime},
    prometheus::PrometheusReader,
    queue::{ExportStats, QueueProcessor, QueueSettings, SpanSink},
    settings::{Destination, TelemetrySettings},
    trace::TracePool,
    tracer::{TickSampler, TickTracer},
};
use gamesa_config::SamplerName;

/// How long shutdown waits for the last export beyond the export timeout.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

fn with_prometheus(
    builder: MeterProviderBuilder,
    prometheus: Option<&PrometheusReader>,
) -> MeterProviderBuilder {
    match prometheus {
        Some(reader) => builder.with_reader(reader.clone()),
        None => builder,
    }
}

fn sampler(name: SamplerName, ratio: f64) -> Sampler {
    match name {
        SamplerName::AlwaysOn => Sampler::AlwaysOn,
        SamplerName::AlwaysOff => Sampler::AlwaysOff,
        SamplerName::TraceIdRatio => Sampler::TraceIdRatioBased(ratio),
        SamplerName::ParentbasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        SamplerName::ParentbasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        SamplerName::ParentbasedTraceIdRatio => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
        }
    }
}

fn resource(settings: &TelemetrySettings) -> Resource {
    Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_attributes(
            settings
                .resource_attributes
                .iter()
                .map(|(key, value)| KeyValue::new(key.clone(), value.clone())),
        )
        .with_service_name(settings.service_name.clone())
        .build()
}

struct FileSink(JsonLinesFile);

impl SpanSink for FileSink {
    fn export(&mut self, batch: Vec<opentelemetry_sdk::trace::SpanData>) -> Result<(), String> {
        self.0.write_spans(&batch)
    }
}

/// A running export pipeline (or none, when telemetry is off).
pub struct Telemetry {
    settings: TelemetrySettings,
    tracer: Option<(SdkTracerProvider, SdkTracer)>,
    tick_tracer: Option<TickTracer>,
    meter_provider: Option<SdkMeterProvider>,
    metrics: Option<TickMetrics>,
    stats: Arc<ExportStats>,
    /// Drives the OTLP clients; shut down last, after both providers flushed.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("destination", &self.settings.destination)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Starts exporting as `settings` say. May be called inside a tokio runtime; it
    /// starts its own threads and never runs on the caller's runtime.
    pub fn start(settings: &TelemetrySettings) -> Result<Telemetry, TelemetryError> {
        Telemetry::start_with(settings, None)
    }

    /// As [`Telemetry::start`], with `prometheus` as a second reader of every
    /// instrument: it collects when `/metrics` is scraped, whatever the destination,
    /// and the instruments exist even with export off.
    pub fn start_with(
        settings: &TelemetrySettings,
        prometheus: Option<&PrometheusReader>,
    ) -> Result<Telemetry, TelemetryError> {
        let stats = Arc::new(ExportStats::default());
        let resource = resource(settings);
        let queue = QueueSettings {
            capacity: settings.queue_size,
            batch_size: settings.batch_size,
            interval: settings.export_interval,
            flush_timeout: settings.export_timeout + SHUTDOWN_GRACE,
        };
        let (sink, meter_provider, runtime): (Box<dyn SpanSink>, SdkMeterProvider, _) =
            match &settings.destination {
                Destination::Off => {
                    if let Some(prometheus) = prometheus {
                        let meter_provider = SdkMeterProvider::builder()
                            .with_resource(resource)
                            .with_reader(prometheus.clone())
                            .build();
                        let metrics = TickMetrics::new(&meter_provider.meter("gamesa"));
                        return Ok(Telemetry {
                            settings: settings.clone(),
                            tracer: None,
                            tick_tracer: None,
                            meter_provider: Some(meter_provider),
                            metrics: Some(metrics),
                            stats,
                            runtime: None,
                        });
                    }
                    return Ok(Telemetry {
                        settings: settings.clone(),
                        tracer: None,
                        tick_tracer: None,
                        meter_provider: None,
                        metrics: None,
                        stats,
                        runtime: None,
                    });
                }
                Destination::File(path) => {
                    let file = JsonLinesFile::open(
                        path,
                        settings.file_rotation,
                        &resource,
                        Arc::clone(&stats),
                    )?;
                    let reader =
                        PeriodicReader::builder(JsonLinesMetricExporter::new(file.clone()))
                            .with_interval(settings.metrics_interval)
                            .build();
                    let meters = with_prometheus(
                        SdkMeterProvider::builder()
                            .with_resource(resource.clone())
                            .with_reader(reader),
                        prometheus,
                    )
                    .build();
                    (Box::new(FileSink(file)), meters, None)
                }
                Destination::Otlp {
                    protocol,
                    traces_endpoint,
                    metrics_endpoint,
                } => {
                    let runtime = export_runtime()?;
                    let sink = OtlpSpanSink::new(
                        &runtime,
                        *protocol,
                        traces_endpoint,
                        settings.export_timeout,
                        &resource,
                    )?;
                    let exporter = OtlpMetricExporter::new(
                        &runtime,
                        *protocol,
                        metrics_endpoint,
                        settings.export_timeout,
                    )?;
                    let reader = PeriodicReader::builder(exporter)
                        .with_interval(settings.metrics_interval)
                        .build();
                    let meters = with_prometheus(
                        SdkMeterProvider::builder()
                            .with_resource(resource.clone())
                            .with_reader(reader),
                        prometheus,
                    )
                    .build();
                    (Box::new(sink), meters, Some(runtime))
                }
            };
        let pool = TracePool::default();
        let processor = QueueProcessor::start(sink, queue, Arc::clone(&stats), pool.clone())
            .map_err(|error| TelemetryError::Exporter(format!("cannot start: {error}")))?;
        let tick_tracer = TickTracer::new(
            TickSampler::new(sampler(settings.sampler, settings.sampler_arg)),
            processor.sender(),
            pool,
        );
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource)
            .with_sampler(sampler(settings.sampler, settings.sampler_arg))
            .with_max_events_per_span(1024)
            .build();
        let tracer = provider.tracer("gamesa");

        let meter = meter_provider.meter("gamesa");
        let metrics = TickMetrics::new(&meter);
        let counted = Arc::clone(&stats);
        meter
            .u64_observable_counter("gamesa.telemetry.dropped_spans")
            .with_unit("{span}")
            .with_description(
                "Spans dropped because the export queue was full or an export failed.",
            )
            .with_callback(move |observer| observer.observe(counted.dropped_spans(), &[]))
            .build();
        let counted = Arc::clone(&stats);
        meter
            .u64_observable_counter("gamesa.telemetry.exported_spans")
            .with_unit("{span}")
            .with_description("Spans exported.")
            .with_callback(move |observer| observer.observe(counted.exported_spans(), &[]))
            .build();
        if matches!(settings.destination, Destination::File(_)) {
            let counted = Arc::clone(&stats);
            meter
                .u64_observable_counter("gamesa.telemetry.failed_rotations")
                .with_unit("{rotation}")
                .with_description(
                    "Rotations of the JSON-lines file that failed; its lines went on into \
                     the current file.",
                )
                .with_callback(move |observer| observer.observe(counted.failed_rotations(), &[]))
                .build();
        }

        Ok(Telemetry {
            settings: settings.clone(),
            tracer: Some((provider, tracer)),
            tick_tracer: Some(tick_tracer),
            meter_provider: Some(meter_provider),
            metrics: Some(metrics),
            stats,
            runtime,
        })
    }

    /// No export at all.
    pub fn off() -> Telemetry {
        Telemetry {
            settings: TelemetrySettings {
                destination: Destination::Off,
                service_name: String::new(),
                resource_attributes: Default::default(),
                sampler: SamplerName::AlwaysOff,
                sampler_arg: 0.0,
                queue_size: 1,
                batch_size: 1,
                export_interval: Duration::from_secs(1),
                export_timeout: Duration::from_secs(1),
                metrics_interval: Duration::from_secs(1),
                file_rotation: super::FileRotation {
                    max_bytes: u64::MAX,
                    keep: 1,
                },
            },
            tracer: None,
            tick_tracer: None,
            meter_provider: None,
            metrics: None,
            stats: Arc::default(),
            runtime: None,
        }
    }

    pub fn destination(&self) -> &Destination {
        &self.settings.destination
    }

    /// The `tracing` layer (`tracing-opentelemetry`) for spans made with `tracing`,
    /// such as `ingress.request`; `None` when telemetry is off. Only `gamesa*` targets
    /// reach it, so the export clients' own spans never feed back into the export.
    /// The tick's own trace does not go through `tracing` (see `telemetry::trace`).
    pub fn layer<S>(&self) -> Option<impl Layer<S> + use<S>>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        let (_, tracer) = self.tracer.as_ref()?;
        Some(
            tracing_opentelemetry::layer()
                .with_tracer(tracer.clone())
                .with_location(false)
                .with_threads(false)
                .with_tracked_inactivity(false)
                .with_target(false)
                .with_filter(Targets::new().with_target("gamesa", Level::DEBUG)),
        )
    }

    /// What records each tick's trace (`None` when telemetry is off).
    pub fn tick_tracer(&self) -> Option<TickTracer> {
        self.tick_tracer.clone()
    }

    /// A subscriber with only [`Telemetry::layer`], for spans made on threads the
    /// daemon's subscriber does not cover (see `ingress::route_requests_to`).
    pub fn dispatch(&self) -> Option<tracing::Dispatch> {
        self.layer()
            .map(|layer| tracing::Dispatch::new(tracing_subscriber::registry().with(layer)))
    }

    /// The instruments the conductor records into (`None` when telemetry is off).
    pub fn metrics(&self) -> Option<TickMetrics> {
        self.metrics.clone()
    }

    /// Exported and dropped span counts.
    pub fn stats(&self) -> Arc<ExportStats> {
        Arc::clone(&self.stats)
    }

    /// Exports every span ended so far and collects metrics once.
    pub fn force_flush(&self) -> Result<(), TelemetryError> {
        if let Some((provider, _)) = &self.tracer {
            provider
                .force_flush()
                .map_err(|error| TelemetryError::Flush(error.to_string()))?;
        }
        if let Some(meters) = &self.meter_provider {
            meters
                .force_flush()
                .map_err(|error| TelemetryError::Flush(error.to_string()))?;
        }
        Ok(())
    }

    /// Flushes and stops: spans still queued are exported (or counted as dropped when
    /// the collector does not answer within the export timeout).
    pub fn shutdown(mut self) -> Result<(), TelemetryError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), TelemetryError> {
        let timeout = self.settings.export_timeout + SHUTDOWN_GRACE;
        let mut result = Ok(());
        if let Some(meters) = self.meter_provider.take()
            && let Err(error) = meters.shutdown_with_timeout(timeout)
        {
            result = Err(TelemetryError::Flush(format!("metrics: {error}")));
        }
        if let Some((provider, _)) = self.tracer.take()
            && let Err(error) = provider.shutdown_with_timeout(timeout)
        {
            result = Err(TelemetryError::Flush(format!("spans: {error}")));
        }
        if let Some(runtime) = self.runtime.take() {
            // Never blocks, so it is safe inside another runtime (actix's).
            runtime.shutdown_background();
        }
        result
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
