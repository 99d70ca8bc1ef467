//! The `static-equal` baseline: the cap split equally between the components, each
//! share clamped to that component's limits. What a clamp leaves over is not handed on.

use super::ComponentBounds;

/// `clamp(cap / n, min_w, max_w)` for each component. When the cap is below the sum of
/// the minimums, no split can honour it; the clamp then keeps each at its minimum.
pub fn split(cap_w: f64, components: &[ComponentBounds]) -> Vec<f64> {
    if components.is_empty() {
        return Vec::new();
    }
    let share_w = cap_w / components.len() as f64;
    components
        .iter()
        .map(|component| component.clamp(share_w))
        .collect()
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
    fn the_cap_is_halved_and_each_half_clamped() {
        // 400 W / 2 = 200 W each; the CPU's 150 W maximum clamps it, and the 50 W it
        // cannot use is not given to the GPU.
        assert_eq!(split(400.0, &cpu_and_gpu()), vec![150.0, 200.0]);
        // 280 W / 2 = 140 W each, inside both ranges.
        assert_eq!(split(280.0, &cpu_and_gpu()), vec![140.0, 140.0]);
        // 160 W / 2 = 80 W: below the GPU's 100 W minimum, which wins.
        assert_eq!(split(160.0, &cpu_and_gpu()), vec![80.0, 100.0]);
        assert_eq!(split(400.0, &[]), Vec::<f64>::new());
    }
}
