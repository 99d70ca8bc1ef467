//! The `static-tdp` baseline: the cap split in proportion to each component's TDP, each
//! share clamped to that component's limits, and what a clamp leaves over shared by the
//! others in the same proportion, so that no watt of the cap is thrown away.

use super::{ComponentBounds, water_fill};

/// `clamp(λ · tdp_i, min_w, max_w)` for each component, with the level `λ` at which the
/// limits add up to the cap (`cap / Σ tdp` when no clamp acts).
pub fn split(cap_w: f64, components: &[ComponentBounds]) -> Vec<f64> {
    let tdp_w: Vec<f64> = components.iter().map(|component| component.tdp_w).collect();
    water_fill::split(cap_w, components, &tdp_w)
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
    fn the_cap_is_shared_by_tdp() {
        // TDPs 125 and 300 W: 400 · 125/425 = 117.647 W and 400 · 300/425 = 282.353 W.
        let split = split(400.0, &cpu_and_gpu());
        assert!(
            close(&split, &[117.647_058_823_529_4, 282.352_941_176_470_6]),
            "{split:?}"
        );
        // A 280 W cap: 82.353 and 197.647 W.
        let dropped = super::split(280.0, &cpu_and_gpu());
        assert!(
            close(&dropped, &[82.352_941_176_470_6, 197.647_058_823_529_4]),
            "{dropped:?}"
        );
        // By TDP alone, a 497 W cap would give the GPU 350.8 W: its 350 W maximum clamps
        // it, and the CPU gets the rest, 147 W instead of 146.2 W.
        let near_max = super::split(497.0, &cpu_and_gpu());
        assert!(close(&near_max, &[147.0, 350.0]), "{near_max:?}");
        assert_eq!(super::split(650.0, &cpu_and_gpu()), vec![150.0, 350.0]);
    }
}
