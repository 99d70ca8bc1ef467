//! Water-filling a cap in proportion to weights within each component's limit range: the
//! split `clamp(λ · weight_i, min_w, max_w)` with the one level `λ` at which the limits
//! add up to the cap, so that what one component's clamp leaves over goes to the others
//! and no watt of the cap is thrown away.
//!
//! # Invariants
//! - every limit lies in its component's `[min_w, max_w]`;
//! - the limits add up to the cap whenever `Σ min_w ≤ cap ≤ Σ max_w` (to rounding); below
//!   `Σ min_w` every limit is at its minimum, above `Σ max_w` at its maximum.

use super::ComponentBounds;

/// The split of `cap_w` in proportion to `weights` (one per component, `≥ 0`), each
/// limit within its bounds. Components of weight 0 stay at their minimum; when every
/// weight is 0 (or missing), the weights are equal.
pub fn split(cap_w: f64, components: &[ComponentBounds], weights: &[f64]) -> Vec<f64> {
    let weight = |index: usize| weights.get(index).copied().unwrap_or(0.0).max(0.0);
    let all_zero = (0..components.len()).all(|index| weight(index) == 0.0);
    let weight = |index: usize| if all_zero { 1.0 } else { weight(index) };
    let at_level = |level: f64| -> Vec<f64> {
        components
            .iter()
            .enumerate()
            .map(|(index, component)| component.clamp(level * weight(index)))
            .collect()
    };
    let total_at = |level: f64| at_level(level).iter().sum::<f64>();
    // The sum is piecewise linear in the level, with a kink wherever a component leaves
    // its minimum or reaches its maximum: find the kinks the cap falls between.
    let mut kinks: Vec<f64> = components
        .iter()
        .enumerate()
        .filter(|&(index, _)| weight(index) > 0.0)
        .flat_map(|(index, component)| {
            [
                component.min_w / weight(index),
                component.max_w / weight(index),
            ]
        })
        .filter(|level| level.is_finite())
        .collect();
    kinks.sort_by(f64::total_cmp);
    let mut below = (0.0, total_at(0.0));
    if below.1 >= cap_w {
        return at_level(0.0);
    }
    for kink in kinks {
        let total = total_at(kink);
        if total >= cap_w {
            let (level, total_below) = below;
            let slope = (total - total_below) / (kink - level);
            let level = if slope > 0.0 {
                level + (cap_w - total_below) / slope
            } else {
                kink
            };
            return at_level(level);
        }
        below = (kink, total);
    }
    at_level(below.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::static_equal::tests::cpu_and_gpu;

    fn close(actual: &[f64], expected: &[f64]) -> bool {
        actual.len() == expected.len()
            && actual
                .iter()
                .zip(expected)
                .all(|(a, e)| (a - e).abs() < 1e-9)
    }

    #[test]
    fn a_clamped_share_goes_to_the_others() {
        // Equal weights, 400 W: 200 W each would put the CPU over its 150 W maximum; the
        // 50 W it cannot use go to the GPU.
        let split = split(400.0, &cpu_and_gpu(), &[1.0, 1.0]);
        assert!(close(&split, &[150.0, 250.0]), "{split:?}");
    }

    #[test]
    fn a_minimum_takes_its_watts_from_the_others() {
        // 160 W: the GPU cannot go below 100 W, so the CPU gets the 60 W left, not 80 W.
        let split = split(160.0, &cpu_and_gpu(), &[1.0, 1.0]);
        assert!(close(&split, &[60.0, 100.0]), "{split:?}");
    }

    #[test]
    fn weights_set_the_shares_and_the_ends_are_the_bounds() {
        // Weights 1 : 3 of 360 W: 90 and 270 W, inside both ranges.
        let split = split(360.0, &cpu_and_gpu(), &[1.0, 3.0]);
        assert!(close(&split, &[90.0, 270.0]), "{split:?}");
        assert_eq!(
            super::split(100.0, &cpu_and_gpu(), &[1.0, 1.0]),
            vec![30.0, 100.0]
        );
        assert_eq!(
            super::split(900.0, &cpu_and_gpu(), &[1.0, 1.0]),
            vec![150.0, 350.0]
        );
        // Weight 0 stays at its minimum; all zero is equal.
        assert_eq!(
            super::split(300.0, &cpu_and_gpu(), &[0.0, 1.0]),
            vec![30.0, 270.0]
        );
        assert!(close(
            &super::split(280.0, &cpu_and_gpu(), &[0.0, 0.0]),
            &[140.0, 140.0]
        ));
    }

    #[test]
    fn the_limits_add_up_to_any_cap_between_the_sums_of_the_bounds() {
        for cap in [130.0, 131.0, 200.0, 259.9, 260.0, 400.0, 499.0, 500.0] {
            for weights in [[1.0, 1.0], [125.0, 300.0], [1.0, 0.01], [0.2, 5.0]] {
                let split = split(cap, &cpu_and_gpu(), &weights);
                let total: f64 = split.iter().sum();
                assert!((total - cap).abs() < 1e-6, "{cap} {weights:?}: {split:?}");
            }
        }
    }
}
