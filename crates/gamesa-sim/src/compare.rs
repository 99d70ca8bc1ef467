//! Comparing policies: per scenario, one table whose rows are policies and whose
//! columns are the metrics plus the market's gain over each; over a suite, a summary
//! that checks the evaluation's targets (`docs/evaluation.md`); and the same data as
//! JSON.
//!
//! # Invariants
//! - the JSON holds only [`Metrics`] and what is computed from them, never wall time,
//!   so the same scenarios and seed give byte-identical JSON.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::{
    Policy, SimError,
    metrics::{Metrics, TickCost},
};

/// Every policy's run of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub scenario: String,
    /// In the order of [`Policy::ALL`] (or however many were run).
    pub runs: Vec<Metrics>,
}

/// One row of a comparison, as JSON gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    #[serde(flatten)]
    pub metrics: Metrics,
    /// `market work / this policy's work − 1`; `None` for the market itself, or when
    /// this policy did no work.
    pub market_gain: Option<f64>,
}

/// A comparison as JSON gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonReport {
    pub scenario: String,
    pub rows: Vec<Row>,
}

impl Comparison {
    pub fn run_of(&self, policy: Policy) -> Option<&Metrics> {
        self.runs.iter().find(|metrics| metrics.policy == policy)
    }

    /// `market work / policy work − 1`.
    pub fn market_gain_over(&self, policy: Policy) -> Option<f64> {
        if policy == Policy::Market {
            return None;
        }
        let market = self.run_of(Policy::Market)?;
        let other = self.run_of(policy)?;
        (other.work > 0.0).then(|| market.work / other.work - 1.0)
    }

    pub fn report(&self) -> ComparisonReport {
        ComparisonReport {
            scenario: self.scenario.clone(),
            rows: self
                .runs
                .iter()
                .map(|metrics| Row {
                    metrics: metrics.clone(),
                    market_gain: self.market_gain_over(metrics.policy),
                })
                .collect(),
        }
    }

    /// The table: one row per policy. `costs`, aligned with `runs`, adds the wall-time
    /// tick cost columns.
    pub fn table(&self, costs: Option<&[TickCost]>) -> String {
        let names: Vec<&str> = self
            .runs
            .first()
            .map(|run| run.components.iter().map(|c| c.name.as_str()).collect())
            .unwrap_or_default();
        let mut header: Vec<String> = vec!["policy".into(), "work".into()];
        header.extend(names.iter().map(|name| format!("work {name}")));
        header.extend(
            [
                "energy kJ",
                "TTS s",
                "over cap s",
                "overshoot W",
                "throttled s",
                "peak °C",
                "vetoes",
                "clamps",
                "safety",
            ]
            .map(String::from),
        );
        if costs.is_some() {
            header.push("tick µs mean/max".into());
        }
        header.push("market gain".into());
        let mut rows = vec![header];
        for (index, run) in self.runs.iter().enumerate() {
            let mut row = vec![run.policy.to_string(), format!("{:.2}", run.work)];
            row.extend(names.iter().map(|name| {
                run.component(name)
                    .map_or("-".into(), |c| format!("{:.2}", c.work))
            }));
            row.push(format!("{:.1}", run.energy_j / 1000.0));
            row.push(
                run.time_to_solution_s
                    .map_or("-".into(), |tts| format!("{tts:.1}")),
            );
            row.push(format!("{:.1}", run.over_cap_s));
            row.push(format!("{:.1}", run.max_overshoot_w));
            row.push(format!("{:.1}", run.throttled_s));
            row.push(format!("{:.1}", run.peak_temp_c));
            row.push(run.vetoes.to_string());
            row.push(run.clamps.to_string());
            row.push(run.safety_ticks.to_string());
            if let Some(cost) = costs.and_then(|costs| costs.get(index)) {
                row.push(format!("{:.0}/{:.0}", cost.mean_us, cost.max_us));
            }
            row.push(
                self.market_gain_over(run.policy)
                    .map_or("-".into(), |gain| format!("{:+.1}%", gain * 100.0)),
            );
            rows.push(row);
        }
        format_table(&rows)
    }
}

/// Left-aligned first column, right-aligned numbers, two spaces between columns.
fn format_table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            let pad = widths[column].saturating_sub(cell.chars().count());
            if column == 0 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str("  ");
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The targets of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioTargets {
    pub scenario: String,
    /// Market work / oracle work; the target is at least 0.97.
    pub market_vs_oracle: f64,
    pub market_over_cap_s: f64,
    pub market_throttled_s: f64,
    pub oracle_throttled_s: f64,
    pub proportional_throttled_s: f64,
    /// Work ≥ 97 % of the oracle's.
    pub work_met: bool,
    /// No second over the cap.
    pub cap_met: bool,
    /// No throttling where the oracle has none.
    pub throttle_met: bool,
    /// Fewer throttled seconds than `proportional`, where it throttles; `None` where it
    /// does not.
    pub fewer_throttled_than_proportional: Option<bool>,
    pub gain_over_static_equal: f64,
    pub gain_over_proportional: f64,
    pub none_over_cap_s: f64,
    pub none_throttled_s: f64,
}

/// The targets over a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteTargets {
    pub scenarios: Vec<ScenarioTargets>,
    /// Mean over scenarios of the market's gain over `static-equal`; target ≥ 5 %.
    pub mean_gain_over_static_equal: f64,
    /// Mean over scenarios of the market's gain over `proportional`; target > 0.
    pub mean_gain_over_proportional: f64,
    /// Scenarios in which `none` went over the cap or throttled: it must show some.
    pub none_violating_scenarios: usize,
    pub all_met: bool,
}

/// The minimum share of the oracle's work the market must reach in every scenario.
pub const MARKET_VS_ORACLE_TARGET: f64 = 0.97;
/// The minimum mean gain over `static-equal`.
pub const GAIN_OVER_STATIC_EQUAL_TARGET: f64 = 0.05;

impl SuiteTargets {
    /// Checks the targets; every comparison must include the market, the oracle,
    /// `proportional`, `static-equal` and `none`.
    pub fn check(comparisons: &[Comparison]) -> Result<SuiteTargets, SimError> {
        let mut scenarios = Vec::new();
        for comparison in comparisons {
            let need = |policy: Policy| {
                comparison
                    .run_of(policy)
                    .ok_or_else(|| SimError::MissingPolicy(policy.name().to_owned()))
            };
            let market = need(Policy::Market)?;
            let oracle = need(Policy::Oracle)?;
            let proportional = need(Policy::Proportional)?;
            need(Policy::StaticEqual)?;
            let none = need(Policy::None)?;
            let market_vs_oracle = if oracle.work > 0.0 {
                market.work / oracle.work
            } else {
                1.0
            };
            scenarios.push(ScenarioTargets {
                scenario: comparison.scenario.clone(),
                market_vs_oracle,
                market_over_cap_s: market.over_cap_s,
                market_throttled_s: market.throttled_s,
                oracle_throttled_s: oracle.throttled_s,
                proportional_throttled_s: proportional.throttled_s,
                work_met: market_vs_oracle >= MARKET_VS_ORACLE_TARGET,
                cap_met: market.over_cap_s == 0.0,
                throttle_met: oracle.throttled_s > 0.0 || market.throttled_s == 0.0,
                fewer_throttled_than_proportional: (proportional.throttled_s > 0.0)
                    .then_some(market.throttled_s < proportional.throttled_s),
                gain_over_static_equal: comparison
                    .market_gain_over(Policy::StaticEqual)
                    .unwrap_or(0.0),
                gain_over_proportional: comparison
                    .market_gain_over(Policy::Proportional)
                    .unwrap_or(0.0),
                none_over_cap_s: none.over_cap_s,
                none_throttled_s: none.throttled_s,
            });
        }
        let mean = |pick: fn(&ScenarioTargets) -> f64| {
            if scenarios.is_empty() {
                0.0
            } else {
                scenarios.iter().map(pick).sum::<f64>() / scenarios.len() as f64
            }
        };
        let mean_gain_over_static_equal = mean(|s| s.gain_over_static_equal);
        let mean_gain_over_proportional = mean(|s| s.gain_over_proportional);
        let none_violating_scenarios = scenarios
            .iter()
            .filter(|s| s.none_over_cap_s > 0.0 || s.none_throttled_s > 0.0)
            .count();
        let all_met = scenarios.iter().all(|s| {
            s.work_met
                && s.cap_met
                && s.throttle_met
                && s.fewer_throttled_than_proportional != Some(false)
        }) && mean_gain_over_static_equal >= GAIN_OVER_STATIC_EQUAL_TARGET
            && mean_gain_over_proportional > 0.0
            && none_violating_scenarios > 0;
        Ok(SuiteTargets {
            scenarios,
            mean_gain_over_static_equal,
            mean_gain_over_proportional,
            none_violating_scenarios,
            all_met,
        })
    }

    /// The summary as text: one line per scenario, then the suite-wide figures.
    pub fn table(&self) -> String {
        let mark = |met: bool| if met { "ok" } else { "MISSED" };
        let mut rows = vec![
            [
                "scenario",
                "market/oracle",
                "over cap s",
                "throttled s (market/oracle/prop.)",
                "gain vs static-equal",
                "gain vs proportional",
                "none: over cap s / throttled s",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for s in &self.scenarios {
            let fewer = match s.fewer_throttled_than_proportional {
                Some(true) => " (fewer: ok)",
                Some(false) => " (fewer: MISSED)",
                None => "",
            };
            rows.push(vec![
                s.scenario.clone(),
                format!("{:.1}% {}", s.market_vs_oracle * 100.0, mark(s.work_met)),
                format!("{:.1} {}", s.market_over_cap_s, mark(s.cap_met)),
                format!(
                    "{:.1}/{:.1}/{:.1} {}{fewer}",
                    s.market_throttled_s,
                    s.oracle_throttled_s,
                    s.proportional_throttled_s,
                    mark(s.throttle_met)
                ),
                format!("{:+.1}%", s.gain_over_static_equal * 100.0),
                format!("{:+.1}%", s.gain_over_proportional * 100.0),
                format!("{:.1} / {:.1}", s.none_over_cap_s, s.none_throttled_s),
            ]);
        }
        let mut out = format_table(&rows);
        let _ = writeln!(
            out,
            "mean gain over static-equal: {:+.1}% (target >= +5%: {})",
            self.mean_gain_over_static_equal * 100.0,
            mark(self.mean_gain_over_static_equal >= GAIN_OVER_STATIC_EQUAL_TARGET)
        );
        let _ = writeln!(
            out,
            "mean gain over proportional: {:+.1}% (target > 0: {})",
            self.mean_gain_over_proportional * 100.0,
            mark(self.mean_gain_over_proportional > 0.0)
        );
        let _ = writeln!(
            out,
            "none violates the cap or throttles in {} of {} scenarios ({})",
            self.none_violating_scenarios,
            self.scenarios.len(),
            mark(self.none_violating_scenarios > 0)
        );
        let _ = writeln!(
            out,
            "all targets met: {}",
            if self.all_met { "yes" } else { "no" }
        );
        out
    }
}

/// A whole `--compare --json` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteReport {
    pub comparisons: Vec<ComparisonReport>,
    /// Present when every comparison ran the policies the targets need.
    pub targets: Option<SuiteTargets>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(policy: Policy, work: f64, over_cap_s: f64, throttled_s: f64) -> Metrics {
        Metrics {
            scenario: "s".into(),
            policy,
            seed: 1,
            steps: 10,
            simulated_s: 1.0,
            work,
            energy_j: 100.0,
            time_to_solution_s: None,
            over_cap_s,
            max_overshoot_w: 0.0,
            throttled_s,
            peak_temp_c: 50.0,
            vetoes: 0,
            clamps: 0,
            safety_ticks: 0,
            components: Vec::new(),
        }
    }

    fn comparison(market_work: f64, market_throttled_s: f64) -> Comparison {
        Comparison {
            scenario: "s".into(),
            runs: vec![
                metrics(Policy::Market, market_work, 0.0, market_throttled_s),
                metrics(Policy::Oracle, 100.0, 0.0, 0.0),
                metrics(Policy::Proportional, 95.0, 0.0, 2.0),
                metrics(Policy::StaticTdp, 90.0, 0.0, 0.0),
                metrics(Policy::StaticEqual, 90.0, 0.0, 0.0),
                metrics(Policy::None, 110.0, 5.0, 7.0),
            ],
        }
    }

    #[test]
    fn gains_are_market_work_over_the_baselines() {
        let comparison = comparison(99.0, 0.0);
        assert_eq!(comparison.market_gain_over(Policy::Market), None);
        let gain = comparison.market_gain_over(Policy::StaticEqual).unwrap();
        assert!((gain - 0.1).abs() < 1e-12);
        let table = comparison.table(None);
        assert!(table.contains("+10.0%"), "{table}");
        assert_eq!(table.lines().count(), 7);
    }

    #[test]
    fn targets_are_checked_per_scenario_and_on_average() {
        let met = SuiteTargets::check(&[comparison(99.0, 0.0)]).unwrap();
        assert!(met.all_met, "{}", met.table());
        assert_eq!(
            met.scenarios[0].fewer_throttled_than_proportional,
            Some(true)
        );
        // 96 % of the oracle, and throttling where the oracle has none.
        let missed = SuiteTargets::check(&[comparison(96.0, 1.0)]).unwrap();
        assert!(!missed.all_met);
        assert!(!missed.scenarios[0].work_met && !missed.scenarios[0].throttle_met);
        assert!(missed.table().contains("MISSED"));
        let mut partial = comparison(99.0, 0.0);
        partial.runs.retain(|run| run.policy != Policy::Oracle);
        assert_eq!(
            SuiteTargets::check(&[partial]),
            Err(SimError::MissingPolicy("oracle".into()))
        );
    }
}
