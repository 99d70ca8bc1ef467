//! Orders, fills and leases: what agents send to the exchange and what it returns.

use serde::{Deserialize, Serialize};

use crate::{AgentId, Credits, LeaseId, OrderId, Price, ProtoError, Quantity, Resource, Tick};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Wants to buy the resource.
    Bid,
    /// Wants to sell the resource.
    Ask,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Bid => Side::Ask,
            Side::Ask => Side::Bid,
        }
    }
}

/// How long an order may rest in the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeInForce {
    /// Rests until filled, cancelled, or the end of `expires_at` (if any).
    Limit { expires_at: Option<Tick> },
    /// Immediate-or-cancel: trades what it can now and never rests.
    ImmediateOrCancel,
}

/// A request to place an order. The exchange assigns its [`OrderId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrderRequest {
    pub owner: AgentId,
    pub resource: Resource,
    pub side: Side,
    pub price: Price,
    pub quantity: Quantity,
    pub time_in_force: TimeInForce,
}

impl OrderRequest {
    /// A limit order that rests until `expires_at` (inclusive), or forever with `None`.
    pub fn limit(
        owner: AgentId,
        resource: Resource,
        side: Side,
        price: Price,
        quantity: Quantity,
        expires_at: Option<Tick>,
    ) -> OrderRequest {
        OrderRequest {
            owner,
            resource,
            side,
            price,
            quantity,
            time_in_force: TimeInForce::Limit { expires_at },
        }
    }

    /// An immediate-or-cancel order.
    pub fn immediate(
        owner: AgentId,
        resource: Resource,
        side: Side,
        price: Price,
        quantity: Quantity,
    ) -> OrderRequest {
        OrderRequest {
            owner,
            resource,
            side,
            price,
            quantity,
            time_in_force: TimeInForce::ImmediateOrCancel,
        }
    }

    /// Checks price and quantity bounds, and that an expiry lies after `now`.
    pub fn validate(&self, now: Tick) -> Result<(), ProtoError> {
        Price::checked(self.price.0)?;
        Quantity::checked(self.quantity.0)?;
        if let TimeInForce::Limit {
            expires_at: Some(expires_at),
        } = self.time_in_force
            && expires_at < now
        {
            return Err(ProtoError::ExpiryInPast { expires_at, now });
        }
        Ok(())
    }

    /// The most this order can cost its owner: what a bid escrows.
    pub fn notional(&self) -> Credits {
        Credits::cost(self.price, self.quantity)
    }
}

/// One trade between a resting order and an incoming one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fill {
    pub tick: Tick,
    pub resource: Resource,
    pub buyer: AgentId,
    pub seller: AgentId,
    pub buy_order: OrderId,
    pub sell_order: OrderId,
    /// The execution price: always the resting (maker) order's price.
    pub price: Price,
    pub quantity: Quantity,
    /// The side of the incoming order that caused the trade.
    pub aggressor: Side,
}

impl Fill {
    pub fn cost(&self) -> Credits {
        Credits::cost(self.price, self.quantity)
    }
}

/// Capacity granted to `holder` by a fill, returned to `seller`'s pool when it expires.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lease {
    pub id: LeaseId,
    pub resource: Resource,
    pub holder: AgentId,
    pub seller: AgentId,
    pub quantity: Quantity,
    pub price: Price,
    pub start: Tick,
    /// The last tick the lease is held; it is released when the clock passes it.
    pub expires_at: Tick,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rejects_bad_orders() {
        let good = OrderRequest::limit(
            AgentId(1),
            Resource::CpuCores,
            Side::Bid,
            Price(10),
            Quantity(2),
            Some(Tick(5)),
        );
        assert_eq!(good.validate(Tick(5)), Ok(()));
        assert_eq!(
            good.validate(Tick(6)),
            Err(ProtoError::ExpiryInPast {
                expires_at: Tick(5),
                now: Tick(6)
            })
        );
        let zero = OrderRequest {
            quantity: Quantity(0),
            ..good
        };
        assert!(matches!(
            zero.validate(Tick(0)),
            Err(ProtoError::QuantityOutOfRange { .. })
        ));
        let free = OrderRequest {
            price: Price(0),
            ..good
        };
        assert!(matches!(
            free.validate(Tick(0)),
            Err(ProtoError::PriceOutOfRange { .. })
        ));
    }

    #[test]
    fn orders_round_trip_through_msgpack() {
        let order = OrderRequest::immediate(
            AgentId(3),
            Resource::GpuMemoryMb,
            Side::Ask,
            Price(7),
            Quantity(512),
        );
        let bytes = rmp_serde::to_vec_named(&order).unwrap();
        let back: OrderRequest = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, order);
    }
}
