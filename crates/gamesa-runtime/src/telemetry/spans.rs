//! The span tree of a tick and the events on it: what the conductor records at each
//! phase, under OpenTelemetry attribute names.
//!
//! Every function takes the [`TickRecorder`] and returns at once when the tick is not
//! traced (telemetry off, or not sampled), so the conductor calls them unconditionally.
//!
//! ```text
//! gamesa.tick
//! ├── sensors.sample
//! ├── guardian.open
//! ├── agent.observe            one per live agent
//! ├── guardian.check           stage = admit
//! ├── scheduler.rank
//! │   └── ingress.signal       one per injected signal that carries a correlation id
//! ├── guardian.check           stage = safety (when a safety signal pre-empts)
//! ├── actuate                  the safety limits
//! ├── exchange.match           one per resource with orders, capacity or events
//! ├── guardian.check           stage = settle (fills)
//! ├── guardian.check           stage = actuation
//! └── actuate
//! ```

use gamesa_guardian::{ContractPhase, Reason, Verdict};
use gamesa_market::{Command, MarketEvent, Submission};
use gamesa_proto::{Actuation, AgentId, Fill, Quantity, Resource, Side, Signal, TelemetryFrame};

use super::{
    IngressLink, TickRecorder,
    trace::{AttrValue, Phase, TickTrace},
};
use crate::{
    actors::{
        AgentFailure,
        guardian::{Admission, SafetyResponse, StampedIntent},
        scheduler::Ranked,
    },
    conductor::ActuationRecord,
    supervision::SupervisionDecision,
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

/// Starts a phase span under the tick span.
pub fn begin(recorder: &mut TickRecorder, name: &'static str) -> Phase {
    match recorder.trace() {
        Some(trace) => trace.begin(name, Phase::ROOT),
        None => Phase::NONE,
    }
}

/// Ends a phase span.
pub fn end(recorder: &mut TickRecorder, phase: Phase) {
    if let Some(trace) = recorder.trace() {
        trace.end(phase);
    }
}

/// `sensors.sample` ends: what the frame says about the node.
pub fn sampled(recorder: &mut TickRecorder, phase: Phase, frame: &TelemetryFrame, errors: usize) {
    let Some(trace) = recorder.trace() else {
        return;
    };
    trace.attr(phase, "gamesa.sample.errors", errors);
    trace.attr_opt(phase, "gamesa.node.draw_mw", frame.node.draw_mw);
    trace.attr_opt(phase, "gamesa.node.cap_mw", frame.node.cap_mw);
    trace.attr(phase, "gamesa.components", frame.components.len());
    trace.end(phase);
}

/// `guardian.open` ends; `epoch` is set when this tick minted an allowance.
pub fn opened(recorder: &mut TickRecorder, phase: Phase, epoch: Option<u64>) {
    let Some(trace) = recorder.trace() else {
        return;
    };
    trace.attr_opt(phase, "gamesa.epoch", epoch);
    trace.end(phase);
}

/// `agent.observe` begins for one agent.
pub fn observe(recorder: &mut TickRecorder, agent: AgentId, name: &str) -> Phase {
    if recorder.trace().is_none() {
        return Phase::NONE;
    }
    let name = recorder.agent_name(agent, name);
    let Some(trace) = recorder.trace() else {
        return Phase::NONE;
    };
    let phase = trace.begin("agent.observe", Phase::ROOT);
    trace.attr(phase, "gamesa.agent.id", agent_id(agent));
    trace.attr(phase, "gamesa.agent.name", name);
    phase
}

/// `agent.observe` ends with the agent's intents, or its failure.
pub fn observed(recorder: &mut TickRecorder, phase: Phase, outcome: Result<usize, &AgentFailure>) {
    let Some(trace) = recorder.trace() else {
        return;
    };
    match outcome {
        Ok(intents) => trace.attr(phase, "gamesa.agent.intents", intents),
        Err(failure) => {
            let kind = match failure {
                AgentFailure::Error(_) => "error",
                AgentFailure::Panicked(_) => "panic",
                AgentFailure::Rebuild(_) => "rebuild",
            };
            trace.attr(phase, "error.type", kind);
            trace.error(phase, failure.to_string());
        }
    }
    trace.end(phase);
}

/// One `guardian.check` stage begins: `admit`, `safety`, `settle` or `actuation`.
pub fn guardian_check(recorder: &mut TickRecorder, stage: &'static str) -> Phase {
    let Some(trace) = recorder.trace() else {
        return Phase::NONE;
    };
    let phase = trace.begin("guardian.check", Phase::ROOT);
    trace.attr(phase, "gamesa.guardian.stage", stage);
    phase
}

/// A `veto` (deny) or `clamp` event on `phase`: its reason, clause and margin. The
/// reason and the clamped value are formatted on the export thread.
fn verdict_event(
    trace: &mut TickTrace,
    phase: Phase,
    subject: &'static str,
    agent: Option<AgentId>,
    verdict: &Verdict,
) {
    let Some(name) = verdict_name(verdict) else {
        return;
    };
    let reason = verdict.reason();
    trace.event(
        phase,
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

/// The admit stage ends: one `veto` event per denied intent.
pub fn admitted(recorder: &mut TickRecorder, phase: Phase, intents: usize, admission: &Admission) {
    let Some(trace) = recorder.trace() else {
        return;
    };
    trace.attr(phase, "gamesa.checked", intents);
    trace.attr(phase, "gamesa.vetoes", admission.denied.len());
    for (StampedIntent { agent, intent, .. }, reason) in &admission.denied {
        trace.event(
            phase,
            "veto",
            [
                ("gamesa.subject", "intent".into()),
                ("gamesa.agent.id", agent_id(*agent)),
                ("gamesa.intent", format!("{intent:?}").into()),
                ("gamesa.verdict", "deny".into()),
                ("gamesa.reason", AttrValue::Reason(Box::new(reason.clone()))),
                ("gamesa.reason.kind", reason_kind(reason).into()),
            ],
        );
    }
    trace.end(phase);
}

/// `scheduler.rank` begins; the injected signals it takes in get an `ingress.signal`
/// child each (when they carry a correlation id), linked to their `ingress.request`.
pub fn rank(recorder: &mut TickRecorder, injected: &[Signal], links: &[IngressLink]) -> Phase {
    let Some(trace) = recorder.trace() else {
        return Phase::NONE;
    };
    let phase = trace.begin("scheduler.rank", Phase::ROOT);
    trace.attr(phase, "gamesa.signals.injected", injected.len());
    for link in links {
        if let Some(context) = link.span_context() {
            trace.link(Phase::ROOT, context.clone());
        }
    }
    if injected.iter().any(|signal| signal.correlation.is_some()) {
        let correlations: Vec<String> = injected
            .iter()
            .filter_map(|signal| signal.correlation)
            .map(|correlation| correlation.to_string())
            .collect();
        trace.attr(
            Phase::ROOT,
            "gamesa.ingress.correlation_ids",
            correlations.join(","),
        );
    }
    for signal in injected {
        let Some(correlation) = signal.correlation else {
            continue;
        };
        let child = trace.begin("ingress.signal", phase);
        trace.attr(
            child,
            "gamesa.correlation_id",
            AttrValue::Correlation(correlation),
        );
        trace.attr(child, "gamesa.signal.kind", signal.kind.as_str().to_owned());
        trace.attr(child, "gamesa.signal.domain", signal.domain.as_str());
        trace.attr(
            child,
            "gamesa.signal.strength",
            format!("{:?}", signal.strength),
        );
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
    phase
}

/// `scheduler.rank` ends with the ranked queue.
pub fn ranked(recorder: &mut TickRecorder, phase: Phase, ranked: &Ranked) {
    let Some(trace) = recorder.trace() else {
        return;
    };
    trace.attr(phase, "gamesa.signals.live", ranked.all.len());
    trace.attr(phase, "gamesa.signals.preempting", ranked.preempting.len());
    if let Some(top) = ranked.all.first() {
        trace.attr(phase, "gamesa.signals.top_domain", top.domain.as_str());
    }
    trace.end(phase);
}

/// The safety stage ends: one `safety.hold` per held component, and the verdict on
/// each safe limit.
pub fn safety_checked(recorder: &mut TickRecorder, phase: Phase, response: &SafetyResponse) {
    let Some(trace) = recorder.trace() else {
        return;
    };
    trace.attr(phase, "gamesa.checked", response.actions.len());
    for component in &response.held {
        trace.event(
            phase,
            "safety.hold",
            [
                ("hw.id", component.clone().into()),
                (
                    "gamesa.revoked_power_of",
                    format!("{:?}", response.revoke_power_of).into(),
                ),
            ],
        );
    }
    for (actuation, verdict) in &response.actions {
        if verdict_name(verdict).is_some() {
            verdict_event(trace, phase, "safety", None, verdict);
            trace.event_attr("gamesa.actuation.target", actuation.target());
        }
    }
    trace.end(phase);
}

/// One `exchange.match` span per resource the match touches, with its bids and asks
/// counted; all of them cover the one call that matches every book.
pub fn match_begin(
    recorder: &mut TickRecorder,
    submissions: &[Submission],
    capacities: &[(AgentId, Resource, Quantity)],
) -> Vec<(Resource, Phase)> {
    let Some(trace) = recorder.trace() else {
        return Vec::new();
    };
    let mut touched = [false; Resource::ALL.len()];
    let mut bids = [0u64; Resource::ALL.len()];
    let mut asks = [0u64; Resource::ALL.len()];
    for submission in submissions {
        if let Command::Place(request) = &submission.command {
            let index = request.resource.index();
            touched[index] = true;
            match request.side {
                Side::Bid => bids[index] += 1,
                Side::Ask => asks[index] += 1,
            }
        }
    }
    for (_, resource, _) in capacities {
        touched[resource.index()] = true;
    }
    Resource::ALL
        .into_iter()
        .filter(|resource| touched[resource.index()])
        .map(|resource| {
            let phase = trace.begin("exchange.match", Phase::ROOT);
            trace.attr(phase, "gamesa.resource", resource.as_str());
            trace.attr(phase, "gamesa.orders.bids", bids[resource.index()]);
            trace.attr(phase, "gamesa.orders.asks", asks[resource.index()]);
            (resource, phase)
        })
        .collect()
}

fn event_resource(event: &MarketEvent) -> Option<Resource> {
    match event {
        MarketEvent::Accepted { request, .. } => Some(request.resource),
        MarketEvent::Filled { fill, .. } | MarketEvent::LeaseFailed { fill, .. } => {
            Some(fill.resource)
        }
        MarketEvent::Cancelled(cancellation) => Some(cancellation.resource),
        MarketEvent::LeaseGranted { lease, .. }
        | MarketEvent::LeaseExpired { lease }
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

/// The match ends: each resource's fills, volume and clearing price, and one event per
/// fill; rejected commands go on the tick span.
pub fn matched(
    recorder: &mut TickRecorder,
    mut phases: Vec<(Resource, Phase)>,
    events: &[MarketEvent],
) {
    let Some(trace) = recorder.trace() else {
        return;
    };
    for event in events {
        if let Some(resource) = event_resource(event)
            && !phases.iter().any(|(touched, _)| *touched == resource)
        {
            let phase = trace.begin("exchange.match", Phase::ROOT);
            trace.attr(phase, "gamesa.resource", resource.as_str());
            phases.push((resource, phase));
        }
    }
    for (resource, phase) in &phases {
        let (mut fills, mut volume, mut clearing) = (0u64, 0u64, None);
        for event in events {
            match event {
                MarketEvent::Filled { fill, .. } if fill.resource == *resource => {
                    fills += 1;
                    volume += fill.quantity.0;
                    clearing = Some(fill.price.0);
                    trace.event(*phase, "fill", fill_attributes(fill));
                }
                _ => {}
            }
        }
        trace.attr(*phase, "gamesa.fills", fills);
        trace.attr(*phase, "gamesa.volume", volume);
        trace.attr_opt(*phase, "gamesa.price.clearing", clearing);
    }
    for event in events {
        if let MarketEvent::Rejected {
            agent,
            sequence,
            error,
        } = event
        {
            trace.event(
                Phase::ROOT,
                "order.rejected",
                [
                    ("gamesa.agent.id", agent_id(*agent)),
                    ("gamesa.intent.sequence", (*sequence).into()),
                    ("gamesa.reason", error.to_string().into()),
                ],
            );
        }
    }
    for (_, phase) in phases {
        trace.end(phase);
    }
}

/// The settle stage ends: the guardian's verdict on each fill.
pub fn settled(recorder: &mut TickRecorder, phase: Phase, fills: &[(Fill, Verdict)]) {
    let Some(trace) = recorder.trace() else {
        return;
    };
    trace.attr(phase, "gamesa.checked", fills.len());
    trace.attr(
        phase,
        "gamesa.vetoes",
        fills
            .iter()
            .filter(|(_, verdict)| !verdict.is_allowed())
            .count(),
    );
    for (fill, verdict) in fills {
        if verdict_name(verdict).is_some() {
            verdict_event(trace, phase, "fill", Some(fill.buyer), verdict);
            trace.event_attr("gamesa.resource", fill.resource.as_str());
            trace.event_attr("gamesa.price", fill.price.0);
            trace.event_attr("gamesa.quantity", fill.quantity.0);
        }
    }
    trace.end(phase);
}

/// The actuation stage ends: the guardian's verdict on each agent's request.
pub fn actuations_checked(
    recorder: &mut TickRecorder,
    phase: Phase,
    requests: &[(AgentId, Actuation)],
    verdicts: &[Verdict],
) {
    let Some(trace) = recorder.trace() else {
        return;
    };
    trace.attr(phase, "gamesa.checked", requests.len());
    trace.attr(
        phase,
        "gamesa.vetoes",
        verdicts
            .iter()
            .filter(|verdict| !matches!(verdict, Verdict::Allow { .. }))
            .count(),
    );
    for ((agent, actuation), verdict) in requests.iter().zip(verdicts) {
        if verdict_name(verdict).is_some() {
            verdict_event(trace, phase, "actuation", Some(*agent), verdict);
            trace.event_attr("gamesa.actuation.target", actuation.target());
            trace.event_attr(
                "gamesa.actuation.requested",
                AttrValue::Actuation(Box::new(actuation.clone())),
            );
        }
    }
    trace.end(phase);
}

/// Agents' actuations dropped because a safety hold covers their component.
pub fn preempted(recorder: &mut TickRecorder, preempted: &[(AgentId, Actuation)]) {
    let Some(trace) = recorder.trace() else {
        return;
    };
    for (agent, actuation) in preempted {
        trace.event(
            Phase::ROOT,
            "preempted",
            [
                ("gamesa.agent.id", agent_id(*agent)),
                ("gamesa.actuation.target", actuation.target().into()),
                ("gamesa.actuation.requested", actuation.to_string().into()),
                (
                    "gamesa.reason",
                    "a safety signal holds this component at its safe limit".into(),
                ),
            ],
        );
    }
}

/// `actuate` begins for `actuations` allowed or clamped requests.
pub fn actuate(recorder: &mut TickRecorder, actuations: usize) -> Phase {
    let Some(trace) = recorder.trace() else {
        return Phase::NONE;
    };
    let phase = trace.begin("actuate", Phase::ROOT);
    trace.attr(phase, "gamesa.actuations", actuations);
    phase
}

/// `actuate` ends: one event per actuation with its target, old and new value.
pub fn actuated(recorder: &mut TickRecorder, phase: Phase, records: &[ActuationRecord]) {
    let Some(trace) = recorder.trace() else {
        return;
    };
    let mut failed = 0usize;
    for record in records {
        match &record.outcome {
            Some(Ok(applied)) => trace.event(
                phase,
                "actuation",
                [
                    ("gamesa.actuation.target", applied.target.clone().into()),
                    ("gamesa.actuation.old", applied.previous.clone().into()),
                    ("gamesa.actuation.new", applied.current.clone().into()),
                    ("gamesa.actuation.changed", applied.changed.into()),
                    ("gamesa.actuation.dry_run", applied.dry_run.into()),
                    ("gamesa.verdict", record.verdict.decision().into()),
                ],
            ),
            Some(Err(error)) => {
                failed += 1;
                trace.event(
                    phase,
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
    trace.attr(phase, "gamesa.actuations.failed", failed);
    trace.end(phase);
}

/// A restart or an isolation, on the tick span, with the failure as its reason.
pub fn supervised(
    recorder: &mut TickRecorder,
    agent: AgentId,
    failure: &AgentFailure,
    decision: &SupervisionDecision,
) {
    let Some(trace) = recorder.trace() else {
        return;
    };
    let (name, restarts) = match decision {
        SupervisionDecision::Restart { restarts } => ("restart", *restarts),
        SupervisionDecision::Isolate { restarts } => ("isolation", *restarts),
        SupervisionDecision::AlreadyIsolated => return,
    };
    trace.event(
        Phase::ROOT,
        name,
        [
            ("gamesa.agent.id", agent_id(agent)),
            ("gamesa.reason", failure.to_string().into()),
            ("gamesa.restarts", restarts.into()),
        ],
    );
}
