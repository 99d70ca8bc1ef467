//! The scenario file exactly as TOML spells it, before any value is checked.

use std::collections::BTreeMap;

use gamesa_proto::ComponentKind;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScenarioFile {
    pub name: String,
    pub seed: u64,
    pub duration_s: f64,
    pub step_ms: u64,
    pub ambient_c: f64,
    pub node: NodeFile,
    /// A `BTreeMap`, so components come out sorted by name whatever the file order.
    pub components: BTreeMap<String, ComponentFile>,
    /// Each phase is `at_s` plus one demand per named component; checked by hand because
    /// the component names are keys.
    #[serde(default)]
    pub phases: Vec<BTreeMap<String, f64>>,
    #[serde(default)]
    pub events: Vec<EventFile>,
    #[serde(default)]
    pub job: BTreeMap<String, f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NodeFile {
    pub cap_w: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ComponentFile {
    pub kind: ComponentKind,
    pub tdp_w: f64,
    pub idle_w: f64,
    pub min_w: f64,
    pub max_w: f64,
    pub r_c_per_w: f64,
    pub c_j_per_c: f64,
    pub t_max_c: f64,
    #[serde(default = "default_weight")]
    pub weight: f64,
    #[serde(default = "default_perf_exponent")]
    pub perf_exponent: f64,
    #[serde(default)]
    pub util_bias: f64,
}

fn default_weight() -> f64 {
    1.0
}

/// Frequency goes roughly as the cube root of power (dynamic power ~ f·V², V ~ f).
fn default_perf_exponent() -> f64 {
    1.0 / 3.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum EventKindName {
    CapDrop,
    FanDegrade,
    DemandSpike,
}

impl EventKindName {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKindName::CapDrop => "cap_drop",
            EventKindName::FanDegrade => "fan_degrade",
            EventKindName::DemandSpike => "demand_spike",
        }
    }

    /// What needs a field, for [`super::ScenarioError::MissingField`].
    pub fn described(self) -> &'static str {
        match self {
            EventKindName::CapDrop => "a cap_drop event",
            EventKindName::FanDegrade => "a fan_degrade event",
            EventKindName::DemandSpike => "a demand_spike event",
        }
    }
}

/// Every field any event kind uses; which ones a kind needs is checked after parsing, so
/// the error can name the missing or stray field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventFile {
    pub at_s: f64,
    pub kind: EventKindName,
    pub cap_w: Option<f64>,
    pub duration_s: Option<f64>,
    pub component: Option<String>,
    pub r_factor: Option<f64>,
    pub demand: Option<f64>,
}
