//! The `none` baseline: no software limit at all, so every component may draw what it
//! wants up to its hardware maximum. It shows what the guardian exists to prevent.

use super::ComponentBounds;

/// Every component at its `max_w`, whatever the cap.
pub fn split(components: &[ComponentBounds]) -> Vec<f64> {
    components.iter().map(|component| component.max_w).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::static_equal::tests::cpu_and_gpu;

    #[test]
    fn every_component_gets_its_maximum_whatever_the_cap() {
        assert_eq!(split(&cpu_and_gpu()), vec![150.0, 350.0]);
    }
}
