//! Open-addressing map from an order id to its slot in a book's slab.
//!
//! Linear probing with Fibonacci hashing (the high bits of `id × 2^64/φ`), at most
//! half full, and backward-shift deletion: removing an entry moves later entries of
//! its probe run back, so the table never fills with tombstones however long orders
//! churn. A general-purpose map (hashbrown) degrades under exactly that churn: its
//! tombstones force periodic in-place rehashes. Ids come from the exchange, never
//! from a client, so there is no hash-flooding input to defend against.
//!
//! # Invariants
//! - every entry is reachable from its home bucket by a run with no empty bucket;
//! - at most half of the buckets are full.

/// Marks an empty bucket.
const EMPTY: u32 = u32::MAX;
const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;
const MIN_BUCKETS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Entry {
    id: u64,
    slot: u32,
}

const VACANT: Entry = Entry { id: 0, slot: EMPTY };

#[derive(Debug, Clone)]
pub(crate) struct OrderIndex {
    entries: Vec<Entry>,
    len: usize,
    /// `64 - log2(entries.len())`: the home bucket is the product's top bits.
    shift: u32,
}

impl OrderIndex {
    /// A map that holds `orders` entries before it grows.
    pub(crate) fn with_capacity(orders: usize) -> OrderIndex {
        let buckets = (orders.saturating_mul(2))
            .next_power_of_two()
            .max(MIN_BUCKETS);
        OrderIndex {
            entries: vec![VACANT; buckets],
            len: 0,
            shift: 64 - buckets.trailing_zeros(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    #[inline]
    fn home(&self, id: u64) -> usize {
        (id.wrapping_mul(FIBONACCI) >> self.shift) as usize
    }

    /// The bucket holding `id`.
    #[inline]
    fn find(&self, id: u64) -> Option<usize> {
        let mask = self.mask();
        let mut at = self.home(id);
        loop {
            let entry = self.entries[at];
            if entry.slot == EMPTY {
                return None;
            }
            if entry.id == id {
                return Some(at);
            }
            at = (at + 1) & mask;
        }
    }

    #[inline]
    pub(crate) fn get(&self, id: u64) -> Option<u32> {
        self.find(id).map(|at| self.entries[at].slot)
    }

    /// Maps `id` to `slot`. The caller never inserts an id twice (book ids strictly
    /// increase).
    #[inline]
    pub(crate) fn insert(&mut self, id: u64, slot: u32) {
        if (self.len + 1) * 2 > self.entries.len() {
            self.grow();
        }
        let mask = self.mask();
        let mut at = self.home(id);
        while self.entries[at].slot != EMPTY {
            at = (at + 1) & mask;
        }
        self.entries[at] = Entry { id, slot };
        self.len += 1;
    }

    #[inline]
    pub(crate) fn remove(&mut self, id: u64) -> Option<u32> {
        let at = self.find(id)?;
        Some(self.remove_at(at))
    }

    /// Removes `id` if `keep(slot)` is false; returns the slot either way.
    #[inline]
    pub(crate) fn remove_unless(
        &mut self,
        id: u64,
        keep: impl FnOnce(u32) -> bool,
    ) -> Option<Result<u32, u32>> {
        let at = self.find(id)?;
        let slot = self.entries[at].slot;
        if keep(slot) {
            return Some(Err(slot));
        }
        Some(Ok(self.remove_at(at)))
    }

    /// Empties bucket `hole`, shifting back the entries after it that may move.
    fn remove_at(&mut self, mut hole: usize) -> u32 {
        let slot = self.entries[hole].slot;
        let mask = self.mask();
        let mut next = hole;
        loop {
            next = (next + 1) & mask;
            let entry = self.entries[next];
            if entry.slot == EMPTY {
                break;
            }
            let home = self.home(entry.id);
            // `entry` must stay if its home lies in the cyclic range (hole, next].
            let stays = if hole <= next {
                hole < home && home <= next
            } else {
                hole < home || home <= next
            };
            if !stays {
                self.entries[hole] = entry;
                hole = next;
            }
        }
        self.entries[hole] = VACANT;
        self.len -= 1;
        slot
    }

    fn grow(&mut self) {
        let buckets = self.entries.len() * 2;
        let old = std::mem::replace(&mut self.entries, vec![VACANT; buckets]);
        self.shift -= 1;
        self.len = 0;
        for entry in old.into_iter().filter(|entry| entry.slot != EMPTY) {
            self.insert(entry.id, entry.slot);
        }
    }

    /// Every slot in the map, in bucket order.
    pub(crate) fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries
            .iter()
            .filter(|entry| entry.slot != EMPTY)
            .map(|entry| entry.slot)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Behaves like a `BTreeMap` through any mix of inserts and removals.
        #[test]
        fn behaves_like_a_map(ops in prop::collection::vec((any::<bool>(), 0..64u64), 1..400)) {
            let mut index = OrderIndex::with_capacity(0);
            let mut model = BTreeMap::new();
            let mut next_id = 0;
            for (insert, pick) in ops {
                if insert {
                    // Ids spaced like a book's share of a global sequence.
                    next_id += 1 + pick % 7;
                    index.insert(next_id, next_id as u32);
                    model.insert(next_id, next_id as u32);
                } else {
                    let id = next_id.saturating_sub(pick);
                    prop_assert_eq!(index.remove(id), model.remove(&id));
                }
                prop_assert_eq!(index.len(), model.len());
                for (&id, &slot) in &model {
                    prop_assert_eq!(index.get(id), Some(slot));
                }
                prop_assert!(index.len() * 2 <= index.entries.len());
            }
        }
    }

    #[test]
    fn remove_unless_keeps_what_it_is_told_to() {
        let mut index = OrderIndex::with_capacity(4);
        index.insert(7, 1);
        assert_eq!(index.remove_unless(7, |slot| slot == 1), Some(Err(1)));
        assert_eq!(index.get(7), Some(1));
        assert_eq!(index.remove_unless(7, |_| false), Some(Ok(1)));
        assert_eq!(index.remove_unless(7, |_| false), None);
        assert!(index.is_empty());
    }
}
