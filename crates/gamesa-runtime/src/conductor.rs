//! The conductor: runs one tick in fixed phases, each waiting for the one before.
//!
//! sample → observe → admit → rank (safety pre-empts) → match → guard → actuate.
//! Agents are asked one after another in id order and their intents are taken in
//! `(agent id, sequence)` order, so the outcome never depends on thread timing.
//!
//! # Invariants
//! - an isolated agent is never asked again and holds no orders or leases
//! - while a safety signal names a component, agents' own actuations of it are
//!   pre-empted and its limit is held at the safe value
//! - every fill the guardian denied has had its lease revoked before the tick ends

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use actix::{Addr, MailboxError};
use gamesa_agent::MarketView;
use gamesa_guardian::{Reason, Verdict};
use gamesa_hw::Applied;
use gamesa_market::{MarketEvent, Submission};
use gamesa_proto::{
    Actuation, AgentId, CorrelationId, Fill, Resource, Signal, TelemetryFrame, Tick,
};

use crate::telemetry::{IngressLink, TickRecorder, spans};
use crate::{
    actors::{
        ActuatorActor, AgentActor, AgentFailure, ExchangeActor, GuardianActor, SchedulerActor,
        SensorActor,
        actuator::{Apply, RestoreFor},
        agent::{Observe, Rebuild},
        exchange::{MarketSnapshot, Revoke, RunMatch, Snapshot, Withdraw},
        guardian::{
            ActuationFailed, Admit, CheckActuations, OpenTick, ReportFailure, RespondToSafety,
            Settle, StampedIntent,
        },
        scheduler::{DropFrom, Enqueue, Rank},
        sensor::TakeSample,
    },
    progress::ProgressCounters,
    supervision::SupervisionDecision,
};

/// A phase lost its actor: the runtime cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {actor} actor is gone: {reason}")]
pub struct ActorGone {
    pub actor: &'static str,
    pub reason: String,
}

fn gone(actor: &'static str) -> impl FnOnce(MailboxError) -> ActorGone {
    move |error| ActorGone {
        actor,
        reason: error.to_string(),
    }
}

/// The addresses of the core actors.
#[derive(Debug, Clone)]
pub struct Actors {
    pub sensor: Addr<SensorActor>,
    pub exchange: Addr<ExchangeActor>,
    pub guardian: Addr<GuardianActor>,
    pub scheduler: Addr<SchedulerActor>,
    pub actuator: Addr<ActuatorActor>,
}

/// One configured agent as the conductor tracks it.
#[derive(Debug, Clone)]
pub struct AgentSlot {
    pub id: AgentId,
    pub name: String,
    pub addr: Addr<AgentActor>,
    pub isolated: bool,
}

/// One actuation and what became of it.
#[derive(Debug, Clone)]
pub struct ActuationRecord {
    /// `None` for the guardian's own safety action.
    pub requester: Option<AgentId>,
    pub requested: Actuation,
    pub verdict: Verdict,
    /// `None` when the verdict was deny; otherwise the actuator's answer.
    pub outcome: Option<Result<Applied, String>>,
}

/// An agent failure and the supervisor's decision about it.
#[derive(Debug, Clone)]
pub struct FailureRecord {
    pub agent: AgentId,
    pub failure: AgentFailure,
    pub decision: SupervisionDecision,
}

/// Everything that happened in one tick: what status lines, tests and `sim` read.
#[derive(Debug, Clone)]
pub struct TickReport {
    pub tick: Tick,
    pub correlation: CorrelationId,
    pub frame: Arc<TelemetryFrame>,
    pub sample_errors: Vec<String>,
    /// Live signals after this tick's were enqueued, highest-ranked first.
    pub signals: Vec<Signal>,
    pub preempting: Vec<Signal>,
    pub fills: Vec<(Fill, Verdict)>,
    pub denied_intents: Vec<(StampedIntent, Reason)>,
    pub actuations: Vec<ActuationRecord>,
    /// Agents' actuations dropped because a safety hold covers their component.
    pub preempted: Vec<(AgentId, Actuation)>,
    pub failures: Vec<FailureRecord>,
    pub market_events: Vec<MarketEvent>,
    pub market: MarketView,
}

impl TickReport {
    /// Verdicts that were not a plain allow: every clamp and deny of the tick.
    pub fn vetoes(&self) -> impl Iterator<Item = &Verdict> {
        self.fills
            .iter()
            .map(|(_, verdict)| verdict)
            .chain(self.actuations.iter().map(|record| &record.verdict))
            .filter(|verdict| !matches!(verdict, Verdict::Allow { .. }))
    }
}

/// How the conductor is set up.
#[derive(Debug, Clone, Copy)]
pub struct ConductorSettings {
    pub epoch_ticks: u64,
    pub seed: u64,
}

#[derive(Debug)]
pub struct Conductor {
    settings: ConductorSettings,
    actors: Actors,
    agents: Vec<AgentSlot>,
    next_tick: Tick,
    /// Fills each agent took part in, delivered at its next observation.
    pending_fills: BTreeMap<AgentId, Vec<Fill>>,
    /// The power limit last applied to each component (dry-run or real), in mW.
    applied_limits_mw: BTreeMap<String, u64>,
    /// Limits applied only in dry-run: the hardware still reports its own, so frames
    /// are shown with these instead, and decisions play out as they would for real.
    dry_run_limits_mw: BTreeMap<String, u64>,
    /// Signals injected from outside (ingress), taken in at the next tick.
    injected: Vec<Signal>,
    /// Metrics, the decision log and ingress links: read from each tick, never fed back.
    telemetry: TickRecorder,
    /// Orders and cancels of ingress clients, taken in with the agents' intents at the
    /// next tick, in canonical order (client id after every agent id, then sequence).
    injected_intents: Vec<StampedIntent>,
    /// Progress ingress clients reported, per component: written into each frame at the
    /// sample phase where the sensors gave no counter of their own.
    progress: ProgressCounters,
}

impl Conductor {
    /// `agents` must be sorted by id.
    pub fn new(settings: ConductorSettings, actors: Actors, agents: Vec<AgentSlot>) -> Conductor {
        Conductor {
            settings,
            actors,
            agents,
            next_tick: Tick(0),
            pending_fills: BTreeMap::new(),
            applied_limits_mw: BTreeMap::new(),
            dry_run_limits_mw: BTreeMap::new(),
            injected: Vec::new(),
            telemetry: TickRecorder::default(),
            injected_intents: Vec::new(),
            progress: ProgressCounters::default(),
        }
    }

    pub fn actors(&self) -> &Actors {
        &self.actors
    }

    pub fn agents(&self) -> &[AgentSlot] {
        &self.agents
    }

    pub fn next_tick(&self) -> Tick {
        self.next_tick
    }

    /// Queues a signal from outside; it is taken in at the next tick's rank phase.
    pub fn inject(&mut self, signal: Signal) {
        self.injected.push(signal);
    }

    /// Like [`Conductor::inject`], and the tick that takes the signal in is linked to
    /// the ingress request it came from (`telemetry::ingress`).
    pub fn inject_linked(&mut self, signal: Signal, link: IngressLink) {
        self.telemetry.link(link);
        self.injected.push(signal);
    }

    /// Telemetry's state: the decision log and the instruments.
    pub fn telemetry(&self) -> &TickRecorder {
        &self.telemetry
    }

    pub fn telemetry_mut(&mut self) -> &mut TickRecorder {
        &mut self.telemetry
    }

    /// Queues intents of ingress clients for the next tick's admit phase. Their ids
    /// come after every agent's, and each client's sequence numbers follow arrival.
    pub fn inject_intents(&mut self, intents: impl IntoIterator<Item = StampedIntent>) {
        self.injected_intents.extend(intents);
        self.injected_intents
            .sort_by_key(|stamped| (stamped.agent, stamped.sequence));
    }

    /// Adds a workload's reported progress to `component`'s counter; the next tick's
    /// frame carries it.
    pub fn report_progress(&mut self, component: &str, micro: u64) {
        self.progress.add(component, micro);
    }

    fn live_agents(&self) -> Vec<AgentId> {
        self.agents
            .iter()
            .filter(|slot| !slot.isolated)
            .map(|slot| slot.id)
            .collect()
    }

    /// Runs the next tick through every phase, inside its `gamesa.tick` span.
    pub async fn run_tick(&mut self) -> Result<TickReport, ActorGone> {
        let started = Instant::now();
        let tick = self.next_tick;
        self.telemetry
            .begin_tick(tick, CorrelationId::from_parts(self.settings.seed, tick.0));
        match self.run_phases().await {
            Ok(report) => {
                self.telemetry.tick_finished(&report, started.elapsed());
                Ok(report)
            }
            Err(gone) => {
                self.telemetry.abandon_tick(gone.to_string());
                Err(gone)
            }
        }
    }

    async fn run_phases(&mut self) -> Result<TickReport, ActorGone> {
        let tick = self.next_tick;
        self.next_tick = tick.next();
        let actors = self.actors.clone();

        // sample
        let phase = spans::begin(&mut self.telemetry, "sensors.sample");
        let sample = actors
            .sensor
            .send(TakeSample { tick })
            .await
            .map_err(gone("sensor"))?;
        spans::sampled(
            &mut self.telemetry,
            phase,
            &sample.frame,
            sample.errors.len(),
        );
        let mut frame = self.with_dry_run_limits(sample.frame);
        self.progress.fill(&mut frame);
        let frame = Arc::new(frame);
        let sample_errors = sample.errors.iter().map(ToString::to_string).collect();

        let epoch_ticks = self.settings.epoch_ticks.max(1);
        let epoch = tick
            .0
            .is_multiple_of(epoch_ticks)
            .then_some(tick.0 / epoch_ticks);
        let phase = spans::begin(&mut self.telemetry, "guardian.open");
        let opening = actors
            .guardian
            .send(OpenTick {
                tick,
                frame: Arc::clone(&frame),
                planned_limits_mw: self.applied_limits_mw.clone(),
                epoch,
            })
            .await
            .map_err(gone("guardian"))?;
        spans::opened(&mut self.telemetry, phase, epoch);
        let live = self.live_agents();
        let snapshot = actors
            .exchange
            .send(Snapshot {
                agents: live.clone(),
            })
            .await
            .map_err(gone("exchange"))?;
        self.telemetry.tick_started(&snapshot);
        let ranked = actors
            .scheduler
            .send(Rank { tick })
            .await
            .map_err(gone("scheduler"))?;

        // observe
        let (mut intents, failures) = self
            .observe(tick, &frame, ranked.all.into(), snapshot, &opening.balances)
            .await?;
        intents.append(&mut self.injected_intents);
        let mut market_events = Vec::new();
        let failures = self.supervise(tick, failures, &mut market_events).await?;

        // admit: effects for every intent, affordability for bids
        let phase = spans::guardian_check(&mut self.telemetry, "admit");
        let intent_count = intents.len();
        let admission = actors
            .guardian
            .send(Admit { tick, intents })
            .await
            .map_err(gone("guardian"))?;
        spans::admitted(&mut self.telemetry, phase, intent_count, &admission);

        // rank: agents' and injected signals join the queue; safety pre-empts
        let links = self.telemetry.take_injected(&self.injected);
        let phase = spans::rank(&mut self.telemetry, &self.injected, &links);
        let mut signals = admission.signals;
        signals.append(&mut self.injected);
        actors
            .scheduler
            .send(Enqueue { tick, signals })
            .await
            .map_err(gone("scheduler"))?;
        let ranked = actors
            .scheduler
            .send(Rank { tick })
            .await
            .map_err(gone("scheduler"))?;
        spans::ranked(&mut self.telemetry, phase, &ranked);
        let mut actuations = Vec::new();
        let mut held = Vec::new();
        if !ranked.preempting.is_empty() {
            let phase = spans::guardian_check(&mut self.telemetry, "safety");
            let response = actors
                .guardian
                .send(RespondToSafety {
                    tick,
                    signals: ranked.preempting.clone(),
                    frame: Arc::clone(&frame),
                })
                .await
                .map_err(gone("guardian"))?;
            spans::safety_checked(&mut self.telemetry, phase, &response);
            if !response.revoke_power_of.is_empty() {
                let events = actors
                    .exchange
                    .send(Revoke::Holdings {
                        holders: response.revoke_power_of,
                        resource: Resource::PowerBudgetMw,
                    })
                    .await
                    .map_err(gone("exchange"))?;
                self.settle(tick, events, &mut market_events).await?;
            }
            held = response.held;
            let safety = self
                .actuate(
                    response
                        .actions
                        .into_iter()
                        .map(|(actuation, verdict)| (None, actuation, verdict))
                        .collect(),
                    &frame,
                )
                .await?;
            actuations.extend(safety);
        }

        // match
        let phases = spans::match_begin(
            &mut self.telemetry,
            &admission.submissions,
            &admission.capacities,
        );
        let outcome = actors
            .exchange
            .send(RunMatch {
                tick,
                capacities: admission.capacities,
                submissions: admission.submissions,
            })
            .await
            .map_err(gone("exchange"))?;

        spans::matched(&mut self.telemetry, phases, &outcome.events);

        // guard: fills
        let phase = spans::guardian_check(&mut self.telemetry, "settle");
        let fills = self
            .settle(tick, outcome.events, &mut market_events)
            .await?;
        spans::settled(&mut self.telemetry, phase, &fills);
        for (fill, verdict) in &fills {
            if matches!(verdict, Verdict::Allow { .. }) {
                // Only agents observe; ingress clients hear of fills by subscription.
                for party in [fill.buyer, fill.seller] {
                    if self.agents.iter().any(|slot| slot.id == party) {
                        self.pending_fills.entry(party).or_default().push(*fill);
                    }
                }
            }
        }

        // guard: actuations, then actuate
        let (preempted, requests): (Vec<_>, Vec<_>) =
            admission.actuations.into_iter().partition(|(_, actuation)| {
                matches!(actuation, Actuation::PowerLimit { component, .. } if held.contains(component))
            });
        spans::preempted(&mut self.telemetry, &preempted);
        if !requests.is_empty() {
            let phase = spans::guardian_check(&mut self.telemetry, "actuation");
            let verdicts = actors
                .guardian
                .send(CheckActuations {
                    tick,
                    requests: requests.clone(),
                })
                .await
                .map_err(gone("guardian"))?;
            spans::actuations_checked(&mut self.telemetry, phase, &requests, &verdicts);
            let checked = requests
                .into_iter()
                .zip(verdicts)
                .map(|((agent, actuation), verdict)| (Some(agent), actuation, verdict))
                .collect();
            actuations.extend(self.actuate(checked, &frame).await?);
        }

        let market = self.market_view(tick).await?;
        Ok(TickReport {
            tick,
            correlation: CorrelationId::from_parts(self.settings.seed, tick.0),
            frame,
            sample_errors,
            signals: ranked.all,
            preempting: ranked.preempting,
            fills,
            denied_intents: admission.denied,
            actuations,
            preempted,
            failures,
            market_events,
            market,
        })
    }

    async fn observe(
        &mut self,
        tick: Tick,
        frame: &Arc<TelemetryFrame>,
        signals: Arc<[Signal]>,
        mut snapshot: MarketSnapshot,
        balances: &BTreeMap<AgentId, gamesa_proto::Credits>,
    ) -> Result<(Vec<StampedIntent>, Vec<(AgentId, AgentFailure)>), ActorGone> {
        let market = Arc::new(snapshot.view);
        let mut intents = Vec::new();
        let mut failures = Vec::new();
        for slot in self.agents.iter().filter(|slot| !slot.isolated) {
            let observe = Observe {
                tick,
                epoch_ticks: self.settings.epoch_ticks,
                frame: Arc::clone(frame),
                signals: Arc::clone(&signals),
                market: Arc::clone(&market),
                fills: self.pending_fills.remove(&slot.id).unwrap_or_default(),
                leases: snapshot.leases.remove(&slot.id).unwrap_or_default(),
                open_orders: snapshot.open_orders.remove(&slot.id).unwrap_or_default(),
                balance: balances.get(&slot.id).copied().unwrap_or_default(),
            };
            let phase = spans::observe(&mut self.telemetry, slot.id, &slot.name);
            match slot.addr.send(observe).await {
                Ok(Ok(returned)) => {
                    spans::observed(&mut self.telemetry, phase, Ok(returned.len()));
                    intents.extend(returned.into_iter().enumerate().map(|(sequence, intent)| {
                        StampedIntent {
                            agent: slot.id,
                            sequence: sequence as u64,
                            intent,
                        }
                    }))
                }
                Ok(Err(failure)) => {
                    spans::observed(&mut self.telemetry, phase, Err(&failure));
                    failures.push((slot.id, failure))
                }
                Err(error) => {
                    let failure = AgentFailure::Panicked(error.to_string());
                    spans::observed(&mut self.telemetry, phase, Err(&failure));
                    failures.push((slot.id, failure))
                }
            }
        }
        Ok((intents, failures))
    }

    /// Hands each failure to the supervisor and carries out its decision.
    async fn supervise(
        &mut self,
        tick: Tick,
        failures: Vec<(AgentId, AgentFailure)>,
        market_events: &mut Vec<MarketEvent>,
    ) -> Result<Vec<FailureRecord>, ActorGone> {
        let mut records = Vec::new();
        for (agent, failure) in failures {
            let decision = self
                .actors
                .guardian
                .send(ReportFailure { agent, tick })
                .await
                .map_err(gone("guardian"))?;
            tracing::warn!(%agent, %failure, ?decision, "agent failed");
            spans::supervised(&mut self.telemetry, agent, &failure, &decision);
            match decision {
                SupervisionDecision::Restart { .. } => {
                    if let Some(slot) = self.agents.iter().find(|slot| slot.id == agent)
                        && let Ok(Err(error)) = slot.addr.send(Rebuild).await
                    {
                        tracing::warn!(%agent, %error, "agent could not be rebuilt");
                    }
                }
                SupervisionDecision::Isolate { .. } => {
                    self.isolate(tick, agent, market_events).await?
                }
                SupervisionDecision::AlreadyIsolated => {}
            }
            records.push(FailureRecord {
                agent,
                failure,
                decision,
            });
        }
        Ok(records)
    }

    /// Isolation: cancel the agent's orders, revoke its leases, refund its escrow,
    /// drop its signals and restore what it actuated. Everything else keeps running.
    async fn isolate(
        &mut self,
        tick: Tick,
        agent: AgentId,
        market_events: &mut Vec<MarketEvent>,
    ) -> Result<(), ActorGone> {
        if let Some(slot) = self.agents.iter_mut().find(|slot| slot.id == agent) {
            slot.isolated = true;
        }
        self.pending_fills.remove(&agent);
        let events = self
            .actors
            .exchange
            .send(Withdraw {
                agents: vec![agent],
                revoke_leases: true,
            })
            .await
            .map_err(gone("exchange"))?;
        self.settle(tick, events, market_events).await?;
        self.actors
            .scheduler
            .send(DropFrom { agent })
            .await
            .map_err(gone("scheduler"))?;
        let restored = self
            .actors
            .actuator
            .send(RestoreFor { agent })
            .await
            .map_err(gone("actuator"))?;
        for (target, error) in &restored.failed {
            tracing::error!(%agent, %target, %error, "could not restore an isolated agent's actuation");
        }
        tracing::warn!(%agent, restored = ?restored.restored, "agent isolated");
        Ok(())
    }

    /// Has the guardian settle market events, revoking the leases of denied fills.
    async fn settle(
        &mut self,
        tick: Tick,
        events: Vec<MarketEvent>,
        market_events: &mut Vec<MarketEvent>,
    ) -> Result<Vec<(Fill, Verdict)>, ActorGone> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let settlement = self
            .actors
            .guardian
            .send(Settle {
                tick,
                events: events.clone(),
            })
            .await
            .map_err(gone("guardian"))?;
        market_events.extend(events);
        let mut followups = Vec::new();
        if !settlement.revoke.is_empty() {
            followups.extend(
                self.actors
                    .exchange
                    .send(Revoke::Leases(settlement.revoke))
                    .await
                    .map_err(gone("exchange"))?,
            );
        }
        if !settlement.cancel.is_empty() {
            let submissions = settlement
                .cancel
                .into_iter()
                .enumerate()
                .map(|(sequence, (agent, order))| Submission::cancel(sequence as u64, agent, order))
                .collect();
            let outcome = self
                .actors
                .exchange
                .send(RunMatch {
                    tick,
                    capacities: Vec::new(),
                    submissions,
                })
                .await
                .map_err(gone("exchange"))?;
            followups.extend(outcome.events);
        }
        if !followups.is_empty() {
            // Revocations and cancels only release: they create no fills to check.
            self.actors
                .guardian
                .send(Settle {
                    tick,
                    events: followups.clone(),
                })
                .await
                .map_err(gone("guardian"))?;
            market_events.extend(followups);
        }
        Ok(settlement.fills)
    }

    /// Applies every allowed or clamped actuation and records what became of each.
    async fn actuate(
        &mut self,
        checked: Vec<(Option<AgentId>, Actuation, Verdict)>,
        frame: &TelemetryFrame,
    ) -> Result<Vec<ActuationRecord>, ActorGone> {
        let to_apply: Vec<(Option<AgentId>, Actuation)> = checked
            .iter()
            .filter_map(|(requester, actuation, verdict)| match verdict {
                Verdict::Allow { .. } => Some((*requester, actuation.clone())),
                Verdict::Clamp { to, .. } => Some((*requester, to.clone())),
                Verdict::Deny { .. } => None,
            })
            .collect();
        let phase = spans::actuate(&mut self.telemetry, to_apply.len());
        let mut results = if to_apply.is_empty() {
            Vec::new()
        } else {
            self.actors
                .actuator
                .send(Apply {
                    actuations: to_apply.clone(),
                })
                .await
                .map_err(gone("actuator"))?
        }
        .into_iter();
        let mut applied = to_apply.into_iter();
        let mut records = Vec::new();
        for (requester, requested, verdict) in checked {
            let outcome = if matches!(verdict, Verdict::Deny { .. }) {
                None
            } else {
                let (_, actuation) = applied.next().unzip();
                let result = results.next();
                match (actuation, result) {
                    (
                        Some(Actuation::PowerLimit {
                            component,
                            limit_mw,
                        }),
                        Some(Ok(done)),
                    ) => {
                        if done.dry_run {
                            self.dry_run_limits_mw.insert(component.clone(), limit_mw);
                        } else {
                            self.dry_run_limits_mw.remove(&component);
                        }
                        self.applied_limits_mw.insert(component, limit_mw);
                        Some(Ok(done))
                    }
                    (_, Some(Ok(done))) => Some(Ok(done)),
                    (actuation, Some(Err(error))) => {
                        tracing::warn!(%requested, %error, "actuation failed");
                        if let Some(actuation) = actuation {
                            self.report_failed_actuation(actuation, frame).await?;
                        }
                        Some(Err(error.to_string()))
                    }
                    (_, None) => Some(Err("the actuator returned no result".to_owned())),
                }
            };
            records.push(ActuationRecord {
                requester,
                requested,
                verdict,
                outcome,
            });
        }
        spans::actuated(&mut self.telemetry, phase, &records);
        Ok(records)
    }

    /// The frame as it would read had the dry-run limits been written.
    fn with_dry_run_limits(&self, mut frame: TelemetryFrame) -> TelemetryFrame {
        for component in &mut frame.components {
            if let Some(limit_mw) = self.dry_run_limits_mw.get(&component.id) {
                component.limit_mw = Some(*limit_mw);
            }
        }
        frame
    }

    /// Tells the guardian an allowed actuation did not take effect; for a power limit
    /// the frame says what the device still has.
    async fn report_failed_actuation(
        &self,
        actuation: Actuation,
        frame: &TelemetryFrame,
    ) -> Result<(), ActorGone> {
        let device_now = match &actuation {
            Actuation::PowerLimit { component, .. } => frame
                .component(component)
                .and_then(|telemetry| telemetry.limit_mw)
                .map(|limit_mw| Actuation::PowerLimit {
                    component: component.clone(),
                    limit_mw,
                }),
            _ => None,
        };
        self.actors
            .guardian
            .send(ActuationFailed {
                actuation,
                device_now,
            })
            .await
            .map_err(gone("guardian"))
    }

    async fn market_view(&self, _tick: Tick) -> Result<MarketView, ActorGone> {
        let snapshot = self
            .actors
            .exchange
            .send(Snapshot { agents: Vec::new() })
            .await
            .map_err(gone("exchange"))?;
        Ok(snapshot.view)
    }
}
