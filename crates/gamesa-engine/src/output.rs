//! What one tick decided, and what became of its actuations: the record that status
//! lines, metrics, the decision log, traces, ingress replies and `gamesa sim` all read.

use std::{sync::Arc, time::Instant};

use gamesa_agent::MarketView;
use gamesa_guardian::{
    AuditRecord, LedgerError, MintReport, Posting, Reason, StampedIntent, SupervisionDecision,
    Verdict,
};
use gamesa_hw::Applied;
use gamesa_market::{MarketError, MarketEvent, Submission};
use gamesa_proto::{
    Actuation, AgentId, CorrelationId, Fill, OrderId, OrderRequest, Quantity, Resource, Signal,
    TelemetryFrame, Tick,
};
use gamesa_signals::SignalError;

use crate::AgentFailure;

/// One actuation and what became of it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ActuationRecord {
    /// `None` for the guardian's own safety action.
    pub requester: Option<AgentId>,
    pub requested: Actuation,
    pub verdict: Verdict,
    /// `None` when the verdict was deny, or until the shell has actuated; otherwise
    /// the actuator's answer.
    pub outcome: Option<Result<Applied, String>>,
}

impl ActuationRecord {
    /// What is to be written: the request when allowed, the clamped value when
    /// clamped, nothing when denied.
    pub fn to_apply(&self) -> Option<&Actuation> {
        match &self.verdict {
            Verdict::Allow { .. } => Some(&self.requested),
            Verdict::Clamp { to, .. } => Some(to),
            Verdict::Deny { .. } => None,
        }
    }
}

/// An agent failure and the supervisor's decision about it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FailureRecord {
    pub agent: AgentId,
    pub failure: AgentFailure,
    pub decision: SupervisionDecision,
    /// Set when a restart was decided and the agent could not be rebuilt.
    pub rebuild_error: Option<AgentFailure>,
}

/// A step of the tick, for timings and the trace's span tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The shell reads the sensors (not the engine's).
    Sample,
    Open,
    /// One per observed agent (`agent` set), and one for the whole phase.
    Observe,
    Admit,
    Rank,
    Safety,
    Match,
    Settle,
    Followup,
    Guard,
    /// The shell writes the actuations (not the engine's).
    Actuate,
}

/// When one phase ran. Timings are read, never decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseTiming {
    pub phase: Phase,
    pub agent: Option<AgentId>,
    pub start: Instant,
    pub end: Instant,
}

/// Everything one tick decided.
#[derive(Debug, Clone, PartialEq)]
pub struct TickOutput {
    pub tick: Tick,
    pub correlation: CorrelationId,
    /// The frame as the tick saw it: dry-run limits and reported progress written in.
    pub frame: Arc<TelemetryFrame>,
    pub sample_errors: Vec<String>,
    /// The epoch's mint, when this tick began one.
    pub mint: Option<Result<MintReport, LedgerError>>,
    /// When this tick began an epoch: each account's holdings after the mint,
    /// available and escrowed. The journal snapshots them; nothing decides on them.
    pub holdings: Option<Vec<(AgentId, gamesa_proto::Credits)>>,
    /// Live signals after this tick's were enqueued, highest-ranked first.
    pub signals: Vec<Signal>,
    pub preempting: Vec<Signal>,
    /// Signals the queue refused, with why.
    pub refused_signals: Vec<(Signal, SignalError)>,
    /// Components under a safety hold this tick.
    pub held: Vec<String>,
    /// Agents whose power leases the safety hold revoked.
    pub revoked_power_of: Vec<AgentId>,
    /// Components a safety signal names that have no known safe limit.
    pub no_safe_limit: Vec<String>,
    /// The orders resting as the tick opened, of the agents asked.
    pub resting: Vec<(OrderId, OrderRequest)>,
    /// How many intents each agent observed returned, in id order.
    pub intents_by_agent: Vec<(AgentId, usize)>,
    /// What the out-of-process agents asked answered, as the tick took it (a missed
    /// deadline is a failure, not an answer): inputs, which the journal keeps so that
    /// a replay takes them again ([`crate::Intake::answered`]).
    pub answered: Vec<(AgentId, crate::ExternalAnswer)>,
    /// Intents admission looked at: the agents' and the clients'.
    pub intents_checked: usize,
    pub denied_intents: Vec<(StampedIntent, Reason)>,
    /// What reached the exchange's match, in canonical order.
    pub submissions: Vec<Submission>,
    pub capacities: Vec<(AgentId, Resource, Quantity)>,
    pub market_events: Vec<MarketEvent>,
    /// Capacity changes the market refused, and a refused tick.
    pub market_errors: Vec<(Option<(AgentId, Resource)>, MarketError)>,
    pub fills: Vec<(Fill, Verdict)>,
    /// The guardian's safety actions first, then the agents' checked requests.
    pub actuations: Vec<ActuationRecord>,
    /// Agents' actuations dropped because a safety hold covers their component.
    pub preempted: Vec<(AgentId, Actuation)>,
    pub failures: Vec<FailureRecord>,
    /// Targets to put back to their originals before anything else is written: what
    /// the agents isolated this tick had changed.
    pub restore: Vec<String>,
    /// Targets of `restore` the actuator could not put back, with why (filled in by the
    /// driver that wrote them).
    pub restore_failed: Vec<(String, String)>,
    pub market: MarketView,
    /// Every effect check of the tick, allowed or not.
    pub audit: Vec<AuditRecord>,
    /// Every ledger posting of the tick.
    pub postings: Vec<Posting>,
    pub timings: Vec<PhaseTiming>,
}

impl TickOutput {
    /// Verdicts that were not a plain allow: every clamp and deny of the tick.
    pub fn vetoes(&self) -> impl Iterator<Item = &Verdict> {
        self.fills
            .iter()
            .map(|(_, verdict)| verdict)
            .chain(self.actuations.iter().map(|record| &record.verdict))
            .filter(|verdict| !matches!(verdict, Verdict::Allow { .. }))
    }

    /// What the shell is to write, in order, with who asked (`None`: the guardian).
    pub fn to_apply(&self) -> Vec<(Option<AgentId>, Actuation)> {
        self.actuations
            .iter()
            .filter_map(|record| Some((record.requester, record.to_apply()?.clone())))
            .collect()
    }
}
