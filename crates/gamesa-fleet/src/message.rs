//! What nodes and the leader say to each other: a node's [`Order`] for a slice of the
//! pool, and the leader's [`Grant`] that answers it. Both serialize with named fields,
//! as they travel (MessagePack on NATS).

use serde::{Deserialize, Serialize};

/// A leader's term: each election raises it, and grants carry it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Term(pub u64);

/// One step of a node's demand curve: `mw` more milliwatts, worth `price` credits per
/// watt to it. Steps come in falling price order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidStep {
    pub mw: u64,
    pub price: u64,
}

/// A node's order for the coming epoch: how much of the pool it would use, at what
/// value, and what it draws now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub node: String,
    /// Numbers the node's orders; the grant names it ([`crate::NodeLeases::ask`]).
    pub request: u64,
    /// What the node draws now, in mW (reported, not decided on).
    pub draw_mw: u64,
    /// Its weight in the static split (`fleet.node_weight`).
    #[serde(default = "one")]
    pub weight: u32,
    /// The pool it asks for beyond its safe share, in steps of falling price. The sum
    /// is its demand.
    pub bids: Vec<BidStep>,
}

fn one() -> u32 {
    1
}

impl Order {
    /// Milliwatts asked for beyond the safe share.
    pub fn demand_mw(&self) -> u64 {
        self.bids
            .iter()
            .fold(0u64, |sum, step| sum.saturating_add(step.mw))
    }
}

/// The leader's answer to one order: `mw` of the pool for `ttl_ms`, under `term`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub node: String,
    pub term: Term,
    pub request: u64,
    pub mw: u64,
    pub ttl_ms: u64,
    /// The W3C `traceparent` of the leader's clearing that made it, when traced: the
    /// node's next tick links to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}
