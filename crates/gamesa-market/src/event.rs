//! What the exchange reports: the events the runtime forwards to the ledger and to
//! subscribers, in the order they happened.
//!
//! The ledger needs nothing else to keep escrow right:
//! - [`MarketEvent::Accepted`] of a bid: escrow `price × quantity`;
//! - [`MarketEvent::Filled`]: the buyer pays `fill.price × quantity` to the seller and
//!   gets `(buyer_limit - fill.price) × quantity` of escrow back;
//! - [`MarketEvent::Cancelled`] of a bid: `limit_price × remaining` back.
//!
//! [`MarketEvent::escrow_refund`] computes both refunds.

use gamesa_proto::{
    AgentId, Credits, Fill, Lease, OrderId, OrderRequest, Price, Quantity, Resource, Side,
};
use serde::{Deserialize, Serialize};

use crate::{Allocation, MarketError};

/// Why an order left the book without being filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// Its owner cancelled it.
    User,
    /// The clock passed its `expires_at`.
    Expired,
    /// It would have traded with an order of the same owner.
    SelfTrade,
    /// What an immediate-or-cancel order could not trade at once.
    IocRemainder,
    /// Its owner was isolated by the guardian.
    Isolated,
    /// An ask whose seller's capacity shrank below what it had offered.
    CapacityShrunk,
}

/// Why a lease ended, or shrank, before its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    /// Its holder was isolated by the guardian.
    Isolated,
    /// The seller's capacity shrank (headroom lost, power cap lowered).
    CapacityShrunk,
    /// The runtime revoked it (for example, the guardian denied the fill).
    Requested,
}

/// An order that left the book unfilled, with what a refund needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Cancellation {
    pub order: OrderId,
    pub owner: AgentId,
    pub resource: Resource,
    pub side: Side,
    /// The order's limit price: what a bid escrowed per unit.
    pub limit_price: Price,
    /// The quantity cancelled (what had not traded).
    pub remaining: Quantity,
    pub reason: CancelReason,
}

/// One thing that happened in the market.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum MarketEvent {
    /// An order was accepted and numbered; fills and cancels for it follow.
    Accepted {
        order: OrderId,
        /// The submitter's sequence number, so it can match the id to its intent.
        sequence: u64,
        request: OrderRequest,
    },
    /// A command was refused; nothing changed.
    Rejected {
        agent: AgentId,
        sequence: u64,
        error: MarketError,
    },
    /// A trade, at the resting order's price, with the lease it created.
    Filled {
        fill: Fill,
        /// The buy order's limit price: what the buyer escrowed per unit.
        buyer_limit: Price,
        /// The lease the fill created, or why none could be allocated (the pool
        /// invariant rules that out; it is reported rather than hidden if it happens).
        lease: Result<LeaseGrant, MarketError>,
    },
    Cancelled(Cancellation),
    /// A lease ran past its `expires_at`; its capacity is back in the pool.
    LeaseExpired {
        lease: Lease,
    },
    /// A lease ended early; its capacity is back in the pool.
    LeaseRevoked {
        lease: Lease,
        reason: RevokeReason,
    },
    /// A lease of a weighted pool was scaled down; `lease` has the new quantity.
    LeaseResized {
        lease: Lease,
        previous: Quantity,
        reason: RevokeReason,
    },
}

/// The lease a fill created, and which part of the seller's pool it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseGrant {
    pub lease: Lease,
    pub allocation: Allocation,
}

impl MarketEvent {
    /// The escrow that goes back to a buyer: the price improvement of a fill, or
    /// the whole escrow of a cancelled bid's remainder.
    pub fn escrow_refund(&self) -> Option<(AgentId, Credits)> {
        match self {
            MarketEvent::Filled {
                fill, buyer_limit, ..
            } if *buyer_limit > fill.price => Some((
                fill.buyer,
                Credits::cost(Price(buyer_limit.0 - fill.price.0), fill.quantity),
            )),
            MarketEvent::Cancelled(cancellation) if cancellation.side == Side::Bid => Some((
                cancellation.owner,
                Credits::cost(cancellation.limit_price, cancellation.remaining),
            )),
            _ => None,
        }
    }
}
