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
//!
//! Beside the contract, the SDK holds the mechanics agents share, each in its module:
//! - [`quote`]: orders that rest through the current tick only;
//! - [`pricing`]: rounding utilities and reserves into valid book prices;
//! - [`capacity`]: a capacity that moves with telemetry, re-declared past a deadband;
//! - [`fixed_offer`]: a fixed capacity declared once and offered at a reserve that rises
//!   with utilization;
//! - [`hysteresis`]: latches that keep a signal raised until the reading clears a band;
//! - [`moving_average`]: the average of a sensor's last few readings;
//! - [`thermal_model`]: a component's thermal resistance, learned online from its
//!   temperature and power;
//! - [`power_demand`]: buying power budget and thermal headroom for one component at the
//!   marginal utility of more power (the CPU and GPU agents' strategy);
//! - [`Experience`] (from `gamesa-proto`): an agent's past epochs, which it may take
//!   back at start;
//! - [`wire`]: the MessagePack bytes agents in other address spaces (WASM modules,
//!   external processes) trade with the daemon, and [`OwnedObservation`] they decode;
//! - [`external`]: the stand-in for an agent that lives in another process;
//! - `testkit` (feature `testkit`): hand-made worlds for agents' unit tests.

pub mod capacity;
mod error;
pub mod external;
pub mod fixed_offer;
pub mod hysteresis;
pub mod moving_average;
mod observation;
pub mod power_demand;
pub mod pricing;
pub mod quote;
mod registry;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod thermal_model;
pub mod wire;
pub mod work_model;

pub use error::AgentError;
pub use gamesa_proto as proto;
pub use gamesa_proto::Experience;
pub use gamesa_proto::{Intent, OrderIntent, SignalIntent};
pub use observation::{MarketView, Observation, OwnedObservation};
pub use registry::{AgentFactory, AgentRegistry, AgentSpec, ModuleSpec};
/// For [`params_with_power_demand!`], so that its expansion needs no `serde` in the crate
/// that uses it.
#[doc(hidden)]
pub use serde as __serde;

/// A market participant that speaks for one hardware component (or anything else).
///
/// `observe` is called once per tick, in agent-id order. It must not block. An `Err`
/// or a panic counts as a failure: the runtime restarts the agent from its factory
/// (fresh state; its account, orders and leases are kept) under an intensity limit, and
/// isolates it past that limit.
pub trait Agent: Send {
    fn observe(&mut self, observation: &Observation<'_>) -> Result<Vec<Intent>, AgentError>;

    /// Its own past epochs, oldest first, from the journal of earlier runs: called once
    /// before its first turn (and again after each restart) when there are any. An
    /// agent with a learned model warms it here; the default ignores them.
    fn warm(&mut self, past: &[Experience]) {
        let _ = past;
    }
}
