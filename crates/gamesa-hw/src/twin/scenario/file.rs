//! The scenario file exactly as TOML spells it, before any value is checked.

use std::collections::BTreeMap;

use gamesa_proto::ComponentKind;
use serde::{
    Deserialize, Deserializer,
    de::{self, SeqAccess, Visitor},
};

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
    /// Each phase is `at_s` plus one demand per named component, or, for a random phase,
    /// `random = true`, its timing keys and a demand range per component; checked by hand
    /// because the component names are keys.
    #[serde(default)]
    pub phases: Vec<BTreeMap<String, PhaseValue>>,
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
    #[serde(default)]
    pub temp_noise_c: f64,
    #[serde(default)]
    pub power_noise_w: f64,
    #[serde(default)]
    pub sensor_lag_ticks: u32,
    #[serde(default)]
    pub temp_step_c: f64,
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
    Ambient,
}

impl EventKindName {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKindName::CapDrop => "cap_drop",
            EventKindName::FanDegrade => "fan_degrade",
            EventKindName::DemandSpike => "demand_spike",
            EventKindName::Ambient => "ambient",
        }
    }

    /// What needs a field, for [`super::ScenarioError::MissingField`].
    pub fn described(self) -> &'static str {
        match self {
            EventKindName::CapDrop => "a cap_drop event",
            EventKindName::FanDegrade => "a fan_degrade event",
            EventKindName::DemandSpike => "a demand_spike event",
            EventKindName::Ambient => "an ambient event",
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
    pub ambient_c: Option<f64>,
}

/// One value of a `[[phases]]` entry: a number (`at_s`, a demand, a random phase's
/// `until_s`), a flag (`random`) or a `[low, high]` demand range (a random phase).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum PhaseValue {
    Number(f64),
    Flag(bool),
    Range(f64, f64),
}

impl<'de> Deserialize<'de> for PhaseValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PhaseValue, D::Error> {
        deserializer.deserialize_any(PhaseValueVisitor)
    }
}

struct PhaseValueVisitor;

impl<'de> Visitor<'de> for PhaseValueVisitor {
    type Value = PhaseValue;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a number, `true`/`false`, or a `[low, high]` demand range")
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<PhaseValue, E> {
        Ok(PhaseValue::Number(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<PhaseValue, E> {
        Ok(PhaseValue::Number(value as f64))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<PhaseValue, E> {
        Ok(PhaseValue::Number(value as f64))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<PhaseValue, E> {
        Ok(PhaseValue::Flag(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PhaseValue, A::Error> {
        let range = "a `[low, high]` demand range of two numbers";
        let low: f64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &range))?;
        let high: f64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &range))?;
        if seq.next_element::<f64>()?.is_some() {
            return Err(de::Error::invalid_length(3, &range));
        }
        Ok(PhaseValue::Range(low, high))
    }
}
