//! The twin's physics for one component over one step: power from limit and demand, the
//! hardware's own thermal throttle, work done, and the lumped RC temperature update.
//!
//! Pure functions of their arguments (no state, no clock), one per equation of
//! `docs/twin.md`, so each can be checked by hand.

use super::scenario::ComponentSpec;

/// The constants of one component the step needs, precomputed once per component.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ComponentConstants {
    pub idle_w: f64,
    pub min_w: f64,
    pub max_w: f64,
    /// `tdp_w − idle_w`: the dynamic power at which work runs at one unit per second.
    pub tdp_dynamic_w: f64,
    pub c_j_per_c: f64,
    pub t_max_c: f64,
    pub weight: f64,
    /// How work grows with dynamic power (the scenario's `perf_exponent`).
    pub perf_exponent: f64,
}

impl ComponentConstants {
    /// The constants of a scenario's component.
    pub fn of(spec: &ComponentSpec) -> ComponentConstants {
        ComponentConstants {
            idle_w: spec.idle_w,
            min_w: spec.min_w,
            max_w: spec.max_w,
            tdp_dynamic_w: spec.tdp_w - spec.idle_w,
            c_j_per_c: spec.c_j_per_c,
            t_max_c: spec.t_max_c,
            weight: spec.weight,
            perf_exponent: spec.perf_exponent,
        }
    }
}

/// What one component did during one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutcome {
    /// Dynamic power at full activity after the throttle, `dyn` in the equations.
    pub dynamic_w: f64,
    /// Power drawn, `P = idle_w + d · dyn`.
    pub power_w: f64,
    /// Work done in the step.
    pub work: f64,
    /// Whether the hardware throttle halved `dyn` (the temperature was at `t_max_c`).
    pub throttled: bool,
    /// Temperature at the end of the step.
    pub temp_c: f64,
}

/// Step 1: the dynamic power the limit allows at demand `d`:
/// `0` if `d = 0`, else `min(max_w − idle_w, max(0, (L − idle_w) / d))`.
pub fn dynamic_power_w(limit_w: f64, demand: f64, idle_w: f64, max_w: f64) -> f64 {
    if demand <= 0.0 {
        return 0.0;
    }
    ((limit_w - idle_w) / demand).max(0.0).min(max_w - idle_w)
}

/// Step 2: the hardware's own throttle (PROCHOT) halves `dyn` once `T ≥ t_max_c`.
/// Returns the throttled `dyn` and whether the throttle acted.
pub fn hardware_throttle(dynamic_w: f64, temp_c: f64, t_max_c: f64) -> (f64, bool) {
    if temp_c >= t_max_c {
        (dynamic_w / 2.0, true)
    } else {
        (dynamic_w, false)
    }
}

/// Step 3: power drawn, `P = idle_w + d · dyn`.
pub fn power_drawn_w(idle_w: f64, demand: f64, dynamic_w: f64) -> f64 {
    idle_w + demand * dynamic_w
}

/// Step 4: work done, `weight · d · (dyn / (tdp_w − idle_w))^α · dt` with `α` the
/// component's `perf_exponent` (1/3 by default: frequency goes roughly as the cube root
/// of power); a component at full demand and TDP does `weight` units per second.
pub fn work_done(
    weight: f64,
    demand: f64,
    dynamic_w: f64,
    tdp_dynamic_w: f64,
    perf_exponent: f64,
    dt_s: f64,
) -> f64 {
    weight * demand * (dynamic_w / tdp_dynamic_w).powf(perf_exponent) * dt_s
}

/// Step 5: explicit Euler on `C · dT/dt = P − (T − T_amb) / R`.
pub fn next_temp_c(
    temp_c: f64,
    power_w: f64,
    ambient_c: f64,
    r_c_per_w: f64,
    c_j_per_c: f64,
    dt_s: f64,
) -> f64 {
    temp_c + dt_s * (power_w - (temp_c - ambient_c) / r_c_per_w) / c_j_per_c
}

/// One step of one component: steps 1 to 5 in order. `limit_w` is clamped to
/// `[min_w, max_w]` here as well, so a caller cannot bypass the device bounds.
pub fn step(
    constants: &ComponentConstants,
    limit_w: f64,
    demand: f64,
    temp_c: f64,
    r_c_per_w: f64,
    ambient_c: f64,
    dt_s: f64,
) -> StepOutcome {
    let limit_w = limit_w.clamp(constants.min_w, constants.max_w);
    let unthrottled_w = dynamic_power_w(limit_w, demand, constants.idle_w, constants.max_w);
    let (dynamic_w, throttled) = hardware_throttle(unthrottled_w, temp_c, constants.t_max_c);
    let power_w = power_drawn_w(constants.idle_w, demand, dynamic_w);
    let work = work_done(
        constants.weight,
        demand,
        dynamic_w,
        constants.tdp_dynamic_w,
        constants.perf_exponent,
        dt_s,
    );
    let temp_c = next_temp_c(
        temp_c,
        power_w,
        ambient_c,
        r_c_per_w,
        constants.c_j_per_c,
        dt_s,
    );
    StepOutcome {
        dynamic_w,
        power_w,
        work,
        throttled,
        temp_c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GPU of the sample scenarios: TDP 300 W, idle 30 W, limits 100 to 350 W,
    /// R 0.2 °C/W, C 150 J/°C (R·C = 30 s), t_max 87 °C.
    fn gpu() -> ComponentConstants {
        ComponentConstants {
            idle_w: 30.0,
            min_w: 100.0,
            max_w: 350.0,
            tdp_dynamic_w: 270.0,
            c_j_per_c: 150.0,
            t_max_c: 87.0,
            weight: 1.0,
            perf_exponent: 1.0 / 3.0,
        }
    }

    const R: f64 = 0.2;
    const AMBIENT_C: f64 = 25.0;

    fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance
    }

    /// Runs the GPU at full demand under `limit_w` for `seconds`, from `start_c`, with a
    /// t_max too high to throttle.
    fn settle(limit_w: f64, start_c: f64, seconds: f64, dt_s: f64) -> (f64, f64) {
        let constants = ComponentConstants {
            t_max_c: 1_000.0,
            ..gpu()
        };
        let mut temp_c = start_c;
        let mut power_w = 0.0;
        let steps = (seconds / dt_s).round() as u64;
        for _ in 0..steps {
            let outcome = step(&constants, limit_w, 1.0, temp_c, R, AMBIENT_C, dt_s);
            temp_c = outcome.temp_c;
            power_w = outcome.power_w;
        }
        (temp_c, power_w)
    }

    #[test]
    fn steady_state_temperature_is_ambient_plus_power_times_r() {
        // 200 W at full demand for 20 time constants (600 s): T → 25 + 200 · 0.2 = 65 °C.
        let (temp_c, power_w) = settle(200.0, AMBIENT_C, 600.0, 0.1);
        assert_eq!(power_w, 200.0);
        assert!(close(temp_c, AMBIENT_C + 200.0 * R, 0.5), "{temp_c}");
    }

    #[test]
    fn a_power_step_settles_with_time_constant_r_times_c() {
        // From steady state at 100 W (45 °C) to 300 W (target 85 °C): after R·C = 30 s the
        // exact solution is 63.2 % of the way. Euler with dt = 0.1 s gives
        // 1 − (1 − dt/RC)^(RC/dt) = 1 − (1 − 1/300)^300 = 63.27 %, so 0.5 % covers it.
        let start_c = AMBIENT_C + 100.0 * R;
        let target_c = AMBIENT_C + 300.0 * R;
        let (temp_c, _) = settle(300.0, start_c, R * 150.0, 0.1);
        let fraction = (temp_c - start_c) / (target_c - start_c);
        assert!(close(fraction, 1.0 - (-1.0_f64).exp(), 0.005), "{fraction}");
        // And it is not there yet after a tenth of that time.
        let (early_c, _) = settle(300.0, start_c, R * 15.0, 0.1);
        assert!((early_c - start_c) / (target_c - start_c) < 0.1);
    }

    #[test]
    fn reaching_t_max_halves_the_dynamic_power() {
        let below = step(&gpu(), 300.0, 1.0, 86.9, R, AMBIENT_C, 0.1);
        let at = step(&gpu(), 300.0, 1.0, 87.0, R, AMBIENT_C, 0.1);
        assert!(!below.throttled);
        assert!(at.throttled);
        assert_eq!(below.dynamic_w, 270.0);
        assert_eq!(at.dynamic_w, 135.0);
        assert_eq!(at.power_w, 30.0 + 135.0);
        // Work falls by the cube root of the halving, not by half.
        assert!(close(at.work / below.work, 0.5_f64.cbrt(), 1e-12));
    }

    #[test]
    fn one_step_by_hand() {
        // GPU at T = 60 °C, ambient 25 °C, limit L = 200 W, demand d = 0.5, dt = 0.1 s.
        // 1. dyn = min(350 − 30, max(0, (200 − 30) / 0.5)) = min(320, 340) = 320 W
        //    (the limit would allow 340 W of dynamic power; max_w caps it at 320 W).
        // 2. 60 < 87: no throttle, dyn stays 320 W.
        // 3. P = 30 + 0.5 · 320 = 190 W.
        // 4. work = 1 · 0.5 · (320 / 270)^(1/3) · 0.1 = 0.05 · 1.058267… = 0.0529134…
        // 5. T = 60 + 0.1 · (190 − (60 − 25) / 0.2) / 150 = 60 + 0.1 · 15 / 150 = 60.01 °C.
        assert_eq!(dynamic_power_w(200.0, 0.5, 30.0, 350.0), 320.0);
        assert_eq!(hardware_throttle(320.0, 60.0, 87.0), (320.0, false));
        assert_eq!(power_drawn_w(30.0, 0.5, 320.0), 190.0);
        let work = work_done(1.0, 0.5, 320.0, 270.0, 1.0 / 3.0, 0.1);
        assert!(close(work, 0.052_913_4, 1e-7), "{work}");
        let temp_c = next_temp_c(60.0, 190.0, 25.0, 0.2, 150.0, 0.1);
        assert!(close(temp_c, 60.01, 1e-12), "{temp_c}");

        let outcome = step(&gpu(), 200.0, 0.5, 60.0, R, AMBIENT_C, 0.1);
        assert_eq!(outcome.dynamic_w, 320.0);
        assert_eq!(outcome.power_w, 190.0);
        assert_eq!(outcome.work, work);
        assert_eq!(outcome.temp_c, temp_c);
        assert!(!outcome.throttled);

        // The same step at T = 90 °C throttles: dyn = 160 W, P = 30 + 0.5 · 160 = 110 W,
        // T = 90 + 0.1 · (110 − 65 / 0.2) / 150 = 90 + 0.1 · (−215) / 150 = 89.856̅ °C.
        let hot = step(&gpu(), 200.0, 0.5, 90.0, R, AMBIENT_C, 0.1);
        assert!(hot.throttled);
        assert_eq!(hot.dynamic_w, 160.0);
        assert_eq!(hot.power_w, 110.0);
        assert!(close(hot.temp_c, 90.0 - 21.5 / 150.0, 1e-12));
    }

    proptest::proptest! {
        /// Whatever the limits and demands, the draw stays between idle and the clamped
        /// limit (and max_w), work is never negative, and the temperature stays between
        /// ambient and the hottest steady state `T_amb + max_w · R` (with dt < R·C each
        /// Euler step is a convex combination of T and the steady state for its power).
        #[test]
        fn draw_and_temperature_stay_in_bounds(
            steps in proptest::collection::vec((0.0..1_000.0_f64, 0.0..=1.0_f64), 1..400)
        ) {
            let constants = gpu();
            let mut temp_c = AMBIENT_C;
            for (limit_w, demand) in steps {
                let outcome = step(&constants, limit_w, demand, temp_c, R, AMBIENT_C, 0.1);
                let clamped_w = limit_w.clamp(constants.min_w, constants.max_w);
                proptest::prop_assert!(outcome.power_w >= constants.idle_w);
                proptest::prop_assert!(outcome.power_w <= clamped_w.max(constants.idle_w) + 1e-9);
                proptest::prop_assert!(outcome.power_w <= constants.max_w + 1e-9);
                proptest::prop_assert!(outcome.work >= 0.0);
                proptest::prop_assert!(outcome.temp_c >= AMBIENT_C - 1e-9);
                proptest::prop_assert!(outcome.temp_c <= AMBIENT_C + constants.max_w * R + 1e-9);
                temp_c = outcome.temp_c;
            }
        }
    }

    #[test]
    fn the_limit_bounds_power_and_zero_demand_draws_idle() {
        // Limit below idle: no dynamic power at all.
        assert_eq!(dynamic_power_w(20.0, 1.0, 30.0, 350.0), 0.0);
        // Zero demand: idle power, no work, whatever the limit.
        let idle = step(&gpu(), 350.0, 0.0, 40.0, R, AMBIENT_C, 0.1);
        assert_eq!((idle.power_w, idle.work), (30.0, 0.0));
        // A limit outside [min_w, max_w] is clamped: 1000 W behaves as 350 W.
        let high = step(&gpu(), 1_000.0, 1.0, 40.0, R, AMBIENT_C, 0.1);
        assert_eq!(high.power_w, 350.0);
        // At full demand the draw equals the limit whenever idle < L ≤ max_w.
        let mid = step(&gpu(), 180.0, 1.0, 40.0, R, AMBIENT_C, 0.1);
        assert_eq!(mid.power_w, 180.0);
    }
}
