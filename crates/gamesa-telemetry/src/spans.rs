//! The span tree of a tick and the events on it, built from the engine's
//! [`TickOutput`] once the tick is done, under OpenTelemetry attribute names. Spans
//! take their start and end from the output's phase timings, so nothing is recorded
//! while the tick runs.
//!
//! ```text
//! gamesa.tick
//! ├── sensors.sample
//! ├── guardian.open
//! ├── agent.observe            one per agent asked
//! ├── guardian.check           stage = admit
//! ├── scheduler.rank
//! │   └── ingress.signal       one per injected signal that carries a correlation id
//! ├── guardian.check           stage = safety (when a safety signal pre-empts)
//! ├── exchange.match           one per resource with orders, capacity or events
//! ├── guardian.check           stage = settle (fills)
//! ├── exchange.followup        when the guardian refused a fill or an escrow
//! ├── guardian.check           stage = actuation
//! └── actuate
//! ```

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use gamesa_engine::{AgentFailure, Phase, TickOutput};
use gamesa_guardian::{ContractPhase, Reason, StampedIntent, SupervisionDecision, Verdict};
use gamesa_market::{Command, MarketEvent};
use gamesa_proto::{AgentId, Fill, Resource, Side, Signal};

use super::{
    IngressLink,
    trace::{AttrValue, Phase as Span, TickTrace},
};

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Bid => "bid",
        Side::Ask => "ask",
    }
}

/// A reason's kind, for attributes and metric labels.
pub fn reason_kind(reason: &Reason) -> &'static str {
    match reason {
        Reason::Settled { .. } => "settled",
        Reason::Passed { .. } => "passed",
        Reason::Invalid { .. } => "invalid",
        Reason::EffectDenied { .. } => "effect_denied",
        Reason::Contract { .. } => "contract",
        Reason::Improves { .. } => "improves",
        Reason::Ledger { .. } => "ledger",
        Reason::Gate { .. } => "gate",
    }
}

/// The tightest margin of a passing verdict, or the failing clause's margin.
pub fn margin(reason: &Reason) -> Option<f64> {
    match reason {
        Reason::Settled {
            tightest_margin, ..
        }
        | Reason::Passed { tightest_margin } => *tightest_margin,
        Reason::Contract { failure } | Reason::Improves { failure } => failure.outcome.margin(),
        _ => None,
    }
}

fn agent_id(agent: AgentId) -> AttrValue {
    AttrValue::from(agent.0)
}

/// A `veto` (deny) or `clamp` event on `phase`: its reason, clause and margin. The
/// reason and the clamped value are formatted on the export thread.
fn verdict_event(
    trace: &mut TickTrace,
    span: Span,
    subject: &'static str,
    agent: Option<AgentId>,
    verdict: &Verdict,
) {
    let Some(name) = verdict_name(verdict) else {
        return;
    };
    let reason = verdict.reason();
    trace.event(
        span,
        name,
        [
            ("gamesa.subject", subject.into()),
            ("gamesa.verdict", verdict.decision().into()),
            ("gamesa.reason", AttrValue::Reason(Box::new(reason.clone()))),
            ("gamesa.reason.kind", reason_kind(reason).into()),
        ],
    );
    if let Some(agent) = agent {
        trace.event_attr("gamesa.agent.id", agent_id(agent));
    }
    if let Reason::Contract { failure } | Reason::Improves { failure } = reason {
        trace.event_attr("gamesa.contract.name", failure.contract.clone());
        trace.event_attr("gamesa.contract.phase", contract_phase(failure.phase));
        trace.event_attr("gamesa.contract.clause", failure.clause.clone());
    }
    if let Some(margin) = margin(reason) {
        trace.event_attr("gamesa.contract.margin", margin);
    }
    if let Verdict::Clamp { to, .. } = verdict {
        trace.event_attr(
            "gamesa.actuation.clamped_to",
            AttrValue::Actuation(Box::new(to.clone())),
        );
    }
}

fn contract_phase(phase: ContractPhase) -> &'static str {
    match phase {
        ContractPhase::Pre => "pre",
        ContractPhase::Post => "post",
        ContractPhase::Invariant => "invariant",
    }
}

fn verdict_name(verdict: &Verdict) -> Option<&'static str> {
    match verdict {
        Verdict::Deny { .. } => Some("veto"),
        Verdict::Clamp { .. } => Some("clamp"),
        Verdict::Allow { .. } => None,
    }
}

fn event_resource(event: &MarketEvent) -> Option<Resource> {
    match event {
        MarketEvent::Accepted { request, .. } => Some(request.resource),
        MarketEvent::Filled { fill, .. } => Some(fill.resource),
        MarketEvent::Cancelled(cancellation) => Some(cancellation.resource),
        MarketEvent::LeaseExpired { lease }
        | MarketEvent::LeaseRevoked { lease, .. }
        | MarketEvent::LeaseResized { lease, .. } => Some(lease.resource),
        MarketEvent::Rejected { .. } => None,
    }
}

fn fill_attributes(fill: &Fill) -> [(&'static str, AttrValue); 6] {
    [
        ("gamesa.resource", fill.resource.as_str().into()),
        ("gamesa.buyer.id", agent_id(fill.buyer)),
        ("gamesa.seller.id", agent_id(fill.seller)),
        ("gamesa.side", side_name(fill.aggressor).into()),
        ("gamesa.price", fill.price.0.into()),
        ("gamesa.quantity", fill.quantity.0.into()),
    ]
}

/// Where and when each phase ran, from the output's timings.
fn span_at(
    trace: &mut TickTrace,
    output: &TickOutput,
    phase: Phase,
    name: &'static str,
) -> Option<Span> {
    let timing = output
        .timings
        .iter()
        .find(|timing| timing.phase == phase && timing.agent.is_none())?;
    Some(span_between(
        trace,
        name,
        Span::ROOT,
        timing.start,
        timing.end,
    ))
}

fn span_between(
    trace: &mut TickTrace,
    name: &'static str,
    parent: Span,
    start: Instant,
    end: Instant,
) -> Span {
    let span = trace.begin_at(name, parent, start);
    trace.end_at(span, end);
    span
}

/// The whole tree of a finished tick. `names` are the agents' names; `injected` the
/// signals clients injected for this tick, `links` the ingress requests they came from.
pub fn record(
    trace: &mut TickTrace,
    output: &TickOutput,
    names: &BTreeMap<AgentId, Arc<str>>,
    injected: &[Signal],
    links: &[IngressLink],
) {
    if let Some(span) = span_at(trace, output, Phase::Sample, "sensors.sample") {
        let frame = &output.frame;
        trace.attr(span, "gamesa.sample.errors", output.sample_errors.len());
        trace.attr_opt(span, "gamesa.node.draw_mw", frame.node.draw_mw);
        trace.attr_opt(span, "gamesa.node.cap_mw", frame.node.cap_mw);
        trace.attr(span, "gamesa.components", frame.components.len());
    }
    if let Some(span) = span_at(trace, output, Phase::Open, "guardian.open") {
        let epoch = output
            .mint
            .as_ref()
            .and_then(|mint| mint.as_ref().ok())
            .map(|mint| mint.epoch);
        trace.attr_opt(span, "gamesa.epoch", epoch);
    }
    observed(trace, output, names);
    if let Some(span) = span_at(trace, output, Phase::Admit, "guardian.check") {
        admitted(trace, span, output);
    }
    for failure in &output.failures {
        supervised(trace, failure.agent, &failure.failure, &failure.decision);
    }
    if let Some(span) = span_at(trace, output, Phase::Rank, "scheduler.rank") {
        ranked(trace, span, output, injected, links);
    }
    if let Some(span) = span_at(trace, output, Phase::Safety, "guardian.check") {
        safety_checked(trace, span, output);
    }
    if let Some(timing) = output
        .timings
        .iter()
        .find(|timing| timing.phase == Phase::Match)
    {
        matched(trace, output, timing.start, timing.end);
    }
    if let Some(span) = span_at(trace, output, Phase::Settle, "guardian.check") {
        settled(trace, span, &output.fills);
    }
    span_at(trace, output, Phase::Followup, "exchange.followup");
    if let Some(span) = span_at(trace, output, Phase::Guard, "guardian.check") {
        actuations_checked(trace, span, output);
    }
    preempted(trace, output);
    if let Some(span) = span_at(trace, output, Phase::Actuate, "actuate") {
        actuated(trace, span, output);
    }
}

/// `agent.observe`, one per agent asked, with its intents or its failure.
fn observed(trace: &mut TickTrace, output: &TickOutput, names: &BTreeMap<AgentId, Arc<str>>) {
    for timing in output
        .timings
        .iter()
        .filter(|timing| timing.phase == Phase::Observe)
    {
        let Some(agent) = timing.agent else {
            continue;
        };
        let span = span_between(trace, "agent.observe", Span::ROOT, timing.start, timing.end);
        trace.attr(span, "gamesa.agent.id", agent_id(agent));
        if let Some(name) = names.get(&agent) {
            trace.attr(span, "gamesa.agent.name", Arc::clone(name));
        }
        if let Some((_, intents)) = output
            .intents_by_agent
            .iter()
            .find(|(asked, _)| *asked == agent)
        {
            trace.attr(span, "gamesa.agent.intents", *intents);
        } else if let Some(failure) = output
            .failures
            .iter()
            .find(|failure| failure.agent == agent)
        {
            let kind = match failure.failure {
                AgentFailure::Error(_) => "error",
                AgentFailure::Panicked(_) => "panic",
                AgentFailure::Rebuild(_) => "rebuild",
                AgentFailure::MissedDeadline { .. } => "deadline",
                AgentFailure::External(_) => "external",
            };
            trace.attr(span, "error.type", kind);
            trace.error(span, failure.failure.to_string());
        }
    }
}

/// The admit stage: one `veto` event per denied intent.
fn admitted(trace: &mut TickTrace, span: Span, output: &TickOutput) {
    trace.attr(span, "gamesa.guardian.stage", "admit");
    trace.attr(span, "gamesa.checked", output.intents_checked);
    trace.attr(span, "gamesa.vetoes", output.denied_intents.len());
    for (StampedIntent { agent, intent, .. }, reason) in &output.denied_intents {
        trace.event(
            span,
            "veto",
            [
                ("gamesa.subject", "intent".into()),
                ("gamesa.agent.id", agent_id(*agent)),
                ("gamesa.intent", AttrValue::Intent(Box::new(intent.clone()))),
                ("gamesa.verdict", "deny".into()),
                ("gamesa.reason", AttrValue::Reason(Box::new(reason.clone()))),
                ("gamesa.reason.kind", reason_kind(reason).into()),
            ],
        );
    }
}

/// `scheduler.rank`; the injected signals it took in get an `ingress.signal` child
/// each (when they carry a correlation id), linked to their `ingress.request`.
fn ranked(
    trace: &mut TickTrace,
    span: Span,
    output: &TickOutput,
    injected: &[Signal],
    links: &[IngressLink],
) {
    trace.attr(span, "gamesa.signals.injected", injected.len());
    trace.attr(span, "gamesa.signals.live", output.signals.len());
    trace.attr(span, "gamesa.signals.preempting", output.preempting.len());
    trace.attr(span, "gamesa.signals.refused", output.refused_signals.len());
    if let Some(top) = output.signals.first() {
        trace.attr(span, "gamesa.signals.top_domain", top.domain.as_str());
    }
    for link in links {
        if let Some(context) = link.span_context() {
            trace.link(Span::ROOT, context.clone());
        }
    }
    if injected.iter().any(|signal| signal.correlation.is_some()) {
        let correlations: Vec<String> = injected
            .iter()
            .filter_map(|signal| signal.correlation)
            .map(|correlation| correlation.to_string())
            .collect();
        trace.attr(
            Span::ROOT,
            "gamesa.ingress.correlation_ids",
            correlations.join(","),
        );
    }
    for signal in injected {
        let Some(correlation) = signal.correlation else {
            continue;
        };
        let child = trace.begin("ingress.signal", span);
        trace.attr(
            child,
            "gamesa.correlation_id",
            AttrValue::Correlation(correlation),
        );
        trace.attr(child, "gamesa.signal.kind", signal.kind.as_str().to_owned());
        trace.attr(child, "gamesa.signal.domain", signal.domain.as_str());
        trace.attr(child, "gamesa.signal.strength", signal.strength.as_unit());
        trace.attr(child, "gamesa.agent.id", agent_id(signal.source));
        for link in links
            .iter()
            .filter(|link| link.correlation() == Some(correlation))
        {
            if let Some(context) = link.span_context() {
                trace.link(child, context.clone());
            }
        }
        trace.end(child);
    }
}

/// The safety stage: one `safety.hold` per held component, and the verdict on each
/// safe limit.
fn safety_checked(trace: &mut TickTrace, span: Span, output: &TickOutput) {
    trace.attr(span, "gamesa.guardian.stage", "safety");
    let safety: Vec<_> = output
        .actuations
        .iter()
        .filter(|record| record.requester.is_none())
        .collect();
    trace.attr(span, "gamesa.checked", safety.len());
    let revoked: Vec<String> = output
        .revoked_power_of
        .iter()
        .map(ToString::to_string)
        .collect();
    for component in &output.held {
        trace.event(
            span,
            "safety.hold",
            [
                ("hw.id", component.clone().into()),
                ("gamesa.revoked_power_of", revoked.join(",").into()),
            ],
        );
    }
    for record in safety {
        if verdict_name(&record.verdict).is_some() {
            verdict_event(trace, span, "safety", None, &record.verdict);
            trace.event_attr("gamesa.actuation.target", record.requested.target());
        }
    }
}

/// One `exchange.match` span per resource the match touched, with its bids and asks
/// counted, its fills, volume and clearing price; all of them cover the one call that
/// matches every book. Rejected commands go on the tick span.
fn matched(trace: &mut TickTrace, output: &TickOutput, start: Instant, end: Instant) {
    let mut touched = [false; Resource::ALL.len()];
    let mut bids = [0u64; Resource::ALL.len()];
    let mut asks = [0u64; Resource::ALL.len()];
    for submission in &output.submissions {
        if let Command::Place(request) = &submission.command {
            let index = request.resource.index();
            touched[index] = true;
            match request.side {
                Side::Bid => bids[index] += 1,
                Side::Ask => asks[index] += 1,
            }
        }
    }
    for (_, resource, _) in &output.capacities {
        touched[resource.index()] = true;
    }
    for event in &output.market_events {
        if let Some(resource) = event_resource(event) {
            touched[resource.index()] = true;
        }
    }
    for resource in Resource::ALL {
        let index = resource.index();
        if !touched[index] {
            continue;
        }
        let span = span_between(trace, "exchange.match", Span::ROOT, start, end);
        trace.attr(span, "gamesa.resource", resource.as_str());
        trace.attr(span, "gamesa.orders.bids", bids[index]);
        trace.attr(span, "gamesa.orders.asks", asks[index]);
        let (mut fills, mut volume, mut clearing) = (0u64, 0u64, None);
        for event in &output.market_events {
            if let MarketEvent::Filled { fill, .. } = event
                && fill.resource == resource
            {
                fills += 1;
                volume += fill.quantity.0;
                clearing = Some(fill.price.0);
                trace.event(span, "fill", fill_attributes(fill));
            }
        }
        trace.attr(span, "gamesa.fills", fills);
        trace.attr(span, "gamesa.volume", volume);
        trace.attr_opt(span, "gamesa.price.clearing", clearing);
    }
    for event in &output.market_events {
        if let MarketEvent::Rejected {
            agent,
            sequence,
            error,
        } = event
        {
            trace.event(
                Span::ROOT,
                "order.rejected",
                [
                    ("gamesa.agent.id", agent_id(*agent)),
                    ("gamesa.intent.sequence", (*sequence).into()),
                    ("gamesa.reason", error.to_string().into()),
                ],
            );
        }
    }
}

/// The settle stage: the guardian's verdict on each fill.
fn settled(trace: &mut TickTrace, span: Span, fills: &[(Fill, Verdict)]) {
    trace.attr(span, "gamesa.guardian.stage", "settle");
    trace.attr(span, "gamesa.checked", fills.len());
    trace.attr(
        span,
        "gamesa.vetoes",
        fills
            .iter()
            .filter(|(_, verdict)| !verdict.is_allowed())
            .count(),
    );
    for (fill, verdict) in fills {
        if verdict_name(verdict).is_some() {
            verdict_event(trace, span, "fill", Some(fill.buyer), verdict);
            trace.event_attr("gamesa.resource", fill.resource.as_str());
            trace.event_attr("gamesa.price", fill.price.0);
            trace.event_attr("gamesa.quantity", fill.quantity.0);
        }
    }
}

/// The actuation stage: the guardian's verdict on each agent's request.
fn actuations_checked(trace: &mut TickTrace, span: Span, output: &TickOutput) {
    trace.attr(span, "gamesa.guardian.stage", "actuation");
    let requests: Vec<_> = output
        .actuations
        .iter()
        .filter_map(|record| Some((record.requester?, record)))
        .collect();
    trace.attr(span, "gamesa.checked", requests.len());
    trace.attr(
        span,
        "gamesa.vetoes",
        requests
            .iter()
            .filter(|(_, record)| !matches!(record.verdict, Verdict::Allow { .. }))
            .count(),
    );
    for (agent, record) in requests {
        if verdict_name(&record.verdict).is_some() {
            verdict_event(trace, span, "actuation", Some(agent), &record.verdict);
            trace.event_attr("gamesa.actuation.target", record.requested.target());
            trace.event_attr(
                "gamesa.actuation.requested",
                AttrValue::Actuation(Box::new(record.requested.clone())),
            );
        }
    }
}

/// Agents' actuations dropped because a safety hold covers their component.
fn preempted(trace: &mut TickTrace, output: &TickOutput) {
    for (agent, actuation) in &output.preempted {
        trace.event(
            Span::ROOT,
            "preempted",
            [
                ("gamesa.agent.id", agent_id(*agent)),
                ("gamesa.actuation.target", actuation.target().into()),
                (
                    "gamesa.actuation.requested",
                    AttrValue::Actuation(Box::new(actuation.clone())),
                ),
                (
                    "gamesa.reason",
                    "a safety signal holds this component at its safe limit".into(),
                ),
            ],
        );
    }
}

/// `actuate`: one event per actuation with its target, old and new value.
fn actuated(trace: &mut TickTrace, span: Span, output: &TickOutput) {
    let mut applied_count = 0usize;
    let mut failed = 0usize;
    for record in &output.actuations {
        match &record.outcome {
            Some(Ok(applied)) => {
                applied_count += 1;
                trace.event(
                    span,
                    "actuation",
                    [
                        ("gamesa.actuation.target", applied.target.clone().into()),
                        ("gamesa.actuation.old", applied.previous.clone().into()),
                        ("gamesa.actuation.new", applied.current.clone().into()),
                        ("gamesa.actuation.changed", applied.changed.into()),
                        ("gamesa.actuation.dry_run", applied.dry_run.into()),
                        ("gamesa.verdict", record.verdict.decision().into()),
                    ],
                );
            }
            Some(Err(error)) => {
                failed += 1;
                trace.event(
                    span,
                    "actuation.failed",
                    [
                        ("gamesa.actuation.target", record.requested.target().into()),
                        ("gamesa.reason", error.clone().into()),
                    ],
                );
            }
            None => continue,
        }
        if let Some(agent) = record.requester {
            trace.event_attr("gamesa.agent.id", agent_id(agent));
        }
    }
    trace.attr(span, "gamesa.actuations", applied_count + failed);
    trace.attr(span, "gamesa.actuations.failed", failed);
    trace.attr(span, "gamesa.restored", output.restore.len());
    trace.attr(span, "gamesa.restore.failed", output.restore_failed.len());
}

/// A restart or an isolation, on the tick span, with the failure as its reason.
fn supervised(
    trace: &mut TickTrace,
    agent: AgentId,
    failure: &AgentFailure,
    decision: &SupervisionDecision,
) {
    let (name, restarts) = match decision {
        SupervisionDecision::Restart { restarts } => ("restart", *restarts),
        SupervisionDecision::Isolate { restarts } => ("isolation", *restarts),
        SupervisionDecision::AlreadyIsolated => return,
    };
    trace.event(
        Span::ROOT,
        name,
        [
            ("gamesa.agent.id", agent_id(agent)),
            ("gamesa.reason", failure.to_string().into()),
            ("gamesa.restarts", restarts.into()),
        ],
    );
}
