//! Order books, matching, allocation pools and leases: the market core of GAMESA.
//!
//! This crate is pure, synchronous and deterministic. It reads no clock, no random
//! source and no file: time comes in as [`Tick`](gamesa_proto::Tick) arguments, and
//! the same calls always produce the same events.
//!
//! - [`OrderBook`]: one resource's limit order book, with price-time priority,
//!   partial fills, cancel, expiry, immediate-or-cancel orders and self-trade
//!   prevention. A trade executes at the **resting (maker) order's price**.
//! - [`Exchange`]: one book per [`Resource`](gamesa_proto::Resource), sequential
//!   [`OrderId`](gamesa_proto::OrderId)s, validation, and the events the runtime
//!   forwards to the ledger.
//! - [`pool`]: a seller's capacity of a resource and its allocation strategy;
//!   [`Leases`]: the leases fills create and their expiry.
//!
//! # Matching within a tick: canonical order, continuous matching
//! The design allows either a uniform-price call auction per tick or continuous
//! matching in a canonical order. This crate does the latter: every submission of a
//! tick is sorted by `(agent id, per-agent sequence number)` — then by content, so
//! that even duplicates are ordered — and applied one at a time against the book,
//! where resting orders keep price-time priority. Arrival order inside a tick never
//! changes the outcome. Continuous matching was chosen because it keeps per-order
//! latency flat, gives each fill an explicit maker and price, and lets a resting
//! order's priority carry across ticks; its cost, that a lower agent id goes first
//! within a tick, is deterministic and documented rather than hidden.
//!
//! # Self-trade prevention
//! An incoming order never trades with a resting order of the same owner: matching
//! stops there and the incoming remainder is cancelled
//! ([`CancelReason::SelfTrade`]); fills made before that stand and the resting
//! order keeps its place.

pub mod book;
mod config;
mod error;
mod event;
mod exchange;
mod lease;
mod order_index;
pub mod pool;

pub use book::{
    BookDepth, CancelledOrder, DepthLevel, NewOrder, OrderBook, PlaceOutcome, RestingOrder,
};
pub use config::{DEFAULT_EPOCH_TICKS, MarketConfig};
pub use error::MarketError;
pub use event::{CancelReason, Cancellation, LeaseGrant, MarketEvent, RevokeReason};
pub use exchange::{Command, Exchange, Submission};
pub use lease::{ActiveLease, Leases};
pub use pool::{Allocation, Pool, Strategy};
