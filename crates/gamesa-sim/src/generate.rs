//! Random but plausible scenarios for the twin: a machine (a laptop, a desktop, a
//! workstation or a multi-GPU server), a workload (fixed and random phases), events (cap
//! drops, fan degradations, demand spikes, ambient changes), hidden traits (the work
//! exponent, a utilization bias) and imperfect sensors, drawn from a seed. Pure: it
//! returns the scenario as a struct and as TOML text; `gamesa sim generate` writes them.
//!
//! # Invariants
//! - the same `(seed, index)` gives the same bytes, on any machine (ChaCha8, stream
//!   `index` under `seed`, and every drawn number rounded before it is written);
//! - every generated text parses with `Scenario::from_toml_str`: limits ordered
//!   (`idle_w < tdp_w ≤ max_w`, `min_w ≤ max_w`), every thermal time constant at least
//!   8.9 s against 100 ms steps, every ambient at least 40 °C below every `t_max_c`, every
//!   time inside the duration;
//! - the node cap binds: between 55 % and 95 % of `Σ max_w`, and never below
//!   `1.05 · Σ min_w`, cap drops included, so some split of it is always feasible.

use std::{collections::BTreeMap, fmt};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use thiserror::Error;

/// The step of every generated scenario, in milliseconds.
pub const STEP_MS: u64 = 100;
/// The range of generated durations, in whole seconds.
pub const DURATION_RANGE_S: (u32, u32) = (60, 180);
/// The node cap as a share of `Σ max_w`.
pub const CAP_SHARE: (f64, f64) = (0.55, 0.95);

/// The scenario could not be written as TOML (a bug: every value is plain).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GenerateError {
    #[error("generated scenario `{name}` cannot be written as TOML: {reason}")]
    Toml { name: String, reason: String },
}

/// The kind of machine a scenario models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// A CPU of 15–45 W, usually with a small GPU of 20–115 W.
    Laptop,
    /// A CPU of 65–250 W and a GPU of 100–450 W.
    Desktop,
    /// A CPU of 150–350 W and one or two GPUs of 200–450 W.
    Workstation,
    /// One or two CPUs of 150–400 W and two to eight alike GPUs of 300–700 W.
    Server,
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Machine::Laptop => "laptop",
            Machine::Desktop => "desktop",
            Machine::Workstation => "workstation",
            Machine::Server => "server",
        })
    }
}

/// A generated scenario, field for field as the scenario file spells it
/// (`docs/scenarios.md`). [`GeneratedScenario::to_toml`] writes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeneratedScenario {
    /// Not a key of the file: said in its header comment.
    #[serde(skip)]
    pub machine: Machine,
    pub name: String,
    /// Seeds the scenario's sensor noise and random phases.
    pub seed: u64,
    pub duration_s: u32,
    pub step_ms: u64,
    pub ambient_c: f64,
    pub node: NodeEntry,
    pub components: BTreeMap<String, ComponentEntry>,
    pub phases: Vec<PhaseEntry>,
    pub events: Vec<EventEntry>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub job: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeEntry {
    pub cap_w: f64,
}

/// `[components.NAME]`; the optional keys are left out when at their default.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentEntry {
    pub kind: &'static str,
    pub tdp_w: f64,
    pub idle_w: f64,
    pub min_w: f64,
    pub max_w: f64,
    pub r_c_per_w: f64,
    pub c_j_per_c: f64,
    pub t_max_c: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub perf_exponent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub util_bias: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temp_noise_c: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power_noise_w: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensor_lag_ticks: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temp_step_c: Option<f64>,
}

/// One `[[phases]]` entry, fixed (demands) or random (`random = true`, ranges).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseEntry {
    pub at_s: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub random: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_s: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every_s: Option<f64>,
    #[serde(flatten)]
    pub demands: BTreeMap<String, Demand>,
}

/// A demand (fixed phase) or a `[low, high]` demand range (random phase).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Demand {
    Fixed(f64),
    Range([f64; 2]),
}

/// One `[[events]]` entry; only the fields its kind needs are set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventEntry {
    pub at_s: u32,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap_w: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r_factor: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demand: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ambient_c: Option<f64>,
}

impl EventEntry {
    fn new(at_s: u32, kind: &'static str) -> EventEntry {
        EventEntry {
            at_s,
            kind,
            cap_w: None,
            duration_s: None,
            component: None,
            r_factor: None,
            demand: None,
            ambient_c: None,
        }
    }
}

impl GeneratedScenario {
    /// The file name `gamesa sim generate` writes it to: `NAME.toml`.
    pub fn file_name(&self) -> String {
        format!("{}.toml", self.name)
    }

    /// The scenario file: a header comment, then the keys.
    pub fn to_toml(&self) -> Result<String, GenerateError> {
        let body = toml::to_string(self).map_err(|error| GenerateError::Toml {
            name: self.name.clone(),
            reason: error.to_string(),
        })?;
        let gpus = self.count_of("gpu");
        Ok(format!(
            "# Generated by `gamesa sim generate`: a {} with {} CPU(s) and {gpus} GPU(s),\n\
             # {} s, a {} W cap against {} W of max_w.\n{body}",
            self.machine,
            self.count_of("cpu"),
            self.duration_s,
            self.node.cap_w,
            self.components
                .values()
                .map(|component| component.max_w)
                .sum::<f64>(),
        ))
    }

    fn count_of(&self, kind: &str) -> usize {
        self.components
            .values()
            .filter(|component| component.kind == kind)
            .count()
    }
}

/// The `index`-th scenario of the set drawn from `seed`, named `gen-SEED-INDEX`.
pub fn generate(seed: u64, index: u32) -> GeneratedScenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(u64::from(index));
    Draw { rng: &mut rng }.scenario(format!("gen-{seed}-{index:03}"))
}

/// `count` scenarios drawn from `seed`, as `(file name, TOML text)`, in index order.
pub fn generate_set(seed: u64, count: u32) -> Result<Vec<(String, String)>, GenerateError> {
    (0..count)
        .map(|index| {
            let scenario = generate(seed, index);
            Ok((scenario.file_name(), scenario.to_toml()?))
        })
        .collect()
}

/// One scenario's draws, in a fixed order (changing the order changes every scenario).
struct Draw<'a> {
    rng: &'a mut ChaCha8Rng,
}

impl Draw<'_> {
    fn scenario(&mut self, name: String) -> GeneratedScenario {
        let machine = self.machine();
        let ambient_c = round(self.uniform(18.0, 32.0), 1);
        let components = self.components(machine, ambient_c);
        let max_total_w: f64 = components.values().map(|component| component.max_w).sum();
        let min_total_w: f64 = components.values().map(|component| component.min_w).sum();
        let floor_w = (min_total_w * 1.05).ceil();
        // To 0.1 W, kept inside the share after rounding (a laptop's Σ max_w is small).
        let cap_w = round(max_total_w * self.uniform(CAP_SHARE.0, CAP_SHARE.1), 1)
            .clamp(
                (max_total_w * CAP_SHARE.0 * 10.0).ceil() / 10.0,
                (max_total_w * CAP_SHARE.1 * 10.0).floor() / 10.0,
            )
            .max(floor_w);
        let duration_s = self
            .rng
            .random_range(DURATION_RANGE_S.0..=DURATION_RANGE_S.1);
        let names: Vec<String> = components.keys().cloned().collect();
        let phases = self.phases(&names, duration_s);
        let events = self.events(&names, duration_s, cap_w, floor_w);
        let job = self.job(&components, duration_s);
        GeneratedScenario {
            machine,
            name,
            seed: u64::from(self.rng.random::<u32>()),
            duration_s,
            step_ms: STEP_MS,
            ambient_c,
            node: NodeEntry { cap_w },
            components,
            phases,
            events,
            job,
        }
    }

    fn machine(&mut self) -> Machine {
        match self.rng.random_range(0..20) {
            0..5 => Machine::Laptop,
            5..11 => Machine::Desktop,
            11..15 => Machine::Workstation,
            _ => Machine::Server,
        }
    }

    fn components(&mut self, machine: Machine, ambient_c: f64) -> BTreeMap<String, ComponentEntry> {
        // (CPU count, CPU max_w range, GPU count, GPU max_w range)
        let (cpus, cpu_w, gpus, gpu_w) = match machine {
            Machine::Laptop => (
                1,
                (15.0, 45.0),
                usize::from(self.chance(0.85)),
                (20.0, 115.0),
            ),
            Machine::Desktop => (1, (65.0, 250.0), 1, (100.0, 450.0)),
            Machine::Workstation => (
                1,
                (150.0, 350.0),
                self.rng.random_range(1..=2),
                (200.0, 450.0),
            ),
            Machine::Server => (
                self.rng.random_range(1..=2),
                (150.0, 400.0),
                self.rng.random_range(2..=8),
                (300.0, 700.0),
            ),
        };
        // Each machine's CPUs are one model, and its GPUs another: drawn once, then each
        // unit cooled a little differently and running its own work.
        let mut components = BTreeMap::new();
        let cpu_max_w = self.uniform(cpu_w.0, cpu_w.1).round();
        let poorly_cooled = self.chance(if machine == Machine::Laptop {
            0.6
        } else {
            0.25
        });
        let cpu_model = self.model("cpu", cpu_max_w, ambient_c, poorly_cooled);
        for index in 0..cpus {
            let name = if cpus == 1 {
                "cpu".to_owned()
            } else {
                format!("cpu{index}")
            };
            let unit = self.unit(&cpu_model);
            components.insert(name, unit);
        }
        let gpu_max_w = self.uniform(gpu_w.0, gpu_w.1).round();
        let gpu_model = self.model("gpu", gpu_max_w, ambient_c, poorly_cooled);
        for index in 0..gpus {
            let unit = self.unit(&gpu_model);
            components.insert(format!("gpu{index}"), unit);
        }
        components
    }

    /// A model of part: its limits, thermal design and sensors.
    fn model(
        &mut self,
        kind: &'static str,
        max_w: f64,
        ambient_c: f64,
        poorly_cooled: bool,
    ) -> ComponentEntry {
        let is_cpu = kind == "cpu";
        let tdp_w = (max_w * self.uniform(0.8, 1.0)).round();
        let idle_share = if is_cpu {
            self.uniform(0.04, 0.12)
        } else {
            self.uniform(0.06, 0.15)
        };
        let idle_w = round(max_w * idle_share, 1).max(1.0);
        let min_w = (max_w * self.uniform(0.25, 0.45))
            .round()
            .max((idle_w * 1.5).ceil());
        let t_max_c = if is_cpu {
            self.uniform(90.0, 100.0)
        } else {
            self.uniform(83.0, 92.0)
        }
        .round();
        // At max_w it settles 75 % to 110 % of the way from the ambient to t_max_c, or,
        // in a poorly cooled machine (most laptops, some others), 120 % to 160 %: a part
        // that throttles well below max_w unless the split keeps it cool.
        let share_to_t_max = if poorly_cooled {
            self.uniform(1.2, 1.6)
        } else {
            self.uniform(0.75, 1.1)
        };
        let r_c_per_w = round_significant((t_max_c - ambient_c) * share_to_t_max / max_w, 3);
        let tau_s = self.uniform(10.0, 60.0);
        let c_j_per_c = round_significant(tau_s / r_c_per_w, 3);
        let temp_noise_c = self.chance(0.5).then(|| round(self.uniform(0.2, 1.5), 2));
        let power_noise_w = self
            .chance(0.5)
            .then(|| round(max_w * self.uniform(0.005, 0.03), 2));
        let sensor_lag_ticks = self.chance(0.3).then(|| self.rng.random_range(1..=3));
        let temp_step_c = self
            .chance(0.4)
            .then(|| if self.chance(0.75) { 1.0 } else { 0.5 });
        ComponentEntry {
            kind,
            tdp_w,
            idle_w,
            min_w,
            max_w,
            r_c_per_w,
            c_j_per_c,
            t_max_c,
            weight: None,
            perf_exponent: None,
            util_bias: None,
            temp_noise_c,
            power_noise_w,
            sensor_lag_ticks,
            temp_step_c,
        }
    }

    /// One unit of `model`: its cooling within −10 % to +10 % of the model's (so its time
    /// constant too), and its own work: weight, work exponent, utilization bias.
    fn unit(&mut self, model: &ComponentEntry) -> ComponentEntry {
        let mut unit = model.clone();
        unit.r_c_per_w = round_significant(model.r_c_per_w * self.uniform(0.9, 1.1), 3);
        unit.weight = self
            .chance(0.15)
            .then(|| if self.chance(0.5) { 0.5 } else { 2.0 });
        unit.perf_exponent = self.chance(0.8).then(|| round(self.uniform(0.05, 0.6), 3));
        unit.util_bias = self.chance(0.25).then(|| round(self.uniform(0.0, 0.3), 3));
        unit
    }

    /// A first phase at 0 that sets every component, then fixed phases and random
    /// blocks in turn until the end.
    fn phases(&mut self, names: &[String], duration_s: u32) -> Vec<PhaseEntry> {
        let first = names
            .iter()
            .map(|name| (name.clone(), Demand::Fixed(self.demand())))
            .collect();
        let mut phases = vec![PhaseEntry {
            at_s: 0,
            random: None,
            until_s: None,
            every_s: None,
            demands: first,
        }];
        let mut at_s = self.rng.random_range(10..=40);
        while at_s + 5 < duration_s {
            let subset = self.subset(names);
            if self.chance(0.4) {
                let until_s = (at_s + self.rng.random_range(20..=60)).min(duration_s);
                let demands = subset
                    .into_iter()
                    .map(|name| {
                        let low = round(self.uniform(0.0, 0.6), 2);
                        let high = round(self.uniform(low + 0.1, 1.0), 2).min(1.0);
                        (name, Demand::Range([low, high]))
                    })
                    .collect();
                phases.push(PhaseEntry {
                    at_s,
                    random: Some(true),
                    until_s: Some(until_s),
                    every_s: Some(round(self.uniform(3.0, 15.0), 1)),
                    demands,
                });
                at_s = until_s;
            } else {
                let demands = subset
                    .into_iter()
                    .map(|name| (name, Demand::Fixed(self.demand())))
                    .collect();
                phases.push(PhaseEntry {
                    at_s,
                    random: None,
                    until_s: None,
                    every_s: None,
                    demands,
                });
                at_s += self.rng.random_range(8..=40);
            }
        }
        phases
    }

    /// Idle now and then, saturated often, anything in between otherwise.
    fn demand(&mut self) -> f64 {
        let style = self.uniform(0.0, 1.0);
        let demand = if style < 0.15 {
            self.uniform(0.0, 0.1)
        } else if style < 0.45 {
            self.uniform(0.9, 1.0)
        } else {
            self.uniform(0.2, 0.9)
        };
        round(demand, 2)
    }

    /// Each name with probability 0.7, and at least one.
    fn subset(&mut self, names: &[String]) -> Vec<String> {
        let mut chosen: Vec<String> = names.iter().filter(|_| self.chance(0.7)).cloned().collect();
        if chosen.is_empty()
            && let Some(name) = self.pick(names)
        {
            chosen.push(name);
        }
        chosen
    }

    fn events(
        &mut self,
        names: &[String],
        duration_s: u32,
        cap_w: f64,
        floor_w: f64,
    ) -> Vec<EventEntry> {
        let mut events = Vec::new();
        for _ in 0..self.rng.random_range(0..=2) {
            let mut event = EventEntry::new(self.time(duration_s), "cap_drop");
            event.cap_w = Some(round(cap_w * self.uniform(0.6, 0.85), 1).max(floor_w));
            event.duration_s = Some(self.rng.random_range(5..=30));
            events.push(event);
        }
        if self.chance(0.3) {
            let mut event = EventEntry::new(self.time(duration_s), "fan_degrade");
            event.component = self.pick(names);
            event.r_factor = Some(round(self.uniform(1.2, 1.8), 2));
            events.push(event);
        }
        for _ in 0..self.rng.random_range(0..=3) {
            let mut event = EventEntry::new(self.time(duration_s), "demand_spike");
            event.component = self.pick(names);
            event.demand = Some(round(self.uniform(0.8, 1.0), 2));
            event.duration_s = Some(self.rng.random_range(2..=15));
            events.push(event);
        }
        for _ in 0..self.rng.random_range(0..=2) {
            let mut event = EventEntry::new(self.time(duration_s), "ambient");
            event.ambient_c = Some(round(self.uniform(15.0, 40.0), 1));
            events.push(event);
        }
        // Stable: events at the same second keep the order they were drawn in.
        events.sort_by_key(|event| event.at_s);
        events
    }

    /// Sometimes a job on one component: a fifth to a half of what it would do at full
    /// demand and TDP over the run.
    fn job(
        &mut self,
        components: &BTreeMap<String, ComponentEntry>,
        duration_s: u32,
    ) -> BTreeMap<String, f64> {
        let mut job = BTreeMap::new();
        if self.chance(0.3) {
            let names: Vec<String> = components.keys().cloned().collect();
            if let Some(name) = self.pick(&names) {
                let weight = components
                    .get(&name)
                    .and_then(|component| component.weight)
                    .unwrap_or(1.0);
                let amount = f64::from(duration_s) * self.uniform(0.2, 0.5) * weight;
                job.insert(name, round(amount, 1).max(0.1));
            }
        }
        job
    }

    /// A whole second in `[5, duration_s − 10]`.
    fn time(&mut self, duration_s: u32) -> u32 {
        self.rng
            .random_range(5..=duration_s.saturating_sub(10).max(5))
    }

    fn pick(&mut self, names: &[String]) -> Option<String> {
        if names.is_empty() {
            return None;
        }
        names.get(self.rng.random_range(0..names.len())).cloned()
    }

    fn chance(&mut self, probability: f64) -> bool {
        self.rng.random_bool(probability.clamp(0.0, 1.0))
    }

    fn uniform(&mut self, low: f64, high: f64) -> f64 {
        if high > low {
            self.rng.random_range(low..high)
        } else {
            low
        }
    }
}

/// `value` rounded to `decimals` decimal places.
fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10_f64.powi(decimals);
    (value * scale).round() / scale
}

/// `value` (positive) rounded to `digits` significant digits.
fn round_significant(value: f64, digits: i32) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return value;
    }
    let magnitude = value.log10().floor() as i32;
    round(value, digits - 1 - magnitude)
}

#[cfg(test)]
mod tests {
    use gamesa_hw::twin::Scenario;

    use super::*;

    fn parsed(seed: u64, index: u32) -> (GeneratedScenario, Scenario) {
        let generated = generate(seed, index);
        let text = generated.to_toml().unwrap();
        let scenario = Scenario::from_toml_str(&text)
            .unwrap_or_else(|error| panic!("seed {seed} index {index}: {error}\n{text}"));
        (generated, scenario)
    }

    #[test]
    fn every_generated_scenario_parses_and_its_cap_binds() {
        let mut machines = Vec::new();
        for seed in 0..300 {
            let (generated, scenario) = parsed(seed, (seed % 7) as u32);
            let max_total_w: f64 = scenario.components().iter().map(|c| c.max_w).sum();
            let share = scenario.cap_w() / max_total_w;
            assert!((0.55..=0.95).contains(&share), "seed {seed}: {share}");
            let min_total_w: f64 = scenario.components().iter().map(|c| c.min_w).sum();
            assert!(scenario.cap_w() >= min_total_w * 1.05, "seed {seed}");
            assert!((60.0..=180.0).contains(&scenario.duration_s()));
            assert_eq!(scenario.step_ms(), STEP_MS);
            assert_eq!(scenario.name(), generated.name);
            for component in scenario.components() {
                let tau_s = component.r_c_per_w * component.c_j_per_c;
                assert!((8.9..=66.1).contains(&tau_s), "seed {seed}: {tau_s}");
                assert!(component.tdp_w <= component.max_w);
            }
            machines.push(generated.machine);
        }
        for machine in [
            Machine::Laptop,
            Machine::Desktop,
            Machine::Workstation,
            Machine::Server,
        ] {
            assert!(machines.contains(&machine), "{machine}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_seed_others() {
        let first = generate_set(42, 5).unwrap();
        assert_eq!(first, generate_set(42, 5).unwrap());
        assert_ne!(first, generate_set(43, 5).unwrap());
        assert_eq!(first[3].0, "gen-42-003.toml");
        // Each index is its own stream: a longer set starts with the shorter one.
        assert_eq!(generate_set(42, 8).unwrap()[..5], first[..]);
        let texts: Vec<&String> = first.iter().map(|(_, text)| text).collect();
        assert!(texts.windows(2).all(|pair| pair[0] != pair[1]));
    }

    #[test]
    fn a_set_uses_the_new_keys() {
        let texts: String = generate_set(7, 40)
            .unwrap()
            .into_iter()
            .map(|(_, text)| text)
            .collect();
        for key in [
            "random = true",
            "until_s",
            "every_s",
            "kind = \"cap_drop\"",
            "kind = \"fan_degrade\"",
            "kind = \"demand_spike\"",
            "kind = \"ambient\"",
            "perf_exponent",
            "util_bias",
            "temp_noise_c",
            "power_noise_w",
            "sensor_lag_ticks",
            "temp_step_c",
            "[job]",
        ] {
            assert!(texts.contains(key), "{key}");
        }
    }

    #[test]
    fn a_server_has_two_to_eight_gpus_of_one_model() {
        let server = (0..200)
            .map(|seed| generate(seed, 0))
            .find(|scenario| scenario.machine == Machine::Server)
            .unwrap();
        let gpus: Vec<&ComponentEntry> = server
            .components
            .iter()
            .filter(|(name, _)| name.starts_with("gpu"))
            .map(|(_, component)| component)
            .collect();
        assert!((2..=8).contains(&gpus.len()));
        assert!(gpus.iter().all(|gpu| gpu.max_w == gpus[0].max_w));
        assert!(gpus.iter().all(|gpu| gpu.t_max_c == gpus[0].t_max_c));
    }

    #[test]
    fn rounding_keeps_significant_digits() {
        assert_eq!(round(1.23456, 2), 1.23);
        assert_eq!(round_significant(0.012345, 3), 0.0123);
        assert_eq!(round_significant(1234.5, 3), 1230.0);
    }
}
