//! The actix shell of GAMESA: actors that own the pure cores, the conductor that runs
//! each tick in phases, supervision, and config.
//!
//! The actors only receive a message, call their core, and return what it returned;
//! decisions live in `gamesa-market`, `gamesa-guardian`, `gamesa-signals` and the
//! agents. [`Runtime`] assembles everything from a [`Config`].

pub mod actors;
pub mod assemble;
pub mod conductor;
pub mod config;
pub mod hardware;
pub mod ingress;
pub mod progress;
pub mod runtime;
pub mod safety;
pub mod status;
pub mod supervision;
pub mod telemetry;

pub use conductor::{ActorGone, Conductor, TickReport};
pub use config::{Config, ConfigError};
pub use runtime::{Runtime, RuntimeError};
