//! Replay: a journaled run's inputs through the same tick engine, under the config it
//! ran with ([`replay`]: every decision compared with the recorded one, stopping at the
//! first that differs) or under another ([`what_if`]: how allocations, limits and
//! vetoes would have differed). No hardware is touched: the actuator's answers are the
//! recorded ones, or dry-run ones for a what-if.
//!
//! Each tick's digest of every decision is compared first; at a mismatch, the
//! decisions kept field by field are compared to name what differs.
//!
//! A run is always executed from its first tick, since agents' learned state and the
//! ledger build up from there; `from` only says where comparing and reporting start.

use std::{
    collections::BTreeMap,
    ops::ControlFlow,
    path::Path,
    time::{Duration, Instant},
};

use gamesa_agent::AgentRegistry;
use gamesa_config::{Config, ConfigError, assemble};
use gamesa_engine::{TickEngine, TickOutput};
use gamesa_guardian::Verdict;
use gamesa_hw::Applied;
use gamesa_proto::{Actuation, Tick};
use serde_json::Value;

use crate::{
    JournalError, JournalReader, RecordedTick, RunRecord, decisions_digest, decisions_json,
    modules::ModuleCopies,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("run {run}'s recorded config no longer loads: {reason}")]
    RecordedConfig { run: i64, reason: String },
    #[error("the what-if config: {0}")]
    OtherConfig(String),
    #[error(
        "run {run} is journaled from tick {first} on (retention removed the ticks \
         before it); a replay starts at tick 0"
    )]
    Truncated { run: i64, first: u64 },
    #[error("run {run} has no journaled ticks")]
    Empty { run: i64 },
    #[error(
        "run {run}: tick {expected} was not journaled (the journal's queue was full or it \
         was off); ticks after it cannot be replayed"
    )]
    Gap { run: i64, expected: u64 },
}

/// The first decision that came out differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    pub tick: Tick,
    /// Where in the tick's decisions, such as `actuations[0].verdict.decision`.
    pub path: String,
    pub recorded: String,
    pub replayed: String,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tick {}: `{}` was {} when recorded, {} when replayed",
            self.tick.0, self.path, self.recorded, self.replayed
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReplayReport {
    pub run: i64,
    /// Ticks run through the engine (from the run's first).
    pub executed: u64,
    /// Ticks whose decisions were compared (from `from`), identical unless
    /// `divergence` says otherwise.
    pub compared: u64,
    pub divergence: Option<Divergence>,
    pub elapsed: Duration,
}

impl ReplayReport {
    pub fn identical(&self) -> bool {
        self.divergence.is_none()
    }
}

impl std::fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = self.executed as f64 / self.elapsed.as_secs_f64().max(1e-9);
        match &self.divergence {
            None => write!(
                f,
                "run {}: {} ticks, 100 % identical decisions ({} executed, {rate:.0} ticks/s)",
                self.run, self.compared, self.executed
            ),
            Some(divergence) => write!(
                f,
                "run {}: {} ticks identical, then a divergence at {divergence}",
                self.run, self.compared
            ),
        }
    }
}

/// The ticks to compare or report: `from` to `to`, inclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickRange {
    pub from: Option<Tick>,
    pub to: Option<Tick>,
}

impl TickRange {
    fn reports(&self, tick: Tick) -> bool {
        self.from.is_none_or(|from| tick >= from)
    }
}

/// Replays run `run` (the latest when `None`) under its recorded config and compares
/// every decision in `range` with the journaled one, stopping at the first that
/// differs.
pub fn replay(
    reader: &JournalReader,
    registry: &AgentRegistry,
    run: Option<i64>,
    range: TickRange,
) -> Result<ReplayReport, ReplayError> {
    let started = Instant::now();
    let record = reader.run(run)?;
    let mut engine = recorded_engine(reader, &record, registry)?;
    let mut report = ReplayReport {
        run: record.run,
        executed: 0,
        compared: 0,
        divergence: None,
        elapsed: Duration::ZERO,
    };
    each_recorded_tick(
        reader,
        &record,
        range,
        &mut engine,
        registry,
        |recorded, output| {
            report.executed += 1;
            if !range.reports(output.tick) {
                return ControlFlow::Continue(());
            }
            if decisions_digest(output) == recorded.digest {
                report.compared += 1;
                ControlFlow::Continue(())
            } else {
                let mut replayed = Vec::new();
                decisions_json(output, &mut replayed);
                report.divergence = Some(divergence(output.tick, &recorded.decisions, &replayed));
                ControlFlow::Break(())
            }
        },
    )?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Runs every journaled tick of `record` up to `range.to` through `engine` as the
/// recorded actuator answered it, handing each output to `each` until it breaks.
fn each_recorded_tick(
    reader: &JournalReader,
    record: &RunRecord,
    range: TickRange,
    recorded_engine: &mut RecordedEngine,
    registry: &AgentRegistry,
    mut each: impl FnMut(&RecordedTick, &TickOutput) -> ControlFlow<()>,
) -> Result<(), ReplayError> {
    let run = record.run;
    match reader.tick_range(run)? {
        None => return Err(ReplayError::Empty { run }),
        Some((first, _)) if first != Tick(0) => {
            return Err(ReplayError::Truncated {
                run,
                first: first.0,
            });
        }
        Some(_) => {}
    }
    let mut gap = None;
    let mut failed = None;
    reader.for_each_tick(run, Tick(0), range.to, |recorded| {
        let expected = recorded_engine.engine.state().next_tick();
        if recorded.inputs.tick != expected {
            gap = Some(expected);
            return Ok(ControlFlow::Break(()));
        }
        for config in &recorded.inputs.reloads {
            if let Err(error) = recorded_engine.reload(reader, config, registry, run) {
                failed = Some(error);
                return Ok(ControlFlow::Break(()));
            }
        }
        let engine = &mut recorded_engine.engine;
        let inputs = recorded.inputs.clone();
        let mut output = engine.tick(inputs.frame, inputs.intake);
        engine.applied(&mut output, inputs.actuated);
        output.restore_failed = inputs.restore_failed;
        Ok(each(&recorded, &output))
    })?;
    if let Some(error) = failed {
        return Err(error);
    }
    match gap {
        Some(expected) => Err(ReplayError::Gap {
            run,
            expected: expected.0,
        }),
        None => Ok(()),
    }
}

/// A recorded run's engine and the config it runs under, which a journaled reload
/// replaces as the daemon's did.
struct RecordedEngine {
    engine: TickEngine,
    config: Config,
    /// The highest participant id used so far, as the daemon counted it.
    highest_id: u32,
    /// The journal's copies of the WASM modules the run loaded, which its configs
    /// point at.
    modules: ModuleCopies,
}

impl RecordedEngine {
    /// Applies a reload journaled before a tick, through the same plan as the daemon.
    fn reload(
        &mut self,
        reader: &JournalReader,
        text: &str,
        registry: &AgentRegistry,
        run: i64,
    ) -> Result<(), ReplayError> {
        let reason = |reason: String| ReplayError::RecordedConfig { run, reason };
        let text = self
            .modules
            .point(reader.connection(), text)
            .map_err(|error| reason(format!("its reload: {error}")))?;
        let next = journaled_config(&text, registry).map_err(|error| reason(error.to_string()))?;
        let plan = gamesa_config::reload::plan(&self.config, &next, self.highest_id, registry)
            .map_err(|error| reason(format!("its reload: {error}")))?;
        let added = assemble::host(plan.added, registry)
            .map_err(|(agent, error)| reason(format!("its reload: {agent}: {error}")))?;
        // A rebuild that failed then fails now, and the agent's turns fail as they did.
        let _ = self
            .engine
            .reload(plan.guardian, plan.respecced, added, &plan.retired);
        self.config = plan.config;
        self.highest_id = plan.highest;
        Ok(())
    }
}

fn journaled_config(text: &str, registry: &AgentRegistry) -> Result<Config, ConfigError> {
    Config::from_toml_str(
        text,
        Path::new("<journaled config>"),
        std::iter::empty(),
        registry,
    )
}

/// The engine of a run, built from its recorded config, with what it resumed and its
/// agents warmed as they were.
fn recorded_engine(
    reader: &JournalReader,
    record: &RunRecord,
    registry: &AgentRegistry,
) -> Result<RecordedEngine, ReplayError> {
    let reason = |reason: String| ReplayError::RecordedConfig {
        run: record.run,
        reason,
    };
    let mut modules = ModuleCopies::default();
    let text = modules
        .point(reader.connection(), &record.config)
        .map_err(reason)?;
    let config = journaled_config(&text, registry).map_err(|error| reason(error.to_string()))?;
    let mut engine = assemble::engine(&config, registry)
        .map_err(|(key, message)| reason(format!("{key}: {message}")))?;
    if !record.resumed.is_empty() {
        engine
            .resume(&record.resumed)
            .map_err(|error| reason(format!("its resumed holdings: {error}")))?;
    }
    for (agent, past) in &record.warmed {
        // A `warm` that panicked then panics now, and counts as nothing either time.
        let _ = engine.warm(*agent, past.as_slice().into());
    }
    Ok(RecordedEngine {
        engine,
        highest_id: gamesa_config::reload::highest_id(&config),
        config,
        modules,
    })
}

/// Where two decision documents first differ.
fn divergence(tick: Tick, recorded: &[u8], replayed: &[u8]) -> Divergence {
    let parse = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap_or(Value::Null);
    let (recorded, replayed) = (parse(recorded), parse(replayed));
    // Equal kept decisions under different digests: the difference is in what is kept
    // only in the digest.
    let (path, left, right) =
        first_difference(&recorded, &replayed, String::new()).unwrap_or_else(|| {
            (
                "market_events, audit, postings or frame".to_owned(),
                Value::String("(kept only as a digest)".to_owned()),
                Value::String("(different)".to_owned()),
            )
        });
    Divergence {
        tick,
        path,
        recorded: shorten(&left),
        replayed: shorten(&right),
    }
}

fn first_difference(left: &Value, right: &Value, path: String) -> Option<(String, Value, Value)> {
    match (left, right) {
        (Value::Object(left_map), Value::Object(right_map)) => {
            let keys: std::collections::BTreeSet<&String> =
                left_map.keys().chain(right_map.keys()).collect();
            keys.into_iter().find_map(|key| {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let missing = Value::String("(absent)".to_owned());
                first_difference(
                    left_map.get(key).unwrap_or(&missing),
                    right_map.get(key).unwrap_or(&missing),
                    child,
                )
            })
        }
        (Value::Array(left_items), Value::Array(right_items)) => {
            let common = left_items.len().min(right_items.len());
            (0..common)
                .find_map(|index| {
                    first_difference(
                        &left_items[index],
                        &right_items[index],
                        format!("{path}[{index}]"),
                    )
                })
                .or_else(|| {
                    // The first item only one side has, against `(absent)`.
                    let absent = || Value::String("(absent)".to_owned());
                    (left_items.len() != right_items.len()).then(|| {
                        (
                            format!("{path}[{common}]"),
                            left_items.get(common).cloned().unwrap_or_else(absent),
                            right_items.get(common).cloned().unwrap_or_else(absent),
                        )
                    })
                })
        }
        _ => (left != right).then(|| (path, left.clone(), right.clone())),
    }
}

fn shorten(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 160 {
        format!("{}…", text.chars().take(160).collect::<String>())
    } else {
        text
    }
}

/// How one tick would have gone under the other config, where it differs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TickChange {
    pub tick: Tick,
    /// `(buyer, resource)`: quantity bought, recorded and what-if.
    pub allocations: Vec<(String, String, u64, u64)>,
    /// A component's power limit written this tick, recorded and what-if (mW).
    pub limits: Vec<(String, Option<u64>, Option<u64>)>,
    /// Clamps and denials of fills and actuations, and denied intents: recorded,
    /// what-if.
    pub vetoes: (usize, usize),
}

/// What one buyer bought of one resource over the ticks, recorded and what-if.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Allocated {
    pub buyer: String,
    pub resource: String,
    pub recorded: u64,
    pub what_if: u64,
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct WhatIfReport {
    pub run: i64,
    pub ticks: u64,
    /// Only the ticks that differ, in order.
    pub changes: Vec<TickChange>,
    pub allocated: Vec<Allocated>,
    /// A component's mean power limit over the ticks (as the frames read it, dry-run
    /// limits included), recorded and what-if, in mW.
    pub mean_limit_mw: BTreeMap<String, (f64, f64)>,
    pub vetoes: (usize, usize),
}

/// Replays run `run` under its recorded config and under `other` side by side, over
/// the same recorded frames and client inputs, and reports where allocations, limits
/// and vetoes differ.
///
/// Open loop: the machine's answer to the other limits is not modeled (the frames are
/// the recorded ones, with the what-if's dry-run limits written in), so this says what
/// the market and the guardian would have decided, not how the workload would have
/// run; `gamesa sim` closes that loop on the twin.
pub fn what_if(
    reader: &JournalReader,
    registry: &AgentRegistry,
    run: Option<i64>,
    range: TickRange,
    other: &Config,
) -> Result<WhatIfReport, ReplayError> {
    let record = reader.run(run)?;
    let mut recorded_engine = recorded_engine(reader, &record, registry)?;
    let mut other_engine = assemble::engine(other, registry)
        .map_err(|(key, message)| ReplayError::OtherConfig(format!("{key}: {message}")))?;
    let other_names = assemble::participants(other);
    let other_name = |id| {
        other_names
            .iter()
            .find(|(known, _)| *known == id)
            .map_or_else(|| format!("{id}"), |(_, name)| name.clone())
    };
    let mut report = WhatIfReport {
        run: record.run,
        ..WhatIfReport::default()
    };
    let mut limit_sums: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    let mut allocated: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    each_recorded_tick(
        reader,
        &record,
        range,
        &mut recorded_engine,
        registry,
        |recorded, output| {
            let inputs = recorded.inputs.clone();
            let mut other_output = other_engine.tick(inputs.frame, inputs.intake);
            let dry_run = dry_run_answers(&other_output);
            other_engine.applied(&mut other_output, dry_run);
            if !range.reports(output.tick) {
                return ControlFlow::Continue(());
            }
            report.ticks += 1;
            let before = allocations(output, |id| record.name(id));
            let after = allocations(&other_output, other_name);
            let mut change = TickChange {
                tick: output.tick,
                allocations: Vec::new(),
                limits: Vec::new(),
                vetoes: (vetoes(output), vetoes(&other_output)),
            };
            let keys: std::collections::BTreeSet<_> = before.keys().chain(after.keys()).collect();
            for key in keys {
                let pair = (
                    before.get(key).copied().unwrap_or(0),
                    after.get(key).copied().unwrap_or(0),
                );
                let total = allocated.entry(key.clone()).or_default();
                total.0 += pair.0;
                total.1 += pair.1;
                if pair.0 != pair.1 {
                    change
                        .allocations
                        .push((key.0.clone(), key.1.clone(), pair.0, pair.1));
                }
            }
            let (written_before, written_after) = (written(output), written(&other_output));
            let components: std::collections::BTreeSet<_> =
                written_before.keys().chain(written_after.keys()).collect();
            for component in components {
                let pair = (
                    written_before.get(component).copied(),
                    written_after.get(component).copied(),
                );
                if pair.0 != pair.1 {
                    change.limits.push((component.clone(), pair.0, pair.1));
                }
            }
            for component in output.frame.components.iter() {
                let what_if = other_output
                    .frame
                    .component(&component.id)
                    .and_then(|reading| reading.limit_mw);
                if let (Some(before), Some(after)) = (component.limit_mw, what_if) {
                    let sums = limit_sums.entry(component.id.clone()).or_default();
                    sums.0 += before;
                    sums.1 += after;
                    sums.2 += 1;
                }
            }
            report.vetoes.0 += change.vetoes.0;
            report.vetoes.1 += change.vetoes.1;
            if !change.allocations.is_empty()
                || !change.limits.is_empty()
                || change.vetoes.0 != change.vetoes.1
            {
                report.changes.push(change);
            }
            ControlFlow::Continue(())
        },
    )?;
    report.allocated = allocated
        .into_iter()
        .map(|((buyer, resource), (recorded, what_if))| Allocated {
            buyer,
            resource,
            recorded,
            what_if,
        })
        .collect();
    report.mean_limit_mw = limit_sums
        .into_iter()
        .map(|(component, (before, after, count))| {
            let count = count.max(1) as f64;
            (component, (before as f64 / count, after as f64 / count))
        })
        .collect();
    Ok(report)
}

impl WhatIfReport {
    /// In words, with the first `show` differing ticks.
    pub fn display(&self, show: usize) -> impl std::fmt::Display + '_ {
        WhatIfWords { report: self, show }
    }
}

struct WhatIfWords<'a> {
    report: &'a WhatIfReport,
    show: usize,
}

impl std::fmt::Display for WhatIfWords<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let report = self.report;
        writeln!(
            f,
            "run {} under the other config: {} of {} ticks would have gone differently",
            report.run,
            report.changes.len(),
            report.ticks
        )?;
        for change in report.changes.iter().take(self.show) {
            let mut parts = Vec::new();
            for (buyer, resource, before, after) in &change.allocations {
                parts.push(format!(
                    "{buyer} bought {after} {resource} instead of {before}"
                ));
            }
            let limit = |mw: &Option<u64>| {
                mw.map_or_else(
                    || "nothing".to_owned(),
                    |mw| format!("{:.1} W", mw as f64 / 1000.0),
                )
            };
            for (component, before, after) in &change.limits {
                parts.push(format!(
                    "{component} limit {} instead of {}",
                    limit(after),
                    limit(before)
                ));
            }
            if change.vetoes.0 != change.vetoes.1 {
                parts.push(format!(
                    "{} vetoes instead of {}",
                    change.vetoes.1, change.vetoes.0
                ));
            }
            writeln!(f, "  tick {}: {}", change.tick.0, parts.join("; "))?;
        }
        if report.changes.len() > self.show {
            writeln!(f, "  ... {} more ticks", report.changes.len() - self.show)?;
        }
        writeln!(f, "in total:")?;
        for allocated in &report.allocated {
            writeln!(
                f,
                "  {} bought {} {} (recorded: {})",
                allocated.buyer, allocated.what_if, allocated.resource, allocated.recorded
            )?;
        }
        for (component, (before, after)) in &report.mean_limit_mw {
            writeln!(
                f,
                "  {component}: mean limit {:.1} W (recorded: {:.1} W)",
                after / 1000.0,
                before / 1000.0
            )?;
        }
        writeln!(
            f,
            "  vetoes: {} (recorded: {})",
            report.vetoes.1, report.vetoes.0
        )
    }
}

/// What a dry-run actuator answers to a tick's writes.
fn dry_run_answers(output: &TickOutput) -> Vec<Result<Applied, String>> {
    output
        .to_apply()
        .into_iter()
        .map(|(_, actuation)| {
            Ok(Applied {
                target: actuation.target(),
                previous: String::new(),
                current: String::new(),
                changed: true,
                dry_run: true,
            })
        })
        .collect()
}

/// Quantity bought per `(buyer, resource)` in fills the guardian allowed.
fn allocations(
    output: &TickOutput,
    name: impl Fn(gamesa_proto::AgentId) -> String,
) -> BTreeMap<(String, String), u64> {
    let mut bought = BTreeMap::new();
    for (fill, verdict) in &output.fills {
        if matches!(verdict, Verdict::Allow { .. }) {
            *bought
                .entry((name(fill.buyer), fill.resource.to_string()))
                .or_default() += fill.quantity.0;
        }
    }
    bought
}

/// Power limits the tick wrote, per component.
fn written(output: &TickOutput) -> BTreeMap<String, u64> {
    output
        .to_apply()
        .into_iter()
        .filter_map(|(_, actuation)| match actuation {
            Actuation::PowerLimit {
                component,
                limit_mw,
            } => Some((component, limit_mw)),
            _ => None,
        })
        .collect()
}

fn vetoes(output: &TickOutput) -> usize {
    output.vetoes().count() + output.denied_intents.len()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_first_difference_is_named_by_its_path() {
        let recorded = json!({"fills": [], "actuations": [{"verdict": {"decision": "allow"}}]});
        let replayed = json!({"fills": [], "actuations": [{"verdict": {"decision": "deny"}}]});
        assert_eq!(
            first_difference(&recorded, &replayed, String::new()),
            Some((
                "actuations[0].verdict.decision".to_owned(),
                json!("allow"),
                json!("deny")
            ))
        );
        let shorter = json!({"fills": [1, 2]});
        let longer = json!({"fills": [1, 2, 3]});
        assert_eq!(
            first_difference(&shorter, &longer, String::new()),
            Some(("fills[2]".to_owned(), json!("(absent)"), json!(3)))
        );
        assert_eq!(first_difference(&recorded, &recorded, String::new()), None);
    }
}
