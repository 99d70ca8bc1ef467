//! Leases: the capacity a fill grants for a while, and the sellers' pools it comes from.
//!
//! A fill becomes a [`Lease`] from `fill.tick` through `fill.tick + duration - 1`
//! (its `expires_at`, the last tick it is held). Expiry returns it to the seller's
//! pool once the clock passes that tick. Lease ids are assigned here, from 0 in
//! grant order, and are unique across all pools.
//!
//! Granting a lease touches no tree: leases sit in a window indexed by id, and each
//! resource's expiry queue is a FIFO, since leases of one resource are granted in
//! the order they expire.
//!
//! # Invariants
//! - every active lease's allocation is held in exactly its seller's pool, and a
//!   pool's `allocated` is the sum of the quantities of its active leases;
//! - no pool is ever over-allocated (see [`crate::pool`]).

use std::{
    collections::{BTreeMap, VecDeque},
    num::NonZeroU64,
};

use gamesa_proto::{AgentId, Fill, Lease, LeaseId, Quantity, Resource, Tick};

use crate::{
    Allocation, MarketError, MarketEvent, RevokeReason, Strategy,
    pool::{Claim, Pool, priority, weighted},
};

/// A lease and the part of the pool it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveLease {
    pub lease: Lease,
    pub allocation: Allocation,
}

/// Every seller's pools and every active lease.
#[derive(Debug, Default)]
pub struct Leases {
    /// Per resource (by [`Resource::index`]), per seller.
    pools: [BTreeMap<AgentId, Pool>; 7],
    /// Active leases by id: entry `i` is lease `first_id + i`, `None` once it ended.
    /// Leases end within their duration, so the window stays short; ended entries
    /// at the front are dropped at once.
    active: VecDeque<Option<ActiveLease>>,
    first_id: u64,
    count: usize,
    /// Per resource, `(expires_at, lease)` in grant order. That is expiry order: the
    /// clock never goes back and each resource's lease duration is fixed. Entries of
    /// leases that ended early are skipped when they reach the front.
    expiries: [VecDeque<(Tick, LeaseId)>; 7],
}

impl Leases {
    pub fn pool(&self, seller: AgentId, resource: Resource) -> Option<&Pool> {
        self.pools[resource.index()].get(&seller)
    }

    /// Every pool of `resource`, by seller.
    pub fn pools(&self, resource: Resource) -> impl Iterator<Item = (AgentId, &Pool)> + '_ {
        self.pools[resource.index()]
            .iter()
            .map(|(seller, pool)| (*seller, pool))
    }

    pub fn get(&self, id: LeaseId) -> Option<&ActiveLease> {
        let offset = id.0.checked_sub(self.first_id)?;
        self.active.get(usize::try_from(offset).ok()?)?.as_ref()
    }

    /// Active leases, by id.
    pub fn iter(&self) -> impl Iterator<Item = &ActiveLease> + '_ {
        self.active.iter().flatten()
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub(crate) fn pool_mut(&mut self, seller: AgentId, resource: Resource) -> Option<&mut Pool> {
        self.pools[resource.index()].get_mut(&seller)
    }

    pub(crate) fn add_pool(&mut self, seller: AgentId, resource: Resource, pool: Pool) {
        self.pools[resource.index()].insert(seller, pool);
    }

    /// Allocates the lease for `fill` from the seller's pool, for `duration` ticks
    /// (always the same for one resource). `from_offer`: the quantity was reserved
    /// by a resting ask (the seller was the maker).
    pub(crate) fn grant(
        &mut self,
        fill: &Fill,
        duration: NonZeroU64,
        from_offer: bool,
    ) -> Result<ActiveLease, MarketError> {
        let pool = self.pools[fill.resource.index()]
            .get_mut(&fill.seller)
            .ok_or(MarketError::NotASeller {
                seller: fill.seller,
                resource: fill.resource,
            })?;
        let allocation = pool.allocate(fill.quantity, from_offer).ok_or_else(|| {
            MarketError::InsufficientCapacity {
                seller: fill.seller,
                resource: fill.resource,
                requested: fill.quantity,
                free: Quantity(pool.capacity().0.saturating_sub(pool.allocated().0)),
            }
        })?;
        let id = LeaseId(self.first_id + self.active.len() as u64);
        let lease = Lease {
            id,
            resource: fill.resource,
            holder: fill.buyer,
            seller: fill.seller,
            quantity: fill.quantity,
            price: fill.price,
            start: fill.tick,
            expires_at: fill.tick.plus(duration.get() - 1),
        };
        self.expiries[fill.resource.index()].push_back((lease.expires_at, id));
        let active = ActiveLease { lease, allocation };
        self.active.push_back(Some(active.clone()));
        self.count += 1;
        Ok(active)
    }

    /// Returns every lease whose `expires_at` is before `now`, in resource order,
    /// then `(expires_at, id)` order.
    pub(crate) fn expire(&mut self, now: Tick, events: &mut Vec<MarketEvent>) {
        for resource in Resource::ALL {
            while let Some(&(expires_at, id)) = self.expiries[resource.index()].front() {
                if expires_at >= now {
                    break;
                }
                self.expiries[resource.index()].pop_front();
                if let Some(lease) = self.remove(id) {
                    events.push(MarketEvent::LeaseExpired { lease });
                }
            }
        }
    }

    pub(crate) fn revoke(
        &mut self,
        id: LeaseId,
        reason: RevokeReason,
        events: &mut Vec<MarketEvent>,
    ) -> Result<Lease, MarketError> {
        let lease = self.remove(id).ok_or(MarketError::UnknownLease(id))?;
        events.push(MarketEvent::LeaseRevoked {
            lease: lease.clone(),
            reason,
        });
        Ok(lease)
    }

    /// Revokes every lease `holder` holds, in id order.
    pub(crate) fn revoke_all_for(&mut self, holder: AgentId, events: &mut Vec<MarketEvent>) {
        let held: Vec<LeaseId> = self
            .iter()
            .filter(|active| active.lease.holder == holder)
            .map(|active| active.lease.id)
            .collect();
        for id in held {
            // Each id was just read from `active`, so the revoke cannot fail.
            let _ = self.revoke(id, RevokeReason::Isolated, events);
        }
    }

    /// After the pool's capacity dropped below what its leases hold: revokes or
    /// scales them down with the pool's strategy until they fit.
    pub(crate) fn fit_leases_to_capacity(
        &mut self,
        seller: AgentId,
        resource: Resource,
        events: &mut Vec<MarketEvent>,
    ) {
        let Some(pool) = self.pool(seller, resource) else {
            return;
        };
        let (capacity, strategy) = (pool.capacity().0, pool.strategy());
        if pool.allocated().0 <= capacity {
            return;
        }
        let claims: Vec<Claim> = self
            .iter()
            .filter(|active| active.lease.seller == seller && active.lease.resource == resource)
            .map(|active| Claim {
                lease: active.lease.id,
                price: active.lease.price,
                quantity: active.lease.quantity,
            })
            .collect();
        match strategy {
            Strategy::Weighted => {
                for (id, kept) in weighted::scaled(&claims, capacity) {
                    self.resize(id, kept, events);
                }
            }
            // Positional pools only shrink when idle, so only priority gets here;
            // any other strategy falls back to whole revocations too.
            _ => {
                for id in priority::revocations(&claims, capacity) {
                    let _ = self.revoke(id, RevokeReason::CapacityShrunk, events);
                }
            }
        }
    }

    fn get_mut(&mut self, id: LeaseId) -> Option<&mut ActiveLease> {
        let offset = id.0.checked_sub(self.first_id)?;
        self.active.get_mut(usize::try_from(offset).ok()?)?.as_mut()
    }

    /// Scales a fungible lease down to `kept` units (revokes it at zero).
    fn resize(&mut self, id: LeaseId, kept: u64, events: &mut Vec<MarketEvent>) {
        let Some(active) = self.get_mut(id) else {
            return;
        };
        let previous = active.lease.quantity;
        if kept >= previous.0 {
            return;
        }
        if kept == 0 {
            let _ = self.revoke(id, RevokeReason::CapacityShrunk, events);
            return;
        }
        active.lease.quantity = Quantity(kept);
        let lease = active.lease.clone();
        if let Some(pool) = self.pool_mut(lease.seller, lease.resource) {
            pool.release_units(Quantity(previous.0 - kept));
        }
        events.push(MarketEvent::LeaseResized {
            lease,
            previous,
            reason: RevokeReason::CapacityShrunk,
        });
    }

    /// Takes a lease out and returns its capacity to the pool.
    fn remove(&mut self, id: LeaseId) -> Option<Lease> {
        let offset = usize::try_from(id.0.checked_sub(self.first_id)?).ok()?;
        let ActiveLease { lease, allocation } = self.active.get_mut(offset)?.take()?;
        self.count -= 1;
        while let Some(None) = self.active.front() {
            self.active.pop_front();
            self.first_id += 1;
        }
        if let Some(pool) = self.pool_mut(lease.seller, lease.resource) {
            pool.release(&allocation, lease.quantity);
        }
        Some(lease)
    }

    /// Checks that pools and leases agree; used by the tests.
    #[cfg(test)]
    pub(crate) fn assert_invariants(&self) {
        for (resource, pools) in Resource::ALL.iter().zip(&self.pools) {
            for (seller, pool) in pools {
                pool.assert_invariants();
                let held: u64 = self
                    .iter()
                    .filter(|active| {
                        (active.lease.seller, active.lease.resource) == (*seller, *resource)
                    })
                    .map(|active| active.lease.quantity.0)
                    .sum();
                assert_eq!(held, pool.allocated().0);
            }
        }
        assert_eq!(self.iter().count(), self.count);
        for (offset, active) in self.active.iter().enumerate() {
            if let Some(active) = active {
                assert_eq!(active.lease.id.0, self.first_id + offset as u64);
                let queue = &self.expiries[active.lease.resource.index()];
                assert!(queue.contains(&(active.lease.expires_at, active.lease.id)));
            }
        }
        for queue in &self.expiries {
            assert!(queue.iter().zip(queue.iter().skip(1)).all(|(a, b)| a <= b));
        }
    }
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{OrderRequest, Price, Side};

    use super::*;
    use crate::{CancelReason, Exchange, MarketConfig};

    const SELLER: AgentId = AgentId(1);

    fn lease_ticks(ticks: u64) -> Exchange {
        Exchange::new(MarketConfig::new(NonZeroU64::new(ticks).unwrap()))
    }

    /// Sells `quantity` of `resource` from SELLER to `buyer` at `price`; returns the
    /// lease id.
    fn sell(
        exchange: &mut Exchange,
        resource: Resource,
        buyer: u32,
        price: u64,
        quantity: u64,
    ) -> LeaseId {
        let mut events = Vec::new();
        let quantity = gamesa_proto::Quantity(quantity);
        for (owner, side) in [(SELLER, Side::Ask), (AgentId(buyer), Side::Bid)] {
            let request = OrderRequest::limit(owner, resource, side, Price(price), quantity, None);
            exchange.place(0, request, &mut events).unwrap();
        }
        exchange.assert_invariants();
        events
            .iter()
            .find_map(|event| match event {
                MarketEvent::Filled {
                    lease: Ok(grant), ..
                } => Some(grant.lease.id),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn an_expired_lease_returns_its_capacity() {
        let mut exchange = lease_ticks(3);
        let mut events = Vec::new();
        exchange.advance_to(Tick(10), &mut events).unwrap();
        exchange
            .set_capacity(SELLER, Resource::CpuCores, Quantity(4), &mut events)
            .unwrap();
        let id = sell(&mut exchange, Resource::CpuCores, 2, 5, 3);
        let lease = exchange.leases().get(id).unwrap().lease.clone();
        assert_eq!((lease.start, lease.expires_at), (Tick(10), Tick(12)));
        let pool = |exchange: &Exchange| exchange.pool(SELLER, Resource::CpuCores).unwrap().free();
        assert_eq!(pool(&exchange), Quantity(1));
        // Held through tick 12 ...
        exchange.advance_to(Tick(12), &mut events).unwrap();
        assert!(events.is_empty());
        assert_eq!(pool(&exchange), Quantity(1));
        // ... and back in the pool at 13.
        exchange.advance_to(Tick(13), &mut events).unwrap();
        assert_eq!(events, vec![MarketEvent::LeaseExpired { lease }]);
        assert_eq!(pool(&exchange), Quantity(4));
        assert!(exchange.leases().is_empty());
        exchange.assert_invariants();
    }

    #[test]
    fn shrinking_headroom_revokes_the_cheapest_newest_leases() {
        let mut exchange = lease_ticks(100);
        let mut events = Vec::new();
        let thermal = Resource::ThermalHeadroomMc;
        exchange
            .set_capacity(SELLER, thermal, Quantity(1000), &mut events)
            .unwrap();
        let a = sell(&mut exchange, thermal, 2, 5, 400);
        let b = sell(&mut exchange, thermal, 3, 3, 300);
        let c = sell(&mut exchange, thermal, 4, 3, 200);
        // An unsold offer of the last 100 goes before any lease does.
        let mut placed = Vec::new();
        let offer = OrderRequest::limit(SELLER, thermal, Side::Ask, Price(9), Quantity(100), None);
        let offer = exchange.place(0, offer, &mut placed).unwrap();

        exchange
            .set_capacity(SELLER, thermal, Quantity(600), &mut events)
            .unwrap();
        let summary: Vec<String> = events
            .iter()
            .map(|event| match event {
                MarketEvent::Cancelled(cancelled) => {
                    format!("cancel {} {:?}", cancelled.order, cancelled.reason)
                }
                MarketEvent::LeaseRevoked { lease, reason } => {
                    format!("revoke {} {:?}", lease.id, reason)
                }
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                format!("cancel {offer} {:?}", CancelReason::CapacityShrunk),
                format!("revoke {c} CapacityShrunk"),
                format!("revoke {b} CapacityShrunk"),
            ]
        );
        assert!(exchange.leases().get(a).is_some());
        let pool = exchange.pool(SELLER, thermal).unwrap();
        assert_eq!(
            (pool.allocated(), pool.offered()),
            (Quantity(400), Quantity(0))
        );
        exchange.assert_invariants();
    }

    #[test]
    fn a_power_cap_drop_scales_leases_by_weight() {
        let mut exchange = lease_ticks(100);
        let mut events = Vec::new();
        let power = Resource::PowerBudgetMw;
        exchange
            .set_capacity(SELLER, power, Quantity(1000), &mut events)
            .unwrap();
        let cheap = sell(&mut exchange, power, 2, 1, 500);
        let dear = sell(&mut exchange, power, 3, 4, 500);
        // Weights 500 and 2000: 600 mW shared 120 / 480.
        exchange
            .set_capacity(SELLER, power, Quantity(600), &mut events)
            .unwrap();
        let resized: Vec<(LeaseId, Quantity, Quantity)> = events
            .iter()
            .filter_map(|event| match event {
                MarketEvent::LeaseResized {
                    lease, previous, ..
                } => Some((lease.id, *previous, lease.quantity)),
                _ => None,
            })
            .collect();
        assert_eq!(
            resized,
            vec![
                (cheap, Quantity(500), Quantity(120)),
                (dear, Quantity(500), Quantity(480))
            ]
        );
        assert_eq!(
            exchange.pool(SELLER, power).unwrap().allocated(),
            Quantity(600)
        );
        exchange.assert_invariants();
        // Down to 0: every lease is revoked.
        events.clear();
        exchange
            .set_capacity(SELLER, power, Quantity(0), &mut events)
            .unwrap();
        assert_eq!(events.len(), 2);
        assert!(exchange.leases().is_empty());
        exchange.assert_invariants();
    }
}
