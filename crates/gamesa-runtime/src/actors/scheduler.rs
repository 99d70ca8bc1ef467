//! The scheduler actor: owns the domain-ranked signal queue.

use actix::{Actor, Context, Handler, Message, MessageResult};
use gamesa_proto::{AgentId, Signal, Tick};
use gamesa_signals::{SignalError, SignalQueue};

#[derive(Debug)]
pub struct SchedulerActor {
    queue: SignalQueue,
}

impl SchedulerActor {
    pub fn new(queue: SignalQueue) -> SchedulerActor {
        SchedulerActor { queue }
    }
}

impl Actor for SchedulerActor {
    type Context = Context<Self>;
}

/// Enqueue signals raised this tick, in canonical order.
#[derive(Debug, Message)]
#[rtype(result = "Vec<Result<(), SignalError>>")]
pub struct Enqueue {
    pub tick: Tick,
    pub signals: Vec<Signal>,
}

impl Handler<Enqueue> for SchedulerActor {
    type Result = MessageResult<Enqueue>;

    fn handle(&mut self, message: Enqueue, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            message
                .signals
                .into_iter()
                .map(|signal| self.queue.push(signal, message.tick).map(drop))
                .collect(),
        )
    }
}

/// The live signals at `tick`, highest-ranked first, with the pre-empting (safety)
/// ones split out.
#[derive(Debug, Message)]
#[rtype(result = "Ranked")]
pub struct Rank {
    pub tick: Tick,
}

#[derive(Debug, Clone, Default)]
pub struct Ranked {
    pub all: Vec<Signal>,
    pub preempting: Vec<Signal>,
}

impl Handler<Rank> for SchedulerActor {
    type Result = MessageResult<Rank>;

    fn handle(&mut self, message: Rank, _: &mut Context<Self>) -> Self::Result {
        self.queue.expire(message.tick);
        let all = self.queue.ranked(message.tick);
        let preempting = all
            .iter()
            .filter(|signal| gamesa_signals::is_preempting(signal, self.queue.ranking()))
            .cloned()
            .collect();
        MessageResult(Ranked { all, preempting })
    }
}

/// Drop every signal an isolated agent raised.
#[derive(Debug, Message)]
#[rtype(result = "usize")]
pub struct DropFrom {
    pub agent: AgentId,
}

impl Handler<DropFrom> for SchedulerActor {
    type Result = usize;

    fn handle(&mut self, message: DropFrom, _: &mut Context<Self>) -> usize {
        self.queue.remove_from(message.agent).len()
    }
}
