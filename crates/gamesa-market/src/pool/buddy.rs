//! Buddy allocator: a lease is made of power-of-two blocks, split and merged in pairs.
//!
//! The range `[0, capacity)` (megabytes, for `gpu_memory_mb`) starts as the largest
//! aligned power-of-two blocks that tile it. A request for `n` units is split into
//! the powers of two of `n`'s binary form, largest first (300 = 256 + 32 + 8 + 4), so
//! a lease holds exactly what it paid for, with no rounding waste. Each part takes
//! the lowest-addressed free block of the smallest order that fits, splitting larger
//! blocks in halves ("buddies") on the way down. A part with no block large enough is
//! split into two halves of the next order, so a request never fails while enough
//! units are free. On release, a block merges with its buddy while the buddy is free.
//!
//! # Invariants
//! - every free block of order `k` starts at a multiple of `2^k`, lies inside
//!   `[0, capacity)`, and no two free blocks overlap;
//! - two free buddies of the same order never coexist (they are always merged);
//! - `free_total` is the sum of the sizes of the free blocks.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// `2^order` units starting at `offset` (a multiple of `2^order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BuddyBlock {
    pub offset: u64,
    pub order: u8,
}

impl BuddyBlock {
    /// `2^order` units (saturating, for an order no pool ever hands out).
    pub fn len(&self) -> u64 {
        1u64.checked_shl(u32::from(self.order)).unwrap_or(u64::MAX)
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Orders 0 to 63 cover any `u64` capacity.
const ORDERS: usize = 64;

#[derive(Debug, Clone)]
pub struct BuddyPool {
    /// `free[k]`: offsets of the free blocks of order `k`.
    free: Vec<BTreeSet<u64>>,
    free_total: u64,
    capacity: u64,
}

impl BuddyPool {
    pub fn new(capacity: u64) -> BuddyPool {
        let mut pool = BuddyPool {
            free: vec![BTreeSet::new(); ORDERS],
            free_total: 0,
            capacity: 0,
        };
        pool.grow(capacity);
        pool
    }

    pub fn free_total(&self) -> u64 {
        self.free_total
    }

    /// Free blocks, by order then offset.
    pub fn free_blocks(&self) -> impl Iterator<Item = BuddyBlock> + '_ {
        self.free.iter().enumerate().flat_map(|(order, offsets)| {
            offsets.iter().map(move |&offset| BuddyBlock {
                offset,
                order: order as u8,
            })
        })
    }

    /// Extends the range to `[0, capacity)` with the largest aligned blocks that tile
    /// the new part; they merge with free buddies (never shrinks the range).
    pub fn grow(&mut self, capacity: u64) {
        let mut offset = self.capacity;
        while offset < capacity {
            let alignment = if offset == 0 {
                63
            } else {
                offset.trailing_zeros()
            };
            let fits = 63 - (capacity - offset).leading_zeros();
            let order = alignment.min(fits) as u8;
            self.insert_merging(BuddyBlock { offset, order });
            offset += 1 << order;
        }
        self.capacity = self.capacity.max(capacity);
    }

    /// Takes `units`, or returns `None` (and takes nothing) if fewer are free.
    pub fn allocate(&mut self, units: u64) -> Option<Vec<BuddyBlock>> {
        if units == 0 || units > self.free_total {
            return None;
        }
        // Parts to place, popped from the end: the largest power of two first.
        let mut parts: Vec<u8> = (0..64u8).filter(|bit| units & (1 << bit) != 0).collect();
        let mut taken = Vec::with_capacity(parts.len());
        while let Some(order) = parts.pop() {
            match self.take(order) {
                Some(block) => taken.push(block),
                None if order > 0 => {
                    parts.push(order - 1);
                    parts.push(order - 1);
                }
                None => {
                    // Unreachable while `units <= free_total`; undo rather than leak.
                    self.release(&taken);
                    return None;
                }
            }
        }
        Some(taken)
    }

    /// Takes the lowest free block of the smallest order `>= order`, split down.
    fn take(&mut self, order: u8) -> Option<BuddyBlock> {
        let from = (order as usize..ORDERS).find(|&k| !self.free[k].is_empty())?;
        let offset = self.free[from].pop_first()?;
        for k in (order as usize..from).rev() {
            self.free[k].insert(offset + (1 << k));
        }
        self.free_total -= 1 << order;
        Some(BuddyBlock { offset, order })
    }

    /// Frees `blocks`, merging each with its buddy while the buddy is free.
    pub fn release(&mut self, blocks: &[BuddyBlock]) {
        for &block in blocks {
            if (block.order as usize) < ORDERS
                && block.offset % block.len() == 0
                && block.offset.saturating_add(block.len()) <= self.capacity
            {
                self.insert_merging(block);
            }
        }
    }

    fn insert_merging(&mut self, block: BuddyBlock) {
        self.free_total += block.len();
        let BuddyBlock {
            mut offset,
            mut order,
        } = block;
        while (order as usize) < ORDERS - 1 {
            let buddy = offset ^ (1 << order);
            if !self.free[order as usize].remove(&buddy) {
                break;
            }
            offset = offset.min(buddy);
            order += 1;
        }
        self.free[order as usize].insert(offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(offset: u64, order: u8) -> BuddyBlock {
        BuddyBlock { offset, order }
    }

    #[test]
    fn tiles_a_capacity_that_is_not_a_power_of_two() {
        let pool = BuddyPool::new(24);
        assert_eq!(
            pool.free_blocks().collect::<Vec<_>>(),
            vec![block(16, 3), block(0, 4)]
        );
        assert_eq!(pool.free_total(), 24);
    }

    #[test]
    fn splits_into_binary_parts_and_merges_back() {
        let mut pool = BuddyPool::new(16);
        // 5 = 4 + 1: the 16 block splits into 8+8, 8 into 4+4, then a 4 block
        // is split down to a unit.
        let lease = pool.allocate(5).unwrap();
        assert_eq!(lease, vec![block(0, 2), block(4, 0)]);
        assert_eq!(pool.free_total(), 11);
        assert_eq!(
            pool.free_blocks().collect::<Vec<_>>(),
            vec![block(5, 0), block(6, 1), block(8, 3)]
        );
        let second = pool.allocate(2).unwrap();
        assert_eq!(second, vec![block(6, 1)]);
        pool.release(&lease);
        pool.release(&second);
        assert_eq!(pool.free_blocks().collect::<Vec<_>>(), vec![block(0, 4)]);
    }

    #[test]
    fn fragmented_pool_still_serves_what_is_free() {
        let mut pool = BuddyPool::new(8);
        let units: Vec<_> = (0..8).map(|_| pool.allocate(1).unwrap()).collect();
        // Free every other unit: 4 free units, no block larger than one.
        for unit in units.iter().step_by(2) {
            pool.release(unit);
        }
        assert_eq!(
            pool.allocate(3),
            Some(vec![block(0, 0), block(2, 0), block(4, 0)])
        );
        assert_eq!(pool.allocate(2), None);
        assert_eq!(pool.free_total(), 1);
    }
}
