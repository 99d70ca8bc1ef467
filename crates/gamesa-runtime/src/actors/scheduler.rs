//! The scheduler actor: owns the [`SchedulerCore`] (the domain-ranked signal queue).

use actix::{Actor, Context, Handler, Message, MessageResult};
use gamesa_engine::{SchedulerCore, cores::Ranked};
use gamesa_proto::{AgentId, Signal, Tick};

#[derive(Debug)]
pub struct SchedulerActor {
    core: SchedulerCore,
}

impl SchedulerActor {
    pub fn new(core: SchedulerCore) -> SchedulerActor {
        SchedulerActor { core }
    }
}

impl Actor for SchedulerActor {
    type Context = Context<Self>;
}

/// [`SchedulerCore::rank`].
#[derive(Debug, Message)]
#[rtype(result = "Ranked")]
pub struct Rank {
    pub tick: Tick,
}

impl Handler<Rank> for SchedulerActor {
    type Result = MessageResult<Rank>;

    fn handle(&mut self, message: Rank, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.core.rank(message.tick))
    }
}

/// [`SchedulerCore::take`].
#[derive(Debug, Message)]
#[rtype(result = "Ranked")]
pub struct TakeSignals {
    pub tick: Tick,
    pub signals: Vec<Signal>,
    pub isolated: Vec<AgentId>,
}

impl Handler<TakeSignals> for SchedulerActor {
    type Result = MessageResult<TakeSignals>;

    fn handle(&mut self, message: TakeSignals, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.core
                .take(message.tick, message.signals, &message.isolated),
        )
    }
}
