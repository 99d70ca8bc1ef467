//! A capacity that moves with telemetry: re-declared only when it has moved by a
//! deadband, with asks that never exceed what is really sellable now.
//!
//! The declared capacity counts what is leased out plus what could still be sold, so a
//! lessee that uses what it leased does not shrink the pool. The market may refuse to
//! shrink a pool that has leases; asks are therefore also capped by what is sellable
//! now, so a refused shrink never oversells.
//!
//! # Invariants
//! - an ask never exceeds `declared − granted − resting asks`, nor `sellable`.

use gamesa_proto::{Quantity, Resource};

use crate::{Intent, Observation};

/// One resource's capacity as last declared to the market.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    resource: Resource,
    /// What the market was last told.
    declared: Option<u64>,
    /// Smaller moves are not re-declared, so the pool does not churn every tick.
    deadband: u64,
}

/// What to do about one capacity this tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapacityQuote {
    /// A `SetCapacity` when the capacity moved past the deadband.
    pub declare: Option<Intent>,
    /// How much may be asked for now.
    pub free: u64,
}

impl Capacity {
    /// A capacity of `resource`, not yet declared, re-declared whenever it moves by
    /// `deadband` or more (0 re-declares every change).
    pub fn new(resource: Resource, deadband: u64) -> Capacity {
        Capacity {
            resource,
            declared: None,
            deadband,
        }
    }

    /// Updates from `sellable`, what could be sold now on top of what is leased out.
    pub fn update(&mut self, obs: &Observation<'_>, sellable: u64) -> CapacityQuote {
        let resource = self.resource;
        // Leases in their last tick are back in the pool by the time asks match.
        let granted = obs.granted_beyond_now(resource);
        let wanted = granted.saturating_add(sellable).min(Quantity::MAX.0);
        let moved = match self.declared {
            None => true,
            Some(declared) => declared.abs_diff(wanted) >= self.deadband.max(1),
        };
        let mut declare = None;
        if moved && wanted > 0 {
            self.declared = Some(wanted);
            declare = Some(Intent::SetCapacity {
                resource,
                quantity: Quantity(wanted),
            });
        }
        let free = self
            .declared
            .unwrap_or(0)
            .saturating_sub(granted)
            .saturating_sub(obs.resting_asks(resource))
            .min(sellable);
        CapacityQuote { declare, free }
    }
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{AgentId, Tick};

    use super::*;
    use crate::testkit::{World, lease_between};

    const ME: AgentId = AgentId(5);

    #[test]
    fn capacity_is_redeclared_only_past_the_deadband() {
        let world = World::default();
        let mut capacity = Capacity::new(Resource::MemoryMb, 100);
        let first = capacity.update(&world.observation(ME), 1_000);
        assert_eq!(
            first.declare,
            Some(Intent::SetCapacity {
                resource: Resource::MemoryMb,
                quantity: Quantity(1_000)
            })
        );
        assert_eq!(first.free, 1_000);
        // A small move is not re-declared, and the ask follows what is sellable.
        let small = capacity.update(&world.observation(ME), 950);
        assert_eq!((small.declare, small.free), (None, 950));
        let large = capacity.update(&world.observation(ME), 800);
        assert!(large.declare.is_some());
        assert_eq!(large.free, 800);
    }

    #[test]
    fn leased_capacity_stays_declared_and_is_not_offered_again() {
        let mut world = World::default();
        let mut capacity = Capacity::new(Resource::MemoryMb, 100);
        capacity.update(&world.observation(ME), 1_000);
        world.leases = vec![lease_between(
            AgentId(7),
            ME,
            Resource::MemoryMb,
            400,
            Tick(200),
        )];
        // The lessee uses its 400: only 600 remain sellable, and the pool is unchanged.
        let quote = capacity.update(&world.observation(ME), 600);
        assert_eq!((quote.declare, quote.free), (None, 600));
    }

    #[test]
    fn nothing_sellable_declares_nothing() {
        let world = World::default();
        let mut capacity = Capacity::new(Resource::MemoryMb, 100);
        let quote = capacity.update(&world.observation(ME), 0);
        assert_eq!((quote.declare, quote.free), (None, 0));
    }
}
