//! The exchange actor: owns the [`ExchangeCore`] (order books and leases). Each handler
//! calls the core's method of the same phase.

use actix::{Actor, Context, Handler, Message, MessageResult};
use gamesa_engine::{
    ExchangeCore,
    cores::{MarketOverview, MatchRequest, Matched, Snapshot},
};
use gamesa_market::{BookDepth, MarketEvent};
use gamesa_proto::{AgentId, LeaseId, OrderId, Resource, Tick};

#[derive(Debug)]
pub struct ExchangeActor {
    core: ExchangeCore,
}

impl ExchangeActor {
    pub fn new(core: ExchangeCore) -> ExchangeActor {
        ExchangeActor { core }
    }
}

impl Actor for ExchangeActor {
    type Context = Context<Self>;
}

/// [`ExchangeCore::snapshot`] for these agents.
#[derive(Debug, Message)]
#[rtype(result = "Snapshot")]
pub struct TakeSnapshot {
    pub agents: Vec<AgentId>,
}

impl Handler<TakeSnapshot> for ExchangeActor {
    type Result = MessageResult<TakeSnapshot>;

    fn handle(&mut self, message: TakeSnapshot, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.core.snapshot(&message.agents))
    }
}

/// [`ExchangeCore::run_match`].
#[derive(Debug, Message)]
#[rtype(result = "Matched")]
pub struct RunMatch(pub MatchRequest);

impl Handler<RunMatch> for ExchangeActor {
    type Result = MessageResult<RunMatch>;

    fn handle(&mut self, message: RunMatch, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.core.run_match(message.0))
    }
}

/// [`ExchangeCore::followup`].
#[derive(Debug, Message)]
#[rtype(result = "Matched")]
pub struct Followup {
    pub tick: Tick,
    pub revoke: Vec<LeaseId>,
    pub cancel: Vec<(AgentId, OrderId)>,
}

impl Handler<Followup> for ExchangeActor {
    type Result = MessageResult<Followup>;

    fn handle(&mut self, message: Followup, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.core
                .followup(message.tick, &message.revoke, &message.cancel),
        )
    }
}

/// [`ExchangeCore::withdraw`]: every order of these agents cancelled, and their leases
/// revoked when asked (isolation revokes; shutdown only cancels).
#[derive(Debug, Message)]
#[rtype(result = "Vec<MarketEvent>")]
pub struct Withdraw {
    pub agents: Vec<AgentId>,
    pub revoke_leases: bool,
}

impl Handler<Withdraw> for ExchangeActor {
    type Result = MessageResult<Withdraw>;

    fn handle(&mut self, message: Withdraw, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.core.withdraw(&message.agents, message.revoke_leases))
    }
}

/// The depth of one resource's book.
#[derive(Debug, Message)]
#[rtype(result = "BookDepth")]
pub struct Depth {
    pub resource: Resource,
    pub levels: usize,
}

impl Handler<Depth> for ExchangeActor {
    type Result = MessageResult<Depth>;

    fn handle(&mut self, message: Depth, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.core.exchange().depth(message.resource, message.levels))
    }
}

/// [`ExchangeCore::overview`]: what ingress queries read of the market after a tick.
#[derive(Debug, Message)]
#[rtype(result = "MarketOverview")]
pub struct Overview {
    pub levels: usize,
    /// Whose resting orders to list.
    pub owners: Vec<AgentId>,
}

impl Handler<Overview> for ExchangeActor {
    type Result = MessageResult<Overview>;

    fn handle(&mut self, message: Overview, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.core.overview(message.levels, &message.owners))
    }
}
