//! The physical limit: with perfect knowledge of a scenario (every step's demand, cap,
//! thermal resistance and ambient, every component's parameters including the hidden
//! `perf_exponent`), the limits that maximise weighted work over the whole run, subject to
//! the cap at every step, each device's power range, and every temperature staying at
//! least 1 °C below `t_max_c` under the twin's exact thermal recursion.
//!
//! Work is concave in power (`u^α`, `α ≤ 1`) and every constraint is linear, so this is
//! a convex program; [`problem`] builds it with power cones and [`solve`] hands it to
//! Clarabel, an interior-point solver that reports its duality gap, so the plan is
//! optimal to that gap.
//!
//! # Invariants
//! - [`plan`] is a pure function of the scenario: Clarabel runs single-threaded with a
//!   deterministic factorisation, so the same scenario gives the same plan, bit for bit;
//! - every planned limit lies in its component's `[min_w, max_w]`, and the limits of a
//!   step add up to at most its cap (to the solver's tolerance), unless the components'
//!   own minimums already exceed it.

pub mod problem;
pub mod solve;

use gamesa_hw::twin::{Scenario, Twin};

pub use self::solve::SolverSummary;
use crate::SimError;

/// The optimum's limits over a whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// `[step][component]`, in watts, components in scenario order: the limit to set
    /// before each step.
    pub limits_w: Vec<Vec<f64>>,
    /// The weighted work the solver promises the twin will measure.
    pub objective: f64,
    pub solver: SolverSummary,
}

/// The best split of `scenario` over its whole run.
pub fn plan(scenario: &Scenario) -> Result<Plan, SimError> {
    let horizon = problem::Horizon::of(scenario);
    let solution = solve::solve(&horizon)?;
    Ok(Plan {
        objective: solution.summary.objective,
        limits_w: solution.limits_w,
        solver: solution.summary,
    })
}

/// Runs `twin` to the end of its scenario under `plan`, setting every component's
/// planned limit before each step (steps past the plan keep the last limits), and calls
/// `after_step` with the twin and the index of each step done.
pub fn drive(twin: &mut Twin, plan: &Plan, mut after_step: impl FnMut(&Twin, u64)) {
    while !twin.is_finished() {
        let step = twin.steps_done();
        if let Some(limits_w) = plan.limits_w.get(step as usize) {
            for (index, &limit_w) in limits_w.iter().enumerate() {
                twin.set_limit_w(index, limit_w);
            }
        }
        twin.step();
        after_step(twin, step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scenario of `duration_s` at 100 ms steps, 25 °C ambient, with `components`
    /// (inline tables) and `rest` (phases, events).
    fn scenario(duration_s: u32, cap_w: f64, components: &str, rest: &str) -> Scenario {
        let text = format!(
            "name = \"optimum\"\nseed = 1\nduration_s = {duration_s}\nstep_ms = 100\n\
             ambient_c = 25\nnode = {{ cap_w = {cap_w} }}\n[components]\n{components}\n{rest}"
        );
        match Scenario::from_toml_str(&text) {
            Ok(scenario) => scenario,
            Err(error) => panic!("{error}\n{text}"),
        }
    }

    /// A CPU-like part: idle 10 W, TDP 110 W (100 W of dynamic power), limits 20 to
    /// 150 W, R·C = `r` · 100 J/°C.
    fn part(name: &str, r_c_per_w: f64, t_max_c: f64, perf_exponent: f64) -> String {
        format!(
            "{name} = {{ kind = \"cpu\", tdp_w = 110, idle_w = 10, min_w = 20, max_w = 150, \
             r_c_per_w = {r_c_per_w}, c_j_per_c = 100, t_max_c = {t_max_c}, \
             perf_exponent = {perf_exponent} }}"
        )
    }

    fn planned(scenario: &Scenario) -> Plan {
        match plan(scenario) {
            Ok(plan) => plan,
            Err(error) => panic!("{error}"),
        }
    }

    /// The work the twin measures under `limits_w` (one row per step).
    fn twin_work(scenario: &Scenario, limits_w: impl Fn(usize) -> Vec<f64>) -> (f64, Twin) {
        let mut twin = Twin::new(scenario.clone());
        let mut step = 0;
        while !twin.is_finished() {
            for (index, limit_w) in limits_w(step).into_iter().enumerate() {
                twin.set_limit_w(index, limit_w);
            }
            twin.step();
            step += 1;
        }
        (twin.report().work, twin)
    }

    #[test]
    fn one_component_runs_at_the_lowest_of_max_and_cap() {
        // t_max 500 °C: never binding. Cap 120 W below max 150 W: 120 W every step; cap
        // 400 W: max_w, 150 W.
        let cool = part("cpu", 0.3, 500.0, 1.0 / 3.0);
        let capped = planned(&scenario(
            20,
            120.0,
            &cool,
            "[[phases]]\nat_s = 0\ncpu = 1.0",
        ));
        assert_eq!(capped.limits_w.len(), 200);
        for limits_w in &capped.limits_w {
            assert!((limits_w[0] - 120.0).abs() < 1e-3, "{limits_w:?}");
        }
        let free = planned(&scenario(
            20,
            400.0,
            &cool,
            "[[phases]]\nat_s = 0\ncpu = 1.0",
        ));
        for limits_w in &free.limits_w {
            assert!((limits_w[0] - 150.0).abs() < 1e-3, "{limits_w:?}");
        }
        // Work at 110 W is one unit per second, so at 120 W it is (110 / 100)^(1/3) per
        // second over 20 s.
        let expected = 1.1_f64.powf(1.0 / 3.0) * 20.0;
        assert!(
            (capped.objective - expected).abs() < 1e-4,
            "{}",
            capped.objective
        );
        assert_eq!(capped.solver.status, "Solved");
        assert!(capped.solver.gap_rel < 1e-6);
    }

    #[test]
    fn one_component_settles_at_its_thermal_bound() {
        // R = 0.5 °C/W, C = 100 J/°C: τ = 50 s. t_max 86 °C holds it to
        // (86 − 1 − 25) / 0.5 = 120 W at steady state, below cap and max. Over 300 s it
        // runs hotter first (the heat capacity absorbs it), then settles to 120 W.
        let hot = part("cpu", 0.5, 86.0, 1.0 / 3.0);
        let scenario = scenario(300, 400.0, &hot, "[[phases]]\nat_s = 0\ncpu = 1.0");
        let plan = planned(&scenario);
        let first = plan.limits_w[0][0];
        let settled = plan.limits_w[2500][0];
        assert!((first - 150.0).abs() < 1e-3, "starts at max_w: {first}");
        assert!(
            (settled - 120.0).abs() < 0.5,
            "settles at the bound: {settled}"
        );
        // Better than any constant limit that stays 1 °C below t_max: the best of those
        // is the steady-state bound itself, 120 W.
        let (constant_work, _) = twin_work(&scenario, |_| vec![120.0]);
        let (optimum_work, twin) = twin_work(&scenario, |step| plan.limits_w[step].clone());
        assert!(
            optimum_work > constant_work * 1.01,
            "{optimum_work} vs {constant_work}"
        );
        let report = twin.report();
        assert_eq!(report.throttled_s, 0.0);
        assert!(report.components[0].peak_temp_c <= 85.0 + 1e-6);
        assert!(
            report.components[0].peak_temp_c > 84.9,
            "it uses the headroom"
        );
    }

    #[test]
    fn two_identical_components_split_the_cap_equally() {
        let components = format!(
            "{}\n{}",
            part("a", 0.3, 500.0, 1.0 / 3.0),
            part("b", 0.3, 500.0, 1.0 / 3.0)
        );
        let plan = planned(&scenario(
            10,
            200.0,
            &components,
            "[[phases]]\nat_s = 0\na = 1.0\nb = 1.0",
        ));
        for limits_w in &plan.limits_w {
            assert!((limits_w[0] - 100.0).abs() < 1e-3, "{limits_w:?}");
            assert!((limits_w[1] - 100.0).abs() < 1e-3, "{limits_w:?}");
        }
    }

    #[test]
    fn the_component_whose_work_grows_with_power_gets_the_watts() {
        // Work u^0.05 (memory-bound) against u^0.6, u in TDP units of 100 W of dynamic
        // power, 150 W cap, both at full demand: u_a + u_b = (150 − 20) / 100 = 1.3. At
        // its 20 W minimum (u_a = 0.1) the first's marginal work is 0.05 · 0.1^−0.95 =
        // 0.446, still below the second's 0.6 · 1.2^−0.4 = 0.558 with all the rest: the
        // first stays at its minimum and the second takes 130 W.
        let components = format!(
            "{}\n{}",
            part("a", 0.3, 500.0, 0.05),
            part("b", 0.3, 500.0, 0.6)
        );
        let plan = planned(&scenario(
            10,
            150.0,
            &components,
            "[[phases]]\nat_s = 0\na = 1.0\nb = 1.0",
        ));
        for limits_w in &plan.limits_w {
            assert!((limits_w[0] - 20.0).abs() < 1e-3, "{limits_w:?}");
            assert!((limits_w[1] - 130.0).abs() < 1e-3, "{limits_w:?}");
        }
        // At 200 W the second reaches its 150 W max_w and the first gets the other 50 W.
        let roomier = planned(&scenario(
            10,
            200.0,
            &components,
            "[[phases]]\nat_s = 0\na = 1.0\nb = 1.0",
        ));
        assert!(
            (roomier.limits_w[0][0] - 50.0).abs() < 1e-3,
            "{:?}",
            roomier.limits_w[0]
        );
        assert!(
            (roomier.limits_w[0][1] - 150.0).abs() < 1e-3,
            "{:?}",
            roomier.limits_w[0]
        );
        // With the first's minimum at 12 W (u_a ≥ 0.02) the split at 150 W is interior:
        // the marginals are equal, 0.05 · u_a^−0.95 = 0.6 · u_b^−0.4, with
        // u_a + u_b = 1.3 (bisection gives u_a = 0.0795, u_b = 1.2205).
        let low_min = components.replacen("min_w = 20", "min_w = 12", 1);
        let interior = planned(&scenario(
            10,
            150.0,
            &low_min,
            "[[phases]]\nat_s = 0\na = 1.0\nb = 1.0",
        ));
        let limits_w = &interior.limits_w[50];
        let (u_a, u_b) = ((limits_w[0] - 10.0) / 100.0, (limits_w[1] - 10.0) / 100.0);
        assert!((u_a + u_b - 1.3).abs() < 1e-4, "{limits_w:?}");
        assert!((u_a - 0.0795).abs() < 1e-3, "{limits_w:?}");
        let (marginal_a, marginal_b) = (0.05 * u_a.powf(-0.95), 0.6 * u_b.powf(-0.4));
        assert!(
            (marginal_a / marginal_b - 1.0).abs() < 1e-3,
            "{marginal_a} vs {marginal_b} at {limits_w:?}"
        );
    }

    #[test]
    fn the_twin_measures_the_work_the_solver_promises_without_throttling_or_over_cap() {
        // Two parts, one hot, with a cap drop and a fan degradation.
        let components = format!(
            "{}\n{}",
            part("a", 0.5, 86.0, 1.0 / 3.0),
            part("b", 0.3, 90.0, 0.5)
        );
        let scenario = scenario(
            120,
            220.0,
            &components,
            "[[phases]]\nat_s = 0\na = 1.0\nb = 0.7\n\
             [[phases]]\nat_s = 60\na = 0.4\nb = 1.0\n\
             [[events]]\nat_s = 30\nkind = \"cap_drop\"\ncap_w = 140\nduration_s = 20\n\
             [[events]]\nat_s = 80\nkind = \"fan_degrade\"\ncomponent = \"b\"\nr_factor = 1.5",
        );
        let plan = planned(&scenario);
        let mut twin = Twin::new(scenario.clone());
        drive(&mut twin, &plan, |_, _| {});
        let report = twin.report();
        assert!(
            (report.work - plan.objective).abs() <= 1e-5 * plan.objective,
            "twin {} vs solver {}",
            report.work,
            plan.objective
        );
        assert_eq!(report.throttled_s, 0.0);
        assert_eq!(report.over_cap_s, 0.0);
        let schedule = gamesa_hw::twin::Schedule::new(&scenario);
        for (step, limits_w) in plan.limits_w.iter().enumerate() {
            let cap_w = schedule.at_step(step as u64).cap_w;
            assert!(limits_w.iter().sum::<f64>() <= cap_w + 1e-4, "step {step}");
        }
    }
}
