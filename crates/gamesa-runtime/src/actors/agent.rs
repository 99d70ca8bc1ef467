//! The agent actor: hosts one plugin, catches its panics, and rebuilds it on restart.
//!
//! A panic inside `observe` is caught here and returned as a failure, so it never
//! unwinds into actix or takes the process down. The guardian decides what follows.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
};

use actix::{Actor, Context, Handler, Message, MessageResult};
use gamesa_agent::{Agent, AgentError, AgentFactory, AgentSpec, Intent, MarketView, Observation};
use gamesa_proto::{Credits, Fill, Lease, OrderId, OrderRequest, Signal, TelemetryFrame, Tick};

/// Why an agent's turn failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentFailure {
    #[error("returned an error: {0}")]
    Error(AgentError),
    #[error("panicked: {0}")]
    Panicked(String),
    #[error("could not be rebuilt: {0}")]
    Rebuild(AgentError),
}

pub struct AgentActor {
    spec: AgentSpec,
    factory: AgentFactory,
    /// `None` after a failed rebuild: every turn then fails until a rebuild works.
    agent: Option<Box<dyn Agent>>,
}

impl AgentActor {
    /// Builds the plugin once; a factory error here is a config error.
    pub fn new(spec: AgentSpec, factory: AgentFactory) -> Result<AgentActor, AgentError> {
        let agent = factory(&spec)?;
        Ok(AgentActor {
            spec,
            factory,
            agent: Some(agent),
        })
    }
}

impl std::fmt::Debug for AgentActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentActor")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl Actor for AgentActor {
    type Context = Context<Self>;
}

/// One agent's turn: everything its [`Observation`] borrows, owned.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<Intent>, AgentFailure>")]
pub struct Observe {
    pub tick: Tick,
    pub epoch_ticks: u64,
    pub frame: Arc<TelemetryFrame>,
    pub signals: Arc<[Signal]>,
    pub market: Arc<MarketView>,
    pub fills: Vec<Fill>,
    pub leases: Vec<Lease>,
    pub open_orders: Vec<(OrderId, OrderRequest)>,
    pub balance: Credits,
}

impl Handler<Observe> for AgentActor {
    type Result = MessageResult<Observe>;

    fn handle(&mut self, message: Observe, _: &mut Context<Self>) -> Self::Result {
        let Some(agent) = self.agent.as_mut() else {
            return MessageResult(Err(AgentFailure::Panicked(
                "agent is not running after a failed rebuild".into(),
            )));
        };
        let observation = Observation {
            tick: message.tick,
            agent: self.spec.id,
            epoch_ticks: message.epoch_ticks,
            frame: &message.frame,
            signals: &message.signals,
            fills: &message.fills,
            leases: &message.leases,
            open_orders: &message.open_orders,
            balance: message.balance,
            market: &message.market,
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| agent.observe(&observation)));
        MessageResult(match outcome {
            Ok(Ok(intents)) => Ok(intents),
            Ok(Err(error)) => Err(AgentFailure::Error(error)),
            Err(payload) => Err(AgentFailure::Panicked(panic_message(payload.as_ref()))),
        })
    }
}

/// Rebuild the plugin from its factory: fresh state, same spec.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), AgentFailure>")]
pub struct Rebuild;

impl Handler<Rebuild> for AgentActor {
    type Result = Result<(), AgentFailure>;

    fn handle(&mut self, _: Rebuild, _: &mut Context<Self>) -> Self::Result {
        let factory = &self.factory;
        let spec = &self.spec;
        match catch_unwind(AssertUnwindSafe(|| factory(spec))) {
            Ok(Ok(agent)) => {
                self.agent = Some(agent);
                Ok(())
            }
            Ok(Err(error)) => {
                self.agent = None;
                Err(AgentFailure::Rebuild(error))
            }
            Err(payload) => {
                self.agent = None;
                Err(AgentFailure::Panicked(panic_message(payload.as_ref())))
            }
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic payload".to_owned())
}
