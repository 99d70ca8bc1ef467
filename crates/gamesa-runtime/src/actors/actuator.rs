//! The actuator actor: applies the guardian's allowed changes and remembers which
//! agent asked for each target, so an isolated agent's actuations can be restored.

use std::collections::BTreeMap;

use actix::{Actor, Context, Handler, Message, MessageResult};
use gamesa_hw::{Actuator, Applied, HwError, RestoreReport};
use gamesa_proto::{Actuation, AgentId};

pub struct ActuatorActor {
    actuator: Box<dyn Actuator>,
    /// Who last changed each target: isolation restores exactly these.
    owners: BTreeMap<String, AgentId>,
}

impl ActuatorActor {
    pub fn new(actuator: Box<dyn Actuator>) -> ActuatorActor {
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

/// Restore every original value (shutdown).
#[derive(Debug, Message)]
#[rtype(result = "RestoreReport")]
pub struct RestoreAll;

impl Handler<RestoreAll> for ActuatorActor {
    type Result = MessageResult<RestoreAll>;

    fn handle(&mut self, _: RestoreAll, _: &mut Context<Self>) -> Self::Result {
        self.owners.clear();
        MessageResult(self.actuator.restore_all())
    }
}
