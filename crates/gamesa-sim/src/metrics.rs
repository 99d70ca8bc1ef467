//! What a run measured: the twin's report (work, energy, cap, throttling, temperatures,
//! time-to-solution) plus the guardian's vetoes and clamps, all deterministic; and,
//! apart from them, the wall-time cost of a tick.
//!
//! # Invariants
//! - [`Metrics`] holds nothing that depends on the wall clock or on thread timing, so
//!   the same scenario and seed serialize to the same bytes; wall time lives in
//!   [`TickCost`] only.

use std::time::Duration;

use gamesa_engine::TickOutput;
use gamesa_guardian::Verdict;
use gamesa_hw::twin::{Scenario, Schedule, TwinReport};
use serde::{Deserialize, Serialize};

use crate::{Policy, optimum::SolverSummary};

/// The figures of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub scenario: String,
    pub policy: Policy,
    pub seed: u64,
    pub steps: u64,
    pub simulated_s: f64,
    /// Σ over components of `weight · work`, in seconds of output at TDP and full demand.
    pub work: f64,
    pub energy_j: f64,
    /// When every `[job]` was done (the latest component's time-to-solution); `None`
    /// without a job or when one was not finished.
    pub time_to_solution_s: Option<f64>,
    /// Seconds over the cap and the largest overshoot, as the twin defines them (1 s
    /// averages, 1 % tolerance).
    pub over_cap_s: f64,
    /// The part of `over_cap_s` not explained by a cap drop: seconds over the cap outside
    /// the second that follows the first step of a drop (a policy that learns of the
    /// drop from telemetry lowers its limits one tick late, and that tick stays in the
    /// 1 s average for a second).
    pub over_cap_outside_drops_s: f64,
    pub max_overshoot_w: f64,
    /// Component-seconds the hardware throttled itself.
    pub throttled_s: f64,
    pub peak_temp_c: f64,
    /// Fills and actuations the guardian denied.
    pub vetoes: u64,
    /// Actuations the guardian's gate clamped.
    pub clamps: u64,
    /// Ticks in which a safety signal pre-empted the market.
    pub safety_ticks: u64,
    pub components: Vec<ComponentMetrics>,
    /// For the optimum only: what the solver said (status, iterations, relative duality
    /// gap), so a table can show how tight the bound is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimum: Option<SolverSummary>,
}

/// One component's share of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentMetrics {
    pub name: String,
    pub work: f64,
    pub energy_j: f64,
    pub throttled_s: f64,
    pub peak_temp_c: f64,
    pub job: Option<f64>,
    pub time_to_solution_s: Option<f64>,
}

/// Counts what the guardian did, tick by tick.
#[derive(Debug, Clone, Default)]
pub struct VerdictCounts {
    pub vetoes: u64,
    pub clamps: u64,
    pub safety_ticks: u64,
}

impl VerdictCounts {
    pub fn record(&mut self, report: &TickOutput) {
        for verdict in report.vetoes() {
            match verdict {
                Verdict::Deny { .. } => self.vetoes += 1,
                Verdict::Clamp { .. } => self.clamps += 1,
                Verdict::Allow { .. } => {}
            }
        }
        self.safety_ticks += u64::from(!report.preempting.is_empty());
    }
}

/// Sorts the steps a run spent over the cap into those right after a cap drop and the
/// others, from the scenario's schedule and the twin's running over-cap total.
#[derive(Debug, Clone)]
pub struct OverCapSteps {
    /// Per step: whether it lies within a second after the first step of a cap drop.
    after_drop: Vec<bool>,
    dt_s: f64,
    outside_steps: u64,
}

impl OverCapSteps {
    /// For `scenario`: a step is *after a drop* when some step `j ≤ k` within the twin's
    /// 1 s averaging window before it (`k − j ≤ window`) has a lower cap than step `j − 1`.
    pub fn new(scenario: &Scenario) -> OverCapSteps {
        let schedule = Schedule::new(scenario);
        let steps = scenario.steps();
        let window = (1000.0 / scenario.step_ms() as f64).round().max(1.0) as u64;
        let mut after_drop = Vec::with_capacity(steps as usize);
        let mut previous_cap_w = scenario.cap_w();
        let mut last_drop: Option<u64> = None;
        for step in 0..steps {
            let cap_w = schedule.at_step(step).cap_w;
            if cap_w < previous_cap_w {
                last_drop = Some(step);
            }
            previous_cap_w = cap_w;
            after_drop.push(last_drop.is_some_and(|drop| step - drop <= window));
        }
        OverCapSteps {
            after_drop,
            dt_s: scenario.step_ms() as f64 / 1000.0,
            outside_steps: 0,
        }
    }

    /// Step `step` was over the cap (or not).
    pub fn record(&mut self, step: u64, over: bool) {
        let excused = self.after_drop.get(step as usize).copied().unwrap_or(false);
        self.outside_steps += u64::from(over && !excused);
    }

    pub fn outside_drops_s(&self) -> f64 {
        self.outside_steps as f64 * self.dt_s
    }
}

impl Metrics {
    /// The metrics of a finished run.
    pub fn new(
        policy: Policy,
        seed: u64,
        report: &TwinReport,
        counts: &VerdictCounts,
        over_cap: &OverCapSteps,
    ) -> Metrics {
        let jobs: Vec<Option<f64>> = report
            .components
            .iter()
            .filter(|component| component.job.is_some())
            .map(|component| component.time_to_solution_s)
            .collect();
        let time_to_solution_s = if jobs.is_empty() {
            None
        } else {
            jobs.iter()
                .try_fold(0.0f64, |latest, done| Some(latest.max((*done)?)))
        };
        Metrics {
            scenario: report.scenario.clone(),
            policy,
            seed,
            steps: report.steps,
            simulated_s: report.simulated_s,
            work: report.work,
            energy_j: report.energy_j,
            time_to_solution_s,
            over_cap_s: report.over_cap_s,
            over_cap_outside_drops_s: over_cap.outside_drops_s(),
            max_overshoot_w: report.max_overshoot_w,
            throttled_s: report.throttled_s,
            peak_temp_c: report
                .components
                .iter()
                .map(|component| component.peak_temp_c)
                .fold(f64::NEG_INFINITY, f64::max),
            vetoes: counts.vetoes,
            clamps: counts.clamps,
            safety_ticks: counts.safety_ticks,
            components: report
                .components
                .iter()
                .map(|component| ComponentMetrics {
                    name: component.name.clone(),
                    work: component.work,
                    energy_j: component.energy_j,
                    throttled_s: component.throttled_s,
                    peak_temp_c: component.peak_temp_c,
                    job: component.job,
                    time_to_solution_s: component.time_to_solution_s,
                })
                .collect(),
            optimum: None,
        }
    }

    pub fn component(&self, name: &str) -> Option<&ComponentMetrics> {
        self.components
            .iter()
            .find(|component| component.name == name)
    }
}

/// What the ticks of a run cost in wall time: the only figures that vary between two
/// runs of the same scenario, kept out of [`Metrics`] for that reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TickCost {
    pub ticks: u64,
    pub mean_us: f64,
    pub max_us: f64,
    /// The whole run, set-up and tear-down included.
    pub run_s: f64,
}

/// Accumulates tick durations.
#[derive(Debug, Clone, Default)]
pub struct TickTimer {
    ticks: u64,
    total: Duration,
    max: Duration,
}

impl TickTimer {
    pub fn record(&mut self, elapsed: Duration) {
        self.ticks += 1;
        self.total += elapsed;
        self.max = self.max.max(elapsed);
    }

    pub fn finish(&self, run: Duration) -> TickCost {
        let mean_us = if self.ticks == 0 {
            0.0
        } else {
            self.total.as_secs_f64() * 1e6 / self.ticks as f64
        };
        TickCost {
            ticks: self.ticks,
            mean_us,
            max_us: self.max.as_secs_f64() * 1e6,
            run_s: run.as_secs_f64(),
        }
    }
}
