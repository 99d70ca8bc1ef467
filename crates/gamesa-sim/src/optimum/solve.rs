//! Solving the optimum's program with Clarabel and reading the limits back out of its
//! solution.
//!
//! The whole run is one program, no windows: a 3-minute scenario with 9 components at
//! 100 ms steps has about 50,000 variables, whose KKT system is sparse (one chain of
//! temperatures per component, one cap row per step), and Clarabel's direct LDLᵀ
//! factorisation solves it in 1 to 2 s (`docs/evaluation.md` has the measured times).
//! The plan is therefore the optimum of the whole horizon, not of a receding window.

use clarabel::solver::{DefaultSettings, DefaultSolver, IPSolver, SolverStatus};
use serde::{Deserialize, Serialize};

use super::problem::{self, DynamicRange, Horizon, Slot};
use crate::SimError;

/// What the solver said about a plan: deterministic (no wall time), so it can go into
/// the metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolverSummary {
    /// Clarabel's status: `Solved` or `AlmostSolved` (reduced accuracy).
    pub status: String,
    pub iterations: u32,
    /// `|primal − dual| / max(1, |primal|, |dual|)` at the end, as Clarabel reports it.
    pub gap_rel: f64,
    pub gap_abs: f64,
    /// How many settings were tried: 1 unless the first stalled (see [`FALLBACKS`]).
    pub attempts: u32,
    /// The weighted work the plan promises (the solver's objective, plus the work of
    /// the steps with nothing to choose).
    pub objective: f64,
}

/// The solution as limits, step by step.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    /// `[step][component]`, in watts.
    pub limits_w: Vec<Vec<f64>>,
    pub summary: SolverSummary,
}

/// Clarabel's settings, with reasons:
/// - tolerances 1e-6 (default 1e-8): a relative duality gap of 1e-6 bounds the work left
///   on the table at 0.0001 %, far below anything the evaluation reports (one decimal
///   of a percent), and saves 4 to 5 of the 20 to 35 iterations;
/// - the direct LDLᵀ solver (QDLDL, the default; no BLAS, single-threaded, so the result
///   is deterministic); the system is a chain per component plus one cap row per step,
///   which its AMD ordering factors with little fill;
/// - equilibration on (the default): with the temperatures scaled to the headroom
///   (`problem`) every variable and row is of order one, and Ruiz scaling does the rest;
/// - steps to at most 95 % of the way to the cone's boundary (default 99 %): on 300
///   generated scenarios the default stalled (`InsufficientProgress`) on 2, where the
///   iterates of a long thermal chain crowd the boundary; 95 % stalled on none, at the
///   same number of iterations on average.
///
/// If an attempt stalls all the same, [`FALLBACKS`] are tried in turn.
fn settings() -> DefaultSettings<f64> {
    DefaultSettings {
        verbose: false,
        tol_gap_abs: 1e-6,
        tol_gap_rel: 1e-6,
        tol_feas: 1e-6,
        max_iter: 200,
        max_step_fraction: 0.95,
        ..DefaultSettings::default()
    }
}

/// Settings tried after a stalled attempt: shorter steps still, then more equilibration.
const FALLBACKS: [fn(DefaultSettings<f64>) -> DefaultSettings<f64>; 2] = [
    |settings| DefaultSettings {
        max_step_fraction: 0.9,
        ..settings
    },
    |settings| DefaultSettings {
        max_step_fraction: 0.9,
        equilibrate_max_iter: 50,
        ..settings
    },
];

/// Solves the whole horizon in one program.
pub fn solve(horizon: &Horizon) -> Result<Solution, SimError> {
    let steps = horizon.steps();
    let start_c = vec![horizon.start_c; horizon.components.len()];
    let program = problem::build(horizon, 0, steps, &start_c);
    let mut attempts = 0;
    let mut tried = Vec::new();
    let attempt_settings =
        std::iter::once(settings()).chain(FALLBACKS.iter().map(|fallback| fallback(settings())));
    let mut solved = None;
    for settings in attempt_settings {
        attempts += 1;
        let mut solver = DefaultSolver::new(
            &program.p,
            &program.q,
            &program.a,
            &program.b,
            &program.cones,
            settings,
        )
        .map_err(|error| SimError::Optimum(format!("the solver refused the problem: {error:?}")))?;
        solver.solve();
        let status = solver.solution.status;
        if matches!(status, SolverStatus::Solved | SolverStatus::AlmostSolved) {
            solved = Some(solver);
            break;
        }
        tried.push(format!(
            "{status:?} after {} iterations",
            solver.info.iterations
        ));
    }
    let Some(solver) = solved else {
        return Err(SimError::Optimum(format!(
            "the solver did not converge: {}",
            tried.join("; then ")
        )));
    };
    let status = solver.solution.status;
    let x = &solver.solution.x;
    let limits_w = program
        .slots
        .iter()
        .enumerate()
        .map(|(step, row)| {
            row.iter()
                .enumerate()
                .map(|(i, slot)| {
                    let component = &horizon.components[i];
                    let range = DynamicRange::of(component, horizon.demand[step][i]);
                    let dynamic_w = match *slot {
                        Slot::Fixed { dynamic_w } => dynamic_w,
                        Slot::Free { u, .. } => {
                            (x[u] * component.tdp_dynamic_w).clamp(range.low_w, range.high_w)
                        }
                    };
                    range.limit_w(component, dynamic_w)
                })
                .collect()
        })
        .collect();
    Ok(Solution {
        limits_w,
        summary: SolverSummary {
            objective: -solver.solution.obj_val + program.fixed_work,
            status: format!("{status:?}"),
            iterations: solver.info.iterations,
            gap_rel: solver.info.gap_rel,
            gap_abs: solver.info.gap_abs,
            attempts,
        },
    })
}
