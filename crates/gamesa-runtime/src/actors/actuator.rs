//! The actuator actor: applies the guardian's allowed changes and remembers which
//! agent asked for each target, so an isolated agent's actuations can be restored.
//!
//! The actuator itself is a [`SharedActuator`]: the runtime keeps a handle too, so that
//! every exit restores every original, even one where this actor is gone (it panicked)
//! or the tick that drove it unwound.
//!
//! # Invariants
//! - once [`SharedActuator::retire`] has restored the originals, no change is applied
//!   again: a tick still running as the runtime exits cannot undo the restore

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use actix::{Actor, Context, Handler, Message, MessageResult};
use gamesa_hw::{Actuator, Applied, HwError, RestoreReport};
use gamesa_proto::{Actuation, AgentId};

/// The actuator, shared by the actor that applies changes and the runtime that restores
/// the originals when it exits.
#[derive(Clone)]
pub struct SharedActuator {
    held: Arc<Mutex<Held>>,
}

struct Held {
    actuator: Box<dyn Actuator>,
    /// Set by the exit's restore: later changes are refused.
    retired: bool,
}

impl SharedActuator {
    pub fn new(actuator: Box<dyn Actuator>) -> SharedActuator {
        SharedActuator {
            held: Arc::new(Mutex::new(Held {
                actuator,
                retired: false,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        // A panic inside the actuator poisons the lock; the restore must still run, and
        // each actuator keeps its records consistent per write.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn apply(&self, actuation: &Actuation) -> Result<Applied, HwError> {
        let mut held = self.lock();
        if held.retired {
            return Err(HwError::InvalidActuation {
                target: actuation.target(),
                reason: "the runtime has restored every original and is exiting".into(),
            });
        }
        held.actuator.apply(actuation)
    }

    pub fn restore_target(&self, target: &str) -> RestoreReport {
        self.lock().actuator.restore_target(target)
    }

    /// Restores every original and refuses every later change: the runtime is exiting.
    pub fn retire(&self) -> RestoreReport {
        let mut held = self.lock();
        held.retired = true;
        held.actuator.restore_all()
    }

    pub fn is_retired(&self) -> bool {
        self.lock().retired
    }
}

impl std::fmt::Debug for SharedActuator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedActuator").finish_non_exhaustive()
    }
}

pub struct ActuatorActor {
    actuator: SharedActuator,
    /// Who last changed each target: isolation restores exactly these.
    owners: BTreeMap<String, AgentId>,
}

impl ActuatorActor {
    pub fn new(actuator: SharedActuator) -> ActuatorActor {
        ActuatorActor {
            actuator,
            owners: BTreeMap::new(),
        }
    }
}

impl std::fmt::Debug for ActuatorActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActuatorActor")
            .field("owners", &self.owners)
            .finish_non_exhaustive()
    }
}

impl Actor for ActuatorActor {
    type Context = Context<Self>;
}

/// Apply these changes in order; `None` as the requester marks the guardian's own
/// safety actions.
#[derive(Debug, Message)]
#[rtype(result = "Vec<Result<Applied, HwError>>")]
pub struct Apply {
    pub actuations: Vec<(Option<AgentId>, Actuation)>,
}

impl Handler<Apply> for ActuatorActor {
    type Result = MessageResult<Apply>;

    fn handle(&mut self, message: Apply, _: &mut Context<Self>) -> Self::Result {
        let results = message
            .actuations
            .into_iter()
            .map(|(requester, actuation)| {
                let applied = self.actuator.apply(&actuation);
                if applied.is_ok() {
                    match requester {
                        Some(agent) => self.owners.insert(actuation.target(), agent),
                        None => self.owners.remove(&actuation.target()),
                    };
                }
                applied
            })
            .collect();
        MessageResult(results)
    }
}

/// Restore every target `agent` changed (it was isolated).
#[derive(Debug, Message)]
#[rtype(result = "RestoreReport")]
pub struct RestoreFor {
    pub agent: AgentId,
}

impl Handler<RestoreFor> for ActuatorActor {
    type Result = MessageResult<RestoreFor>;

    fn handle(&mut self, message: RestoreFor, _: &mut Context<Self>) -> Self::Result {
        let targets: Vec<String> = self
            .owners
            .iter()
            .filter(|(_, owner)| **owner == message.agent)
            .map(|(target, _)| target.clone())
            .collect();
        let mut report = RestoreReport::default();
        for target in targets {
            self.owners.remove(&target);
            let one = self.actuator.restore_target(&target);
            report.restored.extend(one.restored);
            report.failed.extend(one.failed);
        }
        MessageResult(report)
    }
}
