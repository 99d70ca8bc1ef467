//! The `greedy-oracle` baseline: each tick, the split that maximises the sum of weighted
//! work rates for the step it will govern, subject to the total not
//! exceeding that step's cap and each limit not exceeding the power that would hold its
//! component 1 °C below `t_max_c` at steady state. It knows everything the twin knows
//! (idle and TDP power, thermal resistance, the scenario's demands, caps and events),
//! which no real policy does.
//!
//! It is not an upper bound: it looks one step ahead and holds every component to its
//! steady-state thermal power, so it neither spends a cool component's heat capacity nor
//! plans around what comes later, and a policy can beat it. The bound is the `optimum`
//! (`crate::optimum`), which plans the whole run.
//!
//! The runtime's agent plans for the step its limits will govern (the next one), and
//! takes the lowest cap of the coming second, so that a gate's step limit cannot hold
//! its limits above a cap drop while they come down (`policy/agent.rs`).
//!
//! Solved by water-filling in 1 W steps: start every component at `min_w`, then give
//! the next watt to the component whose work rate it raises most, until the cap is
//! reached or no watt raises any work rate. Work is concave in power (a cube root), so
//! the greedy fill is optimal to within a watt.

use gamesa_hw::twin::physics;

/// Everything the oracle knows about one component for the step it plans.
#[derive(Debug, Clone, PartialEq)]
pub struct OracleComponent {
    pub min_w: f64,
    pub max_w: f64,
    pub idle_w: f64,
    pub tdp_w: f64,
    pub weight: f64,
    /// The demand during the step, in `[0, 1]`.
    pub demand: f64,
    /// The thermal bound on the limit: `(t_max_c − 1 − ambient_c) / R`.
    pub thermal_limit_w: f64,
    /// How work grows with dynamic power (the scenario's `perf_exponent`).
    pub perf_exponent: f64,
}

/// How far below `t_max_c` the oracle holds each component at steady state, in °C.
pub const THERMAL_MARGIN_C: f64 = 1.0;

/// Water-filling granularity, in watts.
pub const STEP_W: f64 = 1.0;

impl OracleComponent {
    /// The work this component does per second at limit `limit_w`, without throttling.
    pub fn work_rate(&self, limit_w: f64) -> f64 {
        let dynamic_w = physics::dynamic_power_w(limit_w, self.demand, self.idle_w, self.max_w);
        physics::work_done(
            self.weight,
            self.demand,
            dynamic_w,
            self.tdp_w - self.idle_w,
            self.perf_exponent,
            1.0,
        )
    }

    /// The highest limit allowed: `max_w`, lowered to the thermal bound, never below
    /// `min_w` (the device accepts nothing lower).
    pub fn upper_w(&self) -> f64 {
        self.max_w.min(self.thermal_limit_w).max(self.min_w)
    }
}

/// The steady-state power that holds a component `THERMAL_MARGIN_C` below `t_max_c`.
pub fn thermal_limit_w(t_max_c: f64, ambient_c: f64, r_c_per_w: f64) -> f64 {
    ((t_max_c - THERMAL_MARGIN_C - ambient_c) / r_c_per_w).max(0.0)
}

/// The split of `cap_w` that maximises the sum of work rates, in 1 W steps. Ties go to
/// the component listed first, so the result is deterministic.
pub fn split(cap_w: f64, components: &[OracleComponent]) -> Vec<f64> {
    let mut limits: Vec<f64> = components.iter().map(|component| component.min_w).collect();
    let mut budget_w = cap_w - limits.iter().sum::<f64>();
    // Each round moves at least `min(STEP_W, budget, room)` watts; rounds stop when no
    // component has room or gains, so the loop ends after at most Σ (upper − min) / STEP_W
    // full steps plus one partial step per component.
    while budget_w > 1e-9 {
        let mut best: Option<(usize, f64, f64)> = None;
        for (index, component) in components.iter().enumerate() {
            let room_w = component.upper_w() - limits[index];
            if room_w <= 1e-9 {
                continue;
            }
            let step_w = STEP_W.min(budget_w).min(room_w);
            let gain =
                component.work_rate(limits[index] + step_w) - component.work_rate(limits[index]);
            // Compare gain per watt, so a partial last step is not undervalued.
            let per_w = gain / step_w;
            if per_w > 0.0 && best.is_none_or(|(_, best_per_w, _)| per_w > best_per_w) {
                best = Some((index, per_w, step_w));
            }
        }
        let Some((index, _, step_w)) = best else {
            break;
        };
        limits[index] += step_w;
        budget_w -= step_w;
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample scenarios' CPU and GPU at the given demands, with their thermal bounds
    /// at R = 0.35 and 0.2 °C/W (187 W and 305 W: neither binds below `max_w`).
    fn cpu_and_gpu(cpu_demand: f64, gpu_demand: f64) -> Vec<OracleComponent> {
        vec![
            OracleComponent {
                min_w: 30.0,
                max_w: 150.0,
                idle_w: 15.0,
                tdp_w: 125.0,
                weight: 1.0,
                demand: cpu_demand,
                thermal_limit_w: thermal_limit_w(95.0, 25.0, 0.35),
                perf_exponent: 1.0 / 3.0,
            },
            OracleComponent {
                min_w: 100.0,
                max_w: 350.0,
                idle_w: 30.0,
                tdp_w: 300.0,
                weight: 1.0,
                demand: gpu_demand,
                thermal_limit_w: thermal_limit_w(87.0, 25.0, 0.2),
                perf_exponent: 1.0 / 3.0,
            },
        ]
    }

    #[test]
    fn thermal_bound_by_hand() {
        // (87 − 1 − 25) / 0.2 = 305 W; (87 − 1 − 25) / 0.35 = 174.29 W.
        assert!((thermal_limit_w(87.0, 25.0, 0.2) - 305.0).abs() < 1e-9);
        assert!((thermal_limit_w(87.0, 25.0, 0.35) - 174.285_714).abs() < 1e-6);
    }

    #[test]
    fn both_saturated_the_marginal_work_per_watt_is_equalised() {
        // Full demand on both: work_i = (dyn_i / (tdp_i − idle_i))^(1/3), whose marginals
        // are equal when dyn_c / dyn_g = sqrt(270 / 110) = 1.5667: a CPU watt is worth
        // more, since its TDP output takes only 110 W of dynamic power. With
        // dyn_c + dyn_g = 400 − 45 = 355 W that would give the CPU 216.6 W of dynamic
        // power, past its 135 W range: the CPU gets 150 W, the GPU the remaining 250 W.
        let split = split(400.0, &cpu_and_gpu(1.0, 1.0));
        assert_eq!(split, vec![150.0, 250.0]);
    }

    #[test]
    fn the_marginal_rule_holds_when_neither_is_clamped() {
        // Demand 1 on both, 250 W cap: dyn_c + dyn_g = 205 W and dyn_c = 1.5667 · dyn_g,
        // so dyn_g = 79.87 W and dyn_c = 125.13 W: limits 140.13 W and 109.87 W. The 1 W
        // water-filling lands within a watt of that, and uses the whole cap.
        let split = split(250.0, &cpu_and_gpu(1.0, 1.0));
        assert!((split[0] - 140.13).abs() <= 1.0, "{split:?}");
        assert!((split[1] - 109.87).abs() <= 1.0, "{split:?}");
        assert!((split.iter().sum::<f64>() - 250.0).abs() < 1e-9);
    }

    #[test]
    fn a_component_gets_no_more_than_its_demand_can_draw() {
        // The CPU at demand 0.1 draws at most 15 + 0.1 · 135 = 28.5 W: its 30 W minimum
        // is already more. The GPU takes the rest up to its thermal bound, 305 W (at
        // 350 W it would settle at 95 °C); 65 W of the cap stay unused.
        let split = split(400.0, &cpu_and_gpu(0.1, 1.0));
        assert_eq!(split, vec![30.0, 305.0]);
    }

    #[test]
    fn the_thermal_bound_caps_a_hot_component() {
        // The GPU of `misleading_utilization`: R = 0.35 °C/W holds it to 174.29 W; the
        // CPU at 0.6 demand can draw at most 15 + 0.6 · 135 = 96 W.
        let mut components = cpu_and_gpu(0.6, 0.98);
        components[1].thermal_limit_w = thermal_limit_w(87.0, 25.0, 0.35);
        let split = split(400.0, &components);
        assert!((split[1] - 174.285_714).abs() < 1e-6, "{split:?}");
        assert!((split[0] - 96.0).abs() <= 1.0, "{split:?}");
    }

    #[test]
    fn weight_moves_power_to_the_heavier_component() {
        // At 250 W the GPU gets 109.9 W (above). Weight 3 on the GPU: the marginals are
        // equal when dyn_g / dyn_c = 3^(3/2) · sqrt(110 / 270) = 3.317, so dyn_g = 157.5 W
        // of the 205 W: a 187.5 W limit.
        let plain = split(250.0, &cpu_and_gpu(1.0, 1.0));
        let mut heavy = cpu_and_gpu(1.0, 1.0);
        heavy[1].weight = 3.0;
        let weighted = split(250.0, &heavy);
        assert!(
            (weighted[1] - 187.5).abs() <= 1.0,
            "{plain:?} → {weighted:?}"
        );
        assert!(weighted[1] > plain[1] + 50.0, "{plain:?} → {weighted:?}");
    }
}
