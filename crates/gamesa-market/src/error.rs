//! The one error type of the market crate: every way a command can be refused.

use gamesa_proto::{AgentId, LeaseId, OrderId, Price, ProtoError, Quantity, Resource, Tick};
use thiserror::Error;

/// Why the market refused a command. A refused command leaves every book, pool and
/// lease exactly as it was. Each variant carries what was wrong, so a test can
/// `assert_eq!` on it and the runtime can turn it into an error frame.
#[derive(Debug, Clone, PartialEq, Eq, Error, serde::Serialize)]
pub enum MarketError {
    #[error("price must be between {min} and {max}, got {price}")]
    PriceOutOfRange {
        price: Price,
        min: Price,
        max: Price,
    },
    #[error("quantity must be between 1 and {max}, got {quantity}")]
    QuantityOutOfRange { quantity: Quantity, max: Quantity },
    #[error("expiry tick {expires_at} is not after the current tick {now}")]
    ExpiryInPast { expires_at: Tick, now: Tick },
    /// Any other validation failure reported by `gamesa-proto`.
    #[error(transparent)]
    Invalid(ProtoError),
    #[error("unknown order {0}")]
    UnknownOrder(OrderId),
    #[error("{requested_by} cannot cancel {order}: it belongs to {owner}")]
    NotOwner {
        order: OrderId,
        owner: AgentId,
        requested_by: AgentId,
    },
    #[error("{seller} offers {requested} {resource} but has only {free} free")]
    InsufficientCapacity {
        seller: AgentId,
        resource: Resource,
        requested: Quantity,
        free: Quantity,
    },
    #[error("{seller} has registered no {resource} capacity to sell")]
    NotASeller { seller: AgentId, resource: Resource },
    #[error("capacity {capacity} of {resource} is above the pool maximum {max}")]
    CapacityOutOfRange {
        resource: Resource,
        capacity: Quantity,
        max: Quantity,
    },
    #[error("the {resource} pool of {seller} has leases or offers, so it cannot shrink")]
    PoolInUse { seller: AgentId, resource: Resource },
    #[error("unknown lease {0}")]
    UnknownLease(LeaseId),
    #[error("tick {now} is before the market's current tick {current}")]
    TickWentBackwards { now: Tick, current: Tick },
    #[error("order id {id} is not above the last id {last} this book accepted")]
    OrderIdNotIncreasing { id: OrderId, last: OrderId },
}

impl From<ProtoError> for MarketError {
    fn from(error: ProtoError) -> MarketError {
        match error {
            ProtoError::PriceOutOfRange { price, min, max } => {
                MarketError::PriceOutOfRange { price, min, max }
            }
            ProtoError::QuantityOutOfRange { quantity, max } => {
                MarketError::QuantityOutOfRange { quantity, max }
            }
            ProtoError::ExpiryInPast { expires_at, now } => {
                MarketError::ExpiryInPast { expires_at, now }
            }
            other => MarketError::Invalid(other),
        }
    }
}
