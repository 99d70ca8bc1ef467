//! The `proportional` baseline: each tick, every component starts at its `min_w` and
//! the rest of the cap is shared in proportion to current utilization; what the `max_w`
//! clamps leave over is handed to the others the same way, so the sum never exceeds the
//! cap (unless the minimums alone do).

use super::ComponentBounds;

/// Below this many watts, what is left to share is not worth another round.
const LEFTOVER_EPSILON_W: f64 = 1e-9;

/// The split for `cap_w` given each component's utilization in `[0, 1]`, in the order of
/// `components`. Components that are all idle share what is left equally.
pub fn split(cap_w: f64, components: &[ComponentBounds], utilization: &[f64]) -> Vec<f64> {
    let mut limits: Vec<f64> = components.iter().map(|component| component.min_w).collect();
    let mut rest_w = cap_w - limits.iter().sum::<f64>();
    let mut open: Vec<usize> = (0..components.len())
        .filter(|&index| components[index].max_w > components[index].min_w)
        .collect();
    // Each round either hands out everything or clamps at least one component, which
    // then leaves `open`: at most one round per component.
    while rest_w > LEFTOVER_EPSILON_W && !open.is_empty() {
        let share = |index: usize| utilization.get(index).copied().unwrap_or(0.0).max(0.0);
        let total: f64 = open.iter().map(|&index| share(index)).sum();
        let weight = |index: usize| {
            if total > 0.0 {
                share(index) / total
            } else {
                1.0 / open.len() as f64
            }
        };
        let mut left_over_w = 0.0;
        let mut still_open = Vec::with_capacity(open.len());
        for &index in &open {
            let wanted_w = limits[index] + rest_w * weight(index);
            let max_w = components[index].max_w;
            if wanted_w >= max_w {
                left_over_w += wanted_w - max_w;
                limits[index] = max_w;
            } else {
                limits[index] = wanted_w;
                still_open.push(index);
            }
        }
        // Utilization 0 among the open ones while others were clamped: they get their
        // equal share of the leftover in the next round.
        if still_open.len() == open.len() {
            break;
        }
        open = still_open;
        rest_w = left_over_w;
    }
    limits
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
    fn the_rest_above_the_minimums_follows_utilization() {
        // 400 − (30 + 100) = 270 W to share. CPU 0.6, GPU 0.3: 180 W and 90 W, so
        // 210 W for the CPU, over its 150 W maximum: 60 W left over, which goes to the
        // GPU (the only one still open): 100 + 90 + 60 = 250 W.
        let split = split(400.0, &cpu_and_gpu(), &[0.6, 0.3]);
        assert!(close(&split, &[150.0, 250.0]), "{split:?}");
        assert!(split.iter().sum::<f64>() <= 400.0 + 1e-9);
    }

    #[test]
    fn no_clamp_means_one_round() {
        // CPU 0.2, GPU 0.8 of 270 W: 54 and 216 W on top of 30 and 100 W.
        let split = split(400.0, &cpu_and_gpu(), &[0.2, 0.8]);
        assert!(close(&split, &[84.0, 316.0]), "{split:?}");
    }

    #[test]
    fn idle_components_share_equally_and_a_low_cap_keeps_the_minimums() {
        let split = split(400.0, &cpu_and_gpu(), &[0.0, 0.0]);
        // 135 W each on top of the minimums: 165 W for the CPU is clamped to 150 W, and
        // its 15 W go to the GPU: 100 + 135 + 15 = 250 W.
        assert!(close(&split, &[150.0, 250.0]), "{split:?}");
        assert_eq!(
            super::split(100.0, &cpu_and_gpu(), &[1.0, 1.0]),
            vec![30.0, 100.0]
        );
    }

    #[test]
    fn the_sum_never_exceeds_the_cap_and_everything_is_used_when_it_can_be() {
        for cap in [130.0, 200.0, 280.0, 400.0, 499.0] {
            for utilization in [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.9, 0.1], [0.05, 0.95]] {
                let split = split(cap, &cpu_and_gpu(), &utilization);
                let total: f64 = split.iter().sum();
                assert!(
                    (total - cap).abs() < 1e-6,
                    "{cap} {utilization:?}: {split:?}"
                );
            }
        }
        // More cap than Σ max_w: everyone at the maximum.
        assert_eq!(
            super::split(600.0, &cpu_and_gpu(), &[0.5, 0.5]),
            vec![150.0, 350.0]
        );
    }
}
