//! Ingress: clients in any language inject signals, place orders and read state over a
//! Unix socket and TCP, speaking the `gamesa-wire` protocol (`docs/protocol.md`).
//!
//! [`Ingress`] runs the listeners on a thread of its own; [`IngressHub`] is what it
//! shares with the runtime, which takes the hub's intake ([`hub::HubIntake`]) before
//! each tick and hands back the tick's output and the market it left
//! ([`hub::MarketState`]) after it (`Runtime::attach_ingress`). Ingress knows nothing
//! of actors: it reads the engine's records.

pub mod clients;
mod connection;
pub mod dispatch;
pub mod external;
pub mod hub;
pub mod query;
pub mod respond;
pub mod server;
pub mod session;
pub mod subscriptions;

pub use hub::IngressHub;
pub use server::{Ingress, IngressError};
