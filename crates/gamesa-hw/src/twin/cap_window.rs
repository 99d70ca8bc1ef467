//! The node's over-cap rule: a step is over the cap when the 1 s moving average of the
//! total draw exceeds the 1 s moving average of the cap by more than 1 %.
//!
//! # Invariants
//! - the window holds `max(1, round(1000 / step_ms))` steps once full; before that, the
//!   averages are over the steps seen so far;
//! - the running sums are recomputed from the window every time it wraps, so rounding
//!   never accumulates over a long run.

/// How far the averaged draw may exceed the averaged cap before a step counts as over.
pub const OVER_CAP_TOLERANCE: f64 = 0.01;

/// The 1 s moving averages of total draw and cap.
#[derive(Debug, Clone, PartialEq)]
pub struct CapWindow {
    power_w: Vec<f64>,
    cap_w: Vec<f64>,
    capacity: usize,
    next: usize,
    power_sum_w: f64,
    cap_sum_w: f64,
}

/// The averages after one step, and whether that step was over the cap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapCheck {
    pub average_power_w: f64,
    pub average_cap_w: f64,
    /// `average_power_w > average_cap_w · (1 + OVER_CAP_TOLERANCE)`.
    pub over: bool,
}

impl CapCheck {
    /// How far the averaged draw is above the averaged cap, in watts (0 when below).
    pub fn overshoot_w(&self) -> f64 {
        (self.average_power_w - self.average_cap_w).max(0.0)
    }
}

impl CapWindow {
    /// A window covering one second of steps of `step_ms` (at least one step).
    pub fn new(step_ms: u64) -> CapWindow {
        let capacity = ((1000.0 / step_ms.max(1) as f64).round() as usize).max(1);
        CapWindow {
            power_w: Vec::with_capacity(capacity),
            cap_w: Vec::with_capacity(capacity),
            capacity,
            next: 0,
            power_sum_w: 0.0,
            cap_sum_w: 0.0,
        }
    }

    /// The number of steps averaged once the window is full.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds one step's total draw and cap, and checks the rule.
    pub fn push(&mut self, power_w: f64, cap_w: f64) -> CapCheck {
        if self.power_w.len() < self.capacity {
            self.power_w.push(power_w);
            self.cap_w.push(cap_w);
            self.power_sum_w += power_w;
            self.cap_sum_w += cap_w;
        } else {
            self.power_sum_w += power_w - self.power_w[self.next];
            self.cap_sum_w += cap_w - self.cap_w[self.next];
            self.power_w[self.next] = power_w;
            self.cap_w[self.next] = cap_w;
        }
        self.next = (self.next + 1) % self.capacity;
        if self.next == 0 {
            self.power_sum_w = self.power_w.iter().sum();
            self.cap_sum_w = self.cap_w.iter().sum();
        }
        let count = self.power_w.len() as f64;
        let average_power_w = self.power_sum_w / count;
        let average_cap_w = self.cap_sum_w / count;
        CapCheck {
            average_power_w,
            average_cap_w,
            over: average_power_w > average_cap_w * (1.0 + OVER_CAP_TOLERANCE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_one_second_of_steps() {
        assert_eq!(CapWindow::new(100).capacity(), 10);
        assert_eq!(CapWindow::new(1).capacity(), 1000);
        assert_eq!(CapWindow::new(300).capacity(), 3);
        assert_eq!(CapWindow::new(5_000).capacity(), 1);
    }

    #[test]
    fn a_short_spike_is_averaged_away_but_a_sustained_one_is_not() {
        let mut window = CapWindow::new(100);
        // Nine steps at 400 W under a 500 W cap, then one at 550 W: the average is
        // (9 · 400 + 550) / 10 = 415 W, under the cap although one step exceeded it.
        for _ in 0..9 {
            assert!(!window.push(400.0, 500.0).over);
        }
        let check = window.push(550.0, 500.0);
        assert_eq!(check.average_power_w, 415.0);
        assert!(!check.over);
        assert_eq!(check.overshoot_w(), 0.0);
        // Ten steps at 550 W: the average reaches 550 W, 10 % over the cap.
        let mut last = check;
        for _ in 0..10 {
            last = window.push(550.0, 500.0);
        }
        assert!(last.over);
        assert_eq!(last.overshoot_w(), 50.0);
    }

    #[test]
    fn within_one_percent_is_not_over() {
        let mut window = CapWindow::new(100);
        let mut check = window.push(0.0, 0.0);
        for _ in 0..10 {
            check = window.push(504.0, 500.0); // 0.8 % over
        }
        assert!(!check.over);
        assert_eq!(check.overshoot_w(), 4.0);
        for _ in 0..10 {
            check = window.push(506.0, 500.0); // 1.2 % over
        }
        assert!(check.over);
    }

    #[test]
    fn the_cap_is_averaged_too() {
        // A cap dropping from 500 W to 350 W under a steady 450 W draw: the averaged cap
        // falls over one second, so the draw counts as over only once the averaged cap
        // is below 450 / 1.01 = 445.5 W, i.e. after 4 steps of the lower cap
        // ((6 · 500 + 4 · 350) / 10 = 440 W), not after the first.
        let mut window = CapWindow::new(100);
        for _ in 0..10 {
            assert!(!window.push(450.0, 500.0).over);
        }
        let flags: Vec<bool> = (0..4).map(|_| window.push(450.0, 350.0).over).collect();
        assert_eq!(flags, [false, false, false, true]);
    }
}
