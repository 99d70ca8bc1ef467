//! The cluster power market of fleet mode: many nodes share one power budget (a rack's
//! breaker, a contracted feed). Each node keeps a **safe share** it may always draw, and
//! one elected **leader** hands out the rest as **leases** with an expiry, each cluster
//! epoch, by a [`Split`] of the nodes' bids. A node's cap is its safe share plus the
//! newest lease it holds that is still valid on its own clock.
//!
//! The core is pure: no clock, no network, no NATS. Every function takes the current
//! reading of the caller's monotonic clock in milliseconds, and messages are plain
//! values ([`Order`], [`Grant`]); the daemon's fleet link carries them over NATS.
//!
//! # Why the sum of caps never exceeds the budget
//! - **Leases are timed by the receiver.** A node starts a lease's clock when it *sent*
//!   the order the grant answers, which is before the leader issued it, and ends it
//!   `margin_ms` early ([`NodeLeases::accept`]). The leader counts it until issue time
//!   plus the lease ([`Leader::clear`]). Neither clock's offset matters; only their rates
//!   do, and the margin covers that drift.
//! - **The leader counts the worst a node can hold:** the largest lease it issued it that
//!   could still be valid, and grants only what keeps the sum of those plus every safe
//!   share within the budget.
//! - **A leader grants only inside its mandate**, and a new one only after the old
//!   mandate's leases have run out: it waits one lease (plus the margin) from taking
//!   office ([`Leader::may_grant`]). The mandate is a key-value lease whose server expires
//!   it; a leader stops granting a margin before it expects its own to end.
//! - **Terms fence stale leaders:** a node refuses a grant of a lower term than one it
//!   has accepted ([`Refused::StaleTerm`]), and a grant for an order it did not send,
//!   or has had answered, is refused too.
//!
//! `tests/safety.rs` checks the sum at every instant of random fleets under leader
//! changes, zombie leaders, lost and delayed messages, and clock offsets.

mod bid;
mod leader;
mod message;
mod node;
mod pace;
mod split;

pub use bid::{DEADLINE_TIER, KEEP_TIER, node_bid};
pub use leader::{Leader, LeaderSettings};
pub use message::{BidStep, Grant, Order, Term};
pub use node::{NodeLeases, Refused};
pub use pace::{JobPace, Outlook};
pub use split::Split;

/// Why a fleet cannot be set up as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    #[error("the safe shares add up to {safe_mw} mW, over the budget of {budget_mw} mW")]
    SafeSharesOverBudget { safe_mw: u64, budget_mw: u64 },
    #[error("the lease ({lease_ms} ms) must be longer than twice the margin ({margin_ms} ms)")]
    LeaseTooShort { lease_ms: u64, margin_ms: u64 },
}
