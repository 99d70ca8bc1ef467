//! First-fit over core indices: a lease gets the lowest-numbered run of free cores.
//!
//! A request for `n` cores takes the first run of `n` adjacent free cores (adjacent
//! cores tend to share caches). When no such run exists, it takes the `n`
//! lowest-numbered free cores, so a request never fails while enough cores are free.
//! The lease lists its cores in ascending order, ready for a cpuset.
//!
//! # Invariants
//! - `free_count` is the number of `true` entries of `free`;
//! - a core is held by at most one lease.

/// The most cores one pool may hold (keeps the free map small).
pub const MAX_CORES: u64 = 4096;

#[derive(Debug, Clone)]
pub struct FirstFitPool {
    /// `free[core]` is true while no lease holds `core`.
    free: Vec<bool>,
    free_count: u64,
}

impl FirstFitPool {
    pub fn new(cores: u64) -> FirstFitPool {
        let mut pool = FirstFitPool {
            free: Vec::new(),
            free_count: 0,
        };
        pool.grow(cores);
        pool
    }

    pub fn free_count(&self) -> u64 {
        self.free_count
    }

    /// Adds cores up to `cores` in total (never removes any).
    pub fn grow(&mut self, cores: u64) {
        let cores = cores.min(MAX_CORES) as usize;
        if cores > self.free.len() {
            self.free_count += (cores - self.free.len()) as u64;
            self.free.resize(cores, true);
        }
    }

    /// Takes `count` cores, or returns `None` (and takes nothing) if fewer are free.
    pub fn allocate(&mut self, count: u64) -> Option<Vec<u32>> {
        if count == 0 || count > self.free_count {
            return None;
        }
        let count = count as usize;
        let mut run_start = 0;
        let mut run = 0;
        let mut chosen = None;
        for (core, &free) in self.free.iter().enumerate() {
            if free {
                if run == 0 {
                    run_start = core;
                }
                run += 1;
                if run == count {
                    chosen = Some((run_start..run_start + count).collect::<Vec<_>>());
                    break;
                }
            } else {
                run = 0;
            }
        }
        let cores = chosen.unwrap_or_else(|| {
            self.free
                .iter()
                .enumerate()
                .filter(|(_, free)| **free)
                .map(|(core, _)| core)
                .take(count)
                .collect()
        });
        for &core in &cores {
            self.free[core] = false;
        }
        self.free_count -= count as u64;
        // Indices are below MAX_CORES, so they fit in a u32.
        Some(cores.into_iter().map(|core| core as u32).collect())
    }

    /// Frees `cores`. Cores that are out of range or already free are ignored.
    pub fn release(&mut self, cores: &[u32]) {
        for &core in cores {
            if let Some(free) = self.free.get_mut(core as usize)
                && !*free
            {
                *free = true;
                self.free_count += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_first_run_that_fits_then_scatters() {
        let mut pool = FirstFitPool::new(8);
        assert_eq!(pool.allocate(2), Some(vec![0, 1]));
        assert_eq!(pool.allocate(3), Some(vec![2, 3, 4]));
        pool.release(&[0, 1]);
        // The hole at 0..2 is too small for 3 cores; 5..8 is the first fit.
        assert_eq!(pool.allocate(3), Some(vec![5, 6, 7]));
        // Only cores 0 and 1 are free: a run of 2 fits exactly.
        assert_eq!(pool.allocate(2), Some(vec![0, 1]));
        assert_eq!(pool.allocate(1), None);
        pool.release(&[0, 3, 6]);
        // No run of 3: the three lowest free cores.
        assert_eq!(pool.allocate(3), Some(vec![0, 3, 6]));
        assert_eq!(pool.free_count(), 0);
    }

    #[test]
    fn refuses_more_than_free_and_changes_nothing() {
        let mut pool = FirstFitPool::new(4);
        assert_eq!(pool.allocate(5), None);
        assert_eq!(pool.allocate(0), None);
        assert_eq!(pool.free_count(), 4);
    }

    #[test]
    fn grows_without_disturbing_held_cores() {
        let mut pool = FirstFitPool::new(2);
        assert_eq!(pool.allocate(2), Some(vec![0, 1]));
        pool.grow(4);
        assert_eq!(pool.allocate(2), Some(vec![2, 3]));
    }
}
