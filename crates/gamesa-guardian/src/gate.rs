//! The action gate: device bounds, rate limits and hysteresis per actuation target,
//! deciding allow, clamp or deny, always with a reason.
//!
//! Numeric knobs (power limits, `cpu.max` quotas, cpufreq maxima) go through bounds,
//! step limit, deadband and rate limit in that order; text knobs (cpusets, energy
//! preferences) through change detection and the rate limit.
//!
//! # Invariants
//! - a target without a rule is denied
//! - an allowed or clamped value always lies within the rule's bounds
//! - [`Gate::evaluate`] changes nothing; only [`Gate::record`] counts a change, so a
//!   verdict later overturned (by a contract) costs no rate budget
//! - a target's change history never holds more than `max_changes` ticks

use std::{collections::BTreeMap, collections::VecDeque, fmt};

use gamesa_proto::{Actuation, Tick};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// At most `max_changes` recorded changes within any `window_ticks` consecutive ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub max_changes: u32,
    pub window_ticks: u64,
}

/// The limits of one actuation target, in the unit of its value (mW for power limits,
/// µs for `cpu.max` quotas, kHz for cpufreq maxima).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateRule {
    /// The lowest value the device accepts; lower requests are clamped up.
    pub min: Option<u64>,
    /// The highest value the device accepts; higher requests are clamped down.
    pub max: Option<u64>,
    /// The largest move from the last applied value in one change; larger ones are
    /// clamped to it.
    pub max_step: Option<u64>,
    /// Changes smaller than this (from the last applied value) are ignored: denied.
    pub deadband: u64,
    pub rate: Option<RateLimit>,
}

/// A rule that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GateError {
    #[error("gate rule for `{target}`: min {min} is above max {max}")]
    EmptyRange { target: String, min: u64, max: u64 },
    #[error("gate rule for `{target}`: a max_step of 0 would forbid every change")]
    ZeroStep { target: String },
    #[error(
        "gate rule for `{target}`: a rate limit needs at least one change per at least one tick"
    )]
    ZeroRate { target: String },
}

impl GateRule {
    pub fn validate(&self, target: &str) -> Result<(), GateError> {
        if let (Some(min), Some(max)) = (self.min, self.max)
            && min > max
        {
            return Err(GateError::EmptyRange {
                target: target.to_owned(),
                min,
                max,
            });
        }
        if self.max_step == Some(0) {
            return Err(GateError::ZeroStep {
                target: target.to_owned(),
            });
        }
        if let Some(rate) = self.rate
            && (rate.max_changes == 0 || rate.window_ticks == 0)
        {
            return Err(GateError::ZeroRate {
                target: target.to_owned(),
            });
        }
        Ok(())
    }
}

/// Why the gate decided as it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum GateReason {
    /// Inside every limit.
    WithinLimits,
    /// No rule for this target: the gate does not know the device's bounds.
    NoRule {
        target: String,
    },
    BelowMinimum {
        requested: u64,
        min: u64,
    },
    AboveMaximum {
        requested: u64,
        max: u64,
    },
    StepLimited {
        from: u64,
        requested: u64,
        max_step: u64,
    },
    /// Too small a change to be worth making.
    WithinDeadband {
        from: u64,
        requested: u64,
        deadband: u64,
    },
    /// The value is already applied.
    Unchanged,
    RateLimited {
        changes: u32,
        window_ticks: u64,
    },
}

impl fmt::Display for GateReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GateReason::WithinLimits => f.write_str("within limits"),
            GateReason::NoRule { target } => write!(f, "no gate rule for `{target}`"),
            GateReason::BelowMinimum { requested, min } => {
                write!(f, "{requested} is below the minimum {min}")
            }
            GateReason::AboveMaximum { requested, max } => {
                write!(f, "{requested} is above the maximum {max}")
            }
            GateReason::StepLimited {
                from,
                requested,
                max_step,
            } => write!(f, "{from} to {requested} is a larger step than {max_step}"),
            GateReason::WithinDeadband {
                from,
                requested,
                deadband,
            } => write!(
                f,
                "{from} to {requested} is a smaller change than the deadband {deadband}"
            ),
            GateReason::Unchanged => f.write_str("the value is already applied"),
            GateReason::RateLimited {
                changes,
                window_ticks,
            } => write!(
                f,
                "already {changes} changes in the last {window_ticks} ticks"
            ),
        }
    }
}

/// The gate's decision on one actuation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum GateVerdict {
    Allow { reason: GateReason },
    Clamp { to: Actuation, reason: GateReason },
    Deny { reason: GateReason },
}

impl GateVerdict {
    pub fn reason(&self) -> &GateReason {
        match self {
            GateVerdict::Allow { reason }
            | GateVerdict::Clamp { reason, .. }
            | GateVerdict::Deny { reason } => reason,
        }
    }
}

/// Who is asking: an ordinary request, or the guardian's own safety action, which
/// still respects the device bounds but skips step, deadband and rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Normal,
    Safety,
}

/// The value an actuation writes, as the gate compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Number(u64),
    Text(String),
}

/// The numeric value of a numeric knob; `cpu.max` without a quota counts as unbounded.
fn numeric_value(actuation: &Actuation) -> Option<u64> {
    match actuation {
        Actuation::PowerLimit { limit_mw, .. } => Some(*limit_mw),
        Actuation::CgroupCpuMax { quota_us, .. } => Some(quota_us.unwrap_or(u64::MAX)),
        Actuation::CpufreqMax { max_khz, .. } => Some(*max_khz),
        Actuation::CgroupCpuset { .. } | Actuation::EnergyPreference { .. } => None,
    }
}

fn value_of(actuation: &Actuation) -> Value {
    match numeric_value(actuation) {
        Some(number) => Value::Number(number),
        None => Value::Text(actuation.value_text()),
    }
}

/// The same actuation writing `value` instead.
fn with_value(actuation: &Actuation, value: u64) -> Actuation {
    let mut changed = actuation.clone();
    match &mut changed {
        Actuation::PowerLimit { limit_mw, .. } => *limit_mw = value,
        Actuation::CgroupCpuMax { quota_us, .. } => *quota_us = Some(value),
        Actuation::CpufreqMax { max_khz, .. } => *max_khz = value,
        Actuation::CgroupCpuset { .. } | Actuation::EnergyPreference { .. } => {}
    }
    changed
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TargetState {
    /// The last value applied (or observed on the device).
    last: Option<Value>,
    /// Ticks of recorded changes, oldest first, pruned to the rate window.
    changes: VecDeque<Tick>,
}

impl TargetState {
    fn changes_within(&self, tick: Tick, window_ticks: u64) -> u32 {
        let recent = self
            .changes
            .iter()
            .filter(|at| at.0.saturating_add(window_ticks) > tick.0)
            .count();
        u32::try_from(recent).unwrap_or(u32::MAX)
    }
}

/// Rules and recent history per actuation target (named as [`Actuation::target`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gate {
    rules: BTreeMap<String, GateRule>,
    state: BTreeMap<String, TargetState>,
}

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Takes `next`'s rules (a reloaded config's) and keeps what this gate has seen:
    /// each target's last value and its recent changes, so a step or rate limit still
    /// counts from where the machine is.
    pub fn adopt_rules(&mut self, next: Gate) {
        self.rules = next.rules;
    }

    /// Sets the rule of `target`, such as `power.limit:gpu0`.
    pub fn set_rule(&mut self, target: impl Into<String>, rule: GateRule) -> Result<(), GateError> {
        let target = target.into();
        rule.validate(&target)?;
        self.rules.insert(target, rule);
        Ok(())
    }

    pub fn rule(&self, target: &str) -> Option<&GateRule> {
        self.rules.get(target)
    }

    /// The last value applied to `target`, when it is numeric.
    pub fn last_number(&self, target: &str) -> Option<u64> {
        match self.state.get(target)?.last {
            Some(Value::Number(number)) => Some(number),
            _ => None,
        }
    }

    /// Records the value a device holds now (read at start-up, say) without counting it
    /// as a change. It is the baseline for the step limit and the deadband.
    pub fn observe(&mut self, actuation: &Actuation) {
        self.state.entry(actuation.target()).or_default().last = Some(value_of(actuation));
    }

    /// Whether anything is known of `target`'s current value.
    pub fn knows(&self, target: &str) -> bool {
        self.state
            .get(target)
            .is_some_and(|state| state.last.is_some())
    }

    /// Decides on `actuation` (whose target is `target`) at `tick`, changing nothing.
    pub fn evaluate(
        &self,
        tick: Tick,
        target: &str,
        actuation: &Actuation,
        urgency: Urgency,
    ) -> GateVerdict {
        let Some(rule) = self.rules.get(target) else {
            return GateVerdict::Deny {
                reason: GateReason::NoRule {
                    target: target.to_owned(),
                },
            };
        };
        let state = self.state.get(target);
        let last = state.and_then(|state| state.last.as_ref());
        let normal = urgency == Urgency::Normal;

        let Some(requested) = numeric_value(actuation) else {
            let unchanged =
                matches!(last, Some(Value::Text(text)) if *text == actuation.value_text());
            if unchanged && normal {
                return GateVerdict::Deny {
                    reason: GateReason::Unchanged,
                };
            }
            return match self.rate_limited(rule, state, tick, normal) {
                Some(reason) => GateVerdict::Deny { reason },
                None => GateVerdict::Allow {
                    reason: GateReason::WithinLimits,
                },
            };
        };

        let (min, max) = (rule.min.unwrap_or(0), rule.max.unwrap_or(u64::MAX));
        let mut value = requested;
        let mut reason = GateReason::WithinLimits;
        if value < min {
            value = min;
            reason = GateReason::BelowMinimum { requested, min };
        } else if value > max {
            value = max;
            reason = GateReason::AboveMaximum { requested, max };
        }
        if normal && let Some(Value::Number(last)) = last.cloned() {
            // The step limit only holds back a value already in bounds: moving back into
            // bounds is always allowed.
            if let Some(max_step) = rule.max_step
                && (min..=max).contains(&last)
            {
                let stepped =
                    value.clamp(last.saturating_sub(max_step), last.saturating_add(max_step));
                if stepped != value {
                    value = stepped;
                    reason = GateReason::StepLimited {
                        from: last,
                        requested,
                        max_step,
                    };
                }
            }
            let change = value.abs_diff(last);
            if change == 0 {
                return GateVerdict::Deny {
                    reason: GateReason::Unchanged,
                };
            }
            if change < rule.deadband {
                return GateVerdict::Deny {
                    reason: GateReason::WithinDeadband {
                        from: last,
                        requested,
                        deadband: rule.deadband,
                    },
                };
            }
        }
        if let Some(reason) = self.rate_limited(rule, state, tick, normal) {
            return GateVerdict::Deny { reason };
        }
        if value == requested {
            GateVerdict::Allow { reason }
        } else {
            GateVerdict::Clamp {
                to: with_value(actuation, value),
                reason,
            }
        }
    }

    fn rate_limited(
        &self,
        rule: &GateRule,
        state: Option<&TargetState>,
        tick: Tick,
        normal: bool,
    ) -> Option<GateReason> {
        let rate = rule.rate.filter(|_| normal)?;
        let changes = state.map_or(0, |state| state.changes_within(tick, rate.window_ticks));
        (changes >= rate.max_changes).then_some(GateReason::RateLimited {
            changes,
            window_ticks: rate.window_ticks,
        })
    }

    /// Records that `actuation` (as allowed or clamped) was applied to `target` at
    /// `tick`: it becomes the last value and counts against the rate limit.
    pub fn record(&mut self, tick: Tick, target: &str, actuation: &Actuation) {
        let keep = self
            .rules
            .get(target)
            .and_then(|rule| rule.rate)
            .map(|rate| (rate.max_changes as usize, rate.window_ticks));
        let state = match self.state.get_mut(target) {
            Some(state) => state,
            None => self.state.entry(target.to_owned()).or_default(),
        };
        state.last = Some(value_of(actuation));
        let Some((max_changes, window_ticks)) = keep else {
            state.changes.clear();
            return;
        };
        while state
            .changes
            .front()
            .is_some_and(|at| at.0.saturating_add(window_ticks) <= tick.0)
        {
            state.changes.pop_front();
        }
        state.changes.push_back(tick);
        while state.changes.len() > max_changes {
            state.changes.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GPU: &str = "power.limit:gpu0";

    fn power(limit_mw: u64) -> Actuation {
        Actuation::PowerLimit {
            component: "gpu0".into(),
            limit_mw,
        }
    }

    fn gate(rule: GateRule) -> Gate {
        let mut gate = Gate::new();
        gate.set_rule(GPU, rule).unwrap();
        gate
    }

    fn bounds() -> GateRule {
        GateRule {
            min: Some(100_000),
            max: Some(300_000),
            ..GateRule::default()
        }
    }

    fn check(gate: &Gate, tick: u64, limit_mw: u64) -> GateVerdict {
        gate.evaluate(Tick(tick), GPU, &power(limit_mw), Urgency::Normal)
    }

    #[test]
    fn within_bounds_is_allowed_with_a_reason() {
        assert_eq!(
            check(&gate(bounds()), 0, 200_000),
            GateVerdict::Allow {
                reason: GateReason::WithinLimits
            }
        );
    }

    #[test]
    fn out_of_bounds_is_clamped_to_the_bound() {
        let gate = gate(bounds());
        assert_eq!(
            check(&gate, 0, 400_000),
            GateVerdict::Clamp {
                to: power(300_000),
                reason: GateReason::AboveMaximum {
                    requested: 400_000,
                    max: 300_000
                }
            }
        );
        assert_eq!(
            check(&gate, 0, 10),
            GateVerdict::Clamp {
                to: power(100_000),
                reason: GateReason::BelowMinimum {
                    requested: 10,
                    min: 100_000
                }
            }
        );
    }

    #[test]
    fn a_target_without_a_rule_is_denied() {
        let verdict = Gate::new().evaluate(Tick(0), GPU, &power(1), Urgency::Normal);
        assert_eq!(
            verdict,
            GateVerdict::Deny {
                reason: GateReason::NoRule { target: GPU.into() }
            }
        );
        assert_eq!(
            verdict.reason().to_string(),
            "no gate rule for `power.limit:gpu0`"
        );
    }

    #[test]
    fn large_steps_are_clamped_from_the_last_value() {
        let mut gate = gate(GateRule {
            max_step: Some(20_000),
            ..bounds()
        });
        gate.observe(&power(200_000));
        assert_eq!(
            check(&gate, 1, 280_000),
            GateVerdict::Clamp {
                to: power(220_000),
                reason: GateReason::StepLimited {
                    from: 200_000,
                    requested: 280_000,
                    max_step: 20_000
                }
            }
        );
        assert_eq!(
            check(&gate, 1, 150_000),
            GateVerdict::Clamp {
                to: power(180_000),
                reason: GateReason::StepLimited {
                    from: 200_000,
                    requested: 150_000,
                    max_step: 20_000
                }
            }
        );
        // A device found out of bounds may be brought back in one move.
        gate.observe(&power(500_000));
        assert_eq!(
            check(&gate, 1, 200_000),
            GateVerdict::Allow {
                reason: GateReason::WithinLimits
            }
        );
    }

    #[test]
    fn small_changes_fall_in_the_deadband() {
        let mut gate = gate(GateRule {
            deadband: 5_000,
            ..bounds()
        });
        gate.record(Tick(0), GPU, &power(200_000));
        assert_eq!(
            check(&gate, 1, 203_000),
            GateVerdict::Deny {
                reason: GateReason::WithinDeadband {
                    from: 200_000,
                    requested: 203_000,
                    deadband: 5_000
                }
            }
        );
        assert_eq!(
            check(&gate, 1, 200_000),
            GateVerdict::Deny {
                reason: GateReason::Unchanged
            }
        );
        assert!(matches!(
            check(&gate, 1, 205_000),
            GateVerdict::Allow { .. }
        ));
    }

    #[test]
    fn changes_beyond_the_rate_are_denied_until_the_window_passes() {
        let mut gate = gate(GateRule {
            rate: Some(RateLimit {
                max_changes: 2,
                window_ticks: 10,
            }),
            ..bounds()
        });
        gate.record(Tick(0), GPU, &power(150_000));
        gate.record(Tick(5), GPU, &power(160_000));
        let denied = check(&gate, 9, 170_000);
        assert_eq!(
            denied,
            GateVerdict::Deny {
                reason: GateReason::RateLimited {
                    changes: 2,
                    window_ticks: 10
                }
            }
        );
        assert_eq!(
            denied.reason().to_string(),
            "already 2 changes in the last 10 ticks"
        );
        assert!(matches!(
            check(&gate, 10, 170_000),
            GateVerdict::Allow { .. }
        ));
        // Evaluating changed nothing: the history is the same.
        assert_eq!(gate.state[GPU].changes, VecDeque::from([Tick(0), Tick(5)]));
        gate.record(Tick(10), GPU, &power(170_000));
        assert_eq!(gate.state[GPU].changes, VecDeque::from([Tick(5), Tick(10)]));
    }

    #[test]
    fn safety_actions_keep_bounds_but_skip_rate_step_and_deadband() {
        let mut gate = gate(GateRule {
            max_step: Some(1_000),
            deadband: 5_000,
            rate: Some(RateLimit {
                max_changes: 1,
                window_ticks: 100,
            }),
            ..bounds()
        });
        gate.record(Tick(0), GPU, &power(250_000));
        assert_eq!(
            gate.evaluate(Tick(1), GPU, &power(120_000), Urgency::Safety),
            GateVerdict::Allow {
                reason: GateReason::WithinLimits
            }
        );
        assert!(matches!(
            gate.evaluate(Tick(1), GPU, &power(50_000), Urgency::Safety),
            GateVerdict::Clamp {
                reason: GateReason::BelowMinimum { .. },
                ..
            }
        ));
    }

    #[test]
    fn text_knobs_are_deduplicated_and_rate_limited() {
        let mut gate = Gate::new();
        let target = "cpufreq.epp:0";
        gate.set_rule(
            target,
            GateRule {
                rate: Some(RateLimit {
                    max_changes: 1,
                    window_ticks: 5,
                }),
                ..GateRule::default()
            },
        )
        .unwrap();
        let epp = |preference: &str| Actuation::EnergyPreference {
            cpu: 0,
            preference: preference.into(),
        };
        assert!(matches!(
            gate.evaluate(Tick(0), target, &epp("performance"), Urgency::Normal),
            GateVerdict::Allow { .. }
        ));
        gate.record(Tick(0), target, &epp("performance"));
        assert_eq!(
            gate.evaluate(Tick(1), target, &epp("performance"), Urgency::Normal),
            GateVerdict::Deny {
                reason: GateReason::Unchanged
            }
        );
        assert!(matches!(
            gate.evaluate(Tick(1), target, &epp("power"), Urgency::Normal),
            GateVerdict::Deny {
                reason: GateReason::RateLimited { .. }
            }
        ));
    }

    #[test]
    fn cpu_max_without_quota_is_clamped_to_a_quota() {
        let mut gate = Gate::new();
        gate.set_rule(
            "cgroup.cpu_max:game",
            GateRule {
                max: Some(400_000),
                ..GateRule::default()
            },
        )
        .unwrap();
        let unlimited = Actuation::CgroupCpuMax {
            cgroup: "game".into(),
            quota_us: None,
            period_us: 100_000,
        };
        let verdict = gate.evaluate(Tick(0), "cgroup.cpu_max:game", &unlimited, Urgency::Normal);
        assert_eq!(
            verdict,
            GateVerdict::Clamp {
                to: Actuation::CgroupCpuMax {
                    cgroup: "game".into(),
                    quota_us: Some(400_000),
                    period_us: 100_000,
                },
                reason: GateReason::AboveMaximum {
                    requested: u64::MAX,
                    max: 400_000
                }
            }
        );
    }

    #[test]
    fn nonsense_rules_are_rejected() {
        let mut gate = Gate::new();
        assert_eq!(
            gate.set_rule(
                GPU,
                GateRule {
                    min: Some(2),
                    max: Some(1),
                    ..GateRule::default()
                }
            ),
            Err(GateError::EmptyRange {
                target: GPU.into(),
                min: 2,
                max: 1
            })
        );
        assert!(gate.rule(GPU).is_none());
    }

    #[test]
    fn reasons_serialize_for_the_wire() {
        let verdict = GateVerdict::Deny {
            reason: GateReason::RateLimited {
                changes: 2,
                window_ticks: 10,
            },
        };
        assert_eq!(
            serde_json::to_string(&verdict).unwrap(),
            r#"{"decision":"deny","reason":{"why":"rate_limited","changes":2,"window_ticks":10}}"#
        );
    }
}
