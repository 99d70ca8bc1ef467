//! Best-fit over free segments: a lease takes the smallest free segment that holds it.
//!
//! The pool is a range `[0, capacity)` (for `cpu_time_us`, the microseconds of one
//! period). A request takes the front of the smallest free segment at least as long
//! as the request (the lowest start wins a tie), which keeps long segments whole for
//! long requests. When no single segment is long enough, the request is assembled
//! from the longest segments first, so it never fails while enough units are free.
//! Released segments merge with free neighbours.
//!
//! # Invariants
//! - free segments are disjoint, non-empty and never adjacent (always merged);
//! - free segments and held segments together cover `[0, capacity)` exactly once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `len` units starting at `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Segment {
    pub start: u64,
    pub len: u64,
}

#[derive(Debug, Clone)]
pub struct BestFitPool {
    /// Free segments: start → length.
    free: BTreeMap<u64, u64>,
    free_total: u64,
    capacity: u64,
}

impl BestFitPool {
    pub fn new(capacity: u64) -> BestFitPool {
        let mut pool = BestFitPool {
            free: BTreeMap::new(),
            free_total: 0,
            capacity: 0,
        };
        pool.grow(capacity);
        pool
    }

    pub fn free_total(&self) -> u64 {
        self.free_total
    }

    /// Free segments, by start.
    pub fn free_segments(&self) -> impl Iterator<Item = Segment> + '_ {
        self.free
            .iter()
            .map(|(&start, &len)| Segment { start, len })
    }

    /// Extends the range to `[0, capacity)` (never shrinks it).
    pub fn grow(&mut self, capacity: u64) {
        if capacity > self.capacity {
            let added = Segment {
                start: self.capacity,
                len: capacity - self.capacity,
            };
            self.capacity = capacity;
            self.release(&[added]);
        }
    }

    /// Takes `units`, or returns `None` (and takes nothing) if fewer are free.
    pub fn allocate(&mut self, units: u64) -> Option<Vec<Segment>> {
        if units == 0 || units > self.free_total {
            return None;
        }
        let best = self
            .free
            .iter()
            .filter(|(_, len)| **len >= units)
            .min_by_key(|(start, len)| (**len, **start))
            .map(|(&start, _)| start);
        let taken = match best {
            Some(start) => vec![self.take_front(start, units)],
            None => {
                let mut by_length: Vec<Segment> = self.free_segments().collect();
                by_length.sort_by_key(|segment| (std::cmp::Reverse(segment.len), segment.start));
                let mut needed = units;
                let mut taken = Vec::new();
                for segment in by_length {
                    if needed == 0 {
                        break;
                    }
                    let len = segment.len.min(needed);
                    taken.push(self.take_front(segment.start, len));
                    needed -= len;
                }
                taken
            }
        };
        Some(taken)
    }

    /// Takes the first `len` units of the free segment starting at `start`.
    fn take_front(&mut self, start: u64, len: u64) -> Segment {
        if let Some(segment_len) = self.free.remove(&start) {
            if segment_len > len {
                self.free.insert(start + len, segment_len - len);
            }
            self.free_total -= len.min(segment_len);
        }
        Segment { start, len }
    }

    /// Frees `segments`, merging each with free neighbours. Segments outside the
    /// range are clipped; the caller only passes segments it was given.
    pub fn release(&mut self, segments: &[Segment]) {
        for segment in segments {
            let mut start = segment.start.min(self.capacity);
            let mut end = segment.start.saturating_add(segment.len).min(self.capacity);
            if end <= start {
                continue;
            }
            self.free_total += end - start;
            if let Some((&before, &before_len)) = self.free.range(..start).next_back()
                && before + before_len == start
            {
                self.free.remove(&before);
                start = before;
            }
            if let Some(after_len) = self.free.remove(&end) {
                end += after_len;
            }
            self.free.insert(start, end - start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(start: u64, len: u64) -> Segment {
        Segment { start, len }
    }

    #[test]
    fn picks_the_smallest_segment_that_fits() {
        let mut pool = BestFitPool::new(100);
        assert_eq!(pool.allocate(10), Some(vec![segment(0, 10)]));
        assert_eq!(pool.allocate(30), Some(vec![segment(10, 30)]));
        assert_eq!(pool.allocate(5), Some(vec![segment(40, 5)]));
        assert_eq!(pool.allocate(20), Some(vec![segment(45, 20)]));
        // Free now: [65, 100). Release [0,10) and [40,45): holes of 10 and 5.
        pool.release(&[segment(0, 10), segment(40, 5)]);
        // 4 units: the 5-unit hole is the best fit, not the first (0..10) one.
        assert_eq!(pool.allocate(4), Some(vec![segment(40, 4)]));
        // 8 units: 0..10 beats 65..100.
        assert_eq!(pool.allocate(8), Some(vec![segment(0, 8)]));
        assert_eq!(pool.free_total(), 100 - 10 - 30 - 5 - 20 + 10 + 5 - 4 - 8);
    }

    #[test]
    fn assembles_from_the_longest_segments_when_none_fits() {
        let mut pool = BestFitPool::new(10);
        let a = pool.allocate(3).unwrap(); // 0..3
        let _b = pool.allocate(2).unwrap(); // 3..5
        let c = pool.allocate(1).unwrap(); // 5..6
        let _d = pool.allocate(4).unwrap(); // 6..10
        pool.release(&a);
        pool.release(&c);
        // Free: 0..3 and 5..6. No segment holds 4: take 0..3 then 5..6.
        assert_eq!(pool.allocate(4), Some(vec![segment(0, 3), segment(5, 1)]));
        assert_eq!(pool.free_total(), 0);
        assert_eq!(pool.allocate(1), None);
    }

    #[test]
    fn release_merges_neighbours() {
        let mut pool = BestFitPool::new(9);
        let parts: Vec<_> = (0..3).map(|_| pool.allocate(3).unwrap()).collect();
        pool.release(&parts[0]);
        pool.release(&parts[2]);
        pool.release(&parts[1]);
        assert_eq!(
            pool.free_segments().collect::<Vec<_>>(),
            vec![segment(0, 9)]
        );
    }
}
