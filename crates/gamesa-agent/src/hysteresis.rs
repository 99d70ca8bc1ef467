//! Hysteresis latches and the signals they keep raised: a condition starts when a reading
//! reaches its threshold and ends only once the reading falls `hysteresis` below it, so
//! a reading hovering at the threshold does not make the signal flap.
//!
//! A latched signal is raised again every tick with a short ttl. The signal queue
//! replaces a live signal of the same kind and source, so refreshing costs nothing, and
//! a signal that is no longer refreshed lapses after its ttl.

use gamesa_proto::{Domain, SignalKind, Strength};

use crate::{Intent, SignalIntent};

/// The weakest strength a raised signal carries: a latched condition is never reported
/// as "not at all", even inside the hysteresis band.
pub const MIN_STRENGTH_PERMILLE: u16 = 100;

/// One hysteresis latch: whether its condition currently holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latch {
    active: bool,
}

impl Latch {
    /// Feeds one reading: the latch sets at `reading >= enter` and clears only at
    /// `reading < enter − hysteresis`. Returns whether it is set.
    pub fn update(&mut self, reading: i64, enter: i64, hysteresis: i64) -> bool {
        if self.active {
            if reading < enter.saturating_sub(hysteresis) {
                self.active = false;
            }
        } else if reading >= enter {
            self.active = true;
        }
        self.active
    }
}

/// A signal intent for a latched condition, its strength rounded and clamped into
/// `[MIN_STRENGTH_PERMILLE, 1000]` (a strength that is not a number is the strongest);
/// `None` when `kind` is not a valid signal name (a zone id that sanitizing could not
/// save): a bad name is dropped, never a panic.
pub fn raise(kind: &str, domain: Domain, strength_permille: f64, ttl_ticks: u32) -> Option<Intent> {
    let kind = SignalKind::new(kind).ok()?;
    let permille = if strength_permille.is_finite() {
        // Clamped into 100..=1000 first, so the cast cannot truncate.
        strength_permille
            .round()
            .clamp(f64::from(MIN_STRENGTH_PERMILLE), 1000.0) as u16
    } else {
        1000
    };
    let strength = Strength::from_permille(permille).ok()?;
    Some(Intent::Raise(SignalIntent {
        kind,
        domain,
        strength,
        ttl_ticks,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latch_enters_at_the_threshold_and_leaves_below_the_band() {
        let mut latch = Latch::default();
        let readings = [50, 79, 80, 75, 70, 69, 75, 80];
        let states: Vec<bool> = readings
            .iter()
            .map(|&reading| latch.update(reading, 80, 10))
            .collect();
        assert_eq!(states, [false, false, true, true, true, false, false, true]);
    }

    #[test]
    fn raise_clamps_strength_and_rejects_bad_kinds() {
        let Some(Intent::Raise(signal)) = raise("thermal_warning.gpu0", Domain::Thermal, 3.0, 3)
        else {
            panic!("no signal");
        };
        assert_eq!(signal.strength.permille(), MIN_STRENGTH_PERMILLE);
        let Some(Intent::Raise(signal)) = raise("x", Domain::Thermal, f64::NAN, 3) else {
            panic!("no signal");
        };
        assert_eq!(signal.strength, Strength::MAX);
        assert_eq!(raise("Bad Kind", Domain::Thermal, 500.0, 3), None);
    }
}
