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
    /// Cancel one of the agent's own resting orders. On the wire it is
    /// `{"intent": "cancel", "order": 7}`: a tagged enum cannot hold a bare number.
    #[serde(with = "cancel_order")]
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

/// The field a cancel's order id travels in.
mod cancel_order {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::OrderId;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Cancel {
        order: OrderId,
    }

    pub fn serialize<S: Serializer>(order: &OrderId, serializer: S) -> Result<S::Ok, S::Error> {
        Cancel { order: *order }.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OrderId, D::Error> {
        Cancel::deserialize(deserializer).map(|cancel| cancel.order)
    }
}

impl std::fmt::Display for Intent {
    /// What was asked, in words: `bid 5000 power_budget_mw at 114`, `cancel order#3`,
    /// `offer 8 cpu_cores`, `raise performance:game_started at 1000‰`, or the actuation.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Intent::Place(order) => {
                let side = match order.side {
                    Side::Bid => "bid",
                    Side::Ask => "ask",
                };
                write!(
                    f,
                    "{side} {} {} at {}",
                    order.quantity, order.resource, order.price
                )?;
                match order.time_in_force {
                    TimeInForce::ImmediateOrCancel => write!(f, ", immediate or cancel"),
                    TimeInForce::Limit {
                        expires_at: Some(tick),
                    } => write!(f, " until tick {}", tick.0),
                    TimeInForce::Limit { expires_at: None } => Ok(()),
                }
            }
            Intent::Cancel(order) => write!(f, "cancel {order}"),
            Intent::SetCapacity { resource, quantity } => write!(f, "offer {quantity} {resource}"),
            Intent::Raise(signal) => write!(
                f,
                "raise {}:{} at {}‰",
                signal.domain,
                signal.kind,
                signal.strength.permille()
            ),
            Intent::Actuate(actuation) => actuation.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OrderId, Tick};

    #[test]
    fn intents_read_as_words() {
        let bid = Intent::Place(OrderIntent {
            resource: Resource::PowerBudgetMw,
            side: Side::Bid,
            price: Price(114),
            quantity: Quantity(5000),
            time_in_force: TimeInForce::Limit {
                expires_at: Some(Tick(12)),
            },
        });
        assert_eq!(
            bid.to_string(),
            "bid 5000 power_budget_mw at 114 until tick 12"
        );
        assert_eq!(Intent::Cancel(OrderId(3)).to_string(), "cancel order#3");
        let cancel = serde_json::to_value(Intent::Cancel(OrderId(3))).unwrap();
        assert_eq!(cancel, serde_json::json!({"intent": "cancel", "order": 3}));
        assert_eq!(
            serde_json::from_value::<Intent>(cancel).unwrap(),
            Intent::Cancel(OrderId(3))
        );
        assert_eq!(
            Intent::SetCapacity {
                resource: Resource::CpuCores,
                quantity: Quantity(8),
            }
            .to_string(),
            "offer 8 cpu_cores"
        );
        let raised = Intent::Raise(SignalIntent {
            kind: SignalKind::new("game_started").unwrap(),
            domain: Domain::Performance,
            strength: Strength::MAX,
            ttl_ticks: 1,
        });
        assert_eq!(
            raised.to_string(),
            "raise performance:game_started at 1000‰"
        );
    }
}
