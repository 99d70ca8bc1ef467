//! The trace of one tick, recorded on the tick's thread as plain data and turned into
//! OpenTelemetry spans on the export thread.
//!
//! Recording a phase costs a clock read and a push; ids, `KeyValue`s and `SpanData`
//! are built off the tick by [`TickTrace::into_spans`]. This is what keeps tracing
//! within a few per cent of the tick: the same tree built through `tracing` and
//! `tracing-opentelemetry` costs more than the tick itself (see
//! `docs/observability.md`, "Cost").
//!
//! # Invariants
//! - span 0 is the tick's root span; every other span's parent is an earlier span
//! - a span that was begun and never ended ends when the tick's root ends

use std::{
    borrow::Cow,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime},
};

use gamesa_guardian::Reason;
use gamesa_proto::{Actuation, CorrelationId, Intent};
use opentelemetry::{
    InstrumentationScope, Key, KeyValue, StringValue, Value,
    trace::{Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState},
};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SpanData, SpanEvents, SpanLinks};

/// One attribute value, as cheap to record as the value allows.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    I64(i64),
    F64(f64),
    Bool(bool),
    Static(&'static str),
    Text(String),
    Shared(Arc<str>),
    /// Formatted on the export thread, like the two below.
    Correlation(CorrelationId),
    Reason(Box<Reason>),
    Actuation(Box<Actuation>),
    /// Written in words (`bid 5000 power_budget_mw at 114`).
    Intent(Box<Intent>),
}

impl From<i64> for AttrValue {
    fn from(value: i64) -> Self {
        AttrValue::I64(value)
    }
}

impl From<u64> for AttrValue {
    fn from(value: u64) -> Self {
        AttrValue::I64(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<u32> for AttrValue {
    fn from(value: u32) -> Self {
        AttrValue::I64(i64::from(value))
    }
}

impl From<i32> for AttrValue {
    fn from(value: i32) -> Self {
        AttrValue::I64(i64::from(value))
    }
}

impl From<u16> for AttrValue {
    fn from(value: u16) -> Self {
        AttrValue::I64(i64::from(value))
    }
}

impl From<usize> for AttrValue {
    fn from(value: usize) -> Self {
        AttrValue::I64(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<f64> for AttrValue {
    fn from(value: f64) -> Self {
        AttrValue::F64(value)
    }
}

impl From<bool> for AttrValue {
    fn from(value: bool) -> Self {
        AttrValue::Bool(value)
    }
}

impl From<&'static str> for AttrValue {
    fn from(value: &'static str) -> Self {
        AttrValue::Static(value)
    }
}

impl From<Arc<str>> for AttrValue {
    fn from(value: Arc<str>) -> Self {
        AttrValue::Shared(value)
    }
}

impl From<String> for AttrValue {
    fn from(value: String) -> Self {
        AttrValue::Text(value)
    }
}

impl From<AttrValue> for Value {
    fn from(value: AttrValue) -> Self {
        match value {
            AttrValue::I64(value) => Value::I64(value),
            AttrValue::F64(value) => Value::F64(value),
            AttrValue::Bool(value) => Value::Bool(value),
            AttrValue::Static(value) => Value::String(StringValue::from(value)),
            AttrValue::Text(value) => Value::String(StringValue::from(value)),
            AttrValue::Shared(value) => Value::String(StringValue::from(value)),
            AttrValue::Correlation(value) => Value::String(StringValue::from(value.to_string())),
            AttrValue::Reason(value) => Value::String(StringValue::from(value.to_string())),
            AttrValue::Actuation(value) => Value::String(StringValue::from(value.to_string())),
            AttrValue::Intent(value) => Value::String(StringValue::from(value.to_string())),
        }
    }
}

/// Attributes in the order they were recorded.
pub type Attributes = Vec<(&'static str, AttrValue)>;

/// A span of the tick, by position. [`Phase::NONE`] stands for "not traced", so
/// callers need not check whether the tick is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase(u32);

impl Phase {
    pub const NONE: Phase = Phase(u32::MAX);
    pub const ROOT: Phase = Phase(0);
}

#[derive(Debug, Clone)]
struct SpanRecord {
    name: &'static str,
    parent: Phase,
    start: Duration,
    end: Option<Duration>,
    error: Option<String>,
}

#[derive(Debug, Clone)]
struct EventRecord {
    phase: Phase,
    name: &'static str,
    /// Its attributes are `event_attributes[first..first + count]`.
    first: u32,
    count: u32,
}

/// The spans of one tick, relative to its start, in flat vectors that keep their
/// capacity from tick to tick (the export thread hands emptied traces back).
#[derive(Debug, Clone)]
pub struct TickTrace {
    trace_id: TraceId,
    started_at: SystemTime,
    origin: Instant,
    spans: Vec<SpanRecord>,
    attributes: Vec<(Phase, &'static str, AttrValue)>,
    events: Vec<EventRecord>,
    event_attributes: Vec<(&'static str, AttrValue)>,
    links: Vec<(Phase, SpanContext)>,
}

impl TickTrace {
    /// A trace whose root span `root` starts now.
    pub fn new(trace_id: TraceId, root: &'static str) -> TickTrace {
        let mut trace = TickTrace {
            trace_id,
            started_at: SystemTime::now(),
            origin: Instant::now(),
            spans: Vec::with_capacity(32),
            attributes: Vec::with_capacity(128),
            events: Vec::with_capacity(32),
            event_attributes: Vec::with_capacity(256),
            links: Vec::new(),
        };
        trace.restart(trace_id, root);
        trace
    }

    /// Empties the trace and starts its root span now, keeping every buffer.
    pub(super) fn restart(&mut self, trace_id: TraceId, root: &'static str) {
        self.trace_id = trace_id;
        self.started_at = SystemTime::now();
        self.origin = Instant::now();
        self.spans.clear();
        self.attributes.clear();
        self.events.clear();
        self.event_attributes.clear();
        self.links.clear();
        self.spans.push(SpanRecord {
            name: root,
            parent: Phase::NONE,
            start: Duration::ZERO,
            end: None,
            error: None,
        });
    }

    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// How many spans the tick has so far.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn exists(&self, phase: Phase) -> bool {
        (phase.0 as usize) < self.spans.len()
    }

    /// Starts a child of `parent` now.
    pub fn begin(&mut self, name: &'static str, parent: Phase) -> Phase {
        let index = u32::try_from(self.spans.len()).unwrap_or(u32::MAX);
        self.spans.push(SpanRecord {
            name,
            parent,
            start: self.origin.elapsed(),
            end: None,
            error: None,
        });
        Phase(index)
    }

    /// Starts a child of `parent` at `at` (a moment before the trace began counts as
    /// its start).
    pub fn begin_at(&mut self, name: &'static str, parent: Phase, at: Instant) -> Phase {
        let phase = self.begin(name, parent);
        if let Some(span) = self.spans.get_mut(phase.0 as usize) {
            span.start = at.saturating_duration_since(self.origin);
        }
        phase
    }

    /// Ends `phase` now (once; later calls change nothing).
    pub fn end(&mut self, phase: Phase) {
        self.end_at(phase, Instant::now());
    }

    /// Ends `phase` at `at` (once; later calls change nothing).
    pub fn end_at(&mut self, phase: Phase, at: Instant) {
        let offset = at.saturating_duration_since(self.origin);
        if let Some(span) = self.spans.get_mut(phase.0 as usize)
            && span.end.is_none()
        {
            span.end = Some(offset);
        }
    }

    pub fn attr(&mut self, phase: Phase, key: &'static str, value: impl Into<AttrValue>) {
        if self.exists(phase) {
            self.attributes.push((phase, key, value.into()));
        }
    }

    /// Records an attribute when there is a value.
    pub fn attr_opt<T: Into<AttrValue>>(
        &mut self,
        phase: Phase,
        key: &'static str,
        value: Option<T>,
    ) {
        if let Some(value) = value {
            self.attr(phase, key, value);
        }
    }

    /// Records an event on `phase`; [`TickTrace::event_attr`] adds to it. Events are
    /// recorded as their phase ends, so they carry its end time (a clock read per
    /// event would cost more than the event).
    pub fn event(
        &mut self,
        phase: Phase,
        name: &'static str,
        attributes: impl IntoIterator<Item = (&'static str, AttrValue)>,
    ) {
        if !self.exists(phase) {
            return;
        }
        let first = u32::try_from(self.event_attributes.len()).unwrap_or(u32::MAX);
        self.event_attributes.extend(attributes);
        let count = u32::try_from(self.event_attributes.len()).unwrap_or(u32::MAX) - first;
        self.events.push(EventRecord {
            phase,
            name,
            first,
            count,
        });
    }

    /// Adds an attribute to the last event recorded.
    pub fn event_attr(&mut self, key: &'static str, value: impl Into<AttrValue>) {
        if let Some(event) = self.events.last_mut()
            && (event.first + event.count) as usize == self.event_attributes.len()
        {
            self.event_attributes.push((key, value.into()));
            event.count += 1;
        }
    }

    pub fn link(&mut self, phase: Phase, context: SpanContext) {
        if self.exists(phase) {
            self.links.push((phase, context));
        }
    }

    /// Marks `phase` failed (`otel.status_code = ERROR`).
    pub fn error(&mut self, phase: Phase, description: String) {
        if let Some(span) = self.spans.get_mut(phase.0 as usize) {
            span.error = Some(description);
        }
    }

    /// The OpenTelemetry spans of the tick, the root last (the order spans end in);
    /// leaves the trace empty with its buffers. Runs on the export thread.
    pub fn drain_spans(
        &mut self,
        ids: &RandomIdGenerator,
        scope: &InstrumentationScope,
    ) -> Vec<SpanData> {
        let root_end = self
            .spans
            .first()
            .and_then(|root| root.end)
            .unwrap_or_default();
        let span_ids: Vec<SpanId> = self.spans.iter().map(|_| ids.new_span_id()).collect();
        let started_at = self.started_at;
        let at = |offset: Duration| started_at + offset;
        let mut attributes: Vec<Vec<KeyValue>> = self.spans.iter().map(|_| Vec::new()).collect();
        for (phase, key, value) in self.attributes.drain(..) {
            if let Some(list) = attributes.get_mut(phase.0 as usize) {
                list.push(KeyValue::new(Key::from_static_str(key), Value::from(value)));
            }
        }
        let mut event_attributes = self.event_attributes.drain(..);
        let mut events: Vec<SpanEvents> =
            self.spans.iter().map(|_| SpanEvents::default()).collect();
        let ends: Vec<Duration> = self
            .spans
            .iter()
            .map(|span| span.end.unwrap_or(root_end).max(span.start))
            .collect();
        for event in self.events.drain(..) {
            let time = at(ends
                .get(event.phase.0 as usize)
                .copied()
                .unwrap_or(root_end));
            let list: Vec<KeyValue> = event_attributes
                .by_ref()
                .take(event.count as usize)
                .map(|(key, value)| KeyValue::new(Key::from_static_str(key), Value::from(value)))
                .collect();
            if let Some(span_events) = events.get_mut(event.phase.0 as usize) {
                span_events
                    .events
                    .push(Event::new(event.name, time, list, 0));
            }
        }
        drop(event_attributes);
        let mut links: Vec<SpanLinks> = self.spans.iter().map(|_| SpanLinks::default()).collect();
        for (phase, context) in self.links.drain(..) {
            if let Some(span_links) = links.get_mut(phase.0 as usize) {
                span_links.links.push(Link::with_context(context));
            }
        }
        let mut spans: Vec<SpanData> = self
            .spans
            .drain(..)
            .zip(attributes.into_iter().zip(events.into_iter().zip(links)))
            .enumerate()
            .map(
                |(index, (record, (attributes, (events, links))))| SpanData {
                    span_context: SpanContext::new(
                        self.trace_id,
                        span_ids[index],
                        TraceFlags::SAMPLED,
                        false,
                        TraceState::default(),
                    ),
                    parent_span_id: span_ids
                        .get(record.parent.0 as usize)
                        .copied()
                        .unwrap_or(SpanId::INVALID),
                    parent_span_is_remote: false,
                    span_kind: SpanKind::Internal,
                    name: Cow::Borrowed(record.name),
                    start_time: at(record.start),
                    end_time: at(record.end.unwrap_or(root_end).max(record.start)),
                    attributes,
                    dropped_attributes_count: 0,
                    events,
                    links,
                    status: match record.error {
                        Some(description) => Status::error(description),
                        None => Status::Unset,
                    },
                    instrumentation_scope: scope.clone(),
                },
            )
            .collect();
        // Children end before their parents: export the root last, as a live tracer would.
        spans.rotate_left(1);
        spans
    }
}

/// Emptied traces on their way back from the export thread, so a tick in steady
/// state allocates nothing for its trace but the text of its attributes.
#[derive(Debug, Clone, Default)]
pub struct TracePool {
    // Boxed on purpose: a trace travels the export queue as a `Box`, and keeping the
    // box saves an allocation per tick.
    #[allow(clippy::vec_box)]
    free: Arc<Mutex<Vec<Box<TickTrace>>>>,
}

impl TracePool {
    const KEEP: usize = 8;

    pub(super) fn take(&self) -> Option<Box<TickTrace>> {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    /// Takes back an emptied trace (or drops it when enough are waiting).
    pub fn give(&self, trace: Box<TickTrace>) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < Self::KEEP {
            free.push(trace);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_become_a_tree_of_spans_under_the_tick() {
        let mut trace = TickTrace::new(TraceId::from(7u128), "gamesa.tick");
        let rank = trace.begin("scheduler.rank", Phase::ROOT);
        let signal = trace.begin("ingress.signal", rank);
        trace.attr(signal, "gamesa.correlation_id", "abc");
        trace.end(signal);
        trace.event(rank, "veto", [("gamesa.reason", AttrValue::Static("why"))]);
        trace.event_attr("gamesa.agent.id", 3u32);
        trace.end(rank);
        trace.attr(Phase::NONE, "ignored", 1u64);
        trace.end(Phase::ROOT);
        let scope = InstrumentationScope::builder("test").build();
        let spans = trace.drain_spans(&RandomIdGenerator::default(), &scope);
        let names: Vec<&str> = spans.iter().map(|span| span.name.as_ref()).collect();
        assert_eq!(names, ["scheduler.rank", "ingress.signal", "gamesa.tick"]);
        let root = &spans[2];
        assert_eq!(root.parent_span_id, SpanId::INVALID);
        assert_eq!(spans[0].parent_span_id, root.span_context.span_id());
        assert_eq!(spans[1].parent_span_id, spans[0].span_context.span_id());
        assert!(
            spans
                .iter()
                .all(|span| span.span_context.trace_id() == TraceId::from(7u128))
        );
        let veto = &spans[0].events.events[0];
        assert_eq!(veto.name, "veto");
        assert_eq!(veto.attributes.len(), 2);
        assert_eq!(spans[1].attributes.len(), 1);
        assert!(root.attributes.is_empty());
        assert!(spans.iter().all(|span| span.end_time >= span.start_time));
        assert!(trace.spans.is_empty() && trace.event_attributes.is_empty());
    }
}
