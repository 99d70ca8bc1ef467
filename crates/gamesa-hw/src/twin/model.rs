//! The twin core: a deterministic, clock-free model of the machine a scenario describes,
//! advanced one step of `step_ms` at a time under the power limits last set.
//!
//! # Invariants
//! - every limit is kept clamped to its component's `[min_w, max_w]`;
//! - components are always visited in scenario order (sorted by name), events in the
//!   order of their start (file order among equal starts), so a run is a pure function
//!   of the scenario and of the limits set between steps;
//! - once `steps()` steps are done the model is frozen: `step` does nothing, so the
//!   report always covers exactly the scenario's duration;
//! - the physics, the report and the trace only ever read true values; what the sensors
//!   report (lagged, noisy, quantized) is kept apart, for the telemetry frame alone.

use gamesa_proto::ComponentKind;

use super::{
    cap_window::CapWindow,
    physics::{self, ComponentConstants},
    report::{ComponentReport, TwinReport},
    scenario::Scenario,
    schedule::{Schedule, StepConditions},
    sensor_model::{Reading, SensorModel},
    trace::{Trace, TraceComponent, TraceStep},
};

/// The simulated machine. Drive it with [`Twin::step`] (or through
/// [`super::TwinSensors`]) and set limits with [`Twin::set_limit_w`].
#[derive(Debug, Clone)]
pub struct Twin {
    scenario: Scenario,
    dt_s: f64,
    steps_total: u64,
    steps_done: u64,
    pub(super) components: Vec<ComponentState>,
    schedule: Schedule,
    /// The schedule's conditions for the current step; kept so that its vectors are
    /// reused from step to step.
    conditions: StepConditions,
    /// The node cap during the last step (the scenario's cap before the first).
    pub(super) cap_w: f64,
    cap_window: CapWindow,
    over_cap_steps: u64,
    max_overshoot_w: f64,
    trace: Option<Trace>,
    /// A component whose job is done idles from then on (a worker waiting at its
    /// job's barrier), instead of following the phases.
    idle_when_done: bool,
}

/// One component's state: what the physics carries from step to step, what the last
/// step did (for telemetry), and the running totals (for the report).
#[derive(Debug, Clone)]
pub(super) struct ComponentState {
    pub name: String,
    pub kind: ComponentKind,
    pub constants: ComponentConstants,
    /// The scenario's, times the `fan_degrade` events so far.
    pub r_c_per_w: f64,
    pub limit_w: f64,
    pub initial_limit_w: f64,
    pub temp_c: f64,
    /// Demand, draw and throttle of the last step.
    pub demand: f64,
    pub power_w: f64,
    pub throttled: bool,
    /// Hidden from the agents: what reported utilization adds to the demand.
    pub util_bias: f64,
    /// Weighted work so far.
    pub work: f64,
    /// The component's sensors, and what they reported for the last step: the only
    /// temperature and power the telemetry frame shows.
    sensors: SensorModel,
    pub reported: Reading,
    energy_j: f64,
    throttled_steps: u64,
    peak_temp_c: f64,
    job: Option<f64>,
    time_to_solution_s: Option<f64>,
}

impl ComponentState {
    /// Weighted work the scenario's `[job]` still asks of it, once it has one.
    pub fn work_left(&self) -> Option<f64> {
        self.job.map(|job| (job - self.work).max(0.0))
    }
}

impl Twin {
    /// A twin at the start of `scenario`: every component at ambient temperature, at its
    /// initial limit (`tdp_w` clamped to `[min_w, max_w]`), at demand 0 until a phase
    /// says otherwise.
    pub fn new(scenario: Scenario) -> Twin {
        let ambient_c = scenario.ambient_c();
        let components: Vec<ComponentState> = scenario
            .components()
            .iter()
            .enumerate()
            .map(|(index, spec)| {
                let initial = Reading {
                    temp_c: ambient_c,
                    power_w: spec.idle_w,
                };
                ComponentState {
                    name: spec.name.clone(),
                    kind: spec.kind,
                    constants: ComponentConstants::of(spec),
                    r_c_per_w: spec.r_c_per_w,
                    limit_w: spec.initial_limit_w(),
                    initial_limit_w: spec.initial_limit_w(),
                    temp_c: ambient_c,
                    demand: 0.0,
                    power_w: spec.idle_w,
                    throttled: false,
                    util_bias: spec.util_bias,
                    work: 0.0,
                    sensors: SensorModel::new(spec, scenario.seed(), index, initial),
                    reported: initial,
                    energy_j: 0.0,
                    throttled_steps: 0,
                    peak_temp_c: ambient_c,
                    job: scenario.job().get(&spec.name).copied(),
                    time_to_solution_s: None,
                }
            })
            .collect();
        let schedule = Schedule::new(&scenario);
        Twin {
            dt_s: scenario.step_ms() as f64 / 1000.0,
            steps_total: scenario.steps(),
            steps_done: 0,
            components,
            schedule,
            conditions: StepConditions::default(),
            cap_w: scenario.cap_w(),
            cap_window: CapWindow::new(scenario.step_ms()),
            over_cap_steps: 0,
            max_overshoot_w: 0.0,
            trace: None,
            idle_when_done: false,
            scenario,
        }
    }

    /// Starts recording a [`Trace`] of every following step (off by default: it
    /// allocates on every step).
    /// From now on, a component that has done its `[job]` idles (demand 0) instead of
    /// following the phases: a node of a fleet's job, waiting for the others at the
    /// barrier (`gamesa sim --fleet`).
    pub fn idle_when_done(&mut self) {
        self.idle_when_done = true;
    }

    pub fn record_trace(&mut self) {
        if self.trace.is_none() {
            self.trace = Some(Trace {
                components: self.component_names().map(str::to_owned).collect(),
                steps: Vec::new(),
            });
        }
    }

    /// The trace recorded so far, if [`Twin::record_trace`] was called.
    pub fn trace(&self) -> Option<&Trace> {
        self.trace.as_ref()
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Component names, in the order every per-component list follows.
    pub fn component_names(&self) -> impl Iterator<Item = &str> {
        self.components
            .iter()
            .map(|component| component.name.as_str())
    }

    pub fn component_index(&self, name: &str) -> Option<usize> {
        self.components
            .iter()
            .position(|component| component.name == name)
    }

    /// The limit in force for component `index`, in watts.
    pub fn limit_w(&self, index: usize) -> Option<f64> {
        Some(self.components.get(index)?.limit_w)
    }

    /// The limit component `index` started with and is restored to.
    pub fn initial_limit_w(&self, index: usize) -> Option<f64> {
        Some(self.components.get(index)?.initial_limit_w)
    }

    /// Temperature of component `index` now (the end of the last step).
    pub fn temp_c(&self, index: usize) -> Option<f64> {
        Some(self.components.get(index)?.temp_c)
    }

    /// Sets the power limit of component `index`, clamped to `[min_w, max_w]`, for the
    /// following steps. Returns the limit now in force, or `None` for an unknown index.
    pub fn set_limit_w(&mut self, index: usize, limit_w: f64) -> Option<f64> {
        let component = self.components.get_mut(index)?;
        let limit_w = if limit_w.is_nan() {
            component.limit_w
        } else {
            limit_w.clamp(component.constants.min_w, component.constants.max_w)
        };
        component.limit_w = limit_w;
        Some(limit_w)
    }

    /// Every limit back to its initial value.
    pub fn restore_initial_limits(&mut self) {
        for component in &mut self.components {
            component.limit_w = component.initial_limit_w;
        }
    }

    /// The step length, in seconds.
    pub fn dt_s(&self) -> f64 {
        self.dt_s
    }

    pub fn steps_done(&self) -> u64 {
        self.steps_done
    }

    /// Steps so far that were over the cap (what the report's `over_cap_s` counts),
    /// without building a report.
    pub fn over_cap_steps(&self) -> u64 {
        self.over_cap_steps
    }

    /// The number of steps the scenario runs.
    pub fn steps_total(&self) -> u64 {
        self.steps_total
    }

    /// Simulated time so far: the end of the last step, in seconds.
    pub fn time_s(&self) -> f64 {
        self.time_ms(self.steps_done) as f64 / 1000.0
    }

    pub fn is_finished(&self) -> bool {
        self.steps_done >= self.steps_total
    }

    fn time_ms(&self, steps: u64) -> u64 {
        steps * self.scenario.step_ms()
    }

    /// Advances the model by one step under the limits in force. Returns `false`, and
    /// changes nothing, once the scenario's duration is covered.
    pub fn step(&mut self) -> bool {
        if self.is_finished() {
            return false;
        }
        self.apply_schedule();

        let ambient_c = self.conditions.ambient_c;
        let dt_s = self.dt_s;
        let end_s = self.time_ms(self.steps_done + 1) as f64 / 1000.0;
        let mut draw_w = 0.0;
        for component in &mut self.components {
            let outcome = physics::step(
                &component.constants,
                component.limit_w,
                component.demand,
                component.temp_c,
                component.r_c_per_w,
                ambient_c,
                dt_s,
            );
            component.power_w = outcome.power_w;
            component.throttled = outcome.throttled;
            component.temp_c = outcome.temp_c;
            component.work += outcome.work;
            component.energy_j += outcome.power_w * dt_s;
            component.throttled_steps += u64::from(outcome.throttled);
            component.peak_temp_c = component.peak_temp_c.max(outcome.temp_c);
            component.reported = component.sensors.observe(Reading {
                temp_c: outcome.temp_c,
                power_w: outcome.power_w,
            });
            if let Some(job) = component.job
                && component.time_to_solution_s.is_none()
                && component.work >= job
            {
                component.time_to_solution_s = Some(end_s);
            }
            draw_w += outcome.power_w;
        }

        let check = self.cap_window.push(draw_w, self.cap_w);
        self.over_cap_steps += u64::from(check.over);
        self.max_overshoot_w = self.max_overshoot_w.max(check.overshoot_w());

        if let Some(trace) = &mut self.trace {
            trace.steps.push(TraceStep {
                time_s: end_s,
                cap_w: self.cap_w,
                draw_w,
                over_cap: check.over,
                components: self
                    .components
                    .iter()
                    .map(|component| TraceComponent {
                        limit_w: component.limit_w,
                        power_w: component.power_w,
                        temp_c: component.temp_c,
                        demand: component.demand,
                        throttled: component.throttled,
                    })
                    .collect(),
            });
        }
        self.steps_done += 1;
        true
    }

    /// Runs every remaining step under the limits in force.
    pub fn run_to_end(&mut self) {
        while self.step() {}
    }

    /// Total draw of the last step, in watts.
    pub fn draw_w(&self) -> f64 {
        self.components
            .iter()
            .map(|component| component.power_w)
            .sum()
    }

    /// Sets this step's cap, demands and thermal resistances from the schedule.
    fn apply_schedule(&mut self) {
        let conditions = &mut self.conditions;
        self.schedule.at_step_into(self.steps_done, conditions);
        self.cap_w = conditions.cap_w;
        for ((component, &demand), &r_c_per_w) in self
            .components
            .iter_mut()
            .zip(&conditions.demand)
            .zip(&conditions.r_c_per_w)
        {
            component.demand = if self.idle_when_done && component.time_to_solution_s.is_some() {
                0.0
            } else {
                demand
            };
            component.r_c_per_w = r_c_per_w;
        }
    }

    /// The figures of the run so far.
    pub fn report(&self) -> TwinReport {
        let dt_s = self.dt_s;
        let components: Vec<ComponentReport> = self
            .components
            .iter()
            .map(|component| ComponentReport {
                name: component.name.clone(),
                kind: component.kind,
                work: component.work,
                energy_j: component.energy_j,
                throttled_s: component.throttled_steps as f64 * dt_s,
                peak_temp_c: component.peak_temp_c,
                job: component.job,
                time_to_solution_s: component.time_to_solution_s,
            })
            .collect();
        TwinReport {
            scenario: self.scenario.name().to_owned(),
            seed: self.scenario.seed(),
            steps: self.steps_done,
            simulated_s: self.time_s(),
            work: components.iter().map(|component| component.work).sum(),
            energy_j: components.iter().map(|component| component.energy_j).sum(),
            throttled_s: components
                .iter()
                .map(|component| component.throttled_s)
                .sum(),
            over_cap_s: self.over_cap_steps as f64 * dt_s,
            max_overshoot_w: self.max_overshoot_w,
            components,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One CPU and one GPU with the sample scenarios' constants, plus `extra` lines
    /// (phases, events, job) appended.
    fn scenario(duration_s: u32, cap_w: u32, extra: &str) -> Scenario {
        let input = format!(
            r#"
name = "test"
seed = 42
duration_s = {duration_s}
step_ms = 100
ambient_c = 25
[node]
cap_w = {cap_w}
[components.cpu]
kind = "cpu"
tdp_w = 125
idle_w = 15
min_w = 30
max_w = 150
r_c_per_w = 0.35
c_j_per_c = 60
t_max_c = 95
[components.gpu0]
kind = "gpu"
tdp_w = 300
idle_w = 30
min_w = 100
max_w = 350
r_c_per_w = 0.2
c_j_per_c = 150
t_max_c = 87
{extra}
"#
        );
        Scenario::from_toml_str(&input).unwrap_or_else(|error| panic!("{error}"))
    }

    const CPU: usize = 0;
    const GPU: usize = 1;

    fn traced(scenario: Scenario) -> Twin {
        let mut twin = Twin::new(scenario);
        twin.record_trace();
        twin
    }

    /// The value of `pick` for component `index` at the step ending at `time_s`.
    fn at(twin: &Twin, time_s: f64, index: usize, pick: fn(&TraceComponent) -> f64) -> f64 {
        let trace = twin.trace().unwrap();
        let step = trace
            .steps
            .iter()
            .find(|step| (step.time_s - time_s).abs() < 1e-9)
            .unwrap();
        pick(&step.components[index])
    }

    #[test]
    fn it_starts_at_ambient_with_initial_limits_and_no_demand() {
        let mut twin = Twin::new(scenario(10, 400, ""));
        assert_eq!(twin.temp_c(CPU), Some(25.0));
        assert_eq!(twin.limit_w(CPU), Some(125.0));
        assert_eq!(twin.limit_w(GPU), Some(300.0));
        twin.step();
        // No phase: demand 0, idle power, no work.
        assert_eq!(twin.draw_w(), 15.0 + 30.0);
        assert_eq!(twin.report().work, 0.0);
    }

    #[test]
    fn a_phase_sets_only_the_components_it_names() {
        let mut twin = traced(scenario(
            20,
            400,
            "[[phases]]\nat_s = 0\ncpu = 0.9\ngpu0 = 0.1\n[[phases]]\nat_s = 10\ngpu0 = 0.8",
        ));
        twin.run_to_end();
        let demand = |component: &TraceComponent| component.demand;
        assert_eq!(at(&twin, 10.0, CPU, demand), 0.9);
        assert_eq!(at(&twin, 10.0, GPU, demand), 0.1);
        // The step from 10.0 s to 10.1 s is the first of the second phase.
        assert_eq!(at(&twin, 10.1, CPU, demand), 0.9);
        assert_eq!(at(&twin, 10.1, GPU, demand), 0.8);
    }

    #[test]
    fn limits_are_clamped_and_follow_the_actuations() {
        let mut twin = Twin::new(scenario(10, 400, "[[phases]]\nat_s = 0\ncpu = 1\ngpu0 = 1"));
        assert_eq!(twin.set_limit_w(GPU, 1_000.0), Some(350.0));
        assert_eq!(twin.set_limit_w(CPU, 5.0), Some(30.0));
        assert_eq!(twin.set_limit_w(7, 100.0), None);
        twin.step();
        assert_eq!(twin.draw_w(), 30.0 + 350.0);
        twin.restore_initial_limits();
        twin.step();
        assert_eq!(twin.draw_w(), 125.0 + 300.0);
    }

    #[test]
    fn the_run_stops_at_the_scenario_duration() {
        let mut twin = Twin::new(scenario(3, 400, "[[phases]]\nat_s = 0\ncpu = 1"));
        twin.run_to_end();
        assert_eq!(twin.steps_done(), 30);
        assert_eq!(twin.time_s(), 3.0);
        let before = twin.report();
        assert!(!twin.step());
        assert_eq!(twin.report(), before);
        assert_eq!(before.simulated_s, 3.0);
    }

    #[test]
    fn a_cap_drop_lowers_the_cap_for_its_duration_and_counts_time_over_it() {
        // Draw held at exactly the 400 W cap (150 + 250 W at full demand). The cap drops
        // to 280 W from 50 s to 70 s. The averaged cap falls below 400 / 1.01 = 396.0 W
        // at the first step of the drop ((9 · 400 + 280) / 10 = 388 W) and climbs back
        // above it only when the window again holds ten steps at 400 W, 0.9 s after the
        // drop ends (9 steps give 280 + 12 · 9 = 388 W). Over: 20 + 0.9 = 20.9 s. The
        // largest overshoot is 400 − 280 = 120 W, once the window is full of the drop.
        let mut twin = traced(scenario(
            100,
            400,
            "[[phases]]\nat_s = 0\ncpu = 1\ngpu0 = 1\n\
             [[events]]\nat_s = 50\nkind = \"cap_drop\"\ncap_w = 280\nduration_s = 20",
        ));
        twin.set_limit_w(CPU, 150.0);
        twin.set_limit_w(GPU, 250.0);
        twin.run_to_end();
        let trace = twin.trace().unwrap();
        let cap_at = |time_s: f64| {
            trace
                .steps
                .iter()
                .find(|step| (step.time_s - time_s).abs() < 1e-9)
                .unwrap()
                .cap_w
        };
        assert_eq!(cap_at(50.0), 400.0);
        assert_eq!(cap_at(50.1), 280.0);
        assert_eq!(cap_at(70.0), 280.0);
        assert_eq!(cap_at(70.1), 400.0);
        let report = twin.report();
        assert!(
            (report.over_cap_s - 20.9).abs() < 1e-9,
            "{}",
            report.over_cap_s
        );
        assert!((report.max_overshoot_w - 120.0).abs() < 1e-9);
    }

    #[test]
    fn a_fan_degradation_multiplies_r_from_then_on() {
        // GPU at its 100 W minimum limit and full demand: it settles at 25 + 100 · 0.2
        // = 45 °C; after R × 1.5 at 400 s (13 time constants of 30 s) it settles at
        // 25 + 100 · 0.3 = 55 °C (8.9 time constants of 45 s later).
        let mut twin = Twin::new(scenario(
            800,
            400,
            "[[phases]]\nat_s = 0\ngpu0 = 1\n\
             [[events]]\nat_s = 400\nkind = \"fan_degrade\"\ncomponent = \"gpu0\"\nr_factor = 1.5",
        ));
        twin.set_limit_w(GPU, 100.0);
        while twin.time_s() < 400.0 {
            twin.step();
        }
        let before_c = twin.temp_c(GPU).unwrap();
        assert!((before_c - 45.0).abs() < 0.01, "{before_c}");
        twin.run_to_end();
        let after_c = twin.temp_c(GPU).unwrap();
        assert!((after_c - 55.0).abs() < 0.01, "{after_c}");
        // The CPU's R is untouched: idle at 15 W it sits at 25 + 15 · 0.35 = 30.25 °C.
        assert!((twin.temp_c(CPU).unwrap() - 30.25).abs() < 0.01);
    }

    #[test]
    fn a_demand_spike_overrides_the_phase_for_its_duration() {
        let mut twin = traced(scenario(
            30,
            400,
            "[[phases]]\nat_s = 0\ncpu = 0.2\ngpu0 = 0.9\n\
             [[events]]\nat_s = 10\nkind = \"demand_spike\"\ncomponent = \"cpu\"\ndemand = 1.0\nduration_s = 5",
        ));
        twin.run_to_end();
        let demand = |component: &TraceComponent| component.demand;
        assert_eq!(at(&twin, 10.0, CPU, demand), 0.2);
        assert_eq!(at(&twin, 10.1, CPU, demand), 1.0);
        assert_eq!(at(&twin, 15.0, CPU, demand), 1.0);
        assert_eq!(at(&twin, 15.1, CPU, demand), 0.2);
        // The GPU is not affected.
        assert_eq!(at(&twin, 12.0, GPU, demand), 0.9);
    }

    #[test]
    fn overlapping_cap_drops_take_the_latest() {
        let mut twin = traced(scenario(
            30,
            400,
            "[[events]]\nat_s = 5\nkind = \"cap_drop\"\ncap_w = 300\nduration_s = 10\n\
             [[events]]\nat_s = 8\nkind = \"cap_drop\"\ncap_w = 350\nduration_s = 2",
        ));
        twin.run_to_end();
        let cap_at = |time_s: f64| {
            twin.trace()
                .unwrap()
                .steps
                .iter()
                .find(|step| (step.time_s - time_s).abs() < 1e-9)
                .unwrap()
                .cap_w
        };
        assert_eq!(
            [cap_at(6.0), cap_at(9.0), cap_at(11.0), cap_at(16.0)],
            [300.0, 350.0, 300.0, 400.0]
        );
    }

    #[test]
    fn the_report_adds_up_and_gives_time_to_solution() {
        // The GPU at full demand and its 300 W TDP limit does 1 unit per second; it
        // stays below t_max (steady state 85 °C < 87 °C), so the 20-unit job is done
        // after 20 s (the end of the step in which the sum of 0.1-unit steps crosses 20).
        let mut twin = Twin::new(scenario(
            40,
            400,
            "[[phases]]\nat_s = 0\ncpu = 0.5\ngpu0 = 1\n[job]\ngpu0 = 20.0\ncpu = 1000.0",
        ));
        twin.run_to_end();
        let report = twin.report();
        let gpu = report.component("gpu0").unwrap();
        let cpu = report.component("cpu").unwrap();
        assert!((gpu.work - 40.0).abs() < 1e-9, "{}", gpu.work);
        let time_to_solution_s = gpu.time_to_solution_s.unwrap();
        assert!((20.0..=20.1 + 1e-9).contains(&time_to_solution_s));
        assert_eq!(cpu.time_to_solution_s, None);
        assert_eq!(gpu.energy_j, 300.0 * 40.0);
        assert_eq!(report.work, cpu.work + gpu.work);
        assert_eq!(report.energy_j, cpu.energy_j + gpu.energy_j);
        assert_eq!(report.throttled_s, 0.0);
        assert!(gpu.peak_temp_c < 87.0 && gpu.peak_temp_c > 60.0);
    }

    #[test]
    fn a_component_too_hot_spends_time_throttled() {
        // The GPU at 350 W heads for 25 + 350 · 0.2 = 95 °C, over its 87 °C t_max, and
        // spends its time from then on toggling the throttle.
        let mut twin = Twin::new(scenario(300, 600, "[[phases]]\nat_s = 0\ngpu0 = 1"));
        twin.set_limit_w(GPU, 350.0);
        twin.run_to_end();
        let report = twin.report();
        let gpu = report.component("gpu0").unwrap();
        assert!(gpu.throttled_s > 10.0, "{}", gpu.throttled_s);
        assert!(
            gpu.peak_temp_c >= 87.0 && gpu.peak_temp_c < 87.5,
            "{}",
            gpu.peak_temp_c
        );
        assert_eq!(report.throttled_s, gpu.throttled_s);
    }

    #[test]
    fn an_ambient_change_moves_the_temperature_it_settles_at() {
        // The GPU at its 100 W minimum limit settles at 25 + 100 · 0.2 = 45 °C, then, once
        // the ambient is 35 °C, at 55 °C.
        let mut twin = Twin::new(scenario(
            800,
            400,
            "[[phases]]\nat_s = 0\ngpu0 = 1\n\
             [[events]]\nat_s = 400\nkind = \"ambient\"\nambient_c = 35",
        ));
        twin.set_limit_w(GPU, 100.0);
        while twin.time_s() < 400.0 {
            twin.step();
        }
        assert!((twin.temp_c(GPU).unwrap() - 45.0).abs() < 0.01);
        twin.run_to_end();
        assert!((twin.temp_c(GPU).unwrap() - 55.0).abs() < 0.01);
    }

    #[test]
    fn two_runs_give_identical_bytes() {
        let run = || {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/training.toml");
            let mut twin = traced(Scenario::load(path).unwrap());
            // Limits changed mid-run, as a controller would.
            for step in 0..twin.steps_total() {
                if step % 50 == 0 {
                    let gpu_w = 200.0 + (step % 150) as f64;
                    twin.set_limit_w(GPU, gpu_w);
                    twin.set_limit_w(CPU, 400.0 - gpu_w);
                }
                twin.step();
            }
            (
                serde_json::to_vec(&twin.report()).unwrap(),
                serde_json::to_vec(twin.trace().unwrap()).unwrap(),
            )
        };
        let (first_report, first_trace) = run();
        let (second_report, second_trace) = run();
        assert_eq!(first_report, second_report);
        assert_eq!(first_trace, second_trace);
        assert!(first_trace.len() > 100_000);
    }
}
