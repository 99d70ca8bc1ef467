//! A seller's capacity of one resource, and the strategy that carves leases out of it.
//!
//! | resource | strategy | why |
//! | --- | --- | --- |
//! | `cpu_cores` | [first-fit](first_fit) over core indices | a lease names its cores, for a cpuset |
//! | `cpu_time_us` | [best-fit](best_fit) over free segments | keeps large segments whole |
//! | `gpu_memory_mb` | [buddy](buddy) blocks | power-of-two blocks, merged again on release |
//! | `thermal_headroom_mc` | [priority](priority) | headroom shrinks; the cheapest, newest leases go first |
//! | `power_budget_mw` | [weighted](weighted) | a cap drop scales every lease by its weight |
//! | `gpu_compute_pct` | weighted | a share, like power: throttling scales every share |
//! | `memory_mb` | priority | like the OOM killer: under pressure whole leases go, cheapest first |
//!
//! Every strategy can place any request no larger than the pool's free capacity:
//! the positional ones (first-fit, best-fit, buddy) fall back to scattered pieces
//! when no single run is large enough. So a fill backed by an accepted ask always
//! gets its lease.
//!
//! # Invariants
//! - `allocated + offered <= capacity`: no pool is ever over-allocated, and an ask
//!   never offers capacity that is leased or offered already;
//! - `allocated` is the sum of the quantities of the allocations handed out and not
//!   yet released, and positional allocations never overlap.

pub mod best_fit;
pub mod buddy;
pub mod first_fit;
pub mod priority;
pub mod weighted;

use gamesa_proto::{LeaseId, Price, Quantity, Resource};
use serde::{Deserialize, Serialize};

use self::{
    best_fit::{BestFitPool, Segment},
    buddy::{BuddyBlock, BuddyPool},
    first_fit::FirstFitPool,
};

/// How a pool allocates leases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    FirstFit,
    BestFit,
    Buddy,
    Priority,
    Weighted,
}

impl Strategy {
    /// The strategy each resource uses unless config says otherwise.
    pub fn default_for(resource: Resource) -> Strategy {
        match resource {
            Resource::CpuCores => Strategy::FirstFit,
            Resource::CpuTimeUs => Strategy::BestFit,
            Resource::GpuMemoryMb => Strategy::Buddy,
            Resource::ThermalHeadroomMc | Resource::MemoryMb => Strategy::Priority,
            Resource::PowerBudgetMw | Resource::GpuComputePct => Strategy::Weighted,
        }
    }

    /// The largest capacity a pool with this strategy accepts.
    pub fn max_capacity(self) -> Quantity {
        match self {
            Strategy::FirstFit => Quantity(first_fit::MAX_CORES),
            _ => Quantity::MAX,
        }
    }

    /// Whether a lease names positions (cores, segments, blocks) rather than an amount.
    pub fn is_positional(self) -> bool {
        matches!(
            self,
            Strategy::FirstFit | Strategy::BestFit | Strategy::Buddy
        )
    }
}

/// Which part of a pool a lease holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Allocation {
    /// An amount of a fungible pool (priority, weighted): the lease's quantity.
    Units,
    /// Core indices, ascending.
    Cores(Vec<u32>),
    /// Segments of the pool's range, in allocation order.
    Segments(Vec<Segment>),
    /// Buddy blocks, in allocation order.
    Blocks(Vec<BuddyBlock>),
}

/// A lease's claim on a fungible pool, as the shrink policies see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub lease: LeaseId,
    pub price: Price,
    pub quantity: Quantity,
}

#[derive(Debug, Clone)]
enum Positions {
    Fungible,
    FirstFit(FirstFitPool),
    BestFit(BestFitPool),
    Buddy(BuddyPool),
}

/// One seller's capacity of one resource.
#[derive(Debug, Clone)]
pub struct Pool {
    strategy: Strategy,
    capacity: u64,
    /// Held by leases.
    allocated: u64,
    /// Promised to resting asks: reserved so that every fill of an accepted ask can
    /// be allocated.
    offered: u64,
    positions: Positions,
}

impl Pool {
    /// An empty pool. The caller has checked `capacity <= strategy.max_capacity()`.
    pub(crate) fn new(strategy: Strategy, capacity: Quantity) -> Pool {
        let positions = match strategy {
            Strategy::FirstFit => Positions::FirstFit(FirstFitPool::new(capacity.0)),
            Strategy::BestFit => Positions::BestFit(BestFitPool::new(capacity.0)),
            Strategy::Buddy => Positions::Buddy(BuddyPool::new(capacity.0)),
            Strategy::Priority | Strategy::Weighted => Positions::Fungible,
        };
        Pool {
            strategy,
            capacity: capacity.0,
            allocated: 0,
            offered: 0,
            positions,
        }
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    pub fn capacity(&self) -> Quantity {
        Quantity(self.capacity)
    }

    pub fn allocated(&self) -> Quantity {
        Quantity(self.allocated)
    }

    pub fn offered(&self) -> Quantity {
        Quantity(self.offered)
    }

    /// What a new ask may still offer: neither leased nor offered already.
    pub fn free(&self) -> Quantity {
        Quantity(
            self.capacity
                .saturating_sub(self.allocated)
                .saturating_sub(self.offered),
        )
    }

    /// Whether nothing is leased or offered.
    pub fn is_idle(&self) -> bool {
        self.allocated == 0 && self.offered == 0
    }

    pub(crate) fn offer(&mut self, quantity: Quantity) {
        self.offered += quantity.0;
    }

    pub(crate) fn withdraw(&mut self, quantity: Quantity) {
        self.offered = self.offered.saturating_sub(quantity.0);
    }

    /// Allocates `quantity` that an ask had offered (`from_offer`) or that an incoming
    /// ask brings now. `None` only if that quantity is not available, which the
    /// exchange rules out by checking asks against [`Pool::free`].
    pub(crate) fn allocate(&mut self, quantity: Quantity, from_offer: bool) -> Option<Allocation> {
        let available = if from_offer {
            self.capacity.saturating_sub(self.allocated)
        } else {
            self.free().0
        };
        if quantity.0 == 0 || quantity.0 > available {
            return None;
        }
        let allocation = match &mut self.positions {
            Positions::Fungible => Allocation::Units,
            Positions::FirstFit(pool) => Allocation::Cores(pool.allocate(quantity.0)?),
            Positions::BestFit(pool) => Allocation::Segments(pool.allocate(quantity.0)?),
            Positions::Buddy(pool) => Allocation::Blocks(pool.allocate(quantity.0)?),
        };
        if from_offer {
            self.withdraw(quantity);
        }
        self.allocated += quantity.0;
        Some(allocation)
    }

    /// Returns a lease's allocation of `quantity` to the pool.
    pub(crate) fn release(&mut self, allocation: &Allocation, quantity: Quantity) {
        match (&mut self.positions, allocation) {
            (Positions::FirstFit(pool), Allocation::Cores(cores)) => pool.release(cores),
            (Positions::BestFit(pool), Allocation::Segments(segments)) => pool.release(segments),
            (Positions::Buddy(pool), Allocation::Blocks(blocks)) => pool.release(blocks),
            _ => {}
        }
        self.allocated = self.allocated.saturating_sub(quantity.0);
    }

    /// Shrinks a fungible lease in place (weighted scaling).
    pub(crate) fn release_units(&mut self, quantity: Quantity) {
        debug_assert!(!self.strategy.is_positional());
        self.allocated = self.allocated.saturating_sub(quantity.0);
    }

    /// Sets the capacity. Positional pools grow at any time but only shrink when idle
    /// (the caller checks); fungible pools take any value, and the caller then
    /// withdraws offers and shrinks leases until the invariant holds again.
    pub(crate) fn set_capacity(&mut self, capacity: Quantity) {
        match &mut self.positions {
            Positions::Fungible => {}
            Positions::FirstFit(pool) if capacity.0 >= self.capacity => pool.grow(capacity.0),
            Positions::BestFit(pool) if capacity.0 >= self.capacity => pool.grow(capacity.0),
            Positions::Buddy(pool) if capacity.0 >= self.capacity => pool.grow(capacity.0),
            positions => *positions = Pool::new(self.strategy, capacity).positions,
        }
        self.capacity = capacity.0;
    }

    /// Checks the pool's invariants; used by the tests.
    #[cfg(test)]
    pub(crate) fn assert_invariants(&self) {
        assert!(
            self.allocated + self.offered <= self.capacity,
            "over-allocated pool: {} leased + {} offered > {}",
            self.allocated,
            self.offered,
            self.capacity
        );
        let free_positions = match &self.positions {
            Positions::Fungible => None,
            Positions::FirstFit(pool) => Some(pool.free_count()),
            Positions::BestFit(pool) => Some(pool.free_total()),
            Positions::Buddy(pool) => Some(pool.free_total()),
        };
        if let Some(free) = free_positions {
            assert_eq!(free + self.allocated, self.capacity);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::{
        ProptestConfig, any, prop, prop_assert, prop_assert_eq, prop_oneof, proptest,
    };
    use proptest::strategy::Strategy as _;

    use super::*;

    /// The unit positions an allocation holds.
    fn positions(allocation: &Allocation) -> Vec<u64> {
        match allocation {
            Allocation::Units => Vec::new(),
            Allocation::Cores(cores) => cores.iter().map(|&core| u64::from(core)).collect(),
            Allocation::Segments(segments) => segments
                .iter()
                .flat_map(|segment| segment.start..segment.start + segment.len)
                .collect(),
            Allocation::Blocks(blocks) => blocks
                .iter()
                .flat_map(|block| block.offset..block.offset + block.len())
                .collect(),
        }
    }

    #[test]
    fn default_strategies_follow_the_design() {
        assert_eq!(
            Strategy::default_for(Resource::CpuCores),
            Strategy::FirstFit
        );
        assert_eq!(
            Strategy::default_for(Resource::CpuTimeUs),
            Strategy::BestFit
        );
        assert_eq!(
            Strategy::default_for(Resource::GpuMemoryMb),
            Strategy::Buddy
        );
        assert_eq!(
            Strategy::default_for(Resource::ThermalHeadroomMc),
            Strategy::Priority
        );
        assert_eq!(
            Strategy::default_for(Resource::PowerBudgetMw),
            Strategy::Weighted
        );
    }

    #[test]
    fn offers_reserve_capacity_until_allocated() {
        let mut pool = Pool::new(Strategy::FirstFit, Quantity(4));
        pool.offer(Quantity(3));
        assert_eq!(pool.free(), Quantity(1));
        // An incoming ask can only use what is not offered.
        assert_eq!(pool.allocate(Quantity(2), false), None);
        // A fill of the resting offer draws on the reservation.
        assert_eq!(
            pool.allocate(Quantity(2), true),
            Some(Allocation::Cores(vec![0, 1]))
        );
        assert_eq!(
            (pool.allocated(), pool.offered(), pool.free()),
            (Quantity(2), Quantity(1), Quantity(1))
        );
        pool.assert_invariants();
    }

    #[derive(Debug, Clone)]
    enum PoolOp {
        Allocate(u64),
        Release(usize),
        Grow(u64),
    }

    fn pool_op() -> impl proptest::strategy::Strategy<Value = PoolOp> {
        prop_oneof![
            5 => (1..70u64).prop_map(PoolOp::Allocate),
            3 => any::<usize>().prop_map(PoolOp::Release),
            1 => (0..20u64).prop_map(PoolOp::Grow),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Every strategy allocates exactly what it is asked whenever that much is
        /// free, never hands out a position twice, and never exceeds its capacity.
        #[test]
        fn pools_are_never_over_allocated(
            strategy in prop::sample::select(vec![
                Strategy::FirstFit,
                Strategy::BestFit,
                Strategy::Buddy,
                Strategy::Priority,
                Strategy::Weighted,
            ]),
            capacity in 0..150u64,
            ops in prop::collection::vec(pool_op(), 1..120),
        ) {
            let mut pool = Pool::new(strategy, Quantity(capacity));
            let mut held: Vec<(Allocation, Quantity)> = Vec::new();
            for op in ops {
                match op {
                    PoolOp::Allocate(quantity) => {
                        let free = pool.free().0;
                        match pool.allocate(Quantity(quantity), false) {
                            Some(allocation) => {
                                prop_assert!(quantity <= free);
                                if strategy.is_positional() {
                                    prop_assert_eq!(positions(&allocation).len() as u64, quantity);
                                }
                                held.push((allocation, Quantity(quantity)));
                            }
                            None => prop_assert!(quantity > free),
                        }
                    }
                    PoolOp::Release(pick) if !held.is_empty() => {
                        let (allocation, quantity) = held.swap_remove(pick % held.len());
                        pool.release(&allocation, quantity);
                    }
                    PoolOp::Release(_) => {}
                    PoolOp::Grow(more) => {
                        let capacity = pool.capacity().0 + more;
                        pool.set_capacity(Quantity(capacity));
                    }
                }
                pool.assert_invariants();
                let total: u64 = held.iter().map(|(_, quantity)| quantity.0).sum();
                prop_assert_eq!(total, pool.allocated().0);
                let mut seen = BTreeSet::new();
                for (allocation, _) in &held {
                    for position in positions(allocation) {
                        prop_assert!(position < pool.capacity().0);
                        prop_assert!(seen.insert(position), "position {} held twice", position);
                    }
                }
            }
        }
    }
}
