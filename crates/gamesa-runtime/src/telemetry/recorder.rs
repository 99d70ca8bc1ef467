//! What the conductor keeps for telemetry from one tick to the next: the instruments,
//! the tracer and the trace of the tick in progress, the decision log, the ingress
//! links waiting for the next tick, and the book as it stood when the tick began.
//!
//! It only reads what the tick produced; nothing in it feeds back into a decision.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use gamesa_proto::{AgentId, CorrelationId, OrderId, OrderRequest, Resource, Signal, Tick};

use super::{
    IngressLink, TickMetrics,
    decision::{DecisionLog, TickDecisions},
    trace::{Phase, TickTrace, TickTracer},
};
use crate::{actors::exchange::MarketSnapshot, conductor::TickReport};

#[derive(Debug, Default)]
pub struct TickRecorder {
    metrics: Option<TickMetrics>,
    tracer: Option<TickTracer>,
    /// The trace of the tick in progress, when it is sampled.
    trace: Option<Box<TickTrace>>,
    decisions: DecisionLog,
    /// Links of the signals injected since the last tick took them in.
    links: Vec<IngressLink>,
    /// The orders resting when the tick began (kept only for the decision log).
    resting: Vec<(OrderId, OrderRequest)>,
    open_orders: [u64; Resource::ALL.len()],
    /// Correlation ids of the injected signals this tick took in.
    caused_by: Vec<CorrelationId>,
    /// Agent names as shared text, so a traced tick does not copy them.
    names: BTreeMap<AgentId, Arc<str>>,
}

impl TickRecorder {
    pub fn set_metrics(&mut self, metrics: Option<TickMetrics>) {
        self.metrics = metrics;
    }

    pub fn set_tracer(&mut self, tracer: Option<TickTracer>) {
        self.tracer = tracer;
    }

    pub fn set_decision_log(&mut self, log: DecisionLog) {
        self.decisions = log;
    }

    pub fn decision_log(&self) -> &DecisionLog {
        &self.decisions
    }

    /// The trace of the tick in progress; `None` when this tick is not traced.
    pub fn trace(&mut self) -> Option<&mut TickTrace> {
        self.trace.as_deref_mut()
    }

    /// `name` as shared text, kept for `agent`.
    pub fn agent_name(&mut self, agent: AgentId, name: &str) -> Arc<str> {
        // An agent keeps its name for the life of the runtime (restarts included).
        Arc::clone(self.names.entry(agent).or_insert_with(|| Arc::from(name)))
    }

    /// Remembers where an injected signal came from, for the tick that takes it in.
    pub fn link(&mut self, link: IngressLink) {
        self.links.push(link);
    }

    /// A tick begins: its trace starts when the sampler keeps it.
    pub fn begin_tick(&mut self, tick: Tick, correlation: CorrelationId) {
        self.trace = self
            .tracer
            .as_ref()
            .and_then(|tracer| tracer.start(tick.0, correlation));
        self.caused_by.clear();
    }

    /// The tick stopped half-way (an actor is gone): its trace goes out marked failed.
    pub fn abandon_tick(&mut self, reason: String) {
        if let (Some(tracer), Some(mut trace)) = (&self.tracer, self.trace.take()) {
            trace.error(Phase::ROOT, reason);
            tracer.ship(trace);
        }
    }

    /// Notes the book as the tick begins.
    pub fn tick_started(&mut self, snapshot: &MarketSnapshot) {
        self.resting.clear();
        let keep_orders = self.decisions.is_enabled() || self.trace.is_some();
        if self.metrics.is_none() && !keep_orders {
            return;
        }
        self.open_orders = [0; Resource::ALL.len()];
        for orders in snapshot.open_orders.values() {
            for (order, request) in orders {
                self.open_orders[request.resource.index()] += 1;
                if keep_orders {
                    self.resting.push((*order, *request));
                }
            }
        }
    }

    /// The injected signals the rank phase takes in; returns their links.
    pub fn take_injected(&mut self, injected: &[Signal]) -> Vec<IngressLink> {
        self.caused_by
            .extend(injected.iter().filter_map(|signal| signal.correlation));
        std::mem::take(&mut self.links)
    }

    /// Folds the finished tick into the metrics and the decision log, and puts its
    /// summary and decisions on the tick span before the trace is queued for export.
    pub fn tick_finished(&mut self, report: &TickReport, duration: Duration) {
        if let Some(metrics) = &self.metrics {
            metrics.record(report, self.open_orders, duration);
        }
        let trace = self.trace.take();
        if !self.decisions.is_enabled() && trace.is_none() {
            return;
        }
        let decisions = TickDecisions::of(report, &self.resting, &self.caused_by);
        if let (Some(tracer), Some(mut trace)) = (&self.tracer, trace) {
            trace.attr(Phase::ROOT, "gamesa.tick.fills", report.fills.len());
            trace.attr(Phase::ROOT, "gamesa.tick.vetoes", report.vetoes().count());
            trace.attr(Phase::ROOT, "gamesa.tick.failures", report.failures.len());
            trace.attr(
                Phase::ROOT,
                "gamesa.tick.duration_us",
                u64::try_from(duration.as_micros()).unwrap_or(u64::MAX),
            );
            decisions.emit(&mut trace);
            tracer.ship(trace);
        }
        self.decisions.record(decisions);
    }
}
