//! The actix shell of GAMESA: actors that own the pure cores, the conductor that drives
//! the tick engine through them, ingress and telemetry.
//!
//! The actors only receive a message, call their core, and return what it returned;
//! the tick's phases are `gamesa-engine`'s, and decisions live in `gamesa-market`,
//! `gamesa-guardian`, `gamesa-signals` and the agents. [`Runtime`] assembles
//! everything from a [`Config`].

pub mod actors;
pub mod conductor;
pub mod fleet;
pub mod hardware;
pub mod runtime;
pub mod status;

pub use conductor::{ActorGone, Conductor};
pub use gamesa_config::{self as config, Config, ConfigError, assemble};
pub use gamesa_engine::TickOutput;
pub use gamesa_ingress as ingress;
pub use gamesa_journal as journal;
pub use gamesa_telemetry as telemetry;
pub use runtime::{ReloadReport, Runtime, RuntimeError};
