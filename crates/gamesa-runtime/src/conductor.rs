//! The conductor: the engine's tick ([`gamesa_engine::tick::run`]) driven through the
//! actors. It samples the sensor actor, runs the phase sequence with one message per
//! core actor per phase, writes the allowed actuations through the actuator actor, and
//! hands the output to telemetry and, when one is attached, to the journal (what the
//! tick consumed and decided, for replay).
//!
//! Agents are observed concurrently, each on its own thread, under a per-tick deadline
//! (`runtime.agent_deadline_ms`): a turn is sent to every agent at once, and an agent
//! that has not answered by the deadline skips the tick (its resting orders rest on;
//! the fills its turn carried are not delivered again, its leases and balance say where
//! it stands) and the miss counts as a failure toward restart and isolation, like a
//! panic. A restart replaces
//! the agent's actor and thread, so an agent stuck in `observe` is left behind, never
//! waited for again.
//!
//! An external agent (`kind = "external"`) is asked through the ingress hub instead:
//! its turn goes to the connection that attached it, under the same deadline, and what
//! came back (intents, or why they do not count) is an input the journal keeps.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use actix::{Actor, Addr, Arbiter, MailboxError};
use gamesa_agent::{AgentFactory, AgentSpec, OwnedObservation};
use gamesa_engine::{
    AgentFailure, HostedAgent, Intake, Phase, PhaseTiming, TickOutput, TickSettings, TickState,
    Turn,
    cores::{Admitted, Guarded, MatchRequest, Matched, Opened, Opening, Ranked, Snapshot},
    tick::{self, Cores, Observed},
};
use gamesa_guardian::{SafetyResponse, Settlement, StampedIntent};
use gamesa_journal::{Entry, JournalWriter};
use gamesa_market::MarketEvent;
use gamesa_proto::{Actuation, AgentId, LeaseId, OrderId, Signal, TelemetryFrame, Tick};

use crate::actors::{
    ActuatorActor, AgentActor, ExchangeActor, GuardianActor, SchedulerActor, SensorActor,
    actuator::Apply,
    agent::{Observe, Warm},
    exchange::{Followup, Overview, RunMatch, TakeSnapshot},
    guardian::{Accounts, Admit, Guard, Open, Safety, Settle},
    scheduler::{Rank, TakeSignals},
    sensor::TakeSample,
};
use crate::{
    ingress::{external, hub::MarketState},
    telemetry::{IngressLink, TickRecorder},
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

/// One configured agent: its actor on its own thread, and what rebuilds it.
pub struct AgentSlot {
    pub id: AgentId,
    pub name: String,
    spec: AgentSpec,
    factory: AgentFactory,
    /// Its past epochs, handed to every build ([`AgentSlot::warm`]).
    past: Arc<[gamesa_agent::Experience]>,
    arbiter: Arbiter,
    addr: Addr<AgentActor>,
}

impl AgentSlot {
    /// Starts `host` on a thread of its own. Call it inside a running actix `System`.
    pub fn start(host: HostedAgent) -> AgentSlot {
        let spec = host.spec().clone();
        let factory = Arc::clone(host.factory());
        let arbiter = Arbiter::new();
        let addr = AgentActor::start_in_arbiter(&arbiter.handle(), move |_| AgentActor::new(host));
        AgentSlot {
            id: spec.id,
            name: spec.name.clone(),
            spec,
            factory,
            past: Arc::from([]),
            arbiter,
            addr,
        }
    }

    /// Hands the agent its past epochs, now and after every restart.
    pub async fn warm(
        &mut self,
        past: Arc<[gamesa_agent::Experience]>,
    ) -> Result<Result<(), AgentFailure>, ActorGone> {
        self.past = Arc::clone(&past);
        self.addr.send(Warm(past)).await.map_err(gone("agent"))
    }

    /// A reload changed its parameters: a fresh build with `spec` (same id and kind)
    /// on a fresh thread, warmed with its past; its account, orders and leases stay.
    fn respec(&mut self, spec: AgentSpec) -> Result<(), AgentFailure> {
        self.spec = spec;
        self.restart()
    }

    /// Replaces the agent's actor and thread with a fresh build. The old thread stops
    /// once its current turn returns, if it ever does.
    fn restart(&mut self) -> Result<(), AgentFailure> {
        let (host, rebuilt) = HostedAgent::restart(
            self.spec.clone(),
            Arc::clone(&self.factory),
            Arc::clone(&self.past),
        );
        let arbiter = Arbiter::new();
        self.addr = AgentActor::start_in_arbiter(&arbiter.handle(), move |_| AgentActor::new(host));
        std::mem::replace(&mut self.arbiter, arbiter).stop();
        rebuilt
    }
}

impl Drop for AgentSlot {
    fn drop(&mut self) {
        self.arbiter.stop();
    }
}

impl std::fmt::Debug for AgentSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSlot")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// How one agent is being asked for its turn.
enum Asked {
    /// Its actor, on its thread (boxed: the request is large beside the others).
    Actor(Box<actix::dev::Request<AgentActor, Observe>>),
    /// Its process, through the connection that attached it.
    Process(tokio::sync::oneshot::Receiver<gamesa_engine::ExternalAnswer>),
    /// Answered already, and whether it is an external agent's answer.
    Now(Result<Vec<gamesa_proto::Intent>, AgentFailure>, bool),
}

/// The cores as actors: each phase is one message to the actor that owns the core.
#[derive(Debug)]
pub struct ActorCores {
    actors: Actors,
    /// In id order.
    agents: Vec<AgentSlot>,
    deadline: Duration,
    /// Where external agents' turns go: the ingress hub, once one is attached.
    external: Option<Arc<crate::ingress::IngressHub>>,
}

impl Cores for ActorCores {
    type Error = ActorGone;

    async fn open(
        &mut self,
        opening: Opening,
        agents: Vec<AgentId>,
    ) -> Result<(Opened, Snapshot, Ranked), ActorGone> {
        let tick = opening.tick;
        // Sent at once, so the three actors work at the same time.
        let opened = self.actors.guardian.send(Open(opening));
        let snapshot = self.actors.exchange.send(TakeSnapshot { agents });
        let ranked = self.actors.scheduler.send(Rank { tick });
        Ok((
            opened.await.map_err(gone("guardian"))?,
            snapshot.await.map_err(gone("exchange"))?,
            ranked.await.map_err(gone("scheduler"))?,
        ))
    }

    async fn observe(&mut self, turns: Vec<Turn>) -> Result<Vec<Observed>, ActorGone> {
        let deadline = tokio::time::Instant::now() + self.deadline;
        let deadline_ms = u64::try_from(self.deadline.as_millis()).unwrap_or(u64::MAX);
        // Every turn is in its agent's mailbox (or its process's queue) before the
        // first answer is awaited.
        let asked: Vec<(AgentId, Asked)> = turns
            .into_iter()
            .map(|turn| {
                let agent = turn.agent;
                let Some(slot) = self.agents.iter().find(|slot| slot.id == agent) else {
                    let missing = AgentFailure::Panicked(format!("no agent {agent} is hosted"));
                    return (agent, Asked::Now(Err(missing), false));
                };
                let asked = match &self.external {
                    Some(hub) if hub.external.is_external(agent) => {
                        let observation = OwnedObservation::from(&turn.observation());
                        match hub.external.ask(observation, deadline_ms) {
                            external::Asked::Now(answer) => {
                                Asked::Now(answer.map_err(AgentFailure::External), true)
                            }
                            external::Asked::Later(answer) => Asked::Process(answer),
                        }
                    }
                    _ => Asked::Actor(Box::new(slot.addr.send(Observe(turn)))),
                };
                (agent, asked)
            })
            .collect();
        let mut observed = Vec::with_capacity(asked.len());
        let started = tokio::time::Instant::now();
        for (agent, asked) in asked {
            let missed = || {
                (
                    Err(AgentFailure::MissedDeadline { deadline_ms }),
                    self.deadline,
                )
            };
            let (intents, took, external) = match asked {
                Asked::Now(answer, external) => (answer, Duration::ZERO, external),
                Asked::Actor(request) => {
                    let (intents, took) = match tokio::time::timeout_at(deadline, *request).await {
                        Ok(Ok(answer)) => answer,
                        Ok(Err(error)) => (
                            Err(AgentFailure::Panicked(error.to_string())),
                            Duration::ZERO,
                        ),
                        Err(_elapsed) => missed(),
                    };
                    (intents, took, false)
                }
                Asked::Process(answer) => {
                    let (intents, took) = match tokio::time::timeout_at(deadline, answer).await {
                        Ok(Ok(answer)) => {
                            (answer.map_err(AgentFailure::External), started.elapsed())
                        }
                        Ok(Err(_dropped)) => (
                            Err(AgentFailure::External(
                                "disconnected before answering its turn".into(),
                            )),
                            started.elapsed(),
                        ),
                        Err(_elapsed) => missed(),
                    };
                    (intents, took, true)
                }
            };
            observed.push(Observed {
                agent,
                intents,
                took,
                external,
            });
        }
        Ok(observed)
    }

    async fn admit(
        &mut self,
        tick: Tick,
        intents: Vec<StampedIntent>,
        failed: Vec<AgentId>,
    ) -> Result<Admitted, ActorGone> {
        self.actors
            .guardian
            .send(Admit {
                tick,
                intents,
                failed,
            })
            .await
            .map_err(gone("guardian"))
    }

    async fn restart(
        &mut self,
        agents: Vec<AgentId>,
    ) -> Result<Vec<(AgentId, AgentFailure)>, ActorGone> {
        Ok(self
            .agents
            .iter_mut()
            .filter(|slot| agents.contains(&slot.id))
            .filter_map(|slot| Some((slot.id, slot.restart().err()?)))
            .collect())
    }

    async fn take_signals(
        &mut self,
        tick: Tick,
        signals: Vec<Signal>,
        isolated: Vec<AgentId>,
    ) -> Result<Ranked, ActorGone> {
        self.actors
            .scheduler
            .send(TakeSignals {
                tick,
                signals,
                isolated,
            })
            .await
            .map_err(gone("scheduler"))
    }

    async fn safety(
        &mut self,
        tick: Tick,
        preempting: &[Signal],
        frame: Arc<TelemetryFrame>,
    ) -> Result<SafetyResponse, ActorGone> {
        self.actors
            .guardian
            .send(Safety {
                tick,
                preempting: preempting.to_vec(),
                frame,
            })
            .await
            .map_err(gone("guardian"))
    }

    async fn run_match(&mut self, request: MatchRequest) -> Result<Matched, ActorGone> {
        self.actors
            .exchange
            .send(RunMatch(request))
            .await
            .map_err(gone("exchange"))
    }

    async fn settle(
        &mut self,
        tick: Tick,
        events: &[MarketEvent],
    ) -> Result<Settlement, ActorGone> {
        self.actors
            .guardian
            .send(Settle {
                tick,
                events: events.to_vec(),
            })
            .await
            .map_err(gone("guardian"))
    }

    async fn followup(
        &mut self,
        tick: Tick,
        revoke: &[LeaseId],
        cancel: &[(AgentId, OrderId)],
    ) -> Result<Matched, ActorGone> {
        self.actors
            .exchange
            .send(Followup {
                tick,
                revoke: revoke.to_vec(),
                cancel: cancel.to_vec(),
            })
            .await
            .map_err(gone("exchange"))
    }

    async fn guard(
        &mut self,
        tick: Tick,
        followups: &[MarketEvent],
        requests: &[(AgentId, Actuation)],
    ) -> Result<Guarded, ActorGone> {
        self.actors
            .guardian
            .send(Guard {
                tick,
                followups: followups.to_vec(),
                requests: requests.to_vec(),
            })
            .await
            .map_err(gone("guardian"))
    }
}

#[derive(Debug)]
pub struct Conductor {
    state: TickState,
    cores: ActorCores,
    /// What came from outside since the last tick.
    intake: Intake,
    /// Metrics, the decision log and ingress links: read from each tick, never fed back.
    telemetry: TickRecorder,
    /// Every tick's inputs and decisions, handed to a writer thread; never fed back.
    journal: Option<JournalWriter>,
    /// What came from outside for the last tick, with the tick and when it ran, until
    /// its output joins it ([`Conductor::journal_tick`]).
    journal_inputs: Option<(Tick, u64, Intake)>,
    /// The configs of the reloads since the last tick, in order, for the next tick's
    /// journal entry.
    reloaded: Vec<String>,
    /// Fleet mode's link, when `[fleet]` is on: its cap goes into each tick's intake,
    /// and each tick's draw and bid go back to it.
    fleet: Option<Arc<gamesa_fleet_nats::FleetLink>>,
    /// The job's recent pace, which prices the fleet bids of a node that knows its end.
    job_pace: gamesa_fleet::JobPace,
}

impl Conductor {
    pub fn new(
        settings: TickSettings,
        actors: Actors,
        agents: Vec<AgentSlot>,
        deadline: Duration,
    ) -> Conductor {
        let mut agents = agents;
        agents.sort_by_key(|slot| slot.id);
        Conductor {
            state: TickState::new(settings, agents.iter().map(|slot| slot.id)),
            cores: ActorCores {
                actors,
                agents,
                deadline,
                external: None,
            },
            intake: Intake::default(),
            telemetry: TickRecorder::default(),
            journal: None,
            journal_inputs: None,
            reloaded: Vec::new(),
            fleet: None,
            job_pace: gamesa_fleet::JobPace::default(),
        }
    }

    /// A config reload between ticks: the guardian adopts the new policy, each agent
    /// of `respecced` is rebuilt with its new spec on a fresh thread, `added` agents
    /// start on threads of their own, and `retired` participants are never asked again
    /// (their threads stop) and are retired at the next tick (`TickState::reseat`). The
    /// reloaded config (`config_toml`) goes into the next tick's journal entry, so
    /// replay applies it at the same place. The agents whose rebuild failed, with why.
    pub async fn reload(
        &mut self,
        guardian: gamesa_engine::GuardianCore,
        respecced: Vec<gamesa_agent::AgentSpec>,
        added: Vec<HostedAgent>,
        retired: &[AgentId],
        config_toml: String,
    ) -> Result<Vec<(AgentId, AgentFailure)>, ActorGone> {
        self.cores
            .actors
            .guardian
            .send(crate::actors::guardian::Adopt(guardian))
            .await
            .map_err(gone("guardian"))?;
        let mut failed = Vec::new();
        for spec in respecced {
            let id = spec.id;
            if let Some(slot) = self.cores.agents.iter_mut().find(|slot| slot.id == id)
                && let Err(failure) = slot.respec(spec)
            {
                failed.push((id, failure));
            }
        }
        let added_ids: Vec<AgentId> = added.iter().map(|host| host.spec().id).collect();
        let names: Vec<(AgentId, String)> = added
            .iter()
            .map(|host| (host.spec().id, host.spec().name.clone()))
            .collect();
        self.cores.agents.retain(|slot| !retired.contains(&slot.id));
        self.cores
            .agents
            .extend(added.into_iter().map(AgentSlot::start));
        self.cores.agents.sort_by_key(|slot| slot.id);
        self.state.reseat(&added_ids, retired);
        self.telemetry
            .name_agents(names.iter().map(|(id, name)| (*id, name.as_str())));
        if self.journal.is_some() {
            self.reloaded.push(config_toml);
        }
        Ok(failed)
    }

    /// From the next tick on, each tick's inputs and decisions go to `journal`.
    pub fn attach_journal(&mut self, journal: JournalWriter) {
        self.journal = Some(journal);
    }

    pub fn journal(&self) -> Option<&JournalWriter> {
        self.journal.as_ref()
    }

    /// Whether a journal waits for the last tick's output ([`Conductor::journal_tick`]).
    pub fn journaling(&self) -> bool {
        self.journal.is_some() && self.journal_inputs.is_some()
    }

    /// Hands the last tick, with what it consumed, to the journal, when one is
    /// attached. By value: a caller done with the output (the daemon's loop) copies
    /// nothing on the tick's thread; one that keeps it passes a clone.
    pub fn journal_tick(&mut self, output: TickOutput) {
        let (Some(journal), Some((tick, at_ms, intake))) =
            (&self.journal, self.journal_inputs.take())
        else {
            return;
        };
        if tick == output.tick {
            journal.record(Entry {
                at_ms,
                intake,
                output,
                reloads: std::mem::take(&mut self.reloaded),
            });
        }
    }

    /// Hands `agent` its past epochs ([`AgentSlot::warm`]); an agent not hosted here is
    /// left alone.
    pub async fn warm(
        &mut self,
        agent: AgentId,
        past: Arc<[gamesa_agent::Experience]>,
    ) -> Result<Result<(), AgentFailure>, ActorGone> {
        match self.cores.agents.iter_mut().find(|slot| slot.id == agent) {
            Some(slot) => slot.warm(past).await,
            None => Ok(Ok(())),
        }
    }

    /// The journal, detached: closing it commits what is queued.
    pub fn take_journal(&mut self) -> Option<JournalWriter> {
        self.journal.take()
    }

    pub fn actors(&self) -> &Actors {
        &self.cores.actors
    }

    pub fn agents(&self) -> &[AgentSlot] {
        &self.cores.agents
    }

    /// The agents isolated so far, in id order.
    pub fn isolated(&self) -> Vec<AgentId> {
        self.state
            .seats()
            .iter()
            .filter(|seat| seat.isolated)
            .map(|seat| seat.id)
            .collect()
    }

    pub fn next_tick(&self) -> Tick {
        self.state.next_tick()
    }

    /// Queues a signal from outside; it is taken in at the next tick's rank phase.
    pub fn inject(&mut self, signal: Signal) {
        self.intake.signals.push(signal);
    }

    /// Like [`Conductor::inject`], and the tick that takes the signal in is linked to
    /// the ingress request it came from (`telemetry::ingress`).
    pub fn inject_linked(&mut self, signal: Signal, link: IngressLink) {
        self.telemetry.link(link);
        self.intake.signals.push(signal);
    }

    /// Telemetry's state: the decision log and the instruments.
    pub fn telemetry(&self) -> &TickRecorder {
        &self.telemetry
    }

    /// From the next tick on, the node's cap is what `link` grants (and never more than
    /// its own), and each tick reports the node's draw and bid to it.
    pub fn follow_fleet(&mut self, link: Arc<gamesa_fleet_nats::FleetLink>) {
        self.fleet = Some(link);
    }

    /// External agents' turns go to the processes attached through `hub`; until this
    /// is called, they fail like any agent with nothing to answer.
    pub fn ask_external_through(&mut self, hub: Arc<crate::ingress::IngressHub>) {
        self.cores.external = Some(hub);
    }

    pub fn telemetry_mut(&mut self) -> &mut TickRecorder {
        &mut self.telemetry
    }

    /// Queues intents of ingress clients for the next tick's admit phase. Their ids
    /// come after every agent's, and each client's sequence numbers follow arrival.
    pub fn inject_intents(&mut self, intents: impl IntoIterator<Item = StampedIntent>) {
        self.intake.intents.extend(intents);
        self.intake
            .intents
            .sort_by_key(|stamped| (stamped.agent, stamped.sequence));
    }

    /// Adds a workload's reported progress to `component`'s counter; the next tick's
    /// frame carries it.
    pub fn report_progress(&mut self, component: &str, micro: u64) {
        self.intake.progress.push((component.to_owned(), micro));
    }

    /// Sets the work `component`'s job has left, as its workload reported; the next
    /// tick's frame carries it.
    pub fn report_work_left(&mut self, component: &str, micro: u64) {
        self.intake.work_left.push((component.to_owned(), micro));
    }

    /// The market and the bank as the last tick left them: books `levels` deep, every
    /// live lease, the resting orders of `owners`, every account, and the isolated
    /// agents.
    pub async fn market_state(
        &self,
        levels: usize,
        owners: Vec<AgentId>,
    ) -> Result<MarketState, ActorGone> {
        let actors = &self.cores.actors;
        let overview = actors.exchange.send(Overview { levels, owners });
        let accounts = actors.guardian.send(Accounts);
        Ok(MarketState {
            overview: overview.await.map_err(gone("exchange"))?,
            accounts: accounts.await.map_err(gone("guardian"))?,
            isolated: self.isolated(),
        })
    }

    /// Runs the next tick: sample, the engine's phases through the actors, actuate.
    pub async fn run_tick(&mut self) -> Result<TickOutput, ActorGone> {
        let started = Instant::now();
        let tick = self.state.next_tick();
        let seed = self.state.settings().seed;
        // The first tick under a new grant links to the leader's clearing that made it.
        if let Some(link) = self
            .fleet
            .as_ref()
            .and_then(|fleet| fleet.take_grant_trace())
            .and_then(|traceparent| crate::telemetry::IngressLink::remote(&traceparent))
        {
            self.telemetry.link(link);
        }
        self.telemetry
            .begin_tick(tick, gamesa_proto::CorrelationId::from_parts(seed, tick.0));
        match self.run_phases(tick).await {
            Ok(output) => {
                self.telemetry.tick_finished(&output, started.elapsed());
                Ok(output)
            }
            Err(gone) => {
                self.telemetry.abandon_tick(gone.to_string());
                Err(gone)
            }
        }
    }

    async fn run_phases(&mut self, tick: Tick) -> Result<TickOutput, ActorGone> {
        let sample_start = Instant::now();
        let sample = self
            .cores
            .actors
            .sensor
            .send(TakeSample { tick })
            .await
            .map_err(gone("sensor"))?;
        let sampled = Instant::now();
        let mut intake = std::mem::take(&mut self.intake);
        intake
            .sample_errors
            .extend(sample.errors.iter().map(ToString::to_string));
        // The cap the fleet grants now: an input, journaled with the rest.
        intake.fleet_cap_mw = self.fleet.as_ref().map(|link| link.cap_mw());
        let intake_cap = intake.fleet_cap_mw.unwrap_or(0);
        self.telemetry.take_injected(&intake.signals);
        // What the journal needs to run this tick again beside its output: the engine
        // consumes it.
        let consumed = self.journal.is_some().then(|| intake.clone());

        let mut output = tick::run(&mut self.state, &mut self.cores, sample.frame, intake).await?;
        if let Some(link) = &self.fleet {
            // What the node draws and would bid for, for its next order.
            self.job_pace.observe(&output.frame);
            let bids = gamesa_fleet::node_bid(
                &output.frame,
                output
                    .market
                    .last_price(gamesa_proto::Resource::PowerBudgetMw)
                    .map(|price| price.0),
                link.safe_share_mw(),
                self.job_pace.outlook(),
            );
            link.report(output.frame.node.draw_mw.unwrap_or(0), bids);
            self.telemetry.record_fleet(link.figures(intake_cap));
        }
        output.timings.insert(
            0,
            PhaseTiming {
                phase: Phase::Sample,
                agent: None,
                start: sample_start,
                end: sampled,
            },
        );

        let actuate_start = Instant::now();
        let to_apply = output.to_apply();
        let actuated = if to_apply.is_empty() && output.restore.is_empty() {
            Default::default()
        } else {
            self.cores
                .actors
                .actuator
                .send(Apply {
                    restore: output.restore.clone(),
                    actuations: to_apply
                        .into_iter()
                        .map(|(_, actuation)| actuation)
                        .collect(),
                })
                .await
                .map_err(gone("actuator"))?
        };
        for (target, error) in actuated.restored.failed {
            tracing::error!(%target, %error, "could not restore an isolated agent's actuation");
            output.restore_failed.push((target, error.to_string()));
        }
        for failure in &output.failures {
            tracing::warn!(agent = %failure.agent, failure = %failure.failure, decision = ?failure.decision, "agent failed");
        }
        let results = actuated
            .results
            .into_iter()
            .map(|result| {
                result.map_err(|error| {
                    tracing::warn!(%error, "actuation failed");
                    error.to_string()
                })
            })
            .collect();
        self.state.applied(&mut output, results);
        output.timings.push(PhaseTiming {
            phase: Phase::Actuate,
            agent: None,
            start: actuate_start,
            end: Instant::now(),
        });
        self.journal_inputs = consumed.map(|intake| (tick, unix_ms(), intake));
        Ok(output)
    }
}

/// The wall clock in ms since the Unix epoch: when a tick ran, for the journal only.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
