//! The average of the last few readings of one sensor, for agents that judge a level
//! over a window rather than on each noisy reading (a power cap metered over a second, a
//! temperature that reports whole degrees).
//!
//! # Invariants
//! - at most `window` readings are kept, the newest last;
//! - `push` returns the integer mean (rounded toward zero) of what is kept, which
//!   includes the reading just pushed.

use std::collections::VecDeque;

/// The last `window` readings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MovingAverage {
    recent: VecDeque<i64>,
}

impl MovingAverage {
    /// Takes in a reading and returns the average of the last `window` (at least one).
    pub fn push(&mut self, reading: i64, window: u32) -> i64 {
        let window = window.max(1) as usize;
        while self.recent.len() >= window {
            self.recent.pop_front();
        }
        self.recent.push_back(reading);
        let sum: i128 = self.recent.iter().map(|&value| i128::from(value)).sum();
        // Never empty (a reading was just pushed), and a mean of i64s fits an i64.
        (sum / self.recent.len() as i128) as i64
    }

    /// Forgets every reading, so that an average never spans a gap.
    pub fn clear(&mut self) {
        self.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_covers_the_last_window_readings() {
        let mut average = MovingAverage::default();
        assert_eq!(average.push(10, 3), 10);
        assert_eq!(average.push(20, 3), 15);
        assert_eq!(average.push(30, 3), 20);
        assert_eq!(average.push(40, 3), 30);
        // A narrower window drops the oldest at once; 0 counts as 1.
        assert_eq!(average.push(50, 1), 50);
        assert_eq!(average.push(-7, 0), -7);
        average.clear();
        assert_eq!(average.push(i64::MAX, 2), i64::MAX);
        assert_eq!(average.push(i64::MAX, 2), i64::MAX);
    }
}
