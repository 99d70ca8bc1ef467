//! The `balancer` baseline: a feedback power balancer that measures what each component
//! does with its watts and moves budget, a step at a time, to where a watt does most.
//!
//! The idea is GEOPM's `power_balancer` agent: under a fixed job budget it does not
//! model the hardware, it experiments. It moves power away from the hosts whose progress
//! does not suffer when their limit comes down and gives it to the ones holding the job
//! back, in small steps, measuring after each step, so the budget drifts to where it
//! buys the most progress while the total stays at the budget. Here the hosts are a
//! node's components, and the measure is each one's progress per watt.
//!
//! It knows only what a deployment knows: the node cap and each component's progress
//! counter (`progress_micro`), draw (`power_mw`) and utilization from telemetry, and each
//! limit's range from a datasheet. Never the work model (`perf_exponent`), the thermal
//! resistance, the idle power or the demand. Progress units are taken as comparable
//! across components (on the twin they are: one unit is a second at TDP and full
//! demand), and each component's progress counts by the weight the operator gives it
//! (the scenario's `weight`, which `fit` also gives the market's agents).
//!
//! Every [`PERIOD_S`] of telemetry, [`Balancer::rebalance`]:
//! 1. **learns** each component's marginal return, `Δ progress rate / Δ power` between
//!    this period and the last, from the moves it made itself (a sample needs at least
//!    [`MIN_SAMPLE_DELTA_W`] of change in power; a change of utilization by more than
//!    [`MAX_UTILIZATION_CHANGE`] means the workload changed, and the estimate is
//!    dropped until a new move measures it);
//! 2. **frees** what a component does not use: a limit more than a slack above the
//!    component's draw is not what holds it back (more would add nothing), and comes
//!    down to the draw plus twice the slack;
//! 3. **hands out** the freed watts and any of the cap left over to the components held
//!    back by their limits, those without an estimate first (so that each is measured),
//!    then the highest marginal return first; a component that came within
//!    [`THERMAL_GUARD_C`] of its `t_max` (from telemetry) gets nothing and gives up a
//!    step instead, since its watts would buy heat and a safety hold rather than lasting
//!    progress (GEOPM leaves heat to the hardware; here the guardian's safety hold would
//!    cost more than the watts);
//! 4. **moves** at most [`MOVE_SHARE`] of the cap from the component with the lowest
//!    marginal return to the one with the highest, both held back by their limits, when
//!    the highest beats the lowest by more than [`HYSTERESIS`] (or when the receiver has
//!    no estimate yet: a probe).
//!
//! Between periods the split changes in two cases. When the cap drops below it, every
//! limit comes down toward its minimum in proportion to what it holds above it. When a
//! component's utilization jumps by more than [`MAX_UTILIZATION_CHANGE`] from one frame
//! to the next, the workload changed: its estimate is dropped, steps 2 to 4 run at once
//! on that frame's draws (a component whose demand fell frees its watts to one whose
//! demand rose, now rather than up to a period later), and a new period starts.
//!
//! # Invariants
//! - every limit lies within its component's `[min_w, max_w]`;
//! - the limits add up to at most the cap, unless the minimums alone exceed it.

use gamesa_agent::proto::TelemetryFrame;

use super::{ComponentBounds, static_equal};

/// How much telemetry one measurement covers, in seconds.
pub const PERIOD_S: f64 = 1.0;
/// The most of the cap one period's move shifts from one component to another.
pub const MOVE_SHARE: f64 = 0.03;
/// A move needs the receiver's marginal return to beat the donor's by this share.
pub const HYSTERESIS: f64 = 0.1;
/// Smallest change in a component's mean power that gives a marginal-return sample.
pub const MIN_SAMPLE_DELTA_W: f64 = 1.0;
/// A larger change in utilization between periods means the workload changed.
pub const MAX_UTILIZATION_CHANGE: f64 = 0.02;
/// Weight of a new sample in a component's marginal-return estimate.
pub const SAMPLE_WEIGHT: f64 = 0.5;
/// A component that came within this many °C of its `t_max` during a period gets no
/// more watts: they would buy heat, then a safety hold, not lasting progress.
pub const THERMAL_GUARD_C: f64 = 3.0;
/// A limit within this share of the draw (at least [`MIN_SLACK_W`]) is holding the
/// component back.
pub const SLACK_SHARE: f64 = 0.02;
pub const MIN_SLACK_W: f64 = 2.0;

/// What one component did over one period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeriodSample {
    /// Progress per second, in the component's own units.
    pub rate: f64,
    /// Mean power drawn, in W.
    pub power_w: f64,
    /// Mean utilization in `[0, 1]`.
    pub utilization: f64,
    /// The least the component was below its `t_max` during the period, in °C, when
    /// telemetry gave its temperature and `t_max`.
    pub thermal_margin_c: Option<f64>,
}

/// What the period in progress has added up so far.
#[derive(Debug, Clone, Default)]
struct Period {
    elapsed_s: f64,
    /// Each component's progress counter when the period started, in millionths.
    progress_start: Vec<Option<u64>>,
    progress_now: Vec<Option<u64>>,
    energy_j: Vec<f64>,
    utilization_s: Vec<f64>,
    thermal_margin_c: Vec<Option<f64>>,
}

impl Period {
    fn starting_at(frame: &TelemetryFrame, components: &[ComponentBounds]) -> Period {
        let progress: Vec<Option<u64>> = components
            .iter()
            .map(|component| {
                frame
                    .component(&component.name)
                    .and_then(|telemetry| telemetry.progress_micro)
            })
            .collect();
        Period {
            elapsed_s: 0.0,
            progress_start: progress.clone(),
            progress_now: progress,
            energy_j: vec![0.0; components.len()],
            utilization_s: vec![0.0; components.len()],
            thermal_margin_c: vec![None; components.len()],
        }
    }

    fn add(&mut self, frame: &TelemetryFrame, components: &[ComponentBounds]) {
        let interval_s = frame.interval_ms as f64 / 1000.0;
        if interval_s <= 0.0 {
            return;
        }
        self.elapsed_s += interval_s;
        for (index, component) in components.iter().enumerate() {
            let Some(telemetry) = frame.component(&component.name) else {
                continue;
            };
            let power_w = telemetry.power_mw.map_or(0.0, |mw| mw as f64 / 1000.0);
            self.energy_j[index] += power_w * interval_s;
            self.utilization_s[index] +=
                f64::from(telemetry.utilization_permille) / 1000.0 * interval_s;
            if let (Some(temp_mc), Some(t_max_mc)) = (telemetry.temp_mc, telemetry.t_max_mc) {
                let margin_c = f64::from(t_max_mc - temp_mc) / 1000.0;
                let least = &mut self.thermal_margin_c[index];
                *least = Some(least.map_or(margin_c, |least: f64| least.min(margin_c)));
            }
            if telemetry.progress_micro.is_some() {
                self.progress_now[index] = telemetry.progress_micro;
            }
        }
    }

    /// Each component's sample, `None` for one without a progress counter.
    fn samples(&self) -> Vec<Option<PeriodSample>> {
        (0..self.energy_j.len())
            .map(|index| {
                let start = self.progress_start[index]?;
                let now = self.progress_now[index]?;
                Some(PeriodSample {
                    rate: now.saturating_sub(start) as f64 / 1e6 / self.elapsed_s,
                    power_w: self.energy_j[index] / self.elapsed_s,
                    utilization: self.utilization_s[index] / self.elapsed_s,
                    thermal_margin_c: self.thermal_margin_c[index],
                })
            })
            .collect()
    }
}

/// The balancer's state: the split it holds, what it measured and what it learned.
#[derive(Debug, Clone)]
pub struct Balancer {
    components: Vec<ComponentBounds>,
    /// How much a unit of each component's progress counts.
    weights: Vec<f64>,
    /// The split in force; `None` until the first frame.
    limits_w: Option<Vec<f64>>,
    period: Option<Period>,
    previous: Vec<Option<PeriodSample>>,
    /// Each component's marginal return, weighted progress per second per W.
    gain: Vec<Option<f64>>,
    /// Which component without an estimate is probed first next time (round robin).
    next_probe: usize,
    /// Each component's utilization in the last frame, to see a workload change.
    last_utilization: Vec<Option<f64>>,
}

impl Balancer {
    /// A balancer for `components`, whose progress counts by `weights` (1 where
    /// missing).
    pub fn new(components: Vec<ComponentBounds>, weights: &[f64]) -> Balancer {
        let count = components.len();
        let weights = (0..count)
            .map(|index| weights.get(index).copied().unwrap_or(1.0))
            .collect();
        Balancer {
            components,
            weights,
            limits_w: None,
            period: None,
            previous: vec![None; count],
            gain: vec![None; count],
            next_probe: 0,
            last_utilization: vec![None; count],
        }
    }

    /// Each component's marginal return as estimated so far.
    pub fn gains(&self) -> &[Option<f64>] {
        &self.gain
    }

    /// Takes in one frame and returns the split for `cap_w`. The first split is the
    /// equal one (`static-equal`).
    pub fn decide(&mut self, frame: &TelemetryFrame, cap_w: f64) -> Vec<f64> {
        if self.limits_w.is_none() {
            self.limits_w = Some(static_equal::split(cap_w, &self.components));
        }
        match &mut self.period {
            None => self.period = Some(Period::starting_at(frame, &self.components)),
            Some(period) => period.add(frame, &self.components),
        }
        if self.workload_changed(frame) {
            // Act on the new workload now rather than at the end of the period, and
            // measure it from here: the old samples say nothing about it.
            let samples = self.instant_samples(frame);
            self.previous = vec![None; self.components.len()];
            let limits = self.limits_w.take().unwrap_or_default();
            self.redistribute(cap_w, &samples, limits);
            self.period = Some(Period::starting_at(frame, &self.components));
        } else if let Some(period) = self
            .period
            .take_if(|period| period.elapsed_s >= PERIOD_S - 1e-9)
        {
            let samples = period.samples();
            self.rebalance(cap_w, &samples);
            self.period = Some(Period::starting_at(frame, &self.components));
        }
        self.fit_under(cap_w);
        self.limits_w.clone().unwrap_or_default()
    }

    /// Whether a component's utilization moved by more than [`MAX_UTILIZATION_CHANGE`]
    /// since the last frame; the estimates of those that did are dropped.
    fn workload_changed(&mut self, frame: &TelemetryFrame) -> bool {
        let mut changed = false;
        for ((component, last), gain) in self
            .components
            .iter()
            .zip(&mut self.last_utilization)
            .zip(&mut self.gain)
        {
            let Some(telemetry) = frame.component(&component.name) else {
                continue;
            };
            let utilization = f64::from(telemetry.utilization_permille) / 1000.0;
            if last.is_some_and(|last| (utilization - last).abs() > MAX_UTILIZATION_CHANGE) {
                *gain = None;
                changed = true;
            }
            *last = Some(utilization);
        }
        changed
    }

    /// What `frame` alone says of each component: its draw, utilization and thermal
    /// margin (no rate: one frame cannot tell one), `None` where the period's sample
    /// would be.
    fn instant_samples(&self, frame: &TelemetryFrame) -> Vec<Option<PeriodSample>> {
        self.components
            .iter()
            .map(|component| {
                let telemetry = frame.component(&component.name)?;
                telemetry.progress_micro?;
                Some(PeriodSample {
                    rate: 0.0,
                    power_w: telemetry.power_mw? as f64 / 1000.0,
                    utilization: f64::from(telemetry.utilization_permille) / 1000.0,
                    thermal_margin_c: telemetry
                        .temp_mc
                        .zip(telemetry.t_max_mc)
                        .map(|(temp_mc, t_max_mc)| f64::from(t_max_mc - temp_mc) / 1000.0),
                })
            })
            .collect()
    }

    /// One period's learning and moves (see the module docs), from each component's
    /// sample over the period just ended (`None` where it has no progress counter: such
    /// a component keeps its limit).
    pub fn rebalance(&mut self, cap_w: f64, samples: &[Option<PeriodSample>]) {
        let limits = self
            .limits_w
            .take()
            .unwrap_or_else(|| static_equal::split(cap_w, &self.components));
        let measured = self.gain.iter_mut().zip(&self.weights);
        for (((gain, weight), before), now) in measured.zip(&self.previous).zip(samples) {
            let (Some(before), Some(now)) = (before, now) else {
                continue;
            };
            if (now.utilization - before.utilization).abs() > MAX_UTILIZATION_CHANGE {
                *gain = None;
                continue;
            }
            let delta_w = now.power_w - before.power_w;
            if delta_w.abs() >= MIN_SAMPLE_DELTA_W {
                let sample = (weight * (now.rate - before.rate) / delta_w).max(0.0);
                *gain = Some(match *gain {
                    None => sample,
                    Some(estimate) => estimate + (sample - estimate) * SAMPLE_WEIGHT,
                });
            }
        }
        self.previous = samples.to_vec();
        self.redistribute(cap_w, samples, limits);
    }

    /// Steps 2 to 4 of a period (free, hand out, move) on `limits`, which become the
    /// split in force.
    fn redistribute(&mut self, cap_w: f64, samples: &[Option<PeriodSample>], mut limits: Vec<f64>) {
        let count = self.components.len();
        // Free what is not used, and a step of what heats a component near its t_max.
        let cool = |index: usize| {
            samples[index]
                .and_then(|sample| sample.thermal_margin_c)
                .is_none_or(|margin_c| margin_c >= THERMAL_GUARD_C)
        };
        let step_w = MOVE_SHARE * cap_w;
        let mut held_back = vec![false; count];
        let mut pool_w = 0.0;
        for (index, component) in self.components.iter().enumerate() {
            let Some(sample) = samples[index] else {
                continue;
            };
            if !cool(index) {
                let shed_w = step_w.min(limits[index] - component.min_w).max(0.0);
                limits[index] -= shed_w;
                pool_w += shed_w;
            }
            let slack_w = (SLACK_SHARE * sample.power_w).max(MIN_SLACK_W);
            if sample.power_w >= limits[index] - slack_w {
                held_back[index] = true;
                continue;
            }
            let lowered_w = (sample.power_w + 2.0 * slack_w).max(component.min_w);
            if lowered_w < limits[index] {
                pool_w += limits[index] - lowered_w;
                limits[index] = lowered_w;
            }
        }
        pool_w += (cap_w - limits.iter().sum::<f64>() - pool_w).max(0.0);

        // Hand out: unmeasured first, from the probe pointer on, then by marginal return.
        let room = |limits: &[f64], index: usize| self.components[index].max_w - limits[index];
        let mut receivers: Vec<usize> = (0..count)
            .map(|offset| (self.next_probe + offset) % count)
            .filter(|&index| held_back[index] && cool(index))
            .collect();
        receivers.sort_by(|&a, &b| {
            let rank = |index: usize| self.gain[index].unwrap_or(f64::INFINITY);
            rank(b).total_cmp(&rank(a))
        });
        for &index in &receivers {
            let given_w = room(&limits, index).min(pool_w).max(0.0);
            limits[index] += given_w;
            pool_w -= given_w;
        }

        // Move one step from the lowest marginal return to the highest.
        let Some(&receiver) = receivers.iter().find(|&&index| room(&limits, index) > 1e-9) else {
            self.limits_w = Some(limits);
            return;
        };
        // Only a component held back by its limit gives: one that is not has just given
        // what it does not use, and more would cut into what it draws, unmeasured.
        let donor = (0..count)
            .filter(|&index| index != receiver && held_back[index])
            .filter(|&index| limits[index] > self.components[index].min_w + 1e-9)
            .min_by(|&a, &b| {
                let rank = |index: usize| self.gain[index].unwrap_or(f64::INFINITY);
                rank(a).total_cmp(&rank(b))
            });
        if let Some(donor) = donor {
            let worth_it = match (self.gain[receiver], self.gain[donor]) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(receiver_gain), Some(donor_gain)) => {
                    receiver_gain > donor_gain * (1.0 + HYSTERESIS)
                }
            };
            if worth_it {
                let moved_w = step_w
                    .min(room(&limits, receiver))
                    .min(limits[donor] - self.components[donor].min_w);
                limits[donor] -= moved_w;
                limits[receiver] += moved_w;
                if self.gain[receiver].is_none() {
                    self.next_probe = (receiver + 1) % count;
                }
            }
        }
        self.limits_w = Some(limits);
    }

    /// Brings the split under `cap_w` when the cap dropped: every limit comes down
    /// toward its minimum in proportion to what it holds above it.
    fn fit_under(&mut self, cap_w: f64) {
        let Some(limits) = &mut self.limits_w else {
            return;
        };
        let total_w: f64 = limits.iter().sum();
        if total_w <= cap_w {
            return;
        }
        let floor_w: f64 = self.components.iter().map(|c| c.min_w).sum();
        let above_w = total_w - floor_w;
        let keep = if above_w > 0.0 {
            ((cap_w - floor_w) / above_w).clamp(0.0, 1.0)
        } else {
            0.0
        };
        for (limit, component) in limits.iter_mut().zip(&self.components) {
            *limit = component.min_w + (*limit - component.min_w) * keep;
        }
    }
}

#[cfg(test)]
mod tests {
    use gamesa_agent::proto::{ComponentKind, ComponentTelemetry};

    use super::*;
    use crate::policy::static_equal::tests::cpu_and_gpu;

    fn sample(rate: f64, power_w: f64) -> Option<PeriodSample> {
        Some(PeriodSample {
            rate,
            power_w,
            utilization: 1.0,
            thermal_margin_c: Some(20.0),
        })
    }

    fn total(limits: &[f64]) -> f64 {
        limits.iter().sum()
    }

    #[test]
    fn unmeasured_components_are_probed_then_the_better_one_gets_the_watts() {
        let mut balancer = Balancer::new(cpu_and_gpu(), &[1.0, 1.0]);
        balancer.limits_w = Some(vec![150.0, 250.0]);
        // Both draw their limits: both held back, neither measured. The CPU (first) is
        // probed, but it has no room (150 W is its maximum): the GPU is, with 3 % of
        // 400 W = 12 W from the CPU.
        balancer.rebalance(400.0, &[sample(1.0, 150.0), sample(1.0, 250.0)]);
        assert_eq!(balancer.limits_w, Some(vec![138.0, 262.0]));
        // The GPU's 12 W gave it 0.024 units/s (0.002 per W); the CPU lost 0.012 for
        // 12 W (0.001 per W): both measured, the GPU gets another step.
        balancer.rebalance(400.0, &[sample(0.988, 138.0), sample(1.024, 262.0)]);
        let gains = balancer.gains().to_vec();
        assert!((gains[0].unwrap() - 0.001).abs() < 1e-12, "{gains:?}");
        assert!((gains[1].unwrap() - 0.002).abs() < 1e-12, "{gains:?}");
        assert_eq!(balancer.limits_w, Some(vec![126.0, 274.0]));
        // The next 12 W gave the GPU only 0.0024 (0.0002 per W; the estimate halves
        // toward it: 0.0011) and cost the CPU 0.0124 (0.00103 per W, estimate 0.00102):
        // within the 10 % hysteresis, so the split stays.
        balancer.rebalance(400.0, &[sample(0.9756, 126.0), sample(1.0264, 274.0)]);
        let gains = balancer.gains();
        assert!((gains[1].unwrap() - 0.0011).abs() < 1e-9, "{gains:?}");
        assert_eq!(balancer.limits_w, Some(vec![126.0, 274.0]));
    }

    #[test]
    fn progress_counts_by_weight() {
        // The same measurements as above, but a CPU unit counts three times a GPU unit:
        // 0.003 per W against 0.002, so the watts go back to the CPU.
        let mut balancer = Balancer::new(cpu_and_gpu(), &[3.0, 1.0]);
        balancer.limits_w = Some(vec![150.0, 250.0]);
        balancer.rebalance(400.0, &[sample(1.0, 150.0), sample(1.0, 250.0)]);
        balancer.rebalance(400.0, &[sample(0.988, 138.0), sample(1.024, 262.0)]);
        let gains = balancer.gains();
        assert!((gains[0].unwrap() - 0.003).abs() < 1e-12, "{gains:?}");
        assert_eq!(balancer.limits_w, Some(vec![150.0, 250.0]));
    }

    #[test]
    fn unused_watts_go_to_the_component_held_back() {
        let mut balancer = Balancer::new(cpu_and_gpu(), &[1.0, 1.0]);
        balancer.limits_w = Some(vec![150.0, 250.0]);
        // The CPU draws 60 W of its 150 W: it keeps 60 + 2 · 2 = 64 W, and the 86 W it
        // frees go to the GPU, which draws its whole limit.
        balancer.rebalance(400.0, &[sample(0.5, 60.0), sample(1.0, 250.0)]);
        assert_eq!(balancer.limits_w, Some(vec![64.0, 336.0]));
        assert_eq!(total(balancer.limits_w.as_deref().unwrap()), 400.0);
    }

    /// A frame of the CPU and GPU at these utilizations and draws, cool.
    fn frame(utilization: [f64; 2], power_w: [f64; 2]) -> TelemetryFrame {
        let component = |id: &str, index: usize| ComponentTelemetry {
            id: id.into(),
            kind: ComponentKind::Gpu,
            utilization_permille: (utilization[index] * 1000.0) as u16,
            power_mw: Some((power_w[index] * 1000.0) as u64),
            temp_mc: Some(50_000),
            t_max_mc: Some(90_000),
            limit_mw: None,
            limit_min_mw: None,
            limit_max_mw: None,
            progress_micro: Some(0),
            work_left_micro: None,
        };
        TelemetryFrame {
            interval_ms: 100,
            components: vec![component("cpu", 0), component("gpu0", 1)],
            ..TelemetryFrame::default()
        }
    }

    #[test]
    fn a_workload_change_moves_the_watts_at_once() {
        let mut balancer = Balancer::new(cpu_and_gpu(), &[1.0, 1.0]);
        balancer.limits_w = Some(vec![150.0, 100.0]);
        // The CPU is busy and the GPU nearly idle (62 W of its 100 W minimum).
        let split = balancer.decide(&frame([0.95, 0.1], [150.0, 62.0]), 400.0);
        assert_eq!(split, vec![150.0, 100.0]);
        // Mid-period the two swap. The CPU draws 28.5 W: it keeps 28.5 + 2 · 2 W, and
        // the GPU, at its limit, gets what that frees and the 150 W left of the cap,
        // up to its 350 W maximum, on this very frame.
        let split = balancer.decide(&frame([0.1, 0.95], [28.5, 100.0]), 400.0);
        assert_eq!(split, vec![32.5, 350.0]);
    }

    #[test]
    fn a_component_near_its_t_max_gets_no_more_watts() {
        let mut balancer = Balancer::new(cpu_and_gpu(), &[1.0, 1.0]);
        balancer.limits_w = Some(vec![150.0, 250.0]);
        // The GPU is held back but came within 2 °C of its t_max: it gives up a step
        // (12 W), and neither that nor the CPU's unused 86 W go to it; the CPU keeps the
        // 64 W it needs, and the rest stays unassigned, under the cap.
        let hot = Some(PeriodSample {
            thermal_margin_c: Some(2.0),
            ..sample(1.0, 250.0).unwrap()
        });
        balancer.rebalance(400.0, &[sample(0.5, 60.0), hot]);
        assert_eq!(balancer.limits_w, Some(vec![64.0, 238.0]));
    }

    #[test]
    fn a_changed_workload_is_measured_again_and_a_cap_drop_is_followed_at_once() {
        let mut balancer = Balancer::new(cpu_and_gpu(), &[1.0, 1.0]);
        balancer.limits_w = Some(vec![150.0, 250.0]);
        balancer.rebalance(400.0, &[sample(1.0, 150.0), sample(1.0, 250.0)]);
        balancer.rebalance(400.0, &[sample(0.988, 138.0), sample(1.024, 262.0)]);
        assert!(balancer.gains().iter().all(Option::is_some));
        let changed = Some(PeriodSample {
            utilization: 0.5,
            ..sample(0.6, 274.0).unwrap()
        });
        balancer.rebalance(400.0, &[sample(0.976, 126.0), changed]);
        // The GPU's estimate is dropped, and it is probed again with 12 W.
        assert_eq!(balancer.gains()[1], None);
        assert_eq!(balancer.limits_w, Some(vec![114.0, 286.0]));

        // 400 → 280 W: 114 + 286 = 400 W, 270 W above the minimums, of which 150 W
        // may stay: each keeps 150/270 of what it holds above its minimum.
        let frame = TelemetryFrame::default();
        let split = balancer.decide(&frame, 280.0);
        assert!((total(&split) - 280.0).abs() < 1e-9, "{split:?}");
        assert!((split[0] - (30.0 + 84.0 * 150.0 / 270.0)).abs() < 1e-9);
        assert!(split.iter().zip(cpu_and_gpu()).all(|(l, c)| *l >= c.min_w));
    }
}
