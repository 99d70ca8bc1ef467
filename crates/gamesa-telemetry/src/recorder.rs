//! What the conductor keeps for telemetry from one tick to the next: the instruments,
//! the tracer and the trace of the tick in progress, the decision log, and the ingress
//! links waiting for the next tick.
//!
//! It only reads what the tick produced (the engine's [`TickOutput`]); nothing in it
//! feeds back into a decision.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use gamesa_engine::TickOutput;
use gamesa_proto::{AgentId, CorrelationId, Resource, Signal, Tick};

use super::{
    IngressLink, TickMetrics,
    decision::{DecisionLog, TickDecisions},
    spans,
    trace::{Phase, TickTrace},
    tracer::TickTracer,
};

#[derive(Debug, Default)]
pub struct TickRecorder {
    metrics: Option<TickMetrics>,
    tracer: Option<TickTracer>,
    /// The trace of the tick in progress, when it is sampled.
    trace: Option<Box<TickTrace>>,
    decisions: DecisionLog,
    /// Links of the signals injected since the last tick took them in.
    links: Vec<IngressLink>,
    /// The links and signals the tick in progress took in (kept when it is traced).
    tick_links: Vec<IngressLink>,
    injected: Vec<Signal>,
    /// Correlation ids of the injected signals this tick took in.
    caused_by: Vec<CorrelationId>,
    /// Agent names as shared text, so a traced tick does not copy them.
    names: BTreeMap<AgentId, Arc<str>>,
}

impl TickRecorder {
    pub fn set_metrics(&mut self, metrics: Option<TickMetrics>) {
        self.metrics = metrics;
    }

    /// Fleet mode's figures after a tick, for the `gamesa.fleet.*` instruments.
    pub fn record_fleet(&self, figures: super::FleetFigures) {
        if let Some(metrics) = &self.metrics {
            metrics.record_fleet(figures);
        }
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

    /// Names the agents in traces.
    pub fn name_agents<'a>(&mut self, agents: impl IntoIterator<Item = (AgentId, &'a str)>) {
        self.names.extend(
            agents
                .into_iter()
                .map(|(agent, name)| (agent, Arc::from(name))),
        );
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

    /// The injected signals the tick in progress takes in.
    pub fn take_injected(&mut self, injected: &[Signal]) {
        self.caused_by
            .extend(injected.iter().filter_map(|signal| signal.correlation));
        self.tick_links = std::mem::take(&mut self.links);
        self.injected.clear();
        if self.trace.is_some() {
            self.injected.extend_from_slice(injected);
        }
    }

    /// Folds the finished tick into the metrics and the decision log, and builds its
    /// spans before the trace is queued for export.
    pub fn tick_finished(&mut self, output: &TickOutput, duration: Duration) {
        if let Some(metrics) = &self.metrics {
            let mut open_orders = [0; Resource::ALL.len()];
            for (_, request) in &output.resting {
                open_orders[request.resource.index()] += 1;
            }
            metrics.record(output, open_orders, duration);
        }
        let trace = self.trace.take();
        let links = std::mem::take(&mut self.tick_links);
        if !self.decisions.is_enabled() && trace.is_none() {
            return;
        }
        let decisions = TickDecisions::of(output, &output.resting, &self.caused_by);
        if let (Some(tracer), Some(mut trace)) = (&self.tracer, trace) {
            spans::record(&mut trace, output, &self.names, &self.injected, &links);
            trace.attr(Phase::ROOT, "gamesa.tick.fills", output.fills.len());
            trace.attr(Phase::ROOT, "gamesa.tick.vetoes", output.vetoes().count());
            trace.attr(Phase::ROOT, "gamesa.tick.failures", output.failures.len());
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
