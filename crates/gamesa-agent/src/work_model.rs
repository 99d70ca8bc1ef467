//! What one more watt is worth to a component, learned online from its own progress:
//! the elasticity of its work rate to its power limit, fitted on the changes it sees.
//!
//! Nothing here assumes a law of the hardware. A component that reports progress (a
//! performance counter, frames, training steps: [`ComponentTelemetry::progress_micro`])
//! gives a work rate `r` at each limit `L`. Locally, `r ≈ k · L^ε`: the *elasticity* `ε`
//! says how much work one more percent of power buys (about 1/3 for a compute-bound part
//! whose frequency goes as the cube root of power; near 0 for a memory-bound one that
//! power barely helps). So the marginal work of one more watt at `L` is
//! `ε · r(L) / L`, and along a ladder of limits `L'` above or below, `ε · r · L'^(ε−1) /
//! L^ε`.
//!
//! `ε` is fitted by least squares through the origin on first differences,
//! `Δln r ≈ ε · Δln L`, over consecutive ticks in which the limit held the component
//! back (it drew at least [`BOUND_SHARE`] of its limit before the change). Differences
//! make the fit blind to what moves the rate while the limit stands still (a workload
//! that changes phase, a throttle), and the scale `k` never needs fitting: the current
//! rate gives it. The fit is shrunk toward a prior (ridge regression) by
//! [`PRIOR_WEIGHT`], so few or weak changes move it little, and old changes fade only
//! as new ones arrive (directional forgetting), so a limit that holds still for minutes
//! keeps what was learned. A change whose implied elasticity is not physical (work
//! falling with more power, or rising faster than power) is a confounded sample and is
//! left out.
//!
//! # Invariants
//! - `elasticity()` is finite and within `[0, MAX_ELASTICITY]`;
//! - `rate()` is `None` until two progress readings a positive interval apart were
//!   seen, and then finite and non-negative.

use gamesa_proto::ComponentTelemetry;

/// The elasticity assumed before any change was seen: the cube-root law of voltage and
/// frequency scaling (dynamic power goes as `f · V²` with `V` roughly proportional to
/// `f`, so `f ∝ P^(1/3)`), the upper end for real parts, most of which are partly
/// memory-bound. Shrinkage toward it fades as changes are seen.
pub const PRIOR_ELASTICITY: f64 = 1.0 / 3.0;
/// How much the prior weighs, in squared log-changes of the limit: as much as one change
/// of 10 %.
pub const PRIOR_WEIGHT: f64 = 0.01;
/// The weight the past keeps when a change of 10 % arrives (and `0.95^((x/0.1)²)` for a
/// change `x`): the last twenty or so large changes count.
const FORGETTING_PER_TENTH_SQUARED: f64 = 0.95;
/// Work cannot grow faster than power (that would be a convex law).
pub const MAX_ELASTICITY: f64 = 1.0;
/// The implied elasticities a single change may show and still be kept: a little
/// outside `[0, 1]` for measurement noise.
const PLAUSIBLE: std::ops::RangeInclusive<f64> = -0.2..=1.5;
/// A limit holds its component back while the component draws at least this share of
/// it.
pub const BOUND_SHARE: f64 = 0.95;
/// Changes of the limit smaller than this (in ln) say nothing above the noise.
const MIN_LOG_CHANGE: f64 = 0.002;
/// Weight of the newest tick's rate in the smoothed rate.
const RATE_SMOOTHING: f64 = 0.5;

/// One tick's reading of the component, kept for the next difference.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    progress_micro: u64,
    limit_mw: u64,
    /// Its rate over the interval that ended at this reading, in units per second.
    rate: Option<f64>,
    bound: bool,
}

/// The learned elasticity, the current rate, and the last reading.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkModel {
    /// `Σ x²` and `Σ x·y` of kept changes, `x = Δln L`, `y = Δln r`, faded.
    sum_xx: f64,
    sum_xy: f64,
    /// Changes kept so far.
    changes: u32,
    last: Option<Reading>,
    /// The smoothed work rate, units per second.
    rate: Option<f64>,
}

impl WorkModel {
    /// Takes in one tick's telemetry of the component, `interval_ms` after the last. A
    /// frame without progress, limit or power reading teaches nothing (and the next
    /// difference starts afresh); a counter that went backwards (a restarted workload)
    /// starts afresh too.
    pub fn observe(&mut self, component: &ComponentTelemetry, interval_ms: u64) {
        let (Some(progress_micro), Some(limit_mw)) = (component.progress_micro, component.limit_mw)
        else {
            self.last = None;
            return;
        };
        let bound = component
            .power_mw
            .is_some_and(|power_mw| power_mw as f64 >= BOUND_SHARE * limit_mw as f64);
        let previous = self.last.take();
        let rate = previous.and_then(|previous| {
            let done = progress_micro.checked_sub(previous.progress_micro)?;
            (interval_ms > 0).then(|| done as f64 / 1e6 / (interval_ms as f64 / 1000.0))
        });
        if let Some(rate) = rate {
            self.rate = Some(match self.rate {
                Some(smoothed) => smoothed + (rate - smoothed) * RATE_SMOOTHING,
                None => rate,
            });
        }
        if let (Some(previous), Some(rate)) = (previous, rate)
            && let Some(previous_rate) = previous.rate
        {
            self.learn(previous, previous_rate, limit_mw, rate);
        }
        self.last = Some(Reading {
            progress_micro,
            limit_mw,
            rate,
            bound,
        });
    }

    fn learn(&mut self, previous: Reading, previous_rate: f64, limit_mw: u64, rate: f64) {
        if !previous.bound || previous.limit_mw == 0 || limit_mw == 0 {
            return;
        }
        if previous_rate <= 0.0 || rate <= 0.0 {
            return;
        }
        let x = (limit_mw as f64).ln() - (previous.limit_mw as f64).ln();
        if x.abs() < MIN_LOG_CHANGE {
            return;
        }
        let y = rate.ln() - previous_rate.ln();
        if !PLAUSIBLE.contains(&(y / x)) {
            return;
        }
        let fade = FORGETTING_PER_TENTH_SQUARED.powf((x / 0.1).powi(2));
        self.sum_xx = self.sum_xx * fade + x * x;
        self.sum_xy = self.sum_xy * fade + x * y;
        self.changes = self.changes.saturating_add(1);
    }

    /// The elasticity of work to the limit: the fit, shrunk toward [`PRIOR_ELASTICITY`].
    pub fn elasticity(&self) -> f64 {
        let fitted = (self.sum_xy + PRIOR_WEIGHT * PRIOR_ELASTICITY) / (self.sum_xx + PRIOR_WEIGHT);
        if fitted.is_finite() {
            fitted.clamp(0.0, MAX_ELASTICITY)
        } else {
            PRIOR_ELASTICITY
        }
    }

    /// Changes of the limit learned from so far.
    pub fn changes(&self) -> u32 {
        self.changes
    }

    /// The smoothed work rate, units per second; `None` before two progress readings.
    pub fn rate(&self) -> Option<f64> {
        self.rate.filter(|rate| rate.is_finite() && *rate >= 0.0)
    }

    /// The marginal work per second of one more watt at limit `at_mw`, extrapolated from
    /// the current rate at `limit_mw` with the learned elasticity; `None` without a rate.
    pub fn marginal_per_w(&self, limit_mw: u64, at_mw: f64) -> Option<f64> {
        let rate = self.rate()?;
        let limit_w = limit_mw as f64 / 1000.0;
        let at_w = at_mw.max(1.0) / 1000.0;
        if limit_w <= 0.0 {
            return None;
        }
        let elasticity = self.elasticity();
        let marginal = elasticity * rate / limit_w * (at_w / limit_w).powf(elasticity - 1.0);
        marginal.is_finite().then_some(marginal.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use gamesa_proto::ComponentKind;

    use super::*;

    fn reading(progress: f64, limit_w: f64, power_w: f64) -> ComponentTelemetry {
        ComponentTelemetry {
            id: "gpu0".into(),
            kind: ComponentKind::Gpu,
            utilization_permille: 1000,
            power_mw: Some((power_w * 1000.0) as u64),
            temp_mc: None,
            t_max_mc: None,
            limit_mw: Some((limit_w * 1000.0) as u64),
            limit_min_mw: None,
            limit_max_mw: None,
            progress_micro: Some((progress * 1e6).round() as u64),
            work_left_micro: None,
        }
    }

    /// A part whose work rate is `demand · ((L − idle) / span)^alpha` while its limit
    /// binds, driven through `limits` (one per 100 ms tick) with the demand changing
    /// at `switch`.
    fn drive(model: &mut WorkModel, alpha: f64, limits: &[f64], switch: Option<(usize, f64)>) {
        let mut progress = 0.0;
        let mut demand = 0.8;
        for (tick, &limit_w) in limits.iter().enumerate() {
            if let Some((at, to)) = switch
                && tick == at
            {
                demand = to;
            }
            let rate = demand * ((limit_w - 30.0) / 270.0_f64).powf(alpha);
            progress += rate * 0.1;
            model.observe(&reading(progress, limit_w, limit_w), 100);
        }
    }

    fn staircase() -> Vec<f64> {
        // Up from 100 W in 10 W steps, each held for 5 ticks, then back down.
        let mut limits = Vec::new();
        for step in (0..15).chain((0..15).rev()) {
            limits.extend([100.0 + 10.0 * f64::from(step); 5]);
        }
        limits
    }

    #[test]
    fn the_elasticity_of_a_compute_bound_and_a_memory_bound_part_are_told_apart() {
        let mut learned = Vec::new();
        for alpha in [0.05, 1.0 / 3.0, 0.6] {
            let mut model = WorkModel::default();
            drive(&mut model, alpha, &staircase(), None);
            // Against L, the elasticity of (L − 30)^α is α · L / (L − 30): over
            // 100–240 W it lies between 1.14 α and 1.43 α; the prior pulls a little
            // toward 1/3.
            let elasticity = model.elasticity();
            assert!(
                (elasticity - 1.25 * alpha).abs() < 0.05,
                "α {alpha}: ε {elasticity}"
            );
            learned.push(elasticity);
        }
        assert!(learned.is_sorted(), "{learned:?}");
    }

    #[test]
    fn a_phase_change_while_the_limit_stands_still_teaches_nothing_wrong() {
        let mut model = WorkModel::default();
        let limits = staircase();
        // The demand halves in the middle of a held step.
        drive(&mut model, 0.05, &limits, Some((72, 0.4)));
        let elasticity = model.elasticity();
        assert!(elasticity < 0.1, "ε {elasticity}");
        // The rate follows the new demand.
        let rate = model.rate().unwrap();
        assert!(rate < 0.45, "{rate}");
    }

    #[test]
    fn without_changes_the_prior_stands_and_the_marginal_follows_the_rate() {
        let mut model = WorkModel::default();
        assert_eq!(model.marginal_per_w(200_000, 200_000.0), None);
        drive(&mut model, 0.05, &[200.0; 20], None);
        assert_eq!(model.changes(), 0);
        assert!((model.elasticity() - PRIOR_ELASTICITY).abs() < 1e-12);
        let rate = model.rate().unwrap();
        let marginal = model.marginal_per_w(200_000, 200_000.0).unwrap();
        assert!((marginal - PRIOR_ELASTICITY * rate / 200.0).abs() < 1e-12);
        // Further up the ladder a watt is worth less.
        assert!(model.marginal_per_w(200_000, 300_000.0).unwrap() < marginal);
    }

    #[test]
    fn an_unbound_limit_and_a_restarted_counter_teach_nothing() {
        let mut model = WorkModel::default();
        let mut progress = 0.0;
        for step in 0..40 {
            let limit_w = 100.0 + 5.0 * f64::from(step);
            progress += 0.05;
            // Draws 90 W whatever the limit: the limit does not bind.
            model.observe(&reading(progress, limit_w, 90.0), 100);
        }
        assert_eq!(model.changes(), 0);
        model.observe(&reading(0.0, 300.0, 300.0), 100);
        model.observe(&reading(0.1, 310.0, 310.0), 100);
        assert_eq!(model.changes(), 0);
    }
}
