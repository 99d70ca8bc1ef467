//! When a node's job will end, read from its own telemetry: the work its components have
//! left (`work_left_micro`, which the workload reports) over the rate their progress
//! counters grew at over the last few seconds.
//!
//! The job's end is what a fleet's time to solution hangs on: the job is done when its
//! last node is, so a watt is worth most to the node that would finish last. A node
//! that cannot tell (no workload says how much is left, or its counters stand still)
//! has no outlook, and bids by its draw and its market's price instead.
//!
//! # Invariants
//! - time is the frames' own `interval_ms` added up: no clock is read here;
//! - an outlook needs [`MIN_SPAN_MS`] of readings, and a component whose counter did
//!   not grow over them gives none (a stalled job's end cannot be told);
//! - every figure saturates: no reading can overflow or divide by zero.

use std::collections::VecDeque;

use gamesa_proto::TelemetryFrame;

/// How far back the rate is measured: long enough to average a few epochs of noise,
/// short enough to follow a change of cap within a few leases.
pub const WINDOW_MS: u64 = 5_000;
/// The least span of readings that gives a rate.
pub const MIN_SPAN_MS: u64 = 2_000;

/// One frame's readings of the components that say how much work they have left.
#[derive(Debug, Clone, PartialEq)]
struct Reading {
    at_ms: u64,
    draw_mw: u64,
    /// `(component, done, left)`, in millionths of the component's unit.
    work: Vec<(String, u64, u64)>,
}

/// When a node's job would end at the power it draws now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outlook {
    /// Time until its slowest component finishes, at the recent rate.
    pub left_ms: u64,
    /// The node's mean draw over the readings that gave the rate.
    pub draw_mw: u64,
}

/// The node's recent progress, frame by frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobPace {
    now_ms: u64,
    readings: VecDeque<Reading>,
}

impl JobPace {
    /// Takes one frame: its interval advances this pace's clock.
    pub fn observe(&mut self, frame: &TelemetryFrame) {
        self.now_ms = self.now_ms.saturating_add(frame.interval_ms);
        let work: Vec<(String, u64, u64)> = frame
            .components
            .iter()
            .filter_map(|component| {
                Some((
                    component.id.clone(),
                    component.progress_micro?,
                    component.work_left_micro?,
                ))
            })
            .collect();
        if work.is_empty() {
            self.readings.clear();
            return;
        }
        self.readings.push_back(Reading {
            at_ms: self.now_ms,
            draw_mw: frame.node.draw_mw.unwrap_or(0),
            work,
        });
        while self
            .readings
            .front()
            .is_some_and(|oldest| self.now_ms - oldest.at_ms > WINDOW_MS)
        {
            self.readings.pop_front();
        }
    }

    /// When the job would end at the recent pace; `None` while that cannot be told.
    /// A job with nothing left has an outlook of zero.
    pub fn outlook(&self) -> Option<Outlook> {
        let (oldest, newest) = (self.readings.front()?, self.readings.back()?);
        let mean_draw_mw = self
            .readings
            .iter()
            .map(|reading| u128::from(reading.draw_mw))
            .sum::<u128>()
            / self.readings.len() as u128;
        let draw_mw = u64::try_from(mean_draw_mw).unwrap_or(u64::MAX);
        if newest.work.iter().all(|(_, _, left)| *left == 0) {
            return Some(Outlook {
                left_ms: 0,
                draw_mw,
            });
        }
        let span_ms = newest.at_ms - oldest.at_ms;
        if span_ms < MIN_SPAN_MS {
            return None;
        }
        let mut left_ms = 0u64;
        for (component, done, left) in &newest.work {
            if *left == 0 {
                continue;
            }
            let before = oldest
                .work
                .iter()
                .find(|(id, _, _)| id == component)
                .map(|(_, done, _)| *done)?;
            let grew = done.checked_sub(before).filter(|grew| *grew > 0)?;
            // left / (grew / span): the time to do the rest at this rate.
            let component_ms = u128::from(*left) * u128::from(span_ms) / u128::from(grew);
            left_ms = left_ms.max(u64::try_from(component_ms).unwrap_or(u64::MAX));
        }
        Some(Outlook { left_ms, draw_mw })
    }
}

#[cfg(test)]
mod tests {
    use gamesa_proto::{ComponentKind, ComponentTelemetry, NodeTelemetry};

    use super::*;

    fn frame(interval_ms: u64, work: &[(&str, u64, Option<u64>)]) -> TelemetryFrame {
        TelemetryFrame {
            interval_ms,
            components: work
                .iter()
                .map(|(id, done, left)| ComponentTelemetry {
                    progress_micro: Some(*done),
                    work_left_micro: *left,
                    ..ComponentTelemetry::unread(*id, ComponentKind::Gpu)
                })
                .collect(),
            node: NodeTelemetry {
                draw_mw: Some(300_000),
                cap_mw: None,
            },
            ..TelemetryFrame::default()
        }
    }

    #[test]
    fn the_slowest_component_sets_the_end_at_the_rate_of_the_last_seconds() {
        let mut pace = JobPace::default();
        // gpu0 does 1 unit/s with 100 left; gpu1 2 units/s with 100 left.
        for second in 0..=10u64 {
            pace.observe(&frame(
                1_000,
                &[
                    ("gpu0", second * 1_000_000, Some(100_000_000)),
                    ("gpu1", second * 2_000_000, Some(100_000_000)),
                ],
            ));
            let outlook = pace.outlook();
            if second < 2 {
                assert_eq!(outlook, None, "too short a span at {second} s");
            } else {
                assert_eq!(
                    outlook,
                    Some(Outlook {
                        left_ms: 100_000,
                        draw_mw: 300_000
                    })
                );
            }
        }
    }

    #[test]
    fn a_stalled_counter_or_a_silent_workload_gives_no_outlook_and_a_done_job_gives_zero() {
        let mut stalled = JobPace::default();
        let mut silent = JobPace::default();
        let mut done = JobPace::default();
        for _ in 0..10 {
            stalled.observe(&frame(1_000, &[("gpu0", 5, Some(10))]));
            silent.observe(&frame(1_000, &[("gpu0", 5, None)]));
            done.observe(&frame(1_000, &[("gpu0", 5, Some(0))]));
        }
        assert_eq!(stalled.outlook(), None);
        assert_eq!(silent.outlook(), None);
        assert_eq!(done.outlook().map(|outlook| outlook.left_ms), Some(0));
    }

    #[test]
    fn readings_at_the_limits_of_the_types_saturate() {
        let mut pace = JobPace::default();
        pace.observe(&frame(u64::MAX, &[("gpu0", 0, Some(u64::MAX))]));
        pace.observe(&frame(u64::MAX, &[("gpu0", 1, Some(u64::MAX))]));
        pace.observe(&frame(0, &[("gpu0", u64::MAX, Some(u64::MAX))]));
        let _ = pace.outlook();
        // A counter that went backwards (a restarted workload) tells nothing.
        let mut reset = JobPace::default();
        for done in [9, 8, 7, 6] {
            reset.observe(&frame(1_000, &[("gpu0", done, Some(10))]));
        }
        assert_eq!(reset.outlook(), None);
    }
}
