//! The generated part of `docs/evaluation.md` (`gamesa sim report`): from the
//! comparisons of a suite and its targets to markdown, spliced between marker lines, and
//! the check that tells a committed page from what the code produces.
//!
//! # Invariants
//! - every function here is pure: the text is a function of [`Comparison`]s (that is,
//!   of [`crate::Metrics`]) and [`SuiteTargets`] alone, never of wall time, so the same
//!   suite and config always give the same bytes;
//! - [`splice`] changes only the lines strictly between a section's two markers; the
//!   hand-written text around them is kept byte for byte.

use std::fmt::{self, Write as _};

use thiserror::Error;

use crate::{
    Comparison, Policy, SuiteTargets,
    compare::{PolicyGain, format_table},
};

/// A generated section of a page: the text between two marker lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    pub begin: &'static str,
    pub end: &'static str,
}

/// The public suite: the targets, the summary, the optimum's solver, and one table per
/// scenario.
pub const SUITE: Section = Section {
    begin: "<!-- BEGIN GENERATED: gamesa sim report -->",
    end: "<!-- END GENERATED -->",
};

/// A hold-out set: the targets and the summary, one row per scenario.
pub const HOLDOUT: Section = Section {
    begin: "<!-- BEGIN GENERATED: gamesa sim report --holdout -->",
    end: "<!-- END GENERATED: holdout -->",
};

/// Where a section's runs came from, as the command line named them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source<'a> {
    /// The scenario directory (`scenarios/`).
    pub scenarios: &'a str,
    /// The runtime config (`config/sim.toml`).
    pub config: &'a str,
}

/// A page whose markers cannot take a section.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReportError {
    #[error("no line `{marker}`: add the marker lines where the generated section goes")]
    MissingMarker { marker: &'static str },
    #[error("the line `{marker}` appears {count} times; it must appear once")]
    RepeatedMarker { marker: &'static str, count: usize },
    #[error("the line `{end}` must come after `{begin}`")]
    MarkersOutOfOrder {
        begin: &'static str,
        end: &'static str,
    },
}

/// The public suite's section: how it was made, the targets, the summary (each
/// policy's share of the optimum, the optimum's solver), the market's mean gain over
/// each policy, and each scenario's full table (without wall-time columns).
pub fn suite_section(
    source: &Source<'_>,
    comparisons: &[Comparison],
    targets: &SuiteTargets,
) -> String {
    let mut out = provenance(source, "");
    out.push_str("\n### Targets\n\n");
    out.push_str(&fenced(&targets.table()));
    out.push_str("\n### The market's mean gain\n\n");
    out.push_str(&mean_gains(&targets.mean_gains));
    out.push_str("\n### Every policy against the optimum\n\n");
    out.push_str(
        "Each policy's work as a share of the optimum's, and what the solver said of the \
         optimum (status, iterations, relative duality gap).\n\n",
    );
    out.push_str(&fenced(&summary(comparisons)));
    out.push_str("\n### Per scenario\n");
    for comparison in comparisons {
        let _ = write!(out, "\n#### {}\n\n", comparison.scenario);
        out.push_str(&fenced(&comparison.table(None)));
    }
    out
}

/// A hold-out set's section: how it was made, the targets, and the summary.
pub fn holdout_section(
    source: &Source<'_>,
    comparisons: &[Comparison],
    targets: &SuiteTargets,
) -> String {
    let mut out = provenance(source, " --holdout");
    out.push('\n');
    out.push_str(&fenced(&targets.table()));
    out.push('\n');
    out.push_str(&fenced(&summary(comparisons)));
    out
}

/// A comment line naming the section's source: `flag` is empty for the suite, or
/// ` --holdout` for a hold-out set.
fn provenance(source: &Source<'_>, flag: &str) -> String {
    let scenarios = if flag.is_empty() {
        format!("`{}`", source.scenarios)
    } else {
        format!("`{}` (`{}`)", source.scenarios, flag.trim())
    };
    format!(
        "<!-- Written by `gamesa sim report` from {scenarios} and `{}`, every policy; do \
         not edit by hand: the command rewrites it, and `cargo test --test sim_report` \
         fails when it is stale. -->\n",
        source.config
    )
}

fn fenced(text: &str) -> String {
    format!("```text\n{text}```\n")
}

fn mean_gains(gains: &[PolicyGain]) -> String {
    let mut out = String::from("| over | mean gain in work |\n| --- | ---: |\n");
    for gain in gains {
        let _ = writeln!(out, "| `{}` | {:+.1} % |", gain.policy, gain.gain * 100.0);
    }
    out
}

/// One row per scenario: every policy's share of the optimum's work, then the solver;
/// and a last row with the mean shares.
pub fn summary(comparisons: &[Comparison]) -> String {
    let policies: Vec<Policy> = Policy::ALL
        .into_iter()
        .filter(|&policy| policy != Policy::Optimum)
        .filter(|&policy| {
            comparisons
                .iter()
                .any(|comparison| comparison.run_of(policy).is_some())
        })
        .collect();
    let mut header = vec!["scenario".to_owned(), "optimum work".to_owned()];
    header.extend(policies.iter().map(|policy| policy.to_string()));
    header.extend(["solver", "iterations", "gap"].map(String::from));
    let mut rows = vec![header];
    let mut shares: Vec<Vec<f64>> = vec![Vec::new(); policies.len()];
    for comparison in comparisons {
        let optimum = comparison.run_of(Policy::Optimum);
        let mut row = vec![
            comparison.scenario.clone(),
            optimum.map_or("-".into(), |run| format!("{:.2}", run.work)),
        ];
        for (column, &policy) in policies.iter().enumerate() {
            let share = comparison.share_of_optimum(policy);
            if let Some(share) = share {
                shares[column].push(share);
            }
            row.push(share.map_or("-".into(), percent));
        }
        match optimum.and_then(|run| run.optimum.as_ref()) {
            Some(solver) => {
                row.push(solver.status.clone());
                row.push(solver.iterations.to_string());
                row.push(format!("{:.0e}", solver.gap_rel));
            }
            None => row.extend(["-", "-", "-"].map(String::from)),
        }
        rows.push(row);
    }
    let mut mean_row = vec!["mean".to_owned(), String::new()];
    mean_row.extend(shares.iter().map(|shares| {
        if shares.is_empty() {
            "-".to_owned()
        } else {
            percent(shares.iter().sum::<f64>() / shares.len() as f64)
        }
    }));
    rows.push(mean_row);
    format_table(&rows)
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// `document` with the lines between `section`'s markers replaced by `content`.
pub fn splice(document: &str, section: &Section, content: &str) -> Result<String, ReportError> {
    let lines: Vec<&str> = document.split_inclusive('\n').collect();
    let find = |marker: &'static str| {
        let at: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, line)| line.trim_end() == marker)
            .map(|(index, _)| index)
            .collect();
        match at.as_slice() {
            [] => Err(ReportError::MissingMarker { marker }),
            [index] => Ok(*index),
            _ => Err(ReportError::RepeatedMarker {
                marker,
                count: at.len(),
            }),
        }
    };
    let begin = find(section.begin)?;
    let end = find(section.end)?;
    if end < begin {
        return Err(ReportError::MarkersOutOfOrder {
            begin: section.begin,
            end: section.end,
        });
    }
    let mut out = String::with_capacity(document.len() + content.len());
    for line in &lines[..=begin] {
        out.push_str(line);
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(content);
    if !content.is_empty() && !content.ends_with('\n') {
        out.push('\n');
    }
    for line in &lines[end..] {
        out.push_str(line);
    }
    Ok(out)
}

/// How a committed page differs from the generated one, line by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub committed_lines: usize,
    pub generated_lines: usize,
    /// Lines that differ at the same line number (a line present on one side only
    /// counts too).
    pub differing_lines: usize,
    /// The first few of them.
    pub first: Vec<LineDrift>,
}

/// One line that differs: its number (from 1) and both versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDrift {
    pub line: usize,
    pub committed: Option<String>,
    pub generated: Option<String>,
}

/// How many differing lines [`drift`] quotes.
const QUOTED_LINES: usize = 5;

/// `None` when `committed` is `generated`, byte for byte; otherwise what differs.
pub fn drift(committed: &str, generated: &str) -> Option<Drift> {
    if committed == generated {
        return None;
    }
    let old: Vec<&str> = committed.lines().collect();
    let new: Vec<&str> = generated.lines().collect();
    let mut differing_lines = 0;
    let mut first = Vec::new();
    for index in 0..old.len().max(new.len()) {
        let (a, b) = (old.get(index).copied(), new.get(index).copied());
        if a == b {
            continue;
        }
        differing_lines += 1;
        if first.len() < QUOTED_LINES {
            first.push(LineDrift {
                line: index + 1,
                committed: a.map(str::to_owned),
                generated: b.map(str::to_owned),
            });
        }
    }
    // Same lines, different bytes: line endings or a final newline.
    if differing_lines == 0 {
        differing_lines = 1;
        first.push(LineDrift {
            line: old.len().max(1),
            committed: Some("(line endings or final newline)".into()),
            generated: Some("(line endings or final newline)".into()),
        });
    }
    Some(Drift {
        committed_lines: old.len(),
        generated_lines: new.len(),
        differing_lines,
        first,
    })
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} line(s) differ ({} committed, {} generated); the first:",
            self.differing_lines, self.committed_lines, self.generated_lines
        )?;
        for line in &self.first {
            let show = |text: &Option<String>| text.as_deref().unwrap_or("(none)").to_owned();
            writeln!(f, "  line {}:", line.line)?;
            writeln!(f, "    committed: {}", show(&line.committed))?;
            writeln!(f, "    generated: {}", show(&line.generated))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use gamesa_hw::twin::Scenario;

    use super::*;
    use crate::{Metrics, optimum::SolverSummary};

    /// What the solver says of a one-second, one-component scenario, with a status and
    /// gap set so that the table's cells are known.
    fn solver() -> SolverSummary {
        let scenario = Scenario::from_toml_str(
            "name = \"s\"\nseed = 1\nduration_s = 1\nstep_ms = 100\nambient_c = 25\n\
             node = { cap_w = 100 }\n[components]\ncpu = { kind = \"cpu\", tdp_w = 110, \
             idle_w = 10, min_w = 20, max_w = 150, r_c_per_w = 0.3, c_j_per_c = 100, \
             t_max_c = 90, perf_exponent = 0.5 }\n[[phases]]\nat_s = 0\ncpu = 1.0\n",
        )
        .unwrap();
        let mut summary = crate::optimum::plan(&scenario).unwrap().solver;
        summary.status = "Solved".into();
        summary.iterations = 21;
        summary.gap_rel = 3.2e-7;
        summary
    }

    fn metrics(policy: Policy, work: f64) -> Metrics {
        Metrics {
            scenario: "s".into(),
            policy,
            seed: 1,
            steps: 10,
            simulated_s: 1.0,
            work,
            energy_j: 100.0,
            time_to_solution_s: None,
            over_cap_s: 0.0,
            over_cap_outside_drops_s: 0.0,
            max_overshoot_w: 0.0,
            throttled_s: 0.0,
            peak_temp_c: 50.0,
            vetoes: 0,
            clamps: 0,
            safety_ticks: 0,
            components: Vec::new(),
            optimum: (policy == Policy::Optimum).then(solver),
        }
    }

    fn comparison(name: &str, market_work: f64) -> Comparison {
        let mut comparison = Comparison {
            scenario: name.into(),
            runs: vec![
                metrics(Policy::Optimum, 100.0),
                metrics(Policy::Market, market_work),
                metrics(Policy::StaticEqual, 90.0),
                metrics(Policy::Proportional, 97.5),
            ],
        };
        for run in &mut comparison.runs {
            run.scenario = name.into();
        }
        comparison
    }

    const SOURCE: Source<'static> = Source {
        scenarios: "scenarios/",
        config: "config/sim.toml",
    };

    fn page(section: &str) -> String {
        format!(
            "# Evaluation\n\nProse before.\n\n{}\n{section}{}\n\nProse after.\n",
            SUITE.begin, SUITE.end
        )
    }

    fn generated(market_work: f64) -> String {
        let comparisons = [comparison("a", 99.0), comparison("b", market_work)];
        let targets = SuiteTargets::check(&comparisons).unwrap();
        suite_section(&SOURCE, &comparisons, &targets)
    }

    #[test]
    fn the_suite_section_has_the_targets_the_summary_and_every_table() {
        let text = generated(98.0);
        assert!(text.contains("### Targets") && text.contains("all targets met: yes"));
        assert!(text.contains("| `static-equal` | +9.4 % |"), "{text}");
        assert!(text.contains("#### a") && text.contains("#### b"), "{text}");
        // The summary: a row per scenario with the solver, then the mean.
        let summary = summary(&[comparison("a", 99.0), comparison("b", 98.0)]);
        let lines: Vec<&str> = summary.lines().collect();
        assert_eq!(lines.len(), 4, "{summary}");
        assert!(lines[1].starts_with("a ") && lines[1].contains("99.0%"));
        assert!(
            lines[1].contains("Solved") && lines[1].contains("3e-7"),
            "{summary}"
        );
        assert!(lines[3].starts_with("mean") && lines[3].contains("98.5%"));
        // Nothing that varies between runs: no tick costs.
        assert!(!text.contains("tick µs"), "{text}");
    }

    #[test]
    fn splicing_replaces_only_the_lines_between_the_markers() {
        let before = page("old table\nmore\n");
        let after = splice(&before, &SUITE, "new\n").unwrap();
        assert_eq!(after, page("new\n"));
        // Splicing again is a no-op: the check of a fresh page finds nothing.
        assert_eq!(splice(&after, &SUITE, "new\n").unwrap(), after);
        assert_eq!(
            drift(&after, &splice(&after, &SUITE, "new\n").unwrap()),
            None
        );
    }

    #[test]
    fn a_changed_number_is_detected_by_the_check() {
        let committed = splice(&page(""), &SUITE, &generated(98.0)).unwrap();
        let fresh = splice(&committed, &SUITE, &generated(98.0)).unwrap();
        assert_eq!(drift(&committed, &fresh), None);

        // The market did 0.3 more work in scenario b: the page is stale.
        let moved = splice(&committed, &SUITE, &generated(98.3)).unwrap();
        let found = drift(&committed, &moved).expect("a changed figure must be detected");
        assert!(found.differing_lines > 0);
        let shown = found.to_string();
        assert!(shown.contains("98.0") && shown.contains("98.3"), "{shown}");

        // A hand edit of one digit in a table is detected as well.
        let edited = committed.replacen("99.0%", "99.1%", 1);
        let found = drift(&edited, &fresh).expect("a hand edit must be detected");
        assert_eq!(found.differing_lines, 1, "{found}");
        assert!(found.to_string().contains("99.1%"));
    }

    #[test]
    fn pages_without_their_markers_are_refused() {
        assert_eq!(
            splice("no markers\n", &SUITE, "x\n"),
            Err(ReportError::MissingMarker {
                marker: SUITE.begin
            })
        );
        let twice = format!("{}\n{}\n{}\n", SUITE.begin, SUITE.begin, SUITE.end);
        assert_eq!(
            splice(&twice, &SUITE, "x\n"),
            Err(ReportError::RepeatedMarker {
                marker: SUITE.begin,
                count: 2
            })
        );
        let reversed = format!("{}\n{}\n", SUITE.end, SUITE.begin);
        assert!(matches!(
            splice(&reversed, &SUITE, "x\n"),
            Err(ReportError::MarkersOutOfOrder { .. })
        ));
        // The two sections' markers are distinct lines.
        let both = format!(
            "{}\n{}\n{}\n{}\n",
            SUITE.begin, SUITE.end, HOLDOUT.begin, HOLDOUT.end
        );
        let spliced = splice(&both, &HOLDOUT, "held out\n").unwrap();
        assert!(spliced.ends_with(&format!("{}\nheld out\n{}\n", HOLDOUT.begin, HOLDOUT.end)));
    }
}
