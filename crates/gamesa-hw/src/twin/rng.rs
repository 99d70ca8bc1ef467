//! The twin's random streams: each one a ChaCha8 generator seeded from the scenario's
//! `seed` and a stream number saying what it is for, never from the OS, so the same
//! scenario always draws the same numbers.
//!
//! # Invariants
//! - two different [`Stream`]s never share a stream number, so drawing more from one
//!   (a noisier sensor, a longer random phase) never changes what another draws.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a generator is for. Its number is the ChaCha stream under the scenario's seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    /// The temperature noise of component `index` (scenario order).
    TempNoise(usize),
    /// The power noise of component `index` (scenario order).
    PowerNoise(usize),
    /// The draws of `[[phases]]` entry `index` (file order), when it is random.
    RandomPhase(usize),
}

impl Stream {
    fn number(self) -> u64 {
        // The kind in the high 32 bits, the index in the low ones; indices past 2^32
        // cannot occur (a scenario that large does not fit in memory).
        match self {
            Stream::TempNoise(index) => (1 << 32) | (index as u64 & 0xffff_ffff),
            Stream::PowerNoise(index) => (2 << 32) | (index as u64 & 0xffff_ffff),
            Stream::RandomPhase(index) => (3 << 32) | (index as u64 & 0xffff_ffff),
        }
    }
}

/// The generator for `stream` under the scenario's `seed`.
pub(super) fn rng_for(seed: u64, stream: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream.number());
    rng
}

/// A value drawn uniformly from `[low, high]` (`low` when the range is empty).
pub(super) fn uniform(rng: &mut ChaCha8Rng, low: f64, high: f64) -> f64 {
    if high > low {
        rng.random_range(low..=high)
    } else {
        low
    }
}

#[cfg(test)]
mod tests {
    use rand::RngCore;

    use super::*;

    #[test]
    fn a_stream_is_reproducible_and_streams_differ() {
        let draw = |seed, stream| rng_for(seed, stream).next_u64();
        assert_eq!(draw(7, Stream::TempNoise(0)), draw(7, Stream::TempNoise(0)));
        assert_ne!(draw(7, Stream::TempNoise(0)), draw(7, Stream::TempNoise(1)));
        assert_ne!(
            draw(7, Stream::TempNoise(0)),
            draw(7, Stream::PowerNoise(0))
        );
        assert_ne!(
            draw(7, Stream::PowerNoise(0)),
            draw(7, Stream::RandomPhase(0))
        );
        assert_ne!(draw(7, Stream::TempNoise(0)), draw(8, Stream::TempNoise(0)));
    }
}
