//! Starting, ticking and stopping the runtime: actors are spawned from a validated
//! config, the conductor drives them, and shutdown restores the machine.
//!
//! # Invariants
//! - while a tick runs as a task (`in_flight`), the task owns the conductor and
//!   `conductor` holds the stand-in
//! - a tick run as a task gives its conductor back before the runtime ticks, runs or
//!   shuts down again, even if the future that started it was dropped
//! - a signal injected while a tick task holds the conductor reaches the next tick
//! - every exit restores every original the actuator recorded, exactly once before the
//!   runtime is gone: `shutdown`, even when an actor is dead, or dropping the runtime
//!   (an error returned or a panic unwinding past it) without one

use std::{future::Future, time::Duration};

use actix::{Actor, Addr};
use gamesa_agent::AgentRegistry;
use gamesa_hw::{Actuator, RestoreReport, Sensors};
use gamesa_proto::Signal;
use tokio::task::{JoinError, JoinHandle};

use crate::{
    ActorGone, Config, TickOutput,
    actors::{
        ActuatorActor, ExchangeActor, GuardianActor, SchedulerActor, SensorActor,
        actuator::SharedActuator,
        exchange::Withdraw,
        guardian::{Accounts, Resume, SettleRelease},
    },
    assemble,
    conductor::{Actors, AgentSlot, Conductor},
};
use crate::{
    ingress::hub::BOOK_LEVELS,
    telemetry::{DecisionLog, IngressLink, Telemetry},
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid config: `{key}`: {message}")]
    Config { key: String, message: String },
    #[error("agent `{agent}` could not be built: {message}")]
    Agent { agent: String, message: String },
    #[error("hardware: {0}")]
    Hardware(String),
    #[error(transparent)]
    ActorGone(#[from] ActorGone),
    #[error(transparent)]
    Reload(#[from] crate::config::reload::ReloadError),
}

/// What a config reload changed.
#[derive(Debug, Clone, Default)]
pub struct ReloadReport {
    /// The keys that changed (`guardian`, `clients`, `agents[1].params`).
    pub changed: Vec<String>,
    /// Agents whose rebuild with new parameters failed: they fail their turns until the
    /// supervisor restarts them, as after a failed restart.
    pub failed: Vec<(gamesa_proto::AgentId, gamesa_engine::AgentFailure)>,
}

/// What a graceful shutdown did.
#[derive(Debug, Clone, Default)]
pub struct ShutdownReport {
    pub cancelled_orders: usize,
    pub restored: RestoreReport,
    /// Why open orders could not be cancelled (an actor was gone, or the last tick
    /// failed); the originals were restored all the same.
    pub cancel_failed: Option<ActorGone>,
    /// What the journal kept and lost, when one was attached (it is closed: every
    /// queued tick is committed).
    pub journal: Option<gamesa_journal::JournalStats>,
}

/// What a tick run as a task hands back: the conductor it owned, and its outcome.
type TaskTick = (Conductor, Result<TickOutput, ActorGone>);

/// A running GAMESA: its actors and the conductor that drives them.
#[derive(Debug)]
pub struct Runtime {
    config: Config,
    conductor: Conductor,
    /// Takes `conductor`'s place while a tick owns the real one as a task on the
    /// arbiter ([`Runtime::tick_as_task`]); it has the same actors and decision log but
    /// no agents, and is never ticked. Built once, so that a tick allocates none.
    stand_in: Option<Conductor>,
    /// The tick running as a task, kept here (not in the future awaiting it) so that if
    /// that future is dropped mid-tick, the next `tick`, `run_until` or `shutdown`
    /// still waits for the tick to end and takes its conductor back.
    in_flight: Option<JoinHandle<TaskTick>>,
    /// The highest participant id the run has used: a reload's new participants get
    /// ids above it, never a gone one's.
    highest_id: u32,
    /// When `run_until`'s next tick is due, kept across its calls.
    next_tick_at: Option<tokio::time::Instant>,
    /// Signals injected while `in_flight` held the conductor, for it when it is back.
    injected_meanwhile: Vec<(Signal, Option<IngressLink>)>,
    /// Ingress clients' intake and replies, when a server is attached.
    ingress: Option<std::sync::Arc<crate::ingress::IngressHub>>,
    /// The actuator actor's actuator: every exit restores the originals through it,
    /// whether or not that actor (or the tick driving it) is still alive.
    actuator: SharedActuator,
}

impl Runtime {
    /// Spawns every actor on the current actix arbiter. Call it inside a running
    /// `actix::System`.
    pub fn start(
        config: &Config,
        registry: &AgentRegistry,
        sensors: Box<dyn Sensors>,
        actuator: Box<dyn Actuator>,
    ) -> Result<Runtime, RuntimeError> {
        let actuator = SharedActuator::new(actuator);
        let invalid = |(key, message)| RuntimeError::Config { key, message };
        crate::config::validate(config, registry).map_err(invalid)?;
        let guardian = assemble::guardian_core(config, registry).map_err(invalid)?;
        let agents: Vec<AgentSlot> = assemble::hosted_agents(config, registry)
            .map_err(|(agent, error)| RuntimeError::Agent {
                agent,
                message: error.to_string(),
            })?
            .into_iter()
            .map(AgentSlot::start)
            .collect();
        let actors = Actors {
            sensor: SensorActor::new(sensors).start(),
            exchange: ExchangeActor::new(assemble::exchange_core(config)).start(),
            guardian: GuardianActor::new(guardian).start(),
            scheduler: SchedulerActor::new(assemble::scheduler_core()).start(),
            actuator: ActuatorActor::new(actuator.clone()).start(),
        };
        let settings = assemble::tick_settings(config);
        let deadline = config.runtime.agent_deadline();
        let decision_log = DecisionLog::new(config.telemetry.decision_log_ticks);
        let mut stand_in = Conductor::new(settings, actors.clone(), Vec::new(), deadline);
        stand_in
            .telemetry_mut()
            .set_decision_log(decision_log.clone());
        let mut conductor = Conductor::new(settings, actors, agents, deadline);
        conductor.telemetry_mut().set_decision_log(decision_log);
        let names: Vec<(gamesa_proto::AgentId, String)> = conductor
            .agents()
            .iter()
            .map(|slot| (slot.id, slot.name.clone()))
            .collect();
        conductor
            .telemetry_mut()
            .name_agents(names.iter().map(|(id, name)| (*id, name.as_str())));
        Ok(Runtime {
            config: config.clone(),
            conductor,
            stand_in: Some(stand_in),
            in_flight: None,
            highest_id: crate::config::reload::highest_id(config),
            next_tick_at: None,
            injected_meanwhile: Vec::new(),
            ingress: None,
            actuator,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The conductor; a stand-in without agents while a tick whose future was dropped
    /// still runs as a task (see [`Runtime::tick_as_task`]).
    pub fn conductor(&self) -> &Conductor {
        &self.conductor
    }

    pub fn guardian(&self) -> &Addr<GuardianActor> {
        &self.conductor.actors().guardian
    }

    pub fn exchange(&self) -> &Addr<ExchangeActor> {
        &self.conductor.actors().exchange
    }

    /// Queues a signal from outside for the next tick.
    pub fn inject(&mut self, signal: Signal) {
        if self.in_flight.is_some() {
            self.injected_meanwhile.push((signal, None));
        } else {
            self.conductor.inject(signal);
        }
    }

    /// Queues a signal for the next tick and links that tick's trace to the ingress
    /// request it came from (see `telemetry::ingress`).
    pub fn inject_linked(&mut self, signal: Signal, link: IngressLink) {
        if self.in_flight.is_some() {
            self.injected_meanwhile.push((signal, Some(link)));
        } else {
            self.conductor.inject_linked(signal, link);
        }
    }

    /// Traces every tick and records metrics through `telemetry`, from the next tick
    /// on (nothing happens when telemetry is off). Call it before ticking.
    pub fn instrument(&mut self, telemetry: &Telemetry) {
        let recorder = self.conductor.telemetry_mut();
        recorder.set_metrics(telemetry.metrics());
        recorder.set_tracer(telemetry.tick_tracer());
    }

    /// The decision log: the last `telemetry.decision_log_ticks` ticks of allocation
    /// decisions with their rationale. Clone it to query from another task.
    pub fn decision_log(&self) -> DecisionLog {
        self.conductor.telemetry().decision_log().clone()
    }

    /// Credits agents with what a previous run left them (the journal's snapshot,
    /// [`gamesa_journal::JournalWriter::resumed`]); call it before the first tick.
    pub async fn resume(
        &mut self,
        holdings: Vec<(gamesa_proto::AgentId, gamesa_proto::Credits)>,
    ) -> Result<Result<gamesa_proto::Credits, gamesa_guardian::LedgerError>, ActorGone> {
        self.take_back_in_flight().await?;
        self.conductor
            .actors()
            .guardian
            .send(Resume(holdings))
            .await
            .map_err(|error| ActorGone {
                actor: "guardian",
                reason: error.to_string(),
            })
    }

    /// Hands each agent its past epochs from the journal
    /// ([`gamesa_journal::JournalWriter::resumed`]); call it before the first tick. The
    /// agents whose `warm` panicked, with why (each counts as nothing else: it runs on).
    pub async fn warm(
        &mut self,
        pasts: &[(gamesa_proto::AgentId, Vec<gamesa_agent::Experience>)],
    ) -> Result<Vec<(gamesa_proto::AgentId, gamesa_engine::AgentFailure)>, ActorGone> {
        self.take_back_in_flight().await?;
        let mut failed = Vec::new();
        for (agent, past) in pasts {
            if let Err(failure) = self.conductor.warm(*agent, past.as_slice().into()).await? {
                failed.push((*agent, failure));
            }
        }
        Ok(failed)
    }

    /// Applies a new, validated config between ticks without a restart
    /// (`docs/runtime-semantics.md`): contracts, gate limits, constants, safe limits,
    /// components and the allowance; agents and clients added, removed or changed
    /// (parameters, weights, effects, tokens). Kept participants keep their ids,
    /// balances, escrows, leases and open orders; signals, restarts and isolations and
    /// the recorded originals stay. A change that needs a restart (`[runtime]`,
    /// `[sensors]`, ...) is refused before anything changes, and the running config
    /// stays. Tokens named by `token_env` are read through `env`.
    pub async fn reload(
        &mut self,
        next: Config,
        registry: &AgentRegistry,
        env: &mut dyn FnMut(&str) -> Option<String>,
    ) -> Result<ReloadReport, RuntimeError> {
        self.take_back_in_flight().await?;
        let plan = crate::config::reload::plan(&self.config, &next, self.highest_id, registry)?;
        let added =
            crate::config::assemble::host(plan.added, registry).map_err(|(agent, error)| {
                RuntimeError::Agent {
                    agent,
                    message: error.to_string(),
                }
            })?;
        let next = plan.config;
        // Everything that can fail comes first: nothing changes unless all of it does.
        let roster = match &self.ingress {
            Some(_) => Some(
                crate::ingress::hub::Roster::from_config(&next, env).map_err(|message| {
                    RuntimeError::Config {
                        key: "clients".into(),
                        message,
                    }
                })?,
            ),
            None => None,
        };
        let recorded =
            gamesa_journal::config_text(&next).map_err(|error| RuntimeError::Config {
                key: String::new(),
                message: error.to_string(),
            })?;
        let failed = self
            .conductor
            .reload(
                plan.guardian,
                plan.respecced,
                added,
                &plan.retired,
                recorded,
            )
            .await?;
        self.highest_id = plan.highest;
        if let (Some(hub), Some(roster)) = (&self.ingress, roster) {
            hub.set_roster(roster);
        }
        self.config = next;
        Ok(ReloadReport {
            changed: plan.changed,
            failed,
        })
    }

    /// From the next tick on, every tick's inputs and decisions go to `journal`
    /// (`docs/journal.md`); [`Runtime::shutdown`] closes it.
    pub fn attach_journal(&mut self, journal: gamesa_journal::JournalWriter) {
        if let Some(hub) = &self.ingress {
            hub.set_journal(journal.path());
        }
        self.conductor.attach_journal(journal);
    }

    /// From the next tick on, the node's cap follows what its fleet grants through `link`
    /// (`docs/fleet.md`).
    pub fn attach_fleet(&mut self, link: std::sync::Arc<gamesa_fleet_nats::FleetLink>) {
        self.conductor.follow_fleet(link);
    }

    /// From the next tick on, takes in what ingress clients sent before each tick, and
    /// answers them, publishes to subscribers and refreshes queries after it.
    pub fn attach_ingress(&mut self, hub: std::sync::Arc<crate::ingress::IngressHub>) {
        hub.set_decision_log(self.decision_log());
        self.conductor
            .ask_external_through(std::sync::Arc::clone(&hub));
        if let Some(journal) = self.conductor.journal() {
            hub.set_journal(journal.path());
        }
        self.ingress = Some(hub);
    }

    /// Runs one tick at once (virtual time: tests and `sim`), in the calling future.
    pub async fn tick(&mut self) -> Result<TickOutput, ActorGone> {
        self.take_back_in_flight().await?;
        let output = tick_with(&mut self.conductor, self.ingress.as_deref()).await?;
        Ok(self.journal_copy(output))
    }

    /// Journals a copy of `output`, when a journal is attached, and returns it.
    fn journal_copy(&mut self, output: TickOutput) -> TickOutput {
        if self.conductor.journaling() {
            self.conductor.journal_tick(output.clone());
        }
        output
    }

    /// Runs one tick like [`Runtime::tick`], as a task on the current arbiter: how
    /// [`Runtime::run_until`] ticks. Same phases, same outcome, but faster where the
    /// caller is the future `System::block_on` drives: there every actor reply wakes
    /// that future, and tokio polls the I/O driver (`epoll_wait`) before polling it
    /// again, once per message; as a task, the tick and the actors wake each other
    /// inside the arbiter. Call it inside a running actix `System`.
    ///
    /// Dropping this future mid-tick does not cut the tick short: it runs to its end on
    /// the arbiter, and the runtime's next `tick`, `run_until` or `shutdown` waits for
    /// it and takes the conductor back first (that tick's report is lost).
    pub async fn tick_as_task(&mut self) -> Result<TickOutput, ActorGone> {
        let output = self.tick_as_task_unjournaled().await?;
        Ok(self.journal_copy(output))
    }

    /// [`Runtime::tick_as_task`], leaving the output to the caller to journal.
    async fn tick_as_task_unjournaled(&mut self) -> Result<TickOutput, ActorGone> {
        self.take_back_in_flight().await?;
        let Some(stand_in) = self.stand_in.take() else {
            // Gone only with a tick task the arbiter cancelled (it is shutting down):
            // the actors went with it, and ticking in place reports that.
            return tick_with(&mut self.conductor, self.ingress.as_deref()).await;
        };
        let mut conductor = std::mem::replace(&mut self.conductor, stand_in);
        let ingress = self.ingress.clone();
        let task = self.in_flight.insert(actix::spawn(async move {
            let outcome = tick_with(&mut conductor, ingress.as_deref()).await;
            (conductor, outcome)
        }));
        let joined = task.await;
        self.in_flight = None;
        self.put_back(joined)?
    }

    /// Waits for a tick left running as a task by a dropped future, and takes its
    /// conductor back.
    async fn take_back_in_flight(&mut self) -> Result<(), ActorGone> {
        if let Some(task) = self.in_flight.as_mut() {
            let joined = task.await;
            self.in_flight = None;
            // The tick's report or error was for the future that was dropped.
            let _dropped = self.put_back(joined)?;
        }
        Ok(())
    }

    /// Puts the conductor a tick task returned back in its place, with the signals
    /// injected meanwhile, and returns the tick's outcome. A panic in the task resumes
    /// here, as it would have in a tick run in place; a task the arbiter cancelled took
    /// the conductor with it.
    fn put_back(
        &mut self,
        joined: Result<TaskTick, JoinError>,
    ) -> Result<Result<TickOutput, ActorGone>, ActorGone> {
        match joined {
            Ok((conductor, outcome)) => {
                self.stand_in = Some(std::mem::replace(&mut self.conductor, conductor));
                for (signal, link) in self.injected_meanwhile.drain(..) {
                    match link {
                        Some(link) => self.conductor.inject_linked(signal, link),
                        None => self.conductor.inject(signal),
                    }
                }
                Ok(outcome)
            }
            Err(error) => match error.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(error) => Err(ActorGone {
                    actor: "arbiter",
                    reason: error.to_string(),
                }),
            },
        }
    }

    /// Ticks at `runtime.tick_hz` of wall-clock time until `stop` completes, handing
    /// each report to `on_tick`. A tick that overruns its period delays the next one;
    /// missed ticks are skipped, never bunched. Each tick runs as a task on the arbiter
    /// ([`Runtime::tick_as_task`]); `stop` is only looked at between ticks.
    pub async fn run_until(
        &mut self,
        stop: impl Future<Output = ()>,
        mut on_tick: impl FnMut(&TickOutput),
    ) -> Result<(), RuntimeError> {
        let period = Duration::from_secs_f64(1.0 / f64::from(self.config.runtime.tick_hz));
        // A loop resumed after a reload keeps the cadence: its first tick is when the
        // next one was due, not at once.
        let start = self.next_tick_at.unwrap_or_else(tokio::time::Instant::now);
        let mut interval = tokio::time::interval_at(start, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                () = &mut stop => return Ok(()),
                due = interval.tick() => {
                    self.next_tick_at = Some(due + period);
                    let report = self.tick_as_task_unjournaled().await?;
                    on_tick(&report);
                    // Done with it: the journal takes it as it is.
                    self.conductor.journal_tick(report);
                }
            }
        }
    }

    /// Graceful stop: agents are no longer asked, every open order is cancelled (bids
    /// refunded), and every original value the actuator changed is restored. The
    /// restore happens whatever failed before it: a tick that ended in error, a dead
    /// exchange or guardian (then `cancel_failed` says why), a dead actuator actor.
    pub async fn shutdown(mut self) -> ShutdownReport {
        let withdrawn = match self.take_back_in_flight().await {
            Ok(()) => self.cancel_open_orders().await,
            Err(error) => Err(error),
        };
        let restored = self.actuator.retire();
        let refunded = withdrawn.is_ok();
        let (cancelled_orders, cancel_failed) = match withdrawn {
            Ok(cancelled) => (cancelled, None),
            Err(error) => (0, Some(error)),
        };
        let journal = match self.conductor.take_journal() {
            Some(journal) => {
                // What every agent holds now that the bids are refunded: the snapshot
                // the next start resumes.
                if refunded
                    && let Ok(accounts) = self.conductor.actors().guardian.send(Accounts).await
                {
                    let holdings = accounts
                        .iter()
                        .map(|(agent, account)| {
                            (
                                *agent,
                                gamesa_proto::Credits(account.available.0 + account.escrowed.0),
                            )
                        })
                        .collect();
                    journal.snapshot(self.conductor.next_tick(), holdings);
                }
                Some(journal.close())
            }
            None => None,
        };
        ShutdownReport {
            cancelled_orders,
            restored,
            cancel_failed,
            journal,
        }
    }

    /// Answers ingress clients `shutting_down`, cancels every open order of the agents
    /// and clients, and settles the refunds; returns how many were cancelled.
    async fn cancel_open_orders(&mut self) -> Result<usize, ActorGone> {
        let actors = self.conductor.actors().clone();
        if let Some(hub) = &self.ingress {
            hub.close();
        }
        // Clients' resting orders are cancelled and refunded like the agents'.
        let agents = self
            .conductor
            .agents()
            .iter()
            .map(|slot| slot.id)
            .chain(
                assemble::client_ids(&self.config)
                    .into_iter()
                    .map(|(id, _)| id),
            )
            .collect();
        let events = actors
            .exchange
            .send(Withdraw {
                agents,
                revoke_leases: false,
            })
            .await
            .map_err(|error| ActorGone {
                actor: "exchange",
                reason: error.to_string(),
            })?;
        let cancelled_orders = events.len();
        let tick = self.conductor.next_tick();
        actors
            .guardian
            .send(SettleRelease { tick, events })
            .await
            .map_err(|error| ActorGone {
                actor: "guardian",
                reason: error.to_string(),
            })?;
        Ok(cancelled_orders)
    }
}

impl Drop for Runtime {
    /// A runtime dropped without [`Runtime::shutdown`] — an error returned past it, a
    /// panic unwinding past it — still puts every original back.
    fn drop(&mut self) {
        if let Some(hub) = &self.ingress {
            hub.close();
        }
        if self.actuator.is_retired() {
            return;
        }
        let restored = self.actuator.retire();
        for target in &restored.restored {
            tracing::warn!(%target, "restored an original as the runtime was dropped without a shutdown");
        }
        for (target, error) in &restored.failed {
            tracing::error!(%target, %error, "could not restore an original");
        }
    }
}

/// One tick: what ingress clients sent is taken in, the conductor runs its phases, and
/// the clients are answered. A function of the parts it needs, so that it can run in
/// the caller's future ([`Runtime::tick`]) or as a task that owns them
/// ([`Runtime::tick_as_task`]).
async fn tick_with(
    conductor: &mut Conductor,
    ingress: Option<&crate::ingress::IngressHub>,
) -> Result<TickOutput, ActorGone> {
    if let Some(hub) = ingress {
        let taken = hub.take_in(conductor.next_tick());
        for (component, micro) in taken.progress {
            conductor.report_progress(&component, micro);
        }
        for (component, micro) in taken.work_left {
            conductor.report_work_left(&component, micro);
        }
        for (signal, link) in taken.signals {
            conductor.inject_linked(signal, link);
        }
        conductor.inject_intents(taken.intents);
    }
    let report = conductor.run_tick().await?;
    if let Some(hub) = ingress {
        let market = conductor
            .market_state(BOOK_LEVELS, hub.client_ids())
            .await?;
        hub.after_tick(&report, market);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use actix::Addr;
    use gamesa_agent::AgentRegistry;
    use gamesa_hw::twin::{Scenario, SharedTwin, Twin};
    use gamesa_proto::{AgentId, Domain, SignalKind, Strength};

    use super::*;
    use crate::actors::Halt;

    fn repo_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// `config/sim.toml` without its agents: the guardian's own safety action is the
    /// only actuator of the twin.
    fn start_on_twin() -> (Runtime, SharedTwin) {
        let path = repo_root().join("config/sim.toml");
        let mut table: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        table.remove("agents");
        let scenario = repo_root().join("scenarios/gpu_bottleneck.toml");
        table["sensors"]["scenario"] = toml::Value::String(scenario.display().to_string());
        let text = toml::to_string(&table).unwrap();
        let config =
            Config::from_toml_str(&text, &path, std::iter::empty(), &AgentRegistry::new()).unwrap();
        let twin = SharedTwin::new(Twin::new(Scenario::load(&scenario).unwrap()));
        let runtime = Runtime::start(
            &config,
            &AgentRegistry::new(),
            Box::new(twin.sensors()),
            Box::new(twin.actuator()),
        )
        .unwrap();
        (runtime, twin)
    }

    /// Every component's (limit, initial limit) in W.
    fn limits_w(twin: &SharedTwin) -> Vec<(f64, f64)> {
        twin.with(|twin| {
            (0..twin.component_names().count())
                .map(|index| {
                    (
                        twin.limit_w(index).unwrap(),
                        twin.initial_limit_w(index).unwrap(),
                    )
                })
                .collect()
        })
    }

    /// Ticks with a `power_over_cap` safety signal live until the guardian has moved a
    /// limit of the twin.
    async fn change_a_limit(runtime: &mut Runtime, twin: &SharedTwin) {
        runtime.inject(Signal {
            kind: SignalKind::new("power_over_cap").unwrap(),
            domain: Domain::Safety,
            strength: Strength::MAX,
            source: AgentId(900),
            ttl_ticks: 5,
            correlation: None,
        });
        for _ in 0..5 {
            runtime.tick().await.unwrap();
        }
        assert!(
            limits_w(twin).iter().any(|(now, initial)| now != initial),
            "the safety action changed nothing: {:?}",
            limits_w(twin)
        );
    }

    fn assert_restored(twin: &SharedTwin) {
        for (now, initial) in limits_w(twin) {
            assert_eq!(now, initial, "{:?}", limits_w(twin));
        }
    }

    async fn halt<A>(actor: &Addr<A>)
    where
        A: actix::Actor<Context = actix::Context<A>> + actix::Handler<Halt>,
    {
        actor.send(Halt).await.unwrap();
        while actor.connected() {
            tokio::task::yield_now().await;
        }
    }

    #[actix::test]
    async fn shutdown_restores_the_originals_when_the_exchange_is_gone() {
        let (mut runtime, twin) = start_on_twin();
        change_a_limit(&mut runtime, &twin).await;
        halt(runtime.exchange()).await;
        let report = runtime.shutdown().await;
        assert_eq!(
            report.cancel_failed.map(|gone| gone.actor),
            Some("exchange")
        );
        assert!(
            !report.restored.restored.is_empty(),
            "{:?}",
            report.restored
        );
        assert_restored(&twin);
    }

    #[actix::test]
    async fn shutdown_restores_the_originals_when_the_guardian_is_gone() {
        let (mut runtime, twin) = start_on_twin();
        change_a_limit(&mut runtime, &twin).await;
        halt(runtime.guardian()).await;
        let report = runtime.shutdown().await;
        assert_eq!(
            report.cancel_failed.map(|gone| gone.actor),
            Some("guardian")
        );
        assert_restored(&twin);
    }

    #[actix::test]
    async fn shutdown_restores_the_originals_when_the_actuator_actor_is_gone() {
        let (mut runtime, twin) = start_on_twin();
        change_a_limit(&mut runtime, &twin).await;
        halt(&runtime.conductor().actors().actuator).await;
        let report = runtime.shutdown().await;
        assert!(report.cancel_failed.is_none());
        assert_restored(&twin);
    }

    #[actix::test]
    async fn nothing_is_applied_after_the_exit_restored_the_originals() {
        let (mut runtime, twin) = start_on_twin();
        change_a_limit(&mut runtime, &twin).await;
        let actuator = runtime.conductor().actors().actuator.clone();
        let _ = runtime.shutdown().await;
        let applied = actuator
            .send(crate::actors::actuator::Apply {
                restore: Vec::new(),
                actuations: vec![gamesa_proto::Actuation::PowerLimit {
                    component: "gpu0".into(),
                    limit_mw: 150_000,
                }],
            })
            .await
            .unwrap();
        assert!(applied.results[0].is_err(), "{:?}", applied.results);
        assert_restored(&twin);
    }

    /// An actix system on a paused tokio clock: virtual time.
    fn paused_system() -> actix::SystemRunner {
        actix::System::with_tokio_rt(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap()
        })
    }

    /// `run_until`'s timer in virtual time (a paused tokio clock): one tick per period
    /// from the first at once, none after `stop`. Without agents, no thread but the
    /// arbiter's works, so the clock only moves when the tick loop waits for it.
    #[test]
    fn run_until_ticks_once_per_period_until_stop() {
        let system = paused_system();
        let (ticks, tick_hz) = system.block_on(async {
            let (mut runtime, _twin) = start_on_twin();
            let tick_hz = runtime.config().runtime.tick_hz;
            let mut ticks = Vec::new();
            let started = tokio::time::Instant::now();
            runtime
                .run_until(tokio::time::sleep(Duration::from_millis(1_050)), |output| {
                    ticks.push((output.tick.0, started.elapsed()));
                })
                .await
                .unwrap();
            let _ = runtime.shutdown().await;
            (ticks, tick_hz)
        });
        let period = Duration::from_secs_f64(1.0 / f64::from(tick_hz));
        let expected: Vec<(u64, Duration)> =
            (0..=10u32).map(|n| (u64::from(n), period * n)).collect();
        assert_eq!(tick_hz, 10);
        assert_eq!(ticks, expected);
    }

    /// A tick loop stopped between ticks (a reload) and run again keeps its cadence:
    /// the next tick comes when it was due, not at once.
    #[test]
    fn run_until_resumed_keeps_the_cadence() {
        let system = paused_system();
        let ticks = system.block_on(async {
            let (mut runtime, _twin) = start_on_twin();
            let mut ticks = Vec::new();
            let started = tokio::time::Instant::now();
            for until_ms in [250, 450] {
                let stop = tokio::time::sleep_until(started + Duration::from_millis(until_ms));
                runtime
                    .run_until(stop, |output| {
                        ticks.push((output.tick.0, started.elapsed()))
                    })
                    .await
                    .unwrap();
            }
            let _ = runtime.shutdown().await;
            ticks
        });
        let at = |ms| Duration::from_millis(ms);
        assert_eq!(
            ticks,
            [
                (0, at(0)),
                (1, at(100)),
                (2, at(200)),
                (3, at(300)),
                (4, at(400))
            ]
        );
    }
}
