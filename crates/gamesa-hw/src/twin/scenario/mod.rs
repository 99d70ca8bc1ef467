//! Scenarios: the machine, its workload and what happens to it, read from TOML and
//! checked before the twin ever runs one.
//!
//! # Invariants
//! A [`Scenario`] only exists once every check below passed, so the twin never meets a
//! bad value:
//! - at least one component; components sorted by name, each name a valid component id
//!   other than `at_s`;
//! - every number finite; `0 <= idle_w < tdp_w`, `0 < min_w <= max_w`, `idle_w < max_w`,
//!   `R > 0`, `C > 0`, `weight > 0`, `t_max_c > ambient_c`, and one step shorter than
//!   every component's smallest thermal time constant `R·C` (fan degradations included);
//! - phases sorted by `at_s`, every time in `[0, duration_s)`, every demand in `[0, 1]`,
//!   every name in a phase, an event or the job a declared component; random phases are
//!   already drawn (with the scenario's seed) into ordinary ones;
//! - every ambient temperature (the scenario's and every `ambient` event's) below every
//!   component's `t_max_c`;
//! - sensor noise finite and not negative, the lag at most [`MAX_SENSOR_LAG_TICKS`].

mod error;
mod file;
mod phases;

use std::{collections::BTreeMap, path::Path};

pub use error::{Position, ScenarioError};
use file::{ComponentFile, EventFile, EventKindName, ScenarioFile};
use gamesa_proto::ComponentKind;
pub use phases::MAX_DRAWN_PHASES;
use serde::Serialize;

/// The longest scenario accepted, in seconds (about eleven and a half days).
pub const MAX_DURATION_S: f64 = 1_000_000.0;
/// The longest step accepted, in milliseconds.
pub const MAX_STEP_MS: u64 = 60_000;
/// The range of `perf_exponent`: positive (power always helps a little) and at most 1
/// (work is concave in power).
pub const MIN_PERF_EXPONENT: f64 = 0.01;
pub const MAX_PERF_EXPONENT: f64 = 1.0;
/// The longest sensor lag accepted, in ticks (steps); the twin keeps that many readings
/// per component.
pub const MAX_SENSOR_LAG_TICKS: u32 = 10_000;
/// The range of ambient temperatures, the scenario's and the `ambient` events', in °C.
const AMBIENT_RANGE_C: std::ops::RangeInclusive<f64> = -50.0..=80.0;

/// A checked scenario. Build one with [`Scenario::from_toml_str`] or [`Scenario::load`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    name: String,
    seed: u64,
    duration_s: f64,
    step_ms: u64,
    ambient_c: f64,
    cap_w: f64,
    components: Vec<ComponentSpec>,
    phases: Vec<Phase>,
    events: Vec<Event>,
    job: BTreeMap<String, f64>,
}

/// One power-managed component of the twin, as the scenario declares it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentSpec {
    pub name: String,
    pub kind: ComponentKind,
    /// The power at which the component does one unit of work per second (times its
    /// weight) at full demand.
    pub tdp_w: f64,
    pub idle_w: f64,
    /// The lowest power limit the component accepts.
    pub min_w: f64,
    /// The highest power limit the component accepts, and the most it ever draws.
    pub max_w: f64,
    /// Thermal resistance to ambient, in °C per watt.
    pub r_c_per_w: f64,
    /// Heat capacity, in joules per °C.
    pub c_j_per_c: f64,
    /// The temperature at which the hardware throttles itself.
    pub t_max_c: f64,
    pub weight: f64,
    /// How work grows with dynamic power: `work ∝ (dyn / (tdp − idle))^perf_exponent`.
    /// 1/3 (the default) for a compute-bound part whose frequency goes as the cube root
    /// of power; near 0.05 for a memory-bound one that power barely helps. Hidden from
    /// the agents: they learn it from progress.
    pub perf_exponent: f64,
    /// Added to the demand before it is reported as utilization (clamped to `[0, 1]`): a
    /// GPU that busy-waits reports 100 % while doing little. Hidden from the agents.
    pub util_bias: f64,
    /// Standard deviation of the Gaussian noise on the reported temperature, in °C (0:
    /// none). Sensors only: the physics uses the true temperature.
    pub temp_noise_c: f64,
    /// Standard deviation of the Gaussian noise on the reported power, in W (0: none);
    /// the reported power is never below 0.
    pub power_noise_w: f64,
    /// The reported temperature and power are those of this many steps ago (0: the
    /// step just done). Utilization, limit and progress are always current.
    pub sensor_lag_ticks: u32,
    /// The reported temperature is rounded to a multiple of this, in °C (0: not at all;
    /// 1 for the whole degrees many hwmon sensors give).
    pub temp_step_c: f64,
}

impl ComponentSpec {
    /// The limit the component starts with and is restored to: `tdp_w` clamped to
    /// `[min_w, max_w]`.
    pub fn initial_limit_w(&self) -> f64 {
        self.tdp_w.clamp(self.min_w, self.max_w)
    }
}

/// From `at_s` on, the named components run at these demands; the others keep theirs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    pub at_s: f64,
    /// Demand in `[0, 1]` by component name.
    pub demands: BTreeMap<String, f64>,
}

/// Something that happens to the machine at `at_s`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub at_s: f64,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The node cap is `cap_w` for `duration_s`, then returns to `[node] cap_w`.
    CapDrop { cap_w: f64, duration_s: f64 },
    /// The component's thermal resistance is multiplied by `r_factor` from then on.
    FanDegrade { component: String, r_factor: f64 },
    /// The component's demand is `demand` for `duration_s`, whatever the phases say.
    DemandSpike {
        component: String,
        demand: f64,
        duration_s: f64,
    },
    /// The ambient temperature is `ambient_c` from then on.
    Ambient { ambient_c: f64 },
}

impl Scenario {
    /// Parses and checks a scenario. Every error names the field it is about.
    pub fn from_toml_str(input: &str) -> Result<Scenario, ScenarioError> {
        let file: ScenarioFile =
            toml::from_str(input).map_err(|error| ScenarioError::from_toml(input, &error))?;
        Scenario::check(file)
    }

    /// Reads, parses and checks a scenario file; the error names the file as well.
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let in_file = |error: ScenarioError| ScenarioError::InFile {
            path: path.to_path_buf(),
            error: Box::new(error),
        };
        let input = std::fs::read_to_string(path).map_err(|error| ScenarioError::Io {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
        Scenario::from_toml_str(&input).map_err(in_file)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Seeds the sensor noise and the random phases (already drawn by the time a
    /// `Scenario` exists), and the runtime's ids; the physics itself has no randomness.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn duration_s(&self) -> f64 {
        self.duration_s
    }

    pub fn step_ms(&self) -> u64 {
        self.step_ms
    }

    pub fn ambient_c(&self) -> f64 {
        self.ambient_c
    }

    /// The node cap outside any `cap_drop` event.
    pub fn cap_w(&self) -> f64 {
        self.cap_w
    }

    /// Components, sorted by name.
    pub fn components(&self) -> &[ComponentSpec] {
        &self.components
    }

    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The work each component must do for the time-to-solution figures, by name.
    pub fn job(&self) -> &BTreeMap<String, f64> {
        &self.job
    }

    /// The number of steps the scenario runs: `duration_s` rounded to the millisecond,
    /// divided by `step_ms`, rounded up.
    pub fn steps(&self) -> u64 {
        seconds_to_ms(self.duration_s).div_ceil(self.step_ms)
    }

    fn check(file: ScenarioFile) -> Result<Scenario, ScenarioError> {
        if file.name.trim().is_empty() {
            return Err(inconsistent("name", "must not be empty".into()));
        }
        if !(file.duration_s.is_finite()
            && file.duration_s > 0.0
            && file.duration_s <= MAX_DURATION_S)
        {
            return Err(out_of_range(
                "duration_s",
                file.duration_s,
                "a number of seconds in (0, 1000000]",
            ));
        }
        if !(1..=MAX_STEP_MS).contains(&file.step_ms) {
            return Err(out_of_range(
                "step_ms",
                file.step_ms as f64,
                "a number of milliseconds in [1, 60000]",
            ));
        }
        if seconds_to_ms(file.duration_s) < file.step_ms {
            return Err(inconsistent(
                "duration_s",
                format!(
                    "{} s is shorter than one step of {} ms",
                    file.duration_s, file.step_ms
                ),
            ));
        }
        if !(file.ambient_c.is_finite() && AMBIENT_RANGE_C.contains(&file.ambient_c)) {
            return Err(out_of_range(
                "ambient_c",
                file.ambient_c,
                "a temperature in [-50, 80] °C",
            ));
        }
        check_positive("node.cap_w", file.node.cap_w)?;
        if file.components.is_empty() {
            return Err(inconsistent(
                "components",
                "the scenario declares no component".into(),
            ));
        }
        let components = file
            .components
            .into_iter()
            .map(|(name, component)| check_component(name, component, file.ambient_c))
            .collect::<Result<Vec<_>, _>>()?;
        let known = |name: &str| components.iter().any(|component| component.name == name);

        let phases = phases::check_phases(file.phases, file.duration_s, file.seed, &known)?;

        let events = file
            .events
            .into_iter()
            .enumerate()
            .map(|(index, event)| check_event(index, event, file.duration_s, &known))
            .collect::<Result<Vec<_>, _>>()?;
        check_ambients_below_t_max(&events, &components)?;

        for (name, amount) in &file.job {
            let field = format!("job.{name}");
            if !known(name) {
                return Err(ScenarioError::UnknownComponent {
                    field,
                    component: name.clone(),
                });
            }
            check_positive(&field, *amount)?;
        }

        let scenario = Scenario {
            name: file.name,
            seed: file.seed,
            duration_s: file.duration_s,
            step_ms: file.step_ms,
            ambient_c: file.ambient_c,
            cap_w: file.node.cap_w,
            components,
            phases,
            events,
            job: file.job,
        };
        scenario.check_step_against_time_constants()?;
        Ok(scenario)
    }

    /// Explicit Euler multiplies the distance to steady state by `1 − dt/(R·C)` each
    /// step; a step at least as long as `R·C` overshoots or oscillates.
    fn check_step_against_time_constants(&self) -> Result<(), ScenarioError> {
        let dt_s = self.step_ms as f64 / 1000.0;
        for component in &self.components {
            let smallest_r = self
                .events
                .iter()
                .filter_map(|event| match &event.kind {
                    EventKind::FanDegrade {
                        component: name,
                        r_factor,
                    } if *name == component.name && *r_factor < 1.0 => Some(*r_factor),
                    _ => None,
                })
                .fold(component.r_c_per_w, |r, factor| r * factor);
            let tau_s = smallest_r * component.c_j_per_c;
            if dt_s >= tau_s {
                return Err(inconsistent(
                    "step_ms",
                    format!(
                        "a step of {} ms is not shorter than the thermal time constant \
                         R·C = {tau_s} s of `{}`",
                        self.step_ms, component.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

pub(super) fn seconds_to_ms(seconds: f64) -> u64 {
    // Checked finite, non-negative and at most MAX_DURATION_S before any call, so the
    // product fits a u64 exactly.
    (seconds * 1000.0).round() as u64
}

fn check_component(
    name: String,
    file: ComponentFile,
    ambient_c: f64,
) -> Result<ComponentSpec, ScenarioError> {
    let field = |key: &str| format!("components.{name}.{key}");
    let name_ok = !name.is_empty()
        && !phases::PHASE_KEYS.contains(&name.as_str())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"_.-".contains(&byte));
    if !name_ok {
        return Err(inconsistent(
            &format!("components.{name}"),
            "a component name is letters, digits, `_`, `-` and `.`, and none of `at_s`, \
             `random`, `until_s`, `every_s`"
                .into(),
        ));
    }
    for (key, value) in [
        ("tdp_w", file.tdp_w),
        ("idle_w", file.idle_w),
        ("min_w", file.min_w),
        ("max_w", file.max_w),
        ("r_c_per_w", file.r_c_per_w),
        ("c_j_per_c", file.c_j_per_c),
        ("t_max_c", file.t_max_c),
        ("weight", file.weight),
        ("perf_exponent", file.perf_exponent),
        ("util_bias", file.util_bias),
        ("temp_noise_c", file.temp_noise_c),
        ("power_noise_w", file.power_noise_w),
        ("temp_step_c", file.temp_step_c),
    ] {
        if !value.is_finite() {
            return Err(out_of_range(&field(key), value, "a finite number"));
        }
    }
    if file.idle_w < 0.0 {
        return Err(out_of_range(&field("idle_w"), file.idle_w, "at least 0 W"));
    }
    if file.idle_w >= file.tdp_w {
        return Err(inconsistent(
            &field("idle_w"),
            format!("idle_w {} must be below tdp_w {}", file.idle_w, file.tdp_w),
        ));
    }
    check_positive(&field("min_w"), file.min_w)?;
    if file.min_w > file.max_w {
        return Err(inconsistent(
            &field("min_w"),
            format!("min_w {} is above max_w {}", file.min_w, file.max_w),
        ));
    }
    if file.max_w <= file.idle_w {
        return Err(inconsistent(
            &field("max_w"),
            format!("max_w {} must be above idle_w {}", file.max_w, file.idle_w),
        ));
    }
    check_positive(&field("r_c_per_w"), file.r_c_per_w)?;
    check_positive(&field("c_j_per_c"), file.c_j_per_c)?;
    if file.t_max_c <= ambient_c {
        return Err(inconsistent(
            &field("t_max_c"),
            format!(
                "t_max_c {} must be above ambient_c {ambient_c}",
                file.t_max_c
            ),
        ));
    }
    check_positive(&field("weight"), file.weight)?;
    if !(MIN_PERF_EXPONENT..=MAX_PERF_EXPONENT).contains(&file.perf_exponent) {
        return Err(out_of_range(
            &field("perf_exponent"),
            file.perf_exponent,
            "from 0.01 to 1 (work is concave in power)",
        ));
    }
    if !(-1.0..=1.0).contains(&file.util_bias) {
        return Err(out_of_range(
            &field("util_bias"),
            file.util_bias,
            "from -1 to 1",
        ));
    }
    for (key, value) in [
        ("temp_noise_c", file.temp_noise_c),
        ("power_noise_w", file.power_noise_w),
        ("temp_step_c", file.temp_step_c),
    ] {
        if value < 0.0 {
            return Err(out_of_range(&field(key), value, "at least 0 (0: none)"));
        }
    }
    if file.sensor_lag_ticks > MAX_SENSOR_LAG_TICKS {
        return Err(out_of_range(
            &field("sensor_lag_ticks"),
            f64::from(file.sensor_lag_ticks),
            "a number of ticks in [0, 10000]",
        ));
    }
    Ok(ComponentSpec {
        name,
        kind: file.kind,
        tdp_w: file.tdp_w,
        idle_w: file.idle_w,
        min_w: file.min_w,
        max_w: file.max_w,
        r_c_per_w: file.r_c_per_w,
        c_j_per_c: file.c_j_per_c,
        t_max_c: file.t_max_c,
        weight: file.weight,
        perf_exponent: file.perf_exponent,
        util_bias: file.util_bias,
        temp_noise_c: file.temp_noise_c,
        power_noise_w: file.power_noise_w,
        sensor_lag_ticks: file.sensor_lag_ticks,
        temp_step_c: file.temp_step_c,
    })
}

/// Every `ambient` event's temperature must stay below every component's `t_max_c`, as
/// the scenario's own `ambient_c` must (checked with each component).
fn check_ambients_below_t_max(
    events: &[Event],
    components: &[ComponentSpec],
) -> Result<(), ScenarioError> {
    for (index, event) in events.iter().enumerate() {
        let EventKind::Ambient { ambient_c } = event.kind else {
            continue;
        };
        if let Some(component) = components
            .iter()
            .find(|component| component.t_max_c <= ambient_c)
        {
            return Err(inconsistent(
                &format!("events[{index}].ambient_c"),
                format!(
                    "ambient_c {ambient_c} must be below t_max_c {} of `{}`",
                    component.t_max_c, component.name
                ),
            ));
        }
    }
    Ok(())
}

fn check_event(
    index: usize,
    file: EventFile,
    duration_s: f64,
    known: &dyn Fn(&str) -> bool,
) -> Result<Event, ScenarioError> {
    let field = |key: &str| format!("events[{index}].{key}");
    let kind_name = file.kind.as_str();
    check_time(&field("at_s"), file.at_s, duration_s)?;

    let needs = |key: &str, value: Option<f64>| {
        value.ok_or_else(|| ScenarioError::MissingField {
            field: field(key),
            needed_by: file.kind.described(),
        })
    };
    let component = |value: Option<String>| {
        let name = value.ok_or_else(|| ScenarioError::MissingField {
            field: field("component"),
            needed_by: file.kind.described(),
        })?;
        if !known(&name) {
            return Err(ScenarioError::UnknownComponent {
                field: field("component"),
                component: name,
            });
        }
        Ok(name)
    };
    let stray = |key: &str, present: bool| {
        if present {
            Err(ScenarioError::UnexpectedField {
                field: field(key),
                kind: kind_name,
            })
        } else {
            Ok(())
        }
    };

    let kind = match file.kind {
        EventKindName::CapDrop => {
            stray("component", file.component.is_some())?;
            stray("r_factor", file.r_factor.is_some())?;
            stray("demand", file.demand.is_some())?;
            stray("ambient_c", file.ambient_c.is_some())?;
            let cap_w = needs("cap_w", file.cap_w)?;
            check_positive(&field("cap_w"), cap_w)?;
            let duration_s = needs("duration_s", file.duration_s)?;
            check_duration(&field("duration_s"), duration_s)?;
            EventKind::CapDrop { cap_w, duration_s }
        }
        EventKindName::FanDegrade => {
            stray("cap_w", file.cap_w.is_some())?;
            stray("duration_s", file.duration_s.is_some())?;
            stray("demand", file.demand.is_some())?;
            stray("ambient_c", file.ambient_c.is_some())?;
            let component = component(file.component)?;
            let r_factor = needs("r_factor", file.r_factor)?;
            check_positive(&field("r_factor"), r_factor)?;
            EventKind::FanDegrade {
                component,
                r_factor,
            }
        }
        EventKindName::DemandSpike => {
            stray("cap_w", file.cap_w.is_some())?;
            stray("r_factor", file.r_factor.is_some())?;
            stray("ambient_c", file.ambient_c.is_some())?;
            let component = component(file.component)?;
            let demand = needs("demand", file.demand)?;
            check_demand(&field("demand"), demand)?;
            let duration_s = needs("duration_s", file.duration_s)?;
            check_duration(&field("duration_s"), duration_s)?;
            EventKind::DemandSpike {
                component,
                demand,
                duration_s,
            }
        }
        EventKindName::Ambient => {
            stray("cap_w", file.cap_w.is_some())?;
            stray("duration_s", file.duration_s.is_some())?;
            stray("component", file.component.is_some())?;
            stray("r_factor", file.r_factor.is_some())?;
            stray("demand", file.demand.is_some())?;
            let ambient_c = needs("ambient_c", file.ambient_c)?;
            if !(ambient_c.is_finite() && AMBIENT_RANGE_C.contains(&ambient_c)) {
                return Err(out_of_range(
                    &field("ambient_c"),
                    ambient_c,
                    "a temperature in [-50, 80] °C",
                ));
            }
            EventKind::Ambient { ambient_c }
        }
    };
    Ok(Event {
        at_s: file.at_s,
        kind,
    })
}

fn check_positive(field: &str, value: f64) -> Result<(), ScenarioError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(out_of_range(field, value, "a finite number above 0"))
    }
}

fn check_duration(field: &str, value: f64) -> Result<(), ScenarioError> {
    if value.is_finite() && value > 0.0 && value <= MAX_DURATION_S {
        Ok(())
    } else {
        Err(out_of_range(
            field,
            value,
            "a number of seconds in (0, 1000000]",
        ))
    }
}

fn check_time(field: &str, at_s: f64, duration_s: f64) -> Result<(), ScenarioError> {
    if at_s.is_finite() && at_s >= 0.0 && at_s < duration_s {
        Ok(())
    } else {
        Err(out_of_range(field, at_s, "a time in [0, duration_s)"))
    }
}

fn check_demand(field: &str, demand: f64) -> Result<(), ScenarioError> {
    if demand.is_finite() && (0.0..=1.0).contains(&demand) {
        Ok(())
    } else {
        Err(out_of_range(field, demand, "a demand in [0, 1]"))
    }
}

fn out_of_range(field: &str, value: f64, expected: &'static str) -> ScenarioError {
    ScenarioError::OutOfRange {
        field: field.to_owned(),
        value,
        expected,
    }
}

fn inconsistent(field: &str, reason: String) -> ScenarioError {
    ScenarioError::Inconsistent {
        field: field.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A valid two-component scenario; tests break one thing at a time.
    const BASE: &str = r#"
name = "base"
seed = 7
duration_s = 60
step_ms = 100
ambient_c = 25

[node]
cap_w = 400

[components.gpu0]
kind = "gpu"
tdp_w = 300
idle_w = 30
min_w = 100
max_w = 350
r_c_per_w = 0.2
c_j_per_c = 150
t_max_c = 87

[components.cpu]
kind = "cpu"
tdp_w = 125
idle_w = 15
min_w = 30
max_w = 150
r_c_per_w = 0.35
c_j_per_c = 60
t_max_c = 95
weight = 2

[[phases]]
at_s = 0
cpu = 0.9
gpu0 = 0.1

[[phases]]
at_s = 30
gpu0 = 0.8

[[events]]
at_s = 10
kind = "cap_drop"
cap_w = 280
duration_s = 20

[job]
gpu0 = 10.0
"#;

    /// `BASE` with the first occurrence of `from` replaced by `to`.
    fn with(from: &str, to: &str) -> String {
        assert!(BASE.contains(from), "{from}");
        BASE.replacen(from, to, 1)
    }

    fn error_of(input: &str) -> ScenarioError {
        match Scenario::from_toml_str(input) {
            Ok(_) => panic!("accepted:\n{input}"),
            Err(error) => error,
        }
    }

    fn scenarios_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
    }

    #[test]
    fn every_sample_scenario_parses() {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(scenarios_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path
                .extension()
                .is_some_and(|extension| extension == "toml")
            {
                let scenario = Scenario::load(&path).unwrap_or_else(|error| panic!("{error}"));
                assert!(scenario.steps() > 0);
                names.push(scenario.name().to_owned());
            }
        }
        names.sort();
        for required in [
            "alternating",
            "cap_drop",
            "fan_degrade",
            "gpu_bottleneck",
            "misleading_utilization",
            "mixed",
            "near_idle",
            "training",
            "two_gpus",
        ] {
            assert!(names.iter().any(|name| name == required), "{required}");
        }
    }

    #[test]
    fn the_base_parses_with_defaults_and_components_sorted_by_name() {
        let scenario = Scenario::from_toml_str(BASE).unwrap();
        let names: Vec<&str> = scenario
            .components()
            .iter()
            .map(|component| component.name.as_str())
            .collect();
        assert_eq!(names, ["cpu", "gpu0"]);
        assert_eq!(scenario.components()[0].weight, 2.0);
        assert_eq!(scenario.components()[1].weight, 1.0);
        assert_eq!(scenario.components()[1].initial_limit_w(), 300.0);
        assert_eq!(scenario.steps(), 600);
        assert_eq!(scenario.phases()[1].demands.len(), 1);
        assert_eq!(
            scenario.events()[0].kind,
            EventKind::CapDrop {
                cap_w: 280.0,
                duration_s: 20.0
            }
        );
        assert_eq!(scenario.job().get("gpu0"), Some(&10.0));
    }

    #[test]
    fn the_initial_limit_is_tdp_clamped_to_the_limits() {
        let scenario = Scenario::from_toml_str(&with(
            "min_w = 100\nmax_w = 350",
            "min_w = 100\nmax_w = 250",
        ))
        .unwrap();
        assert_eq!(scenario.components()[1].initial_limit_w(), 250.0);
    }

    #[test]
    fn a_syntax_error_gives_line_and_column() {
        let error = error_of(&with("seed = 7", "seed = = 7"));
        let ScenarioError::Toml { field, at, .. } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(*field, None);
        assert_eq!(*at, Some(Position { line: 3, column: 8 }));
        assert!(
            error.to_string().starts_with("line 3, column 8: "),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_key_is_named_with_its_path() {
        let top = error_of(&with("seed = 7", "seed = 7\nsed = 8"));
        assert_eq!(top.field(), Some("sed"), "{top:?}");
        let nested = error_of(&with("t_max_c = 87", "t_max_c = 87\ntmax_c = 90"));
        assert_eq!(nested.field(), Some("components.gpu0.tmax_c"), "{nested:?}");
        assert!(matches!(
            nested,
            ScenarioError::Toml {
                at: Some(Position { line: 20, .. }),
                ..
            }
        ));
        let event = error_of(&with("cap_w = 280", "cap_w = 280\ncomponent_name = \"x\""));
        assert_eq!(event.field(), Some("events[0].component_name"), "{event:?}");
    }

    #[test]
    fn a_wrong_type_or_a_missing_key_is_named() {
        let wrong = error_of(&with("tdp_w = 300", "tdp_w = \"300 W\""));
        assert_eq!(wrong.field(), Some("components.gpu0.tdp_w"), "{wrong:?}");
        let kind = error_of(&with("kind = \"cap_drop\"", "kind = \"cap_rise\""));
        assert_eq!(kind.field(), Some("events[0].kind"), "{kind:?}");
        let missing = error_of(&with("tdp_w = 125\n", ""));
        assert!(
            missing
                .field()
                .is_some_and(|field| field.starts_with("components")),
            "{missing:?}"
        );
        assert!(missing.to_string().contains("tdp_w"), "{missing}");
    }

    #[test]
    fn inconsistent_component_values_name_the_field() {
        let cases = [
            (
                with("min_w = 100\nmax_w = 350", "min_w = 400\nmax_w = 350"),
                "components.gpu0.min_w",
            ),
            (
                with("idle_w = 30", "idle_w = 300"),
                "components.gpu0.idle_w",
            ),
            (with("max_w = 150", "max_w = 10"), "components.cpu.min_w"),
            (
                with("t_max_c = 95", "t_max_c = 20"),
                "components.cpu.t_max_c",
            ),
        ];
        for (input, field) in cases {
            let error = error_of(&input);
            assert!(
                matches!(&error, ScenarioError::Inconsistent { field: named, .. } if named == field),
                "{field}: {error:?}"
            );
        }
    }

    #[test]
    fn non_positive_r_or_c_is_out_of_range() {
        let r = error_of(&with("r_c_per_w = 0.35", "r_c_per_w = 0"));
        assert_eq!(
            r,
            ScenarioError::OutOfRange {
                field: "components.cpu.r_c_per_w".into(),
                value: 0.0,
                expected: "a finite number above 0",
            }
        );
        let c = error_of(&with("c_j_per_c = 150", "c_j_per_c = -1"));
        assert_eq!(c.field(), Some("components.gpu0.c_j_per_c"));
        let weight = error_of(&with("weight = 2", "weight = 0"));
        assert_eq!(weight.field(), Some("components.cpu.weight"));
        let nan = error_of(&with("tdp_w = 300", "tdp_w = nan"));
        assert_eq!(nan.field(), Some("components.gpu0.tdp_w"));
    }

    #[test]
    fn bad_durations_and_steps_are_out_of_range() {
        for (input, field) in [
            (with("duration_s = 60", "duration_s = -5"), "duration_s"),
            (with("duration_s = 60", "duration_s = 0"), "duration_s"),
            (with("step_ms = 100", "step_ms = 0"), "step_ms"),
            (
                with("duration_s = 20", "duration_s = 0"),
                "events[0].duration_s",
            ),
            (with("cap_w = 400", "cap_w = 0"), "node.cap_w"),
        ] {
            let error = error_of(&input);
            assert!(
                matches!(&error, ScenarioError::OutOfRange { field: named, .. } if named == field),
                "{field}: {error:?}"
            );
        }
        let too_short = error_of(&with("duration_s = 60", "duration_s = 0.05"));
        assert_eq!(too_short.field(), Some("duration_s"));
    }

    #[test]
    fn a_step_as_long_as_a_time_constant_is_refused() {
        // CPU R·C = 0.35 · 60 = 21 s; a 30 s step would make Euler oscillate.
        let error = error_of(&with("step_ms = 100", "step_ms = 30000"));
        assert!(
            matches!(&error, ScenarioError::Inconsistent { field, reason }
                if field == "step_ms" && reason.contains("`cpu`")),
            "{error:?}"
        );
    }

    #[test]
    fn phase_errors_name_the_phase_and_key() {
        assert_eq!(
            error_of(&with("gpu0 = 0.8", "gpu9 = 0.8")),
            ScenarioError::UnknownComponent {
                field: "phases[1].gpu9".into(),
                component: "gpu9".into(),
            }
        );
        assert_eq!(
            error_of(&with("cpu = 0.9", "cpu = 1.5")).field(),
            Some("phases[0].cpu")
        );
        assert_eq!(
            error_of(&with("cpu = 0.9", "cpu = -0.1")).field(),
            Some("phases[0].cpu")
        );
        assert_eq!(
            error_of(&with("at_s = 30", "at_s = -1")).field(),
            Some("phases[1].at_s")
        );
        assert_eq!(
            error_of(&with("at_s = 30", "at_s = 60")).field(),
            Some("phases[1].at_s")
        );
        assert_eq!(
            error_of(&with("at_s = 0\n", "")),
            ScenarioError::MissingField {
                field: "phases[0].at_s".into(),
                needed_by: "a phase",
            }
        );
    }

    #[test]
    fn phases_out_of_order_are_refused() {
        let input = with(
            "at_s = 30\ngpu0 = 0.8",
            "at_s = 30\ngpu0 = 0.8\n\n[[phases]]\nat_s = 20\ncpu = 0.1",
        );
        assert_eq!(
            error_of(&input),
            ScenarioError::NotSorted {
                field: "phases[2].at_s".into(),
                at_s: 20.0,
                previous_at_s: 30.0,
            }
        );
    }

    #[test]
    fn event_errors_name_the_event_and_field() {
        let spike = "[[events]]\nat_s = 10\nkind = \"demand_spike\"\ncomponent = \"gpu9\"\ndemand = 1.0\nduration_s = 5";
        assert_eq!(
            error_of(&format!("{BASE}\n{spike}")),
            ScenarioError::UnknownComponent {
                field: "events[1].component".into(),
                component: "gpu9".into(),
            }
        );
        let fan = "[[events]]\nat_s = 10\nkind = \"fan_degrade\"\ncomponent = \"gpu0\"";
        assert_eq!(
            error_of(&format!("{BASE}\n{fan}")),
            ScenarioError::MissingField {
                field: "events[1].r_factor".into(),
                needed_by: "a fan_degrade event",
            }
        );
        let stray = "[[events]]\nat_s = 10\nkind = \"fan_degrade\"\ncomponent = \"gpu0\"\nr_factor = 1.5\nduration_s = 3";
        assert_eq!(
            error_of(&format!("{BASE}\n{stray}")),
            ScenarioError::UnexpectedField {
                field: "events[1].duration_s".into(),
                kind: "fan_degrade",
            }
        );
        let demand = spike
            .replace("gpu9", "gpu0")
            .replace("demand = 1.0", "demand = 2");
        assert_eq!(
            error_of(&format!("{BASE}\n{demand}")).field(),
            Some("events[1].demand")
        );
        let late = error_of(&with("at_s = 10", "at_s = 61"));
        assert_eq!(late.field(), Some("events[0].at_s"));
    }

    #[test]
    fn job_errors_name_the_component() {
        assert_eq!(
            error_of(&with("gpu0 = 10.0", "gpu3 = 10.0")),
            ScenarioError::UnknownComponent {
                field: "job.gpu3".into(),
                component: "gpu3".into(),
            }
        );
        assert_eq!(
            error_of(&with("gpu0 = 10.0", "gpu0 = 0.0")).field(),
            Some("job.gpu0")
        );
    }

    #[test]
    fn component_names_are_checked() {
        let error = error_of(&with("[components.cpu]", "[components.at_s]"));
        assert_eq!(error.field(), Some("components.at_s"), "{error:?}");
        let empty = error_of(&format!(
            "{}\n[components]\n",
            BASE.split("[components.gpu0]").next().unwrap()
        ));
        assert_eq!(empty.field(), Some("components"), "{empty:?}");
    }

    #[test]
    fn sensor_keys_default_to_exact_sensors_and_parse_when_given() {
        let scenario = Scenario::from_toml_str(BASE).unwrap();
        let gpu = &scenario.components()[1];
        assert_eq!(
            (
                gpu.temp_noise_c,
                gpu.power_noise_w,
                gpu.sensor_lag_ticks,
                gpu.temp_step_c
            ),
            (0.0, 0.0, 0, 0.0)
        );
        let noisy = Scenario::from_toml_str(&with(
            "t_max_c = 87",
            "t_max_c = 87
temp_noise_c = 0.5
power_noise_w = 4
sensor_lag_ticks = 3
temp_step_c = 1",
        ))
        .unwrap();
        let gpu = &noisy.components()[1];
        assert_eq!(
            (
                gpu.temp_noise_c,
                gpu.power_noise_w,
                gpu.sensor_lag_ticks,
                gpu.temp_step_c
            ),
            (0.5, 4.0, 3, 1.0)
        );
    }

    #[test]
    fn bad_sensor_keys_name_the_field() {
        for (line, field) in [
            ("temp_noise_c = -0.1", "components.gpu0.temp_noise_c"),
            ("temp_noise_c = inf", "components.gpu0.temp_noise_c"),
            ("power_noise_w = -1", "components.gpu0.power_noise_w"),
            ("power_noise_w = nan", "components.gpu0.power_noise_w"),
            ("temp_step_c = -1", "components.gpu0.temp_step_c"),
            (
                "sensor_lag_ticks = 10001",
                "components.gpu0.sensor_lag_ticks",
            ),
        ] {
            let error = error_of(&with("t_max_c = 87", &format!("t_max_c = 87\n{line}")));
            assert!(
                matches!(&error, ScenarioError::OutOfRange { field: named, .. } if named == field),
                "{line}: {error:?}"
            );
        }
        for line in ["sensor_lag_ticks = -1", "sensor_lag_ticks = 1.5"] {
            let error = error_of(&with("t_max_c = 87", &format!("t_max_c = 87\n{line}")));
            assert_eq!(
                error.field(),
                Some("components.gpu0.sensor_lag_ticks"),
                "{line}: {error:?}"
            );
        }
    }

    const AMBIENT: &str = "[[events]]\nat_s = 40\nkind = \"ambient\"\nambient_c = 35";

    #[test]
    fn an_ambient_event_parses() {
        let scenario = Scenario::from_toml_str(&format!("{BASE}\n{AMBIENT}")).unwrap();
        assert_eq!(
            scenario.events()[1],
            Event {
                at_s: 40.0,
                kind: EventKind::Ambient { ambient_c: 35.0 }
            }
        );
    }

    #[test]
    fn bad_ambient_events_name_the_field() {
        // With the GPU's t_max_c at 70 °C, 75 °C is too hot (and 70 °C too).
        let cool_gpu = with("t_max_c = 87", "t_max_c = 70");
        let hot = error_of(&format!("{cool_gpu}\n{}", AMBIENT.replace("35", "75")));
        assert!(
            matches!(&hot, ScenarioError::Inconsistent { field, reason }
                if field == "events[1].ambient_c" && reason.contains("`gpu0`")),
            "{hot:?}"
        );
        assert!(matches!(
            error_of(&format!("{cool_gpu}\n{}", AMBIENT.replace("35", "70"))),
            ScenarioError::Inconsistent { .. }
        ));
        assert_eq!(
            error_of(&format!("{BASE}\n{}", AMBIENT.replace("35", "-60"))),
            ScenarioError::OutOfRange {
                field: "events[1].ambient_c".into(),
                value: -60.0,
                expected: "a temperature in [-50, 80] °C",
            }
        );
        assert_eq!(
            error_of(&format!(
                "{BASE}\n{}",
                AMBIENT.replace("\nambient_c = 35", "")
            )),
            ScenarioError::MissingField {
                field: "events[1].ambient_c".into(),
                needed_by: "an ambient event",
            }
        );
        assert_eq!(
            error_of(&format!("{BASE}\n{AMBIENT}\nduration_s = 5")),
            ScenarioError::UnexpectedField {
                field: "events[1].duration_s".into(),
                kind: "ambient",
            }
        );
        assert_eq!(
            error_of(&with("cap_w = 280", "cap_w = 280\nambient_c = 30")),
            ScenarioError::UnexpectedField {
                field: "events[0].ambient_c".into(),
                kind: "cap_drop",
            }
        );
    }

    #[test]
    fn phase_keys_are_not_component_names() {
        for name in ["random", "until_s", "every_s"] {
            let error = error_of(&with("[components.cpu]", &format!("[components.{name}]")));
            assert_eq!(error.field(), Some(format!("components.{name}").as_str()));
        }
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, with("min_w = 100", "min_w = 400")).unwrap();
        let error = Scenario::load(&path).unwrap_err();
        assert!(
            matches!(&error, ScenarioError::InFile { path: named, .. } if *named == path),
            "{error:?}"
        );
        assert_eq!(error.field(), Some("components.gpu0.min_w"));
        assert!(error.to_string().contains("bad.toml"), "{error}");
        let missing = Scenario::load(dir.path().join("absent.toml")).unwrap_err();
        assert!(matches!(missing, ScenarioError::Io { .. }), "{missing:?}");
    }
}
