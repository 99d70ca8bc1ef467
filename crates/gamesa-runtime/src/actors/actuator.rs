//! The actuator actor: writes what a tick allowed, after putting back what the agents
//! it isolated had changed (the engine knows which targets those are).
//!
//! The actuator itself is a [`SharedActuator`]: the runtime keeps a handle too, so that
//! every exit restores every original, even one where this actor is gone (it panicked)
//! or the tick that drove it unwound.
//!
//! # Invariants
//! - once [`SharedActuator::retire`] has restored the originals, no change is applied
//!   again: a tick still running as the runtime exits cannot undo the restore

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix::{Actor, Context, Handler, Message, MessageResult};
use gamesa_hw::{Actuator, Applied, HwError, RestoreReport};
use gamesa_proto::Actuation;

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
}

impl ActuatorActor {
    pub fn new(actuator: SharedActuator) -> ActuatorActor {
        ActuatorActor { actuator }
    }
}

impl std::fmt::Debug for ActuatorActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActuatorActor").finish_non_exhaustive()
    }
}

impl Actor for ActuatorActor {
    type Context = Context<Self>;
}

/// A tick's writes: first put `restore`'s targets back to their originals (what the
/// agents isolated this tick had changed), then apply `actuations` in order.
#[derive(Debug, Message)]
#[rtype(result = "Actuated")]
pub struct Apply {
    pub restore: Vec<String>,
    pub actuations: Vec<Actuation>,
}

/// What the tick's writes did.
#[derive(Debug, Clone, Default)]
pub struct Actuated {
    pub restored: RestoreReport,
    /// One per actuation, in order.
    pub results: Vec<Result<Applied, HwError>>,
}

impl Handler<Apply> for ActuatorActor {
    type Result = MessageResult<Apply>;

    fn handle(&mut self, message: Apply, _: &mut Context<Self>) -> Self::Result {
        let mut restored = RestoreReport::default();
        for target in &message.restore {
            let one = self.actuator.restore_target(target);
            restored.restored.extend(one.restored);
            restored.failed.extend(one.failed);
        }
        let results = message
            .actuations
            .iter()
            .map(|actuation| self.actuator.apply(actuation))
            .collect();
        MessageResult(Actuated { restored, results })
    }
}
