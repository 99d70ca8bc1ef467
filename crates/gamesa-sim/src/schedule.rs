//! The conditions of any step of a scenario, worked out from the scenario alone: each
//! component's demand and thermal resistance, and the node cap. The oracle plans with
//! it; it follows the twin's rules (`docs/twin.md`, "Phases and events") exactly, which
//! a test checks against the twin's own trace.

use gamesa_hw::twin::{EventKind, Scenario};

/// A scenario's phases and events in milliseconds and component indices.
#[derive(Debug, Clone)]
pub struct Schedule {
    step_ms: u64,
    base_cap_w: f64,
    base_r_c_per_w: Vec<f64>,
    /// `(start_ms, [(component, demand)])`, in file order (sorted by start).
    phases: Vec<(u64, Vec<(usize, f64)>)>,
    /// Sorted by start, file order among equal starts.
    events: Vec<(u64, Change)>,
}

#[derive(Debug, Clone, Copy)]
enum Change {
    Cap {
        end_ms: u64,
        cap_w: f64,
    },
    Resistance {
        component: usize,
        factor: f64,
    },
    Demand {
        end_ms: u64,
        component: usize,
        demand: f64,
    },
}

/// The conditions in force during one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepConditions {
    pub cap_w: f64,
    /// Per component, in scenario order.
    pub demand: Vec<f64>,
    pub r_c_per_w: Vec<f64>,
}

/// Seconds to whole milliseconds, rounded, as the twin does.
fn to_ms(seconds: f64) -> u64 {
    (seconds * 1000.0).round().max(0.0) as u64
}

impl Schedule {
    pub fn new(scenario: &Scenario) -> Schedule {
        let components = scenario.components();
        let index_of = |name: &str| components.iter().position(|spec| spec.name == name);
        let phases = scenario
            .phases()
            .iter()
            .map(|phase| {
                let demands = phase
                    .demands
                    .iter()
                    .filter_map(|(name, demand)| Some((index_of(name)?, *demand)))
                    .collect();
                (to_ms(phase.at_s), demands)
            })
            .collect();
        let mut events: Vec<(u64, Change)> = scenario
            .events()
            .iter()
            .filter_map(|event| {
                let start_ms = to_ms(event.at_s);
                let change = match &event.kind {
                    EventKind::CapDrop { cap_w, duration_s } => Change::Cap {
                        end_ms: start_ms + to_ms(*duration_s),
                        cap_w: *cap_w,
                    },
                    EventKind::FanDegrade {
                        component,
                        r_factor,
                    } => Change::Resistance {
                        component: index_of(component)?,
                        factor: *r_factor,
                    },
                    EventKind::DemandSpike {
                        component,
                        demand,
                        duration_s,
                    } => Change::Demand {
                        end_ms: start_ms + to_ms(*duration_s),
                        component: index_of(component)?,
                        demand: *demand,
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
            base_r_c_per_w: components.iter().map(|spec| spec.r_c_per_w).collect(),
            phases,
            events,
        }
    }

    /// The conditions during step `step` (the one starting at `step · step_ms`).
    pub fn at_step(&self, step: u64) -> StepConditions {
        let now_ms = step.saturating_mul(self.step_ms);
        let mut demand = vec![0.0; self.base_r_c_per_w.len()];
        for (start_ms, demands) in &self.phases {
            if *start_ms > now_ms {
                break;
            }
            for &(index, value) in demands {
                demand[index] = value;
            }
        }
        let mut cap_w = self.base_cap_w;
        let mut r_c_per_w = self.base_r_c_per_w.clone();
        // In start order, so the latest-started drop or spike in force wins.
        for (start_ms, change) in &self.events {
            if *start_ms > now_ms {
                break;
            }
            match *change {
                Change::Cap {
                    end_ms,
                    cap_w: drop,
                } if end_ms > now_ms => cap_w = drop,
                Change::Resistance { component, factor } => r_c_per_w[component] *= factor,
                Change::Demand {
                    end_ms,
                    component,
                    demand: value,
                } if end_ms > now_ms => demand[component] = value,
                Change::Cap { .. } | Change::Demand { .. } => {}
            }
        }
        StepConditions {
            cap_w,
            demand,
            r_c_per_w,
        }
    }
}

#[cfg(test)]
mod tests {
    use gamesa_hw::twin::Twin;

    use super::*;

    #[test]
    fn every_sample_scenario_matches_the_twins_own_trace() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios");
        let mut checked = 0;
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        entries.sort();
        for path in entries {
            let scenario = Scenario::load(&path).unwrap();
            let schedule = Schedule::new(&scenario);
            let mut twin = Twin::new(scenario);
            twin.record_trace();
            twin.run_to_end();
            for (step, traced) in twin.trace().unwrap().steps.iter().enumerate() {
                let conditions = schedule.at_step(step as u64);
                assert_eq!(conditions.cap_w, traced.cap_w, "{path:?} step {step}");
                let demands: Vec<f64> = traced.components.iter().map(|c| c.demand).collect();
                assert_eq!(conditions.demand, demands, "{path:?} step {step}");
            }
            checked += 1;
        }
        assert!(checked >= 8, "only {checked} scenarios");
    }

    #[test]
    fn fan_degradations_compound_from_their_start() {
        let scenario = Scenario::from_toml_str(
            r#"
            name = "fans"
            seed = 1
            duration_s = 10
            step_ms = 100
            ambient_c = 25
            [node]
            cap_w = 300
            [components.gpu0]
            kind = "gpu"
            tdp_w = 300
            idle_w = 30
            min_w = 100
            max_w = 350
            r_c_per_w = 0.2
            c_j_per_c = 150
            t_max_c = 87
            [[events]]
            at_s = 2
            kind = "fan_degrade"
            component = "gpu0"
            r_factor = 1.5
            [[events]]
            at_s = 4
            kind = "fan_degrade"
            component = "gpu0"
            r_factor = 2
            "#,
        )
        .unwrap();
        let schedule = Schedule::new(&scenario);
        let r = |step| schedule.at_step(step).r_c_per_w[0];
        assert_eq!(r(19), 0.2);
        assert!((r(20) - 0.3).abs() < 1e-12);
        assert!((r(40) - 0.6).abs() < 1e-12);
    }
}
