//! The batch span processor between the tick and the exporter: a bounded queue that
//! never blocks, and a worker thread that exports in batches.
//!
//! A span that finds the queue full, or whose export fails, is dropped and counted in
//! [`ExportStats`]; the worker logs drops at most once per [`WARN_EVERY`].
//!
//! # Invariants
//! - sending (`on_end`, `QueueSender::send_tick`) never blocks and never waits on the
//!   exporter: it only bumps a counter and sends on an unbounded channel whose length
//!   the counter bounds
//! - every span handed to `on_end` is exactly one of: exported, dropped, or still queued
//! - spans ended before a flush or a shutdown are exported (or dropped) before that
//!   call's answer, because the worker reads one FIFO channel

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError, Sender},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::{
    error::{OTelSdkError, OTelSdkResult},
    trace::{RandomIdGenerator, Span, SpanData, SpanProcessor},
};

use super::trace::{TickTrace, TracePool};

/// The shortest time between two warnings about dropped spans.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// Where a batch of spans goes. Runs on the worker thread only.
pub trait SpanSink: Send + 'static {
    fn export(&mut self, batch: Vec<SpanData>) -> Result<(), String>;
    fn shutdown(&mut self) {}
}

/// What became of the spans so far, and of the JSON-lines file's rotations.
#[derive(Debug, Default)]
pub struct ExportStats {
    exported: AtomicU64,
    dropped: AtomicU64,
    failed_exports: AtomicU64,
    rotations: AtomicU64,
    failed_rotations: AtomicU64,
}

impl ExportStats {
    pub fn exported_spans(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }

    /// Spans lost to a full queue or a failed export.
    pub fn dropped_spans(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn failed_exports(&self) -> u64 {
        self.failed_exports.load(Ordering::Relaxed)
    }

    /// Times the JSON-lines file was rotated.
    pub fn rotations(&self) -> u64 {
        self.rotations.load(Ordering::Relaxed)
    }

    /// Rotations of the JSON-lines file that failed (the file was written on).
    pub fn failed_rotations(&self) -> u64 {
        self.failed_rotations.load(Ordering::Relaxed)
    }

    pub(super) fn count_rotation(&self) {
        self.rotations.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_failed_rotation(&self) {
        self.failed_rotations.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    pub capacity: usize,
    pub batch_size: usize,
    pub interval: Duration,
    /// How long `force_flush` waits for the worker.
    pub flush_timeout: Duration,
}

enum Message {
    Span(Box<SpanData>),
    /// A whole tick's spans, still as recorded; built into `SpanData` by the worker.
    Tick(Box<TickTrace>),
    Flush(Sender<()>),
    Shutdown(Sender<()>),
}

/// The sending side of the queue, shared by the span processor and the tick tracer.
#[derive(Debug)]
pub struct QueueSender {
    sender: Mutex<Option<Sender<Message>>>,
    /// Spans sent and not yet taken by the worker: bounds the channel.
    queued: Arc<AtomicUsize>,
    capacity: usize,
    stats: Arc<ExportStats>,
}

impl QueueSender {
    /// Takes `spans` places in the queue and sends; when the queue is full or closed,
    /// counts them dropped and gives the message back.
    fn send(&self, spans: usize, message: Message) -> Result<(), Message> {
        if self.queued.fetch_add(spans, Ordering::AcqRel) + spans > self.capacity {
            self.queued.fetch_sub(spans, Ordering::AcqRel);
            self.stats
                .dropped
                .fetch_add(spans as u64, Ordering::Relaxed);
            return Err(message);
        }
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        let refused = match sender.as_ref() {
            Some(sender) => sender.send(message).err().map(|refused| refused.0),
            None => Some(message),
        };
        drop(sender);
        match refused {
            None => Ok(()),
            Some(message) => {
                self.queued.fetch_sub(spans, Ordering::AcqRel);
                self.stats
                    .dropped
                    .fetch_add(spans as u64, Ordering::Relaxed);
                Err(message)
            }
        }
    }

    /// Queues a finished tick; never blocks. A tick that does not fit is counted as
    /// dropped and handed back, so its buffers can be used again.
    pub fn send_tick(&self, trace: Box<TickTrace>) -> Result<(), Box<TickTrace>> {
        match self.send(trace.len(), Message::Tick(trace)) {
            Err(Message::Tick(trace)) => Err(trace),
            // `send` gives back the message it was handed: nothing else comes back.
            _ => Ok(()),
        }
    }

    fn sender(&self) -> Option<Sender<Message>> {
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sends a control message and waits up to `timeout` for its answer.
    fn control(&self, message: impl FnOnce(Sender<()>) -> Message, timeout: Duration) -> bool {
        let Some(sender) = self.sender() else {
            return false;
        };
        let (answer, answered) = mpsc::channel();
        if sender.send(message(answer)).is_err() {
            return false;
        }
        answered.recv_timeout(timeout).is_ok()
    }

    /// From now on every span is dropped.
    fn close(&self) {
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

#[derive(Debug)]
pub struct QueueProcessor {
    queue: Arc<QueueSender>,
    flush_timeout: Duration,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl QueueProcessor {
    /// Starts the worker thread.
    pub fn start(
        sink: Box<dyn SpanSink>,
        settings: QueueSettings,
        stats: Arc<ExportStats>,
        pool: TracePool,
    ) -> std::io::Result<QueueProcessor> {
        let (sender, receiver) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let worker = Worker {
            receiver,
            sink,
            queued: Arc::clone(&queued),
            stats: Arc::clone(&stats),
            batch: Vec::with_capacity(settings.batch_size),
            batch_size: settings.batch_size.max(1),
            interval: settings.interval,
            ids: RandomIdGenerator::default(),
            pool,
            scope: InstrumentationScope::builder("gamesa")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            warned_at: None,
            warned_dropped: 0,
            last_error: None,
        };
        let handle = std::thread::Builder::new()
            .name("gamesa-span-export".into())
            .spawn(move || worker.run())?;
        Ok(QueueProcessor {
            queue: Arc::new(QueueSender {
                sender: Mutex::new(Some(sender)),
                queued,
                capacity: settings.capacity.max(1),
                stats,
            }),
            flush_timeout: settings.flush_timeout,
            worker: Mutex::new(Some(handle)),
        })
    }

    /// The queue's sending side, for the tick tracer.
    pub fn sender(&self) -> Arc<QueueSender> {
        Arc::clone(&self.queue)
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            // A span that does not fit is counted and dropped.
            let _ = self.queue.send(1, Message::Span(Box::new(span)));
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        if self.queue.control(Message::Flush, self.flush_timeout) {
            Ok(())
        } else {
            Err(OTelSdkError::Timeout(self.flush_timeout))
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let answered = self.queue.control(Message::Shutdown, timeout);
        // No span is accepted after this; a stuck worker is left to finish on its own.
        self.queue.close();
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match (answered, worker) {
            (true, Some(worker)) => {
                let _ = worker.join();
                Ok(())
            }
            (true, None) | (false, None) => Err(OTelSdkError::AlreadyShutdown),
            (false, Some(_detached)) => Err(OTelSdkError::Timeout(timeout)),
        }
    }
}

struct Worker {
    receiver: Receiver<Message>,
    sink: Box<dyn SpanSink>,
    queued: Arc<AtomicUsize>,
    stats: Arc<ExportStats>,
    batch: Vec<SpanData>,
    batch_size: usize,
    interval: Duration,
    ids: RandomIdGenerator,
    pool: TracePool,
    scope: InstrumentationScope,
    warned_at: Option<Instant>,
    warned_dropped: u64,
    last_error: Option<String>,
}

impl Worker {
    fn run(mut self) {
        let mut deadline = Instant::now() + self.interval;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(wait) {
                Ok(Message::Span(span)) => {
                    self.queued.fetch_sub(1, Ordering::AcqRel);
                    self.batch.push(*span);
                    if self.batch.len() >= self.batch_size {
                        self.export();
                        deadline = Instant::now() + self.interval;
                    }
                }
                Ok(Message::Tick(mut trace)) => {
                    self.queued.fetch_sub(trace.len(), Ordering::AcqRel);
                    self.batch.extend(trace.drain_spans(&self.ids, &self.scope));
                    self.pool.give(trace);
                    if self.batch.len() >= self.batch_size {
                        self.export();
                        deadline = Instant::now() + self.interval;
                    }
                }
                Ok(Message::Flush(answer)) => {
                    self.export();
                    let _ = answer.send(());
                }
                Ok(Message::Shutdown(answer)) => {
                    self.export();
                    self.sink.shutdown();
                    self.warn_of_drops(true);
                    let _ = answer.send(());
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.export();
                    deadline = Instant::now() + self.interval;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.export();
                    self.sink.shutdown();
                    return;
                }
            }
        }
    }

    fn export(&mut self) {
        if !self.batch.is_empty() {
            let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(self.batch_size));
            let count = batch.len() as u64;
            match self.sink.export(batch) {
                Ok(()) => {
                    self.stats.exported.fetch_add(count, Ordering::Relaxed);
                }
                Err(error) => {
                    self.stats.dropped.fetch_add(count, Ordering::Relaxed);
                    self.stats.failed_exports.fetch_add(1, Ordering::Relaxed);
                    self.last_error = Some(error);
                }
            }
        }
        self.warn_of_drops(false);
    }

    /// Logs new drops at most once per [`WARN_EVERY`] (and once more at shutdown).
    fn warn_of_drops(&mut self, finally: bool) {
        let dropped = self.stats.dropped_spans();
        let due = self
            .warned_at
            .is_none_or(|at| at.elapsed() >= WARN_EVERY || finally);
        if dropped > self.warned_dropped && due {
            tracing::warn!(
                target: "gamesa_telemetry",
                dropped_spans = dropped,
                since_last_warning = dropped - self.warned_dropped,
                last_error = self.last_error.as_deref().unwrap_or("the export queue was full"),
                "spans were dropped; the tick goes on without waiting for the exporter"
            );
            self.warned_at = Some(Instant::now());
            self.warned_dropped = dropped;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::SyncSender;

    use opentelemetry::{
        InstrumentationScope,
        trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState},
    };
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    use super::*;

    fn span(id: u64) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(u128::from(id) + 1),
                SpanId::from(id + 1),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "test".into(),
            start_time: std::time::SystemTime::now(),
            end_time: std::time::SystemTime::now(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("test").build(),
        }
    }

    /// A sink that blocks until the test lets it go, then fails or succeeds.
    struct Gate {
        release: Receiver<bool>,
        seen: SyncSender<usize>,
    }

    impl SpanSink for Gate {
        fn export(&mut self, batch: Vec<SpanData>) -> Result<(), String> {
            let _ = self.seen.send(batch.len());
            match self.release.recv() {
                Ok(true) => Ok(()),
                _ => Err("collector unreachable".into()),
            }
        }
    }

    fn settings(capacity: usize) -> QueueSettings {
        QueueSettings {
            capacity,
            batch_size: 2,
            interval: Duration::from_secs(3600),
            flush_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn a_stuck_exporter_drops_and_counts_instead_of_blocking() {
        let (release_tx, release) = mpsc::channel();
        let (seen, seen_rx) = mpsc::sync_channel(16);
        let stats = Arc::new(ExportStats::default());
        let processor = QueueProcessor::start(
            Box::new(Gate { release, seen }),
            settings(4),
            stats.clone(),
            TracePool::default(),
        )
        .unwrap();
        // The first batch of two reaches the sink, which now blocks.
        processor.on_end(span(0));
        processor.on_end(span(1));
        assert_eq!(seen_rx.recv().unwrap(), 2);
        // Four more fill the queue; the next six are dropped at once.
        for id in 2..12 {
            processor.on_end(span(id));
        }
        assert_eq!(stats.dropped_spans(), 6);
        // The stuck batch fails: its two spans are dropped too.
        release_tx.send(false).unwrap();
        for _ in 0..2 {
            assert_eq!(seen_rx.recv().unwrap(), 2);
            release_tx.send(true).unwrap();
        }
        processor.force_flush().unwrap();
        assert_eq!(stats.dropped_spans(), 8);
        assert_eq!(stats.exported_spans(), 4);
        assert_eq!(stats.failed_exports(), 1);
        processor.shutdown().unwrap();
        processor.on_end(span(99));
        assert_eq!(stats.dropped_spans(), 9);
    }

    #[test]
    fn flush_and_shutdown_export_what_was_queued() {
        struct Count(Arc<AtomicU64>);
        impl SpanSink for Count {
            fn export(&mut self, batch: Vec<SpanData>) -> Result<(), String> {
                self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
                Ok(())
            }
        }
        let count = Arc::new(AtomicU64::new(0));
        let stats = Arc::new(ExportStats::default());
        let processor = QueueProcessor::start(
            Box::new(Count(count.clone())),
            QueueSettings {
                batch_size: 100,
                ..settings(1000)
            },
            stats.clone(),
            TracePool::default(),
        )
        .unwrap();
        for id in 0..5 {
            processor.on_end(span(id));
        }
        processor.force_flush().unwrap();
        assert_eq!(count.load(Ordering::Relaxed), 5);
        processor.on_end(span(5));
        processor.shutdown().unwrap();
        assert_eq!(count.load(Ordering::Relaxed), 6);
        assert_eq!(stats.dropped_spans(), 0);
        assert!(matches!(
            processor.shutdown(),
            Err(OTelSdkError::AlreadyShutdown)
        ));
    }
}
