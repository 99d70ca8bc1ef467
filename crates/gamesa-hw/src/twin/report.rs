//! What a twin run measured: work, energy, throttling, peak temperatures, time over the
//! node cap and time-to-solution; the figures every evaluation of GAMESA compares.

use gamesa_proto::ComponentKind;
use serde::{Deserialize, Serialize};

/// The outcome of a run, totals first, then one entry per component in scenario order
/// (sorted by name). Serialized with `serde_json`, two runs of the same scenario give
/// the same bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwinReport {
    pub scenario: String,
    pub seed: u64,
    /// Steps simulated so far, and the time they cover.
    pub steps: u64,
    pub simulated_s: f64,
    /// Work done by every component, in units of "one weighted second at TDP and full
    /// demand".
    pub work: f64,
    pub energy_j: f64,
    /// Sum over components of their seconds throttled (component-seconds).
    pub throttled_s: f64,
    /// Seconds during which the 1 s average draw exceeded the 1 s average cap by more
    /// than 1 %.
    pub over_cap_s: f64,
    /// The largest excess of the 1 s average draw over the 1 s average cap, in watts
    /// (0 if the average never exceeded it).
    pub max_overshoot_w: f64,
    pub components: Vec<ComponentReport>,
}

/// One component's share of a [`TwinReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentReport {
    pub name: String,
    pub kind: ComponentKind,
    pub work: f64,
    pub energy_j: f64,
    pub throttled_s: f64,
    pub peak_temp_c: f64,
    /// The work the scenario's `[job]` asks of this component, if any.
    pub job: Option<f64>,
    /// When the cumulative work first reached `job` (the end of that step), if it did.
    pub time_to_solution_s: Option<f64>,
}

impl TwinReport {
    pub fn component(&self, name: &str) -> Option<&ComponentReport> {
        self.components
            .iter()
            .find(|component| component.name == name)
    }
}
