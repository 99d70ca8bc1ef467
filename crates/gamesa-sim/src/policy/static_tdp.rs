//! The `static-tdp` baseline: the cap split in proportion to each component's TDP, each
//! share clamped to that component's limits.

use super::ComponentBounds;

/// `clamp(cap · tdp_i / Σ tdp, min_w, max_w)` for each component.
pub fn split(cap_w: f64, components: &[ComponentBounds]) -> Vec<f64> {
    let total_tdp_w: f64 = components.iter().map(|component| component.tdp_w).sum();
    components
        .iter()
        .map(|component| {
            let share_w = if total_tdp_w > 0.0 {
                cap_w * component.tdp_w / total_tdp_w
            } else {
                cap_w / components.len() as f64
            };
            component.clamp(share_w)
        })
        .collect()
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
        // A 650 W cap would give the CPU 191 W: clamped to its 150 W maximum.
        assert_eq!(super::split(650.0, &cpu_and_gpu())[0], 150.0);
    }
}
