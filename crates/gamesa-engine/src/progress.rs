//! Workloads' progress counters: what clients report over ingress (`progress`), added
//! up per component and written into the telemetry frame where the sensors gave none,
//! with the work their jobs have left where a report said (`left`).
//!
//! # Invariants
//! - a counter only grows: reports add, saturating at `u64::MAX`, and nothing resets it
//!   while the runtime lives
//! - a sensor's own `progress_micro` (the twin's) is never overwritten
//! - a component nobody reported for keeps `progress_micro: None`, so agents fall back on
//!   their utilization prior instead of reading a counter that stands still

use std::collections::BTreeMap;

use gamesa_proto::TelemetryFrame;

/// Cumulative reported work per component, in millionths of the workload's unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgressCounters {
    micro_by_component: BTreeMap<String, u64>,
    left_by_component: BTreeMap<String, u64>,
}

impl ProgressCounters {
    /// Adds `micro` to `component`'s counter; several reporters add up.
    pub fn add(&mut self, component: &str, micro: u64) {
        match self.micro_by_component.get_mut(component) {
            Some(counter) => *counter = counter.saturating_add(micro),
            None => {
                self.micro_by_component.insert(component.to_owned(), micro);
            }
        }
    }

    /// `component`'s counter, once anyone reported for it.
    pub fn get(&self, component: &str) -> Option<u64> {
        self.micro_by_component.get(component).copied()
    }

    /// Sets the work `component`'s job has left: the newest report's.
    pub fn set_left(&mut self, component: &str, micro: u64) {
        self.left_by_component.insert(component.to_owned(), micro);
    }

    /// Sets `progress_micro` (and `work_left_micro`) of every component with a counter
    /// (a report of what is left) whose sensor gave none.
    pub fn fill(&self, frame: &mut TelemetryFrame) {
        for component in &mut frame.components {
            if component.progress_micro.is_none() {
                component.progress_micro = self.get(&component.id);
            }
            if component.work_left_micro.is_none() {
                component.work_left_micro = self.left_by_component.get(&component.id).copied();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{ComponentKind, ComponentTelemetry};

    use super::*;

    fn component(id: &str, progress_micro: Option<u64>) -> ComponentTelemetry {
        ComponentTelemetry {
            utilization_permille: 500,
            progress_micro,
            ..ComponentTelemetry::unread(id, ComponentKind::Gpu)
        }
    }

    fn frame(components: Vec<ComponentTelemetry>) -> TelemetryFrame {
        TelemetryFrame {
            components,
            ..TelemetryFrame::default()
        }
    }

    #[test]
    fn reports_add_up_and_saturate() {
        let mut counters = ProgressCounters::default();
        assert_eq!(counters.get("gpu0"), None);
        counters.add("gpu0", 1_500_000);
        counters.add("gpu0", 2_000_000);
        counters.add("cpu", 0);
        assert_eq!(counters.get("gpu0"), Some(3_500_000));
        assert_eq!(counters.get("cpu"), Some(0));
        counters.add("gpu0", u64::MAX);
        assert_eq!(counters.get("gpu0"), Some(u64::MAX));
    }

    #[test]
    fn the_sensors_own_counter_wins_and_unreported_components_stay_none() {
        let mut counters = ProgressCounters::default();
        counters.add("gpu0", 7);
        counters.add("gpu1", 9);
        counters.add("npu0", 11);
        let mut sampled = frame(vec![
            component("gpu0", None),
            component("gpu1", Some(42)),
            component("cpu", None),
        ]);
        counters.fill(&mut sampled);
        let progress: Vec<_> = sampled
            .components
            .iter()
            .map(|component| (component.id.as_str(), component.progress_micro))
            .collect();
        assert_eq!(
            progress,
            [("gpu0", Some(7)), ("gpu1", Some(42)), ("cpu", None)]
        );
    }

    #[test]
    fn the_work_left_is_the_newest_report_and_a_sensors_own_wins() {
        let mut counters = ProgressCounters::default();
        counters.set_left("gpu0", 500);
        counters.set_left("gpu0", 400);
        counters.set_left("gpu1", 9);
        let mut sampled = frame(vec![
            component("gpu0", None),
            ComponentTelemetry {
                work_left_micro: Some(42),
                ..component("gpu1", None)
            },
            component("cpu", None),
        ]);
        counters.fill(&mut sampled);
        let left: Vec<_> = sampled
            .components
            .iter()
            .map(|component| (component.id.as_str(), component.work_left_micro))
            .collect();
        assert_eq!(
            left,
            [("gpu0", Some(400)), ("gpu1", Some(42)), ("cpu", None)]
        );
    }
}
