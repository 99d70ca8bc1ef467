//! Intents: what an agent (or an ingress client) asks for in one tick. The runtime
//! stamps the agent's id on each and gives every intent a per-agent sequence number, in
//! the order returned; the guardian admits them (`gamesa_guardian::Guardian::admit`).

use serde::{Deserialize, Serialize};

use crate::{
    Actuation, Domain, OrderId, Price, Quantity, Resource, Side, SignalKind, Strength, TimeInForce,
};

/// An order an agent wants placed; the owner is the agent itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderIntent {
    pub resource: Resource,
    pub side: Side,
    pub price: Price,
    pub quantity: Quantity,
    pub time_in_force: TimeInForce,
}

/// A signal an agent raises; the source is the agent itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalIntent {
    pub kind: SignalKind,
    pub domain: Domain,
    pub strength: Strength,
    pub ttl_ticks: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "intent", rename_all = "snake_case")]
pub enum Intent {
    /// Place an order (needs `order:<resource>`). A bid escrows `price * quantity`.
    Place(OrderIntent),
    /// Cancel one of the agent's own resting orders.
    Cancel(OrderId),
    /// Offer `quantity` of a resource as the agent's sellable capacity from now on
    /// (needs `order:<resource>`). Leases already granted are unaffected unless the
    /// capacity shrinks below them, in which case the pool's strategy decides.
    SetCapacity {
        resource: Resource,
        quantity: Quantity,
    },
    /// Raise a signal (needs `signal:<domain>`).
    Raise(SignalIntent),
    /// Ask for a change to the machine (needs the actuation's effect, and the guardian's
    /// contracts and gate must allow it).
    Actuate(Actuation),
}
