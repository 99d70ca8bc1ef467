//! The `static-equal` baseline: the cap split equally between the components, each
//! share clamped to that component's limits, and what a clamp leaves over (or takes, to
//! hold a component at its minimum) shared equally by the others, so that no watt of the
//! cap is thrown away.

use super::{ComponentBounds, water_fill};

/// `clamp(λ, min_w, max_w)` for each component, with the level `λ` at which the limits
/// add up to the cap (`cap / n` when no clamp acts). When the cap is below the sum of
/// the minimums, no split can honour it; each limit is then at its minimum.
pub fn split(cap_w: f64, components: &[ComponentBounds]) -> Vec<f64> {
    water_fill::split(cap_w, components, &vec![1.0; components.len()])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The sample scenarios' CPU (TDP 125 W, limits 30–150 W) and GPU (TDP 300 W,
    /// limits 100–350 W).
    pub(crate) fn cpu_and_gpu() -> Vec<ComponentBounds> {
        vec![
            ComponentBounds {
                name: "cpu".into(),
                min_w: 30.0,
                max_w: 150.0,
                tdp_w: 125.0,
            },
            ComponentBounds {
                name: "gpu0".into(),
                min_w: 100.0,
                max_w: 350.0,
                tdp_w: 300.0,
            },
        ]
    }

    #[test]
    fn the_cap_is_halved_and_what_a_clamp_leaves_goes_to_the_other() {
        // 400 W / 2 = 200 W each; the CPU's 150 W maximum clamps it, and the 50 W it
        // cannot use go to the GPU.
        assert_eq!(split(400.0, &cpu_and_gpu()), vec![150.0, 250.0]);
        // 280 W / 2 = 140 W each, inside both ranges.
        assert_eq!(split(280.0, &cpu_and_gpu()), vec![140.0, 140.0]);
        // 160 W / 2 = 80 W is below the GPU's 100 W minimum, which wins; the CPU gets the
        // 60 W left, so the sum stays at the cap.
        assert_eq!(split(160.0, &cpu_and_gpu()), vec![60.0, 100.0]);
        // Below the sum of the minimums, or above the sum of the maximums.
        assert_eq!(split(100.0, &cpu_and_gpu()), vec![30.0, 100.0]);
        assert_eq!(split(650.0, &cpu_and_gpu()), vec![150.0, 350.0]);
        assert_eq!(split(400.0, &[]), Vec::<f64>::new());
    }
}
