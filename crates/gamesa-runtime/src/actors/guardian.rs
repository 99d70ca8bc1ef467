//! The guardian actor: owns the [`GuardianCore`] (guardian, central bank, supervisor,
//! safety policy). Each handler calls the core's method of the same phase.

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, MessageResult};
use gamesa_engine::{
    GuardianCore,
    cores::{Admitted, Guarded, Opened, Opening},
};
use gamesa_guardian::{AccountBalance, SafetyResponse, Settlement, StampedIntent};
use gamesa_market::MarketEvent;
use gamesa_proto::{Actuation, AgentId, Signal, TelemetryFrame, Tick};

#[derive(Debug)]
pub struct GuardianActor {
    core: GuardianCore,
}

impl GuardianActor {
    pub fn new(core: GuardianCore) -> GuardianActor {
        GuardianActor { core }
    }
}

impl Actor for GuardianActor {
    type Context = Context<Self>;
}

/// [`GuardianCore::open`].
#[derive(Debug, Message)]
#[rtype(result = "Opened")]
pub struct Open(pub Opening);

impl Handler<Open> for GuardianActor {
    type Result = MessageResult<Open>;

    fn handle(&mut self, message: Open, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.core.open(&message.0))
    }
}

/// [`GuardianCore::admit`].
#[derive(Debug, Message)]
#[rtype(result = "Admitted")]
pub struct Admit {
    pub tick: Tick,
    pub intents: Vec<StampedIntent>,
    pub failed: Vec<AgentId>,
}

impl Handler<Admit> for GuardianActor {
    type Result = MessageResult<Admit>;

    fn handle(&mut self, message: Admit, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.core
                .admit(message.tick, message.intents, &message.failed),
        )
    }
}

/// [`GuardianCore::safety`].
#[derive(Debug, Message)]
#[rtype(result = "SafetyResponse")]
pub struct Safety {
    pub tick: Tick,
    pub preempting: Vec<Signal>,
    pub frame: Arc<TelemetryFrame>,
}

impl Handler<Safety> for GuardianActor {
    type Result = MessageResult<Safety>;

    fn handle(&mut self, message: Safety, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.core
                .safety(message.tick, &message.preempting, &message.frame),
        )
    }
}

/// [`GuardianCore::settle`].
#[derive(Debug, Message)]
#[rtype(result = "Settlement")]
pub struct Settle {
    pub tick: Tick,
    pub events: Vec<MarketEvent>,
}

impl Handler<Settle> for GuardianActor {
    type Result = MessageResult<Settle>;

    fn handle(&mut self, message: Settle, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.core.settle(message.tick, &message.events))
    }
}

/// [`GuardianCore::guard`].
#[derive(Debug, Message)]
#[rtype(result = "Guarded")]
pub struct Guard {
    pub tick: Tick,
    pub followups: Vec<MarketEvent>,
    pub requests: Vec<(AgentId, Actuation)>,
}

impl Handler<Guard> for GuardianActor {
    type Result = MessageResult<Guard>;

    fn handle(&mut self, message: Guard, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.core
                .guard(message.tick, &message.followups, &message.requests),
        )
    }
}

/// [`GuardianCore::settle_release`]: the cancels of a shutdown.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SettleRelease {
    pub tick: Tick,
    pub events: Vec<MarketEvent>,
}

impl Handler<SettleRelease> for GuardianActor {
    type Result = ();

    fn handle(&mut self, message: SettleRelease, _: &mut Context<Self>) {
        self.core.settle_release(message.tick, &message.events);
    }
}

/// Every account's balances, for queries and status.
#[derive(Debug, Message)]
#[rtype(result = "Vec<(AgentId, AccountBalance)>")]
pub struct Accounts;

impl Handler<Accounts> for GuardianActor {
    type Result = MessageResult<Accounts>;

    fn handle(&mut self, _: Accounts, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.core.accounts())
    }
}

/// Credits agents with a previous run's holdings, before the first tick.
#[derive(Debug, Message)]
#[rtype(result = "Result<gamesa_proto::Credits, gamesa_guardian::LedgerError>")]
pub struct Resume(pub Vec<(gamesa_proto::AgentId, gamesa_proto::Credits)>);

impl Handler<Resume> for GuardianActor {
    type Result = Result<gamesa_proto::Credits, gamesa_guardian::LedgerError>;

    fn handle(&mut self, resume: Resume, _: &mut Context<Self>) -> Self::Result {
        self.core.resume(&resume.0)
    }
}

/// Checks credit conservation (tests and the shutdown report).
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct IsConserved;

impl Handler<IsConserved> for GuardianActor {
    type Result = bool;

    fn handle(&mut self, _: IsConserved, _: &mut Context<Self>) -> bool {
        self.core.is_conserved()
    }
}

/// [`GuardianCore::adopt`]: a config reload's policy, between ticks.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Adopt(pub GuardianCore);

impl Handler<Adopt> for GuardianActor {
    type Result = ();

    fn handle(&mut self, message: Adopt, _: &mut Context<Self>) {
        self.core.adopt(message.0);
    }
}
