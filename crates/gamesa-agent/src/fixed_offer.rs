//! A fixed capacity sold to workloads (a CPU's cores, a GPU's memory): declare it once,
//! then ask every tick for whatever is neither leased nor already offered, at a reserve
//! price that rises with utilization.
//!
//! For a capacity that moves with telemetry, see [`crate::capacity`].
//!
//! # Invariants
//! - the capacity never changes once known: a pool with leases cannot shrink, and a
//!   component's core count or a device's memory does not change under a running agent;
//! - an ask never exceeds `capacity − granted − resting asks`, so the market never has
//!   to refuse it.

use gamesa_proto::{Quantity, Resource, Side};

use crate::{
    AgentError, Intent, Observation, pricing::reserve_for_utilization, quote::resting_this_tick,
};

/// A fixed capacity of one resource and the reserve prices it is offered at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedOffer {
    resource: Resource,
    /// Set from params, or from the first telemetry that reveals it.
    capacity: Option<u64>,
    /// What the market was last told, so the capacity is declared once.
    declared: Option<u64>,
    price_idle: u64,
    price_busy: u64,
}

impl FixedOffer {
    /// An offer of `capacity` (or, when `None`, of the first capacity discovered by
    /// [`FixedOffer::quote`]) at a reserve from `price_idle` to `price_busy`.
    pub fn new(
        resource: Resource,
        capacity: Option<u64>,
        price_idle: u64,
        price_busy: u64,
    ) -> FixedOffer {
        FixedOffer {
            resource,
            capacity,
            declared: None,
            price_idle,
            price_busy,
        }
    }

    /// Declares the capacity when it is first known, then asks for the free part at the
    /// reserve price for `utilization_permille`. Without a utilization reading there is
    /// no ask: the agent cannot tell what its capacity is worth to itself.
    pub fn quote(
        &mut self,
        obs: &Observation<'_>,
        discovered_capacity: Option<u64>,
        utilization_permille: Option<u16>,
    ) -> Vec<Intent> {
        let mut intents = Vec::new();
        if self.capacity.is_none() {
            self.capacity = discovered_capacity;
        }
        let Some(capacity) = self.capacity.map(|c| c.min(Quantity::MAX.0)) else {
            return intents;
        };
        if capacity == 0 {
            return intents;
        }
        if self.declared != Some(capacity) {
            self.declared = Some(capacity);
            intents.push(Intent::SetCapacity {
                resource: self.resource,
                quantity: Quantity(capacity),
            });
        }
        let Some(utilization) = utilization_permille else {
            return intents;
        };
        let free = capacity
            .saturating_sub(obs.granted(self.resource))
            .saturating_sub(obs.resting_asks(self.resource));
        let price = reserve_for_utilization(self.price_idle, self.price_busy, utilization);
        intents.extend(resting_this_tick(
            obs,
            self.resource,
            Side::Ask,
            price,
            free,
        ));
        intents
    }
}

/// Checks an offer's reserve prices from agent `agent`'s params: the idle price must not
/// exceed the busy one (either may be 0). Each is given as `(key, value)`, and the
/// `InvalidParams` message names both keys.
pub fn validate_reserves(
    agent: &str,
    (idle_key, idle): (&str, u64),
    (busy_key, busy): (&str, u64),
) -> Result<(), AgentError> {
    if idle <= busy {
        return Ok(());
    }
    Err(AgentError::InvalidParams {
        agent: agent.to_owned(),
        message: format!("`{idle_key}` ({idle}) must not exceed `{busy_key}` ({busy})"),
    })
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{AgentId, OrderId, OrderRequest, Price, Tick};

    use super::*;
    use crate::testkit::{World, lease_between};

    const ME: AgentId = AgentId(1);

    fn ask(intents: &[Intent]) -> Option<(Price, Quantity)> {
        intents.iter().find_map(|intent| match intent {
            Intent::Place(order) if order.side == Side::Ask => Some((order.price, order.quantity)),
            _ => None,
        })
    }

    #[test]
    fn the_idle_reserve_may_not_exceed_the_busy_one() {
        let check = |idle, busy| validate_reserves("cpu", ("idle", idle), ("busy", busy));
        assert_eq!(check(0, 0), Ok(()));
        assert_eq!(check(3, 5), Ok(()));
        assert_eq!(
            check(9, 1),
            Err(AgentError::InvalidParams {
                agent: "cpu".into(),
                message: "`idle` (9) must not exceed `busy` (1)".into(),
            })
        );
    }

    #[test]
    fn capacity_is_declared_once_then_the_free_part_is_asked_for() {
        let mut world = World::with_components(vec![]);
        let mut offer = FixedOffer::new(Resource::CpuCores, Some(8), 100, 1_100);
        let first = offer.quote(&world.observation(ME), None, Some(0));
        assert_eq!(
            first[0],
            Intent::SetCapacity {
                resource: Resource::CpuCores,
                quantity: Quantity(8)
            }
        );
        assert_eq!(ask(&first), Some((Price(100), Quantity(8))));

        world.leases = vec![lease_between(
            AgentId(7),
            ME,
            Resource::CpuCores,
            3,
            Tick(105),
        )];
        let second = offer.quote(&world.observation(ME), None, Some(500));
        assert!(
            !second
                .iter()
                .any(|i| matches!(i, Intent::SetCapacity { .. }))
        );
        assert_eq!(ask(&second), Some((Price(600), Quantity(5))));
    }

    #[test]
    fn reserve_rises_with_utilization() {
        let world = World::with_components(vec![]);
        let mut offer = FixedOffer::new(Resource::CpuCores, Some(4), 100, 1_100);
        let (idle, _) = ask(&offer.quote(&world.observation(ME), None, Some(100))).unwrap();
        let (busy, _) = ask(&offer.quote(&world.observation(ME), None, Some(900))).unwrap();
        assert!(busy > idle);
    }

    #[test]
    fn resting_asks_and_full_leases_leave_nothing_to_offer() {
        let mut world = World::with_components(vec![]);
        world.open_orders = vec![(
            OrderId(1),
            OrderRequest::limit(
                ME,
                Resource::CpuCores,
                Side::Ask,
                Price(5),
                Quantity(2),
                None,
            ),
        )];
        world.leases = vec![lease_between(
            AgentId(7),
            ME,
            Resource::CpuCores,
            2,
            Tick(105),
        )];
        let mut offer = FixedOffer::new(Resource::CpuCores, Some(4), 100, 1_100);
        assert_eq!(
            ask(&offer.quote(&world.observation(ME), None, Some(0))),
            None
        );
    }

    #[test]
    fn discovered_capacity_is_kept_and_unknown_utilization_gives_no_ask() {
        let world = World::with_components(vec![]);
        let mut offer = FixedOffer::new(Resource::CpuCores, None, 100, 1_100);
        assert_eq!(offer.quote(&world.observation(ME), None, Some(0)), vec![]);
        let intents = offer.quote(&world.observation(ME), Some(6), None);
        assert_eq!(
            intents,
            vec![Intent::SetCapacity {
                resource: Resource::CpuCores,
                quantity: Quantity(6)
            }]
        );
        let later = offer.quote(&world.observation(ME), Some(2), Some(0));
        assert_eq!(ask(&later), Some((Price(100), Quantity(6))));
    }
}
