//! Orders that rest through the current tick only.
//!
//! Every quote expires at the tick it is placed in, so an agent re-quotes each tick and
//! never has to cancel: what it no longer wants simply lapses (and a bid's escrow is
//! refunded).

use gamesa_proto::{Price, Quantity, Resource, Side, TimeInForce};

use crate::{Intent, Observation, OrderIntent, pricing::clamp_price};

/// An order for `quantity` at `price` that rests through `obs.tick` only, or `None`
/// when there is nothing to trade. The price is clamped into the book's range and the
/// quantity capped at [`Quantity::MAX`].
pub fn resting_this_tick(
    obs: &Observation<'_>,
    resource: Resource,
    side: Side,
    price: Price,
    quantity: u64,
) -> Option<Intent> {
    if quantity == 0 {
        return None;
    }
    Some(Intent::Place(OrderIntent {
        resource,
        side,
        price: clamp_price(price.0),
        quantity: Quantity(quantity.min(Quantity::MAX.0)),
        time_in_force: TimeInForce::Limit {
            expires_at: Some(obs.tick),
        },
    }))
}

#[cfg(test)]
mod tests {
    use gamesa_proto::AgentId;

    use super::*;
    use crate::testkit::World;

    #[test]
    fn a_quote_expires_this_tick_and_stays_in_the_book_range() {
        let world = World::default();
        let obs = world.observation(AgentId(1));
        assert_eq!(
            resting_this_tick(&obs, Resource::CpuCores, Side::Ask, Price(5), 0),
            None
        );
        let Some(Intent::Place(order)) = resting_this_tick(
            &obs,
            Resource::CpuCores,
            Side::Bid,
            Price(u64::MAX),
            u64::MAX,
        ) else {
            panic!("no order");
        };
        assert_eq!(order.price, Price::MAX);
        assert_eq!(order.quantity, Quantity::MAX);
        assert_eq!(
            order.time_in_force,
            TimeInForce::Limit {
                expires_at: Some(world.tick)
            }
        );
    }
}
