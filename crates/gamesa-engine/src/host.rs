//! An agent plugin hosted for its turns: one [`Turn`] in, its intents out, a panic
//! caught and returned as a failure, and a rebuild from its factory on restart.
//!
//! The shell hosts each agent in an actor on its own thread; [`crate::TickEngine`]
//! hosts them in place. Both call [`HostedAgent::observe`].

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
};

use gamesa_agent::{
    Agent, AgentError, AgentFactory, AgentSpec, Experience, MarketView, Observation,
};
use gamesa_proto::{
    AgentId, Credits, Fill, Intent, Lease, OrderId, OrderRequest, Signal, TelemetryFrame, Tick,
};

/// Why an agent's turn failed. Each counts toward restart and isolation alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
pub enum AgentFailure {
    #[error("returned an error: {0}")]
    Error(AgentError),
    #[error("panicked: {0}")]
    Panicked(String),
    #[error("could not be rebuilt: {0}")]
    Rebuild(AgentError),
    /// The agent did not answer within the tick's deadline; it skipped the tick.
    #[error("missed its {deadline_ms} ms deadline")]
    MissedDeadline { deadline_ms: u64 },
    /// An out-of-process agent's answer did not count: its connection dropped, or
    /// what it sent is not intents. The message says which.
    #[error("its process {0}")]
    External(String),
}

/// What an out-of-process agent answered its turn: its intents, or why the answer did
/// not count ([`AgentFailure::External`]). A missed deadline is not one: it is
/// `Intake::late`, as for any agent.
pub type ExternalAnswer = Result<Vec<Intent>, String>;

/// One agent's turn: everything its [`Observation`] borrows, owned, so that it can be
/// sent to the agent's thread.
#[derive(Debug, Clone)]
pub struct Turn {
    pub tick: Tick,
    pub agent: AgentId,
    pub epoch_ticks: u64,
    pub frame: Arc<TelemetryFrame>,
    pub signals: Arc<[Signal]>,
    pub market: Arc<MarketView>,
    pub fills: Vec<Fill>,
    pub leases: Vec<Lease>,
    pub open_orders: Vec<(OrderId, OrderRequest)>,
    pub balance: Credits,
}

impl Turn {
    /// The observation the agent is handed.
    pub fn observation(&self) -> Observation<'_> {
        Observation {
            tick: self.tick,
            agent: self.agent,
            epoch_ticks: self.epoch_ticks,
            frame: &self.frame,
            signals: &self.signals,
            fills: &self.fills,
            leases: &self.leases,
            open_orders: &self.open_orders,
            balance: self.balance,
            market: &self.market,
        }
    }
}

/// One plugin with the spec and factory it was built from.
pub struct HostedAgent {
    spec: AgentSpec,
    factory: AgentFactory,
    /// Its past epochs from the journal, handed to every build of it.
    past: Arc<[Experience]>,
    /// `None` after a failed rebuild: every turn then fails until a rebuild works.
    agent: Option<Box<dyn Agent>>,
}

impl HostedAgent {
    /// Builds the plugin once; a factory error here is a config error.
    pub fn new(spec: AgentSpec, factory: AgentFactory) -> Result<HostedAgent, AgentError> {
        let agent = factory(&spec)?;
        Ok(HostedAgent {
            spec,
            factory,
            past: Arc::from([]),
            agent: Some(agent),
        })
    }

    pub fn spec(&self) -> &AgentSpec {
        &self.spec
    }

    /// A fresh host for `spec`, for a restart that replaces the old host (the shell's,
    /// whose agent may be stuck on its thread). When the factory fails, the host is
    /// returned without an agent (every turn fails until a rebuild works) with why.
    /// It is warmed with `past` as the old one was.
    pub fn restart(
        spec: AgentSpec,
        factory: AgentFactory,
        past: Arc<[Experience]>,
    ) -> (HostedAgent, Result<(), AgentFailure>) {
        let mut host = HostedAgent {
            spec,
            factory,
            past,
            agent: None,
        };
        let rebuilt = host.rebuild();
        (host, rebuilt)
    }

    /// Whether the agent lives in another process (`kind = "external"`): its answers
    /// are inputs ([`ExternalAnswer`]), and this host only stands in for it.
    pub fn is_external(&self) -> bool {
        self.spec.kind == gamesa_agent::external::EXTERNAL_KIND
    }

    pub fn factory(&self) -> &AgentFactory {
        &self.factory
    }

    /// The agent's turn; a panic inside `observe` is caught and returned as a failure.
    pub fn observe(&mut self, turn: &Turn) -> Result<Vec<Intent>, AgentFailure> {
        let Some(agent) = self.agent.as_mut() else {
            return Err(AgentFailure::Panicked(
                "agent is not running after a failed rebuild".into(),
            ));
        };
        let observation = turn.observation();
        match catch_unwind(AssertUnwindSafe(|| agent.observe(&observation))) {
            Ok(Ok(intents)) => Ok(intents),
            Ok(Err(error)) => Err(AgentFailure::Error(error)),
            Err(payload) => Err(AgentFailure::Panicked(panic_message(payload.as_ref()))),
        }
    }

    /// Hands the agent its past epochs ([`Agent::warm`]), now and after every
    /// rebuild; a panic in `warm` is a failure, like one in `observe`.
    pub fn warm(&mut self, past: Arc<[Experience]>) -> Result<(), AgentFailure> {
        self.past = past;
        self.warm_current()
    }

    fn warm_current(&mut self) -> Result<(), AgentFailure> {
        let (Some(agent), false) = (self.agent.as_mut(), self.past.is_empty()) else {
            return Ok(());
        };
        let past = &self.past;
        catch_unwind(AssertUnwindSafe(|| agent.warm(past)))
            .map_err(|payload| AgentFailure::Panicked(panic_message(payload.as_ref())))
    }

    /// A reload changed the agent's parameters: rebuilt from its factory with `spec`
    /// (same id and kind), warmed with its past. Its account, orders and leases stay.
    pub fn respec(&mut self, spec: AgentSpec) -> Result<(), AgentFailure> {
        self.spec = spec;
        self.rebuild()
    }

    /// Rebuilds the plugin from its factory: fresh state, same spec, warmed with its
    /// past again. The agent's account, orders and leases are kept.
    pub fn rebuild(&mut self) -> Result<(), AgentFailure> {
        let (factory, spec) = (&self.factory, &self.spec);
        match catch_unwind(AssertUnwindSafe(|| factory(spec))) {
            Ok(Ok(agent)) => {
                self.agent = Some(agent);
                self.warm_current()
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

impl std::fmt::Debug for HostedAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostedAgent")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic payload".to_owned())
}
