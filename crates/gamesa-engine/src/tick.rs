//! The phase sequence of one tick, written once over any [`Cores`]. What it keeps
//! from one tick to the next is a [`TickState`] (`state.rs`).
//!
//! open → observe → admit (supervise) → rank → safety (when pre-empted) → match →
//! settle → follow-up (when the guardian refused something) → guard.
//!
//! The caller samples the sensors before and writes the actuations after
//! ([`TickState::applied`]). Agents' intents are taken in `(agent id, sequence)` order
//! and ingress clients' after every agent's, so the outcome never depends on thread
//! timing.
//!
//! # Invariants
//! - an isolated agent is never asked again and holds no orders or leases
//! - while a safety signal names a component, agents' own actuations of it are
//!   pre-empted and its limit is held at the safe value
//! - every fill the guardian denied has had its lease revoked before the tick ends
//! - the engine calls each core at most once per phase

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use gamesa_guardian::{SafetyResponse, Settlement, StampedIntent, SupervisionDecision, Verdict};
use gamesa_market::MarketEvent;
use gamesa_proto::{
    Actuation, AgentId, CorrelationId, Intent, LeaseId, OrderId, Signal, TelemetryFrame, Tick,
};

use crate::{
    AgentFailure, ExternalAnswer, TickState, Turn,
    cores::{Admitted, Guarded, MatchRequest, Matched, Opened, Opening, Ranked, Snapshot},
    output::{ActuationRecord, FailureRecord, Phase, PhaseTiming, TickOutput},
};

/// One agent's answer to its turn, and how long it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub agent: AgentId,
    pub intents: Result<Vec<Intent>, AgentFailure>,
    pub took: Duration,
    /// The agent lives in another process: its answer is an input of the tick, which
    /// the output keeps ([`TickOutput::answered`]) for the journal.
    pub external: bool,
}

/// The cores and agents as a tick reaches them: in place ([`crate::TickEngine`]) or
/// one actor message per core per phase (the runtime's shell). Each method is one
/// phase of one core, and does nothing but call that core's method of the same name.
pub trait Cores {
    /// Why a core could not be reached (an actor is gone).
    type Error;

    /// The guardian opens the tick, the exchange takes a snapshot for `agents`, and the
    /// scheduler ranks the live signals.
    fn open(
        &mut self,
        opening: Opening,
        agents: Vec<AgentId>,
    ) -> impl Future<Output = Result<(Opened, Snapshot, Ranked), Self::Error>>;

    /// Every turn's agent observes; one answer per turn, in turn order.
    fn observe(
        &mut self,
        turns: Vec<Turn>,
    ) -> impl Future<Output = Result<Vec<Observed>, Self::Error>>;

    fn admit(
        &mut self,
        tick: Tick,
        intents: Vec<StampedIntent>,
        failed: Vec<AgentId>,
    ) -> impl Future<Output = Result<Admitted, Self::Error>>;

    /// Rebuilds these agents from their factories; the ones that could not be rebuilt.
    fn restart(
        &mut self,
        agents: Vec<AgentId>,
    ) -> impl Future<Output = Result<Vec<(AgentId, AgentFailure)>, Self::Error>>;

    fn take_signals(
        &mut self,
        tick: Tick,
        signals: Vec<Signal>,
        isolated: Vec<AgentId>,
    ) -> impl Future<Output = Result<Ranked, Self::Error>>;

    fn safety(
        &mut self,
        tick: Tick,
        preempting: &[Signal],
        frame: Arc<TelemetryFrame>,
    ) -> impl Future<Output = Result<SafetyResponse, Self::Error>>;

    fn run_match(
        &mut self,
        request: MatchRequest,
    ) -> impl Future<Output = Result<Matched, Self::Error>>;

    fn settle(
        &mut self,
        tick: Tick,
        events: &[MarketEvent],
    ) -> impl Future<Output = Result<Settlement, Self::Error>>;

    fn followup(
        &mut self,
        tick: Tick,
        revoke: &[LeaseId],
        cancel: &[(AgentId, OrderId)],
    ) -> impl Future<Output = Result<Matched, Self::Error>>;

    fn guard(
        &mut self,
        tick: Tick,
        followups: &[MarketEvent],
        requests: &[(AgentId, Actuation)],
    ) -> impl Future<Output = Result<Guarded, Self::Error>>;
}

/// What reached the node from outside since the last tick.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Intake {
    /// Why the sensors could not read something this tick.
    pub sample_errors: Vec<String>,
    /// Signals injected by clients, taken in at the rank phase.
    pub signals: Vec<Signal>,
    /// Clients' orders and cancels, in `(client, sequence)` order; client ids come
    /// after every agent's.
    pub intents: Vec<StampedIntent>,
    /// Workloads' progress reports, component → millionths of a unit.
    pub progress: Vec<(String, u64)>,
    /// Work left in workloads' jobs, component → millionths of a unit, where they said.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub work_left: Vec<(String, u64)>,
    /// Agents to answer as having missed their deadline (with it, in ms) whatever
    /// they return: a replay of a shell tick in which they did, since thread timing is
    /// the one thing the engine cannot reproduce. The shell finds lateness itself and
    /// leaves this empty.
    #[serde(default)]
    pub late: Vec<(AgentId, u64)>,
    /// Out-of-process agents' answers, taken instead of whatever their hosted stand-in
    /// returns: a replay of a shell tick, since another process is not the engine's to
    /// run again. The shell asks those processes itself and leaves this empty.
    #[serde(default)]
    pub answered: Vec<(AgentId, ExternalAnswer)>,
    /// The node's cap as its fleet grants it this tick (its safe share plus its valid
    /// lease, `docs/fleet.md`), in mW: the frame's `node.cap_mw` becomes the lower of it
    /// and the node's own. `None` outside fleet mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_cap_mw: Option<u64>,
}

/// Records when each phase ran.
struct Clock {
    timings: Vec<PhaseTiming>,
    mark: Instant,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            timings: Vec::with_capacity(16),
            mark: Instant::now(),
        }
    }

    /// `phase` ran from the last mark until now.
    fn lap(&mut self, phase: Phase) {
        let now = Instant::now();
        self.timings.push(PhaseTiming {
            phase,
            agent: None,
            start: self.mark,
            end: now,
        });
        self.mark = now;
    }
}

/// Runs one tick over `cores`: `frame` is the sensors' sample, `intake` what came from
/// outside since the last tick. The output's actuations are still to be written
/// (restore first, then [`TickOutput::to_apply`]), and their results handed to
/// [`TickState::applied`].
pub async fn run<C: Cores>(
    state: &mut TickState,
    cores: &mut C,
    frame: TelemetryFrame,
    intake: Intake,
) -> Result<TickOutput, C::Error> {
    let mut clock = Clock::new();
    let tick = state.next_tick;
    state.next_tick = tick.next();
    let Intake {
        sample_errors,
        signals: injected,
        intents: client_intents,
        progress,
        work_left,
        late,
        answered,
        fleet_cap_mw,
    } = intake;
    for (component, micro) in progress {
        state.progress.add(&component, micro);
    }
    for (component, micro) in work_left {
        state.progress.set_left(&component, micro);
    }
    let frame = Arc::new(state.prepare(frame, fleet_cap_mw));

    // open
    let epoch_ticks = state.settings.epoch_ticks.max(1);
    let epoch = tick
        .0
        .is_multiple_of(epoch_ticks)
        .then_some(tick.0 / epoch_ticks);
    let opening = Opening {
        tick,
        frame: Arc::clone(&frame),
        planned_limits_mw: state.applied_limits_mw.clone(),
        epoch,
        failed_actuations: std::mem::take(&mut state.failed_actuations),
    };
    let (opened, snapshot, ranked) = cores.open(opening, state.live_agents()).await?;
    clock.lap(Phase::Open);

    // observe
    let resting = snapshot.open_orders.values().flatten().copied().collect();
    let turns = state.turns(tick, &frame, ranked.all, snapshot, &opened.balances);
    let observed = cores.observe(turns).await?;
    let observe_start = clock.mark;
    for answer in &observed {
        clock.timings.push(PhaseTiming {
            phase: Phase::Observe,
            agent: Some(answer.agent),
            start: observe_start,
            end: observe_start + answer.took,
        });
    }
    clock.lap(Phase::Observe);
    let mut intents = Vec::new();
    let mut failures = Vec::new();
    let mut intents_by_agent = Vec::with_capacity(observed.len());
    let mut external_answers = Vec::new();
    for mut answer in observed {
        if let Some((_, recorded)) = answered.iter().find(|(agent, _)| *agent == answer.agent) {
            answer.intents = recorded.clone().map_err(AgentFailure::External);
            answer.external = true;
        }
        if answer.external {
            match &answer.intents {
                Ok(intents) => external_answers.push((answer.agent, Ok(intents.clone()))),
                Err(AgentFailure::External(why)) => {
                    external_answers.push((answer.agent, Err(why.clone())));
                }
                Err(_) => {}
            }
        }
        if let Some((_, deadline_ms)) = late.iter().find(|(agent, _)| *agent == answer.agent) {
            // The agent still took its turn, as a late one in the shell finishes it.
            answer.intents = Err(AgentFailure::MissedDeadline {
                deadline_ms: *deadline_ms,
            });
        }
        match answer.intents {
            Ok(returned) => {
                intents_by_agent.push((answer.agent, returned.len()));
                intents.extend(returned.into_iter().enumerate().map(|(sequence, intent)| {
                    StampedIntent {
                        agent: answer.agent,
                        sequence: sequence as u64,
                        intent,
                    }
                }));
            }
            Err(failure) => failures.push((answer.agent, failure)),
        }
    }
    intents.extend(client_intents);
    let intents_checked = intents.len();

    // admit, and supervise the agents that failed
    let failed = failures.iter().map(|(agent, _)| *agent).collect();
    let Admitted {
        admission,
        supervision,
    } = cores.admit(tick, intents, failed).await?;
    clock.lap(Phase::Admit);
    let mut restore = Vec::new();
    let mut isolated = Vec::new();
    let mut restart = Vec::new();
    for (agent, decision) in &supervision {
        match decision {
            SupervisionDecision::Restart { .. } => restart.push(*agent),
            SupervisionDecision::Isolate { .. } => {
                state.isolate(*agent, &mut restore);
                isolated.push(*agent);
            }
            SupervisionDecision::AlreadyIsolated => {}
        }
    }
    // Participants a reload removed go the way of an isolated agent.
    for agent in std::mem::take(&mut state.retiring) {
        state.isolate(agent, &mut restore);
        isolated.push(agent);
    }
    let rebuild_errors = if restart.is_empty() {
        Vec::new()
    } else {
        cores.restart(restart).await?
    };
    let failures = failures
        .into_iter()
        .zip(supervision)
        .map(|((agent, failure), (_, decision))| FailureRecord {
            agent,
            failure,
            decision,
            rebuild_error: rebuild_errors
                .iter()
                .find(|(rebuilt, _)| *rebuilt == agent)
                .map(|(_, error)| error.clone()),
        })
        .collect();

    // rank: the agents' and the injected signals join the queue; safety pre-empts
    let mut signals = admission.signals;
    signals.extend(injected);
    let ranked = cores.take_signals(tick, signals, isolated.clone()).await?;
    clock.lap(Phase::Rank);
    let safety = if ranked.preempting.is_empty() {
        SafetyResponse::default()
    } else {
        let response = cores
            .safety(tick, &ranked.preempting, Arc::clone(&frame))
            .await?;
        clock.lap(Phase::Safety);
        response
    };

    // match
    let matched = cores
        .run_match(MatchRequest {
            tick,
            withdraw: isolated,
            revoke_power_of: safety.revoke_power_of.clone(),
            capacities: admission.capacities.clone(),
            submissions: admission.submissions.clone(),
        })
        .await?;
    clock.lap(Phase::Match);
    let mut market_errors: Vec<_> = matched
        .refused_capacities
        .into_iter()
        .map(|(agent, resource, error)| (Some((agent, resource)), error))
        .chain(matched.error.map(|error| (None, error)))
        .collect();

    // settle: fills, escrow and refunds; what the guardian refused is undone
    let settlement = cores.settle(tick, &matched.events).await?;
    clock.lap(Phase::Settle);
    let mut market_events = matched.events;
    let mut market = matched.view;
    let mut followups = Vec::new();
    if settlement.needs_followup() {
        let undone = cores
            .followup(tick, &settlement.revoke, &settlement.cancel)
            .await?;
        clock.lap(Phase::Followup);
        market_errors.extend(undone.error.map(|error| (None, error)));
        followups = undone.events;
        market = undone.view;
    }
    for (fill, verdict) in &settlement.fills {
        if matches!(verdict, Verdict::Allow { .. }) {
            // Only agents observe; ingress clients hear of fills by subscription.
            for party in [fill.buyer, fill.seller] {
                if state.seats.iter().any(|seat| seat.id == party) {
                    state.pending_fills.entry(party).or_default().push(*fill);
                }
            }
        }
    }

    // guard: the agents' actuations, except those a safety hold pre-empts
    let (preempted, requests): (Vec<_>, Vec<_>) =
        admission
            .actuations
            .into_iter()
            .partition(|(_, actuation)| {
                matches!(actuation, Actuation::PowerLimit { component, .. }
                if safety.held.contains(component))
            });
    let guarded = cores.guard(tick, &followups, &requests).await?;
    clock.lap(Phase::Guard);
    market_events.extend(followups);

    let actuations = safety
        .actions
        .into_iter()
        .map(|(actuation, verdict)| (None, actuation, verdict))
        .chain(
            requests
                .into_iter()
                .zip(guarded.verdicts)
                .map(|((agent, actuation), verdict)| (Some(agent), actuation, verdict)),
        )
        .map(|(requester, requested, verdict)| ActuationRecord {
            requester,
            requested,
            verdict,
            outcome: None,
        })
        .collect();

    Ok(TickOutput {
        tick,
        correlation: CorrelationId::from_parts(state.settings.seed, tick.0),
        frame,
        sample_errors,
        mint: opened.mint,
        holdings: opened.holdings,
        signals: ranked.all,
        preempting: ranked.preempting,
        refused_signals: ranked.refused,
        held: safety.held,
        revoked_power_of: safety.revoke_power_of,
        no_safe_limit: safety.unknown,
        resting,
        intents_by_agent,
        answered: external_answers,
        intents_checked,
        denied_intents: admission.denied,
        submissions: admission.submissions,
        capacities: admission.capacities,
        market_events,
        market_errors,
        fills: settlement.fills,
        actuations,
        preempted,
        failures,
        restore,
        restore_failed: Vec::new(),
        market,
        audit: guarded.audit,
        postings: guarded.postings,
        timings: clock.timings,
    })
}
