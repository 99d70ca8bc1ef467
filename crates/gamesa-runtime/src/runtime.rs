//! Starting, ticking and stopping the runtime: actors are spawned from a validated
//! config, the conductor drives them, and shutdown restores the machine.

use std::{future::Future, time::Duration};

use actix::{Actor, Addr};
use gamesa_agent::AgentRegistry;
use gamesa_hw::{Actuator, RestoreReport, Sensors};
use gamesa_proto::Signal;

use crate::telemetry::{DecisionLog, IngressLink, Telemetry};
use crate::{
    ActorGone, Config, TickReport,
    actors::{
        ActuatorActor, AgentActor, ExchangeActor, GuardianActor, SchedulerActor, SensorActor,
        actuator::RestoreAll, exchange::Withdraw, guardian::Settle,
    },
    assemble,
    conductor::{Actors, AgentSlot, Conductor, ConductorSettings},
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
}

/// What a graceful shutdown did.
#[derive(Debug, Clone, Default)]
pub struct ShutdownReport {
    pub cancelled_orders: usize,
    pub restored: RestoreReport,
}

/// A running GAMESA: its actors and the conductor that drives them.
#[derive(Debug)]
pub struct Runtime {
    config: Config,
    conductor: Conductor,
    /// Ingress clients' intake and replies, when a server is attached.
    ingress: Option<std::sync::Arc<crate::ingress::IngressHub>>,
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
        let invalid = |(key, message)| RuntimeError::Config { key, message };
        crate::config::validate(config, registry).map_err(invalid)?;
        let guardian = assemble::build_guardian(config).map_err(invalid)?;

        let mut agents = Vec::new();
        for spec in assemble::agent_specs(config) {
            let build_error = |error: gamesa_agent::AgentError| RuntimeError::Agent {
                agent: spec.name.clone(),
                message: error.to_string(),
            };
            let factory = registry.factory(&spec.kind).map_err(build_error)?;
            let actor = AgentActor::new(spec.clone(), factory).map_err(build_error)?;
            agents.push(AgentSlot {
                id: spec.id,
                name: spec.name.clone(),
                addr: actor.start(),
                isolated: false,
            });
        }
        let actors = Actors {
            sensor: SensorActor::new(sensors).start(),
            exchange: ExchangeActor::new(gamesa_market::Exchange::new(assemble::market_config(
                config,
            )))
            .start(),
            guardian: GuardianActor::new(
                guardian,
                assemble::supervisor(config),
                assemble::weights(config),
                config.guardian.safe_limits_mw.clone(),
                assemble::power_holders(config),
            )
            .start(),
            scheduler: SchedulerActor::new(assemble::signal_queue()).start(),
            actuator: ActuatorActor::new(actuator).start(),
        };
        let settings = ConductorSettings {
            epoch_ticks: config.runtime.epoch_ticks,
            seed: config.runtime.seed,
        };
        let mut conductor = Conductor::new(settings, actors, agents);
        conductor
            .telemetry_mut()
            .set_decision_log(DecisionLog::new(config.telemetry.decision_log_ticks));
        Ok(Runtime {
            config: config.clone(),
            conductor,
            ingress: None,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

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
        self.conductor.inject(signal);
    }

    /// Queues a signal for the next tick and links that tick's trace to the ingress
    /// request it came from (see `telemetry::ingress`).
    pub fn inject_linked(&mut self, signal: Signal, link: IngressLink) {
        self.conductor.inject_linked(signal, link);
    }

    /// Traces every tick and records metrics through `telemetry`, from the next tick
    /// on (nothing happens when telemetry is off).
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

    /// From the next tick on, takes in what ingress clients sent before each tick, and
    /// answers them, publishes to subscribers and refreshes queries after it.
    pub fn attach_ingress(&mut self, hub: std::sync::Arc<crate::ingress::IngressHub>) {
        hub.set_decision_log(self.decision_log());
        self.ingress = Some(hub);
    }

    /// Runs one tick at once (virtual time: tests and `sim`).
    pub async fn tick(&mut self) -> Result<TickReport, ActorGone> {
        if let Some(hub) = &self.ingress {
            hub.take_in(&mut self.conductor);
        }
        let report = self.conductor.run_tick().await?;
        if let Some(hub) = &self.ingress {
            hub.after_tick(&report, &self.conductor).await?;
        }
        Ok(report)
    }

    /// Ticks at `runtime.tick_hz` of wall-clock time until `stop` completes, handing
    /// each report to `on_tick`. A tick that overruns its period delays the next one;
    /// missed ticks are skipped, never bunched.
    pub async fn run_until(
        &mut self,
        stop: impl Future<Output = ()>,
        mut on_tick: impl FnMut(&TickReport),
    ) -> Result<(), RuntimeError> {
        let period = Duration::from_secs_f64(1.0 / f64::from(self.config.runtime.tick_hz));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                () = &mut stop => return Ok(()),
                _ = interval.tick() => {
                    let report = self.tick().await?;
                    on_tick(&report);
                }
            }
        }
    }

    /// Graceful stop: agents are no longer asked, every open order is cancelled (bids
    /// refunded), and every original value the actuator changed is restored.
    pub async fn shutdown(self) -> Result<ShutdownReport, RuntimeError> {
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
            .send(Settle { tick, events })
            .await
            .map_err(|error| ActorGone {
                actor: "guardian",
                reason: error.to_string(),
            })?;
        let restored = actors
            .actuator
            .send(RestoreAll)
            .await
            .map_err(|error| ActorGone {
                actor: "actuator",
                reason: error.to_string(),
            })?;
        Ok(ShutdownReport {
            cancelled_orders,
            restored,
        })
    }
}
