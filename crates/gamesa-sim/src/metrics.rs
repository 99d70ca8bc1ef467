//! What a run measured: the twin's report (work, energy, cap, throttling, temperatures,
//! time-to-solution) plus the guardian's vetoes and clamps, all deterministic; and,
//! apart from them, the wall-time cost of a tick.
//!
//! # Invariants
//! - [`Metrics`] holds nothing that depends on the wall clock or on thread timing, so
//!   the same scenario and seed serialize to the same bytes; wall time lives in
//!   [`TickCost`] only.

use std::time::Duration;

use gamesa_guardian::Verdict;
use gamesa_hw::twin::TwinReport;
use gamesa_runtime::TickReport;
use serde::{Deserialize, Serialize};

use crate::Policy;

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
    pub fn record(&mut self, report: &TickReport) {
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

impl Metrics {
    /// The metrics of a finished run.
    pub fn new(policy: Policy, seed: u64, report: &TwinReport, counts: &VerdictCounts) -> Metrics {
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
