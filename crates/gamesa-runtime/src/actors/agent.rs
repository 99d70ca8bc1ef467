//! The agent actor: hosts one plugin ([`HostedAgent`]) on its own thread, so that a
//! slow or hung agent holds up nobody but itself.

use std::time::{Duration, Instant};

use actix::{Actor, Context, Handler, Message, MessageResult};
use gamesa_engine::{AgentFailure, HostedAgent, Turn};
use gamesa_proto::Intent;

#[derive(Debug)]
pub struct AgentActor {
    host: HostedAgent,
}

impl AgentActor {
    pub fn new(host: HostedAgent) -> AgentActor {
        AgentActor { host }
    }
}

impl Actor for AgentActor {
    type Context = Context<Self>;
}

/// One agent's turn: [`HostedAgent::observe`], and how long it took.
#[derive(Debug, Message)]
#[rtype(result = "(Result<Vec<Intent>, AgentFailure>, Duration)")]
pub struct Observe(pub Turn);

impl Handler<Observe> for AgentActor {
    type Result = MessageResult<Observe>;

    fn handle(&mut self, message: Observe, _: &mut Context<Self>) -> Self::Result {
        let started = Instant::now();
        let intents = self.host.observe(&message.0);
        MessageResult((intents, started.elapsed()))
    }
}

/// [`HostedAgent::warm`]: the agent's past epochs, before its first turn.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), AgentFailure>")]
pub struct Warm(pub std::sync::Arc<[gamesa_agent::Experience]>);

impl Handler<Warm> for AgentActor {
    type Result = Result<(), AgentFailure>;

    fn handle(&mut self, message: Warm, _: &mut Context<Self>) -> Self::Result {
        self.host.warm(message.0)
    }
}

/// [`HostedAgent::rebuild`]: fresh state, same spec.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), AgentFailure>")]
pub struct Rebuild;

impl Handler<Rebuild> for AgentActor {
    type Result = Result<(), AgentFailure>;

    fn handle(&mut self, _: Rebuild, _: &mut Context<Self>) -> Self::Result {
        self.host.rebuild()
    }
}
