//! The Agent trait and SDK: what a GAMESA agent plugin implements.
//!
//! An agent is plain Rust with no actix and no I/O. Once per tick the runtime hands it
//! an [`Observation`] (telemetry, ranked signals, fills, leases, balance) and it returns
//! [`Intent`]s: orders, cancels, signals and actuation requests. The runtime fills in
//! who is asking, so an agent cannot act under another's name, and the guardian checks
//! every intent against the agent's effects before anything happens.
//!
//! Agent kinds are registered by name in an [`AgentRegistry`]; config picks kinds and
//! passes each its parameter table, so a new plugin needs no change to the runtime.

mod error;
mod intent;
mod observation;
mod registry;

pub use error::AgentError;
pub use gamesa_proto as proto;
pub use intent::{Intent, OrderIntent, SignalIntent};
pub use observation::{MarketView, Observation};
pub use registry::{AgentFactory, AgentRegistry, AgentSpec};

/// A market participant that speaks for one hardware component (or anything else).
///
/// `observe` is called once per tick, in agent-id order. It must not block. An `Err`
/// or a panic counts as a failure: the runtime restarts the agent from its factory
/// (fresh state; its account, orders and leases are kept) under an intensity limit, and
/// isolates it past that limit.
pub trait Agent: Send {
    fn observe(&mut self, observation: &Observation<'_>) -> Result<Vec<Intent>, AgentError>;
}
