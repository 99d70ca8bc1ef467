//! Which phases and events are in force at a step of a scenario, worked out from the
//! scenario alone: each component's demand and thermal resistance, and the node cap. The
//! twin steps by it, and anyone who plans ahead (the simulator's oracle) asks it about any
//! step; `docs/twin.md`, "Phases and events", states the rules.
//!
//! # Invariants
//! - every component index in the schedule is below the scenario's component count;
//! - events are kept in the order of their start, file order among equal starts, so the
//!   latest-started cap drop or demand spike in force is the last one applied.

use super::scenario::{EventKind, Scenario, seconds_to_ms};

/// A scenario's phases and events in milliseconds and component indices (scenario order).
#[derive(Debug, Clone)]
pub struct Schedule {
    step_ms: u64,
    base_cap_w: f64,
    base_ambient_c: f64,
    base_r_c_per_w: Vec<f64>,
    /// `(start_ms, [(component, demand)])`, sorted by start (the scenario checks it).
    phases: Vec<(u64, Vec<(usize, f64)>)>,
    /// Sorted by start, file order among equal starts.
    events: Vec<(u64, Change)>,
}

#[derive(Debug, Clone, Copy)]
enum Change {
    CapDrop {
        end_ms: u64,
        cap_w: f64,
    },
    FanDegrade {
        component: usize,
        r_factor: f64,
    },
    DemandSpike {
        end_ms: u64,
        component: usize,
        demand: f64,
    },
    Ambient {
        ambient_c: f64,
    },
}

/// The conditions in force during one step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepConditions {
    /// The node cap: the scenario's, or the latest-started `cap_drop` in force.
    pub cap_w: f64,
    /// Per component, in scenario order: the last phase's demand, or the latest-started
    /// `demand_spike` in force.
    pub demand: Vec<f64>,
    /// Per component, in scenario order: its `r_c_per_w` times every `fan_degrade`
    /// started so far, in start order.
    pub r_c_per_w: Vec<f64>,
    /// The ambient temperature during the step, in °C: the scenario's, or the
    /// latest-started `ambient` event's.
    pub ambient_c: f64,
}

impl Schedule {
    /// Resolves `scenario`'s phases and events once, for any number of questions.
    pub fn new(scenario: &Scenario) -> Schedule {
        let components = scenario.components();
        let index_of = |name: &str| components.iter().position(|spec| spec.name == name);
        // The scenario checked every name, so `index_of` finds each one; an unknown name
        // could only be skipped, never panic.
        let phases = scenario
            .phases()
            .iter()
            .map(|phase| {
                let demands = phase
                    .demands
                    .iter()
                    .filter_map(|(name, demand)| Some((index_of(name)?, *demand)))
                    .collect();
                (seconds_to_ms(phase.at_s), demands)
            })
            .collect();
        let mut events: Vec<(u64, Change)> = scenario
            .events()
            .iter()
            .filter_map(|event| {
                let start_ms = seconds_to_ms(event.at_s);
                let change = match &event.kind {
                    EventKind::CapDrop { cap_w, duration_s } => Change::CapDrop {
                        end_ms: start_ms + seconds_to_ms(*duration_s),
                        cap_w: *cap_w,
                    },
                    EventKind::FanDegrade {
                        component,
                        r_factor,
                    } => Change::FanDegrade {
                        component: index_of(component)?,
                        r_factor: *r_factor,
                    },
                    EventKind::DemandSpike {
                        component,
                        demand,
                        duration_s,
                    } => Change::DemandSpike {
                        end_ms: start_ms + seconds_to_ms(*duration_s),
                        component: index_of(component)?,
                        demand: *demand,
                    },
                    EventKind::Ambient { ambient_c } => Change::Ambient {
                        ambient_c: *ambient_c,
                    },
                };
                Some((start_ms, change))
            })
            .collect();
        // Stable: events that start together keep their file order.
        events.sort_by_key(|(start_ms, _)| *start_ms);
        Schedule {
            step_ms: scenario.step_ms(),
            base_cap_w: scenario.cap_w(),
            base_ambient_c: scenario.ambient_c(),
            base_r_c_per_w: components.iter().map(|spec| spec.r_c_per_w).collect(),
            phases,
            events,
        }
    }

    /// The conditions during step `step`, the one that starts at `step · step_ms`: every
    /// phase and event that starts at or before then applies, and an event with a
    /// duration only while it lasts (it ends before a step that starts at its end).
    /// A pure function of the scenario and `step`; it walks the phases and events that
    /// have started by then.
    pub fn at_step(&self, step: u64) -> StepConditions {
        let mut conditions = StepConditions::default();
        self.at_step_into(step, &mut conditions);
        conditions
    }

    /// [`Schedule::at_step`] written into `conditions`, reusing its vectors, so that the
    /// twin does not allocate on every step.
    pub fn at_step_into(&self, step: u64, conditions: &mut StepConditions) {
        let now_ms = step.saturating_mul(self.step_ms);
        let StepConditions {
            cap_w,
            demand,
            r_c_per_w,
            ambient_c,
        } = conditions;
        *ambient_c = self.base_ambient_c;
        demand.clear();
        demand.resize(self.base_r_c_per_w.len(), 0.0);
        for (start_ms, demands) in &self.phases {
            if *start_ms > now_ms {
                break;
            }
            for &(index, value) in demands {
                if let Some(slot) = demand.get_mut(index) {
                    *slot = value;
                }
            }
        }
        *cap_w = self.base_cap_w;
        r_c_per_w.clone_from(&self.base_r_c_per_w);
        // In start order, so the latest-started drop or spike in force wins.
        for (start_ms, change) in &self.events {
            if *start_ms > now_ms {
                break;
            }
            match *change {
                Change::CapDrop {
                    end_ms,
                    cap_w: dropped_w,
                } if end_ms > now_ms => *cap_w = dropped_w,
                Change::FanDegrade {
                    component,
                    r_factor,
                } => {
                    if let Some(r) = r_c_per_w.get_mut(component) {
                        *r *= r_factor;
                    }
                }
                Change::DemandSpike {
                    end_ms,
                    component,
                    demand: spiked,
                } if end_ms > now_ms => {
                    if let Some(slot) = demand.get_mut(component) {
                        *slot = spiked;
                    }
                }
                Change::Ambient {
                    ambient_c: changed_c,
                } => *ambient_c = changed_c,
                Change::CapDrop { .. } | Change::DemandSpike { .. } => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 10 s scenario at 100 ms steps with a CPU and a GPU, plus `extra` (phases, events).
    fn schedule(extra: &str) -> Schedule {
        let input = format!(
            "name = \"schedule\"\nseed = 1\nduration_s = 10\nstep_ms = 100\nambient_c = 25\n\
             node = {{ cap_w = 400 }}\n\
             [components]\n\
             cpu = {{ kind = \"cpu\", tdp_w = 125, idle_w = 15, min_w = 30, max_w = 150, \
             r_c_per_w = 0.35, c_j_per_c = 60, t_max_c = 95 }}\n\
             gpu0 = {{ kind = \"gpu\", tdp_w = 300, idle_w = 30, min_w = 100, max_w = 350, \
             r_c_per_w = 0.2, c_j_per_c = 150, t_max_c = 87 }}\n\
             {extra}"
        );
        let scenario = Scenario::from_toml_str(&input).unwrap_or_else(|error| panic!("{error}"));
        Schedule::new(&scenario)
    }

    const CPU: usize = 0;
    const GPU: usize = 1;

    #[test]
    fn fan_degradations_compound_from_their_start() {
        let schedule = schedule(
            "[[events]]\nat_s = 2\nkind = \"fan_degrade\"\ncomponent = \"gpu0\"\nr_factor = 1.5\n\
             [[events]]\nat_s = 4\nkind = \"fan_degrade\"\ncomponent = \"gpu0\"\nr_factor = 2",
        );
        let r = |step| schedule.at_step(step).r_c_per_w;
        assert_eq!(r(19), vec![0.35, 0.2]);
        assert_eq!(r(20), vec![0.35, 0.2 * 1.5]);
        assert_eq!(r(40), vec![0.35, 0.2 * 1.5 * 2.0]);
    }

    #[test]
    fn the_latest_spike_in_force_wins_and_the_phase_comes_back_after() {
        let schedule = schedule(
            "[[phases]]\nat_s = 0\ncpu = 0.2\ngpu0 = 0.9\n\
             [[events]]\nat_s = 1\nkind = \"demand_spike\"\ncomponent = \"cpu\"\ndemand = 1.0\nduration_s = 5\n\
             [[events]]\nat_s = 2\nkind = \"demand_spike\"\ncomponent = \"cpu\"\ndemand = 0.5\nduration_s = 1",
        );
        let demand = |step| schedule.at_step(step).demand;
        assert_eq!(demand(9), vec![0.2, 0.9]);
        assert_eq!(demand(10), vec![1.0, 0.9]);
        assert_eq!(demand(20), vec![0.5, 0.9]);
        assert_eq!(demand(30), vec![1.0, 0.9]);
        assert_eq!(demand(60), vec![0.2, 0.9]);
    }

    #[test]
    fn an_ambient_change_holds_from_its_start_and_the_latest_wins() {
        let schedule = schedule(
            "[[events]]\nat_s = 6\nkind = \"ambient\"\nambient_c = 40\n\
             [[events]]\nat_s = 2\nkind = \"ambient\"\nambient_c = 30.5",
        );
        let ambient_c = |step| schedule.at_step(step).ambient_c;
        assert_eq!(
            [
                ambient_c(0),
                ambient_c(19),
                ambient_c(20),
                ambient_c(59),
                ambient_c(60),
                ambient_c(99)
            ],
            [25.0, 25.0, 30.5, 30.5, 40.0, 40.0]
        );
        assert_eq!(schedule.at_step(60).cap_w, 400.0);
    }

    #[test]
    fn events_that_start_together_apply_in_file_order() {
        let schedule = schedule(
            "[[events]]\nat_s = 3\nkind = \"cap_drop\"\ncap_w = 250\nduration_s = 2\n\
             [[events]]\nat_s = 1\nkind = \"cap_drop\"\ncap_w = 350\nduration_s = 5\n\
             [[events]]\nat_s = 3\nkind = \"cap_drop\"\ncap_w = 300\nduration_s = 2",
        );
        let cap_w = |step| schedule.at_step(step).cap_w;
        assert_eq!(
            [cap_w(9), cap_w(10), cap_w(30), cap_w(50), cap_w(60)],
            [400.0, 350.0, 300.0, 350.0, 400.0]
        );
        assert_eq!(schedule.at_step(30).demand[CPU], 0.0);
        assert_eq!(schedule.at_step(30).r_c_per_w[GPU], 0.2);
    }
}
