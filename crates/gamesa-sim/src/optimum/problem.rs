//! The optimum over a horizon as a conic program in Clarabel's standard form: maximise
//! weighted work subject to the node cap at every step, each component's power range, and
//! every temperature at most `t_max_c − 1` under the twin's explicit-Euler recursion.
//!
//! Variables, per component `i` and step `k` where the limit is free to choose:
//! - `u_ik = dyn_ik / (tdp_i − idle_i)`, the dynamic power in units of the TDP's;
//! - `w_ik ≤ u_ik^α_i`, its work rate, through the power cone `(u, 1, w) ∈ K_pow(α)`
//!   (absent when `α = 1`, where the work rate is `u` itself);
//!
//! and `θ_ik` for steps `1..=K`: the temperature at the end of step `k − 1` as a share of
//! the headroom, `T = T_0 + θ · (t_max − 1 − T_0)`, so that every variable is of order
//! one (the rows are scaled to match), which the interior-point method needs to converge
//! on long horizons.
//!
//! A step is *fixed* when nothing is left to choose: zero demand (idle draw, no work) or a
//! demand so low that even `min_w` lets the component run at `max_w` (the device accepts
//! no lower limit). Its draw and work are constants.
//!
//! The limit of a free step is `L = idle + d · dyn`: the tightest limit that allows `dyn`,
//! so the twin, given `L`, draws exactly the planned power. For that to hold `L ≥ min_w`,
//! so `dyn` is bounded below by `(min_w − idle) / d`: the device cannot be held lower. When
//! `min_w < idle_w` and `dyn = 0` this counts `idle_w` against the cap where `min_w` would
//! do, a conservative corner no sample scenario reaches.
//!
//! Where even the lowest power heats a component to `t_max_c` (a poorly cooled part
//! after a fan degradation, say), no limit can keep the hardware from throttling: the plan
//! holds that component at its lowest power, the twin halves it once it is at `t_max_c`,
//! and measures a little less work than the plan promised (0.09 % in the one generated
//! scenario of 100 where this happens). Throttling is not convex, so the program does not
//! model it.
//!
//! # Invariants
//! - the program is feasible: a step's cap is raised to the sum of the lowest limits
//!   the components accept when it is below it, and a temperature bound to the trajectory
//!   at the lowest power when even that runs hotter than `t_max_c − 1`;
//! - rows come in cone order: equalities, then inequalities, then the power cones.

use clarabel::{
    algebra::CscMatrix,
    solver::{SupportedConeT, SupportedConeT::*},
};
use gamesa_hw::twin::{
    Scenario, Schedule,
    physics::{self, ComponentConstants},
};

/// How far below `t_max_c` the optimum keeps every component, in °C.
pub const THERMAL_MARGIN_C: f64 = 1.0;

/// Exponents this close to 1 are treated as linear work (no cone).
const LINEAR_EXPONENT: f64 = 1.0 - 1e-9;

/// What is known of every step: the schedule resolved over the whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct Horizon {
    pub dt_s: f64,
    /// The temperature every component starts from.
    pub start_c: f64,
    pub components: Vec<ComponentConstants>,
    /// Per step.
    pub cap_w: Vec<f64>,
    pub ambient_c: Vec<f64>,
    /// Per step, per component (scenario order).
    pub demand: Vec<Vec<f64>>,
    pub r_c_per_w: Vec<Vec<f64>>,
}

impl Horizon {
    /// Resolves `scenario`'s schedule at every step.
    pub fn of(scenario: &Scenario) -> Horizon {
        let schedule = Schedule::new(scenario);
        let steps = scenario.steps();
        let mut cap_w = Vec::with_capacity(steps as usize);
        let mut ambient_c = Vec::with_capacity(steps as usize);
        let mut demand = Vec::with_capacity(steps as usize);
        let mut r_c_per_w = Vec::with_capacity(steps as usize);
        for step in 0..steps {
            let conditions = schedule.at_step(step);
            cap_w.push(conditions.cap_w);
            ambient_c.push(conditions.ambient_c);
            demand.push(conditions.demand);
            r_c_per_w.push(conditions.r_c_per_w);
        }
        Horizon {
            dt_s: scenario.step_ms() as f64 / 1000.0,
            start_c: scenario.ambient_c(),
            components: scenario
                .components()
                .iter()
                .map(ComponentConstants::of)
                .collect(),
            cap_w,
            ambient_c,
            demand,
            r_c_per_w,
        }
    }

    pub fn steps(&self) -> usize {
        self.cap_w.len()
    }
}

/// The range of dynamic power component `i` may run at in a step, in watts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DynamicRange {
    pub demand: f64,
    pub low_w: f64,
    pub high_w: f64,
}

impl DynamicRange {
    /// `[max(0, (min − idle) / d), max − idle]`, both at `max − idle` when the first is
    /// above; `[0, 0]` at zero demand.
    pub fn of(component: &ComponentConstants, demand: f64) -> DynamicRange {
        if demand <= 0.0 {
            return DynamicRange {
                demand: 0.0,
                low_w: 0.0,
                high_w: 0.0,
            };
        }
        let high_w = component.max_w - component.idle_w;
        let low_w = ((component.min_w - component.idle_w) / demand)
            .max(0.0)
            .min(high_w);
        DynamicRange {
            demand,
            low_w,
            high_w,
        }
    }

    /// Nothing to choose.
    pub fn is_fixed(&self) -> bool {
        self.demand <= 0.0 || self.high_w - self.low_w <= 1e-9
    }

    /// The limit that allows exactly `dynamic_w`: `idle + d · dyn`, never below `min_w`.
    pub fn limit_w(&self, component: &ComponentConstants, dynamic_w: f64) -> f64 {
        (component.idle_w + self.demand * dynamic_w).clamp(component.min_w, component.max_w)
    }

    /// The power drawn at `dynamic_w`.
    pub fn power_w(&self, component: &ComponentConstants, dynamic_w: f64) -> f64 {
        component.idle_w + self.demand * dynamic_w
    }
}

/// Where one component-step lives in the program.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Slot {
    /// Nothing to choose: the dynamic power is this.
    Fixed { dynamic_w: f64 },
    /// `u` is variable `u`; its work rate is variable `w` (or `u` itself when `None`).
    Free { u: usize, w: Option<usize> },
}

/// The program over steps `first..first + len` of a horizon, from given temperatures.
#[derive(Debug)]
pub struct Program {
    pub p: CscMatrix<f64>,
    pub q: Vec<f64>,
    pub a: CscMatrix<f64>,
    pub b: Vec<f64>,
    pub cones: Vec<SupportedConeT<f64>>,
    /// `[step − first][component]`.
    pub slots: Vec<Vec<Slot>>,
    /// The work of the fixed steps, which the objective leaves out.
    pub fixed_work: f64,
    pub variables: usize,
}

/// Triplets of `A`, rows in cone order once shifted by each block's offset.
#[derive(Debug, Default)]
struct Rows {
    row: Vec<usize>,
    column: Vec<usize>,
    value: Vec<f64>,
    b: Vec<f64>,
}

impl Rows {
    fn next(&self) -> usize {
        self.b.len()
    }

    fn push(&mut self, entries: &[(usize, f64)], b: f64) {
        let row = self.next();
        for &(column, value) in entries {
            self.row.push(row);
            self.column.push(column);
            self.value.push(value);
        }
        self.b.push(b);
    }
}

/// Builds the program for steps `first..first + len`, the components starting the first
/// of them at `start_c` (one per component).
pub fn build(horizon: &Horizon, first: usize, len: usize, start_c: &[f64]) -> Program {
    let components = &horizon.components;
    let dt_s = horizon.dt_s;
    let mut variables = 0;
    let mut next_variable = || {
        variables += 1;
        variables - 1
    };
    let mut fixed_work = 0.0;
    let mut slots = Vec::with_capacity(len);
    let mut q_entries: Vec<(usize, f64)> = Vec::new();
    for step in first..first + len {
        let mut row = Vec::with_capacity(components.len());
        for (i, component) in components.iter().enumerate() {
            let range = DynamicRange::of(component, horizon.demand[step][i]);
            if range.is_fixed() {
                fixed_work += physics::work_done(
                    component.weight,
                    range.demand,
                    range.high_w,
                    component.tdp_dynamic_w,
                    component.perf_exponent,
                    dt_s,
                );
                row.push(Slot::Fixed {
                    dynamic_w: range.high_w,
                });
                continue;
            }
            let u = next_variable();
            let gain = component.weight * range.demand * dt_s;
            let w = if component.perf_exponent >= LINEAR_EXPONENT {
                q_entries.push((u, -gain));
                None
            } else {
                let w = next_variable();
                q_entries.push((w, -gain));
                Some(w)
            };
            row.push(Slot::Free { u, w });
        }
        slots.push(row);
    }
    // Scaled temperatures at the end of each step: θ[k][i].
    let temps: Vec<Vec<usize>> = (0..len)
        .map(|_| components.iter().map(|_| next_variable()).collect())
        .collect();

    let mut equalities = Rows::default();
    let mut inequalities = Rows::default();
    let mut powers = Rows::default();
    let mut cones = Vec::new();
    // The coolest trajectory: every free step at its lowest power.
    let mut coolest_c: Vec<f64> = start_c.to_vec();
    for offset in 0..len {
        let step = first + offset;
        let ambient_c = horizon.ambient_c[step];
        let mut cap_rhs_w = horizon.cap_w[step];
        let mut lowest_lhs_w = 0.0;
        let mut cap_entries = Vec::new();
        for (i, component) in components.iter().enumerate() {
            let range = DynamicRange::of(component, horizon.demand[step][i]);
            let r_c_per_w = horizon.r_c_per_w[step][i];
            let c = component.c_j_per_c;
            let decay = 1.0 - dt_s / (r_c_per_w * c);
            // T_next − decay · T − (dt / C) · d · D · u = (dt / C) · idle + dt / (R C) · T_amb,
            // with T = T_ref + scale · θ and the row divided by `scale`.
            let reference_c = horizon.start_c;
            let scale_c = (component.t_max_c - THERMAL_MARGIN_C - reference_c).max(1.0);
            let mut entries = vec![(temps[offset][i], 1.0)];
            let mut rhs = dt_s / (r_c_per_w * c) * ambient_c - reference_c;
            if offset == 0 {
                rhs += decay * start_c[i];
            } else {
                rhs += decay * reference_c;
                entries.push((temps[offset - 1][i], -decay));
            }
            let lowest_dynamic_w = match slots[offset][i] {
                Slot::Fixed { dynamic_w } => {
                    rhs += dt_s / c * range.power_w(component, dynamic_w);
                    cap_rhs_w -= range.limit_w(component, dynamic_w);
                    dynamic_w
                }
                Slot::Free { u, w } => {
                    let scale_w = range.demand * component.tdp_dynamic_w;
                    rhs += dt_s / c * component.idle_w;
                    entries.push((u, -dt_s / c * scale_w / scale_c));
                    cap_rhs_w -= component.idle_w;
                    lowest_lhs_w += range.demand * range.low_w;
                    cap_entries.push((u, scale_w));
                    // u ≤ high; u ≥ low where low > 0 (the cone keeps u ≥ 0).
                    inequalities.push(&[(u, 1.0)], range.high_w / component.tdp_dynamic_w);
                    if range.low_w > 0.0 {
                        inequalities.push(&[(u, -1.0)], -range.low_w / component.tdp_dynamic_w);
                    }
                    if let Some(w) = w {
                        powers.push(&[(u, -1.0)], 0.0);
                        powers.push(&[], 1.0);
                        powers.push(&[(w, -1.0)], 0.0);
                        cones.push(PowerConeT(component.perf_exponent));
                    }
                    range.low_w
                }
            };
            equalities.push(&entries, rhs / scale_c);
            coolest_c[i] = physics::next_temp_c(
                coolest_c[i],
                range.power_w(component, lowest_dynamic_w),
                ambient_c,
                r_c_per_w,
                c,
                dt_s,
            );
            let bound_c = (component.t_max_c - THERMAL_MARGIN_C).max(coolest_c[i] + 1e-6);
            inequalities.push(
                &[(temps[offset][i], 1.0)],
                (bound_c - reference_c) / scale_c,
            );
        }
        if !cap_entries.is_empty() {
            // Never below what the components accept at their lowest.
            inequalities.push(&cap_entries, cap_rhs_w.max(lowest_lhs_w));
        }
    }

    let mut all_cones = Vec::with_capacity(cones.len() + 2);
    if equalities.next() > 0 {
        all_cones.push(ZeroConeT(equalities.next()));
    }
    if inequalities.next() > 0 {
        all_cones.push(NonnegativeConeT(inequalities.next()));
    }
    all_cones.extend(cones);
    let (mut row, mut column, mut value, mut b) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut offset = 0;
    for block in [equalities, inequalities, powers] {
        row.extend(block.row.iter().map(|r| r + offset));
        column.extend(block.column);
        value.extend(block.value);
        offset += block.b.len();
        b.extend(block.b);
    }
    let a = CscMatrix::new_from_triplets(b.len(), variables, row, column, value);
    let mut q = vec![0.0; variables];
    for (index, value) in q_entries {
        q[index] = value;
    }
    Program {
        p: CscMatrix::zeros((variables, variables)),
        q,
        a,
        b,
        cones: all_cones,
        slots,
        fixed_work,
        variables,
    }
}
