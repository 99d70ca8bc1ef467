//! Per-step traces of a twin run (limits, draw, temperature, demand, cap), recorded only
//! when asked for, so a plot can be drawn after the run.

use serde::{Deserialize, Serialize};

/// Every recorded step, with the component names the per-step vectors follow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// Component names, in the order of [`TraceStep::components`].
    pub components: Vec<String>,
    pub steps: Vec<TraceStep>,
}

/// One step: the values in force during it, and the temperature at its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceStep {
    /// The end of the step, in seconds since the start.
    pub time_s: f64,
    /// The node cap during the step.
    pub cap_w: f64,
    /// Total draw during the step.
    pub draw_w: f64,
    /// The node is over the cap (1 s averages, 1 % tolerance) at the end of the step.
    pub over_cap: bool,
    pub components: Vec<TraceComponent>,
}

/// One component during one step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TraceComponent {
    pub limit_w: f64,
    pub power_w: f64,
    /// Temperature at the end of the step.
    pub temp_c: f64,
    pub demand: f64,
    pub throttled: bool,
}

impl Trace {
    /// The series of one component, by name, as `(time_s, component)` pairs.
    pub fn series(&self, name: &str) -> Option<Vec<(f64, TraceComponent)>> {
        let index = self.components.iter().position(|known| known == name)?;
        Some(
            self.steps
                .iter()
                .filter_map(|step| Some((step.time_s, *step.components.get(index)?)))
                .collect(),
        )
    }
}
