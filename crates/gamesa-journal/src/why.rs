//! `gamesa why`: the causal chain behind a component's power limit at one tick, read
//! from the journal: the reading then, the actuation that set the limit (who asked,
//! the guardian's verdict with its clause and margin, what was written), the signals
//! live and any safety hold when it was set, the requester's orders that tick and its
//! power bought in the epoch before, and the clearing prices.

use std::fmt;

use gamesa_proto::{
    AgentId, ComponentTelemetry, OrderId, OrderRequest, Price, Resource, Signal, TelemetryFrame,
    Tick,
};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::{JournalError, JournalReader, RunRecord};

/// The actuation that set the limit in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitSet {
    pub tick: u64,
    pub at_ms: u64,
    pub requester: String,
    pub requested_mw: Option<u64>,
    /// allow, clamp or deny.
    pub verdict: String,
    pub applied_mw: Option<u64>,
    /// The guardian's reason: the clause and its margin, or the gate's clamp.
    pub reason: String,
    /// written, unchanged, dry_run, or `error: ...`.
    pub outcome: Option<String>,
}

/// A fill the requester took part in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FillSeen {
    pub tick: u64,
    pub buyer: String,
    pub seller: String,
    pub resource: String,
    pub quantity: u64,
    pub price: u64,
    pub verdict: String,
    pub reason: String,
}

/// Everything `gamesa why` says about one component at one tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub run: i64,
    pub tick: u64,
    pub at_ms: u64,
    pub component: String,
    /// The component as the tick read it (a dry-run limit in place of the device's).
    pub reading: Option<ComponentTelemetry>,
    /// The last limit written at or before the tick; `None` when none was.
    pub limit_set: Option<LimitSet>,
    /// Under a safety hold when the limit was set.
    pub held: bool,
    /// Signals live when the limit was set, highest-ranked first.
    pub signals: Vec<Signal>,
    /// The requester's orders at that tick.
    pub orders: Vec<OrderRequest>,
    /// The requester's fills in the epoch up to that tick.
    pub fills: Vec<FillSeen>,
    /// The last clearing price of each resource then.
    pub prices: Vec<(String, u64)>,
}

/// The parts of a tick's kept decisions this reads.
#[derive(Deserialize)]
struct DecisionsView {
    signals: Vec<Signal>,
    held: Vec<String>,
    submissions: Vec<SubmissionView>,
    market: MarketViewView,
}

#[derive(Deserialize)]
struct FillsView {
    fills: Vec<(gamesa_proto::Fill, gamesa_guardian::Verdict)>,
}

#[derive(Deserialize)]
struct SubmissionView {
    command: CommandView,
}

#[derive(Deserialize)]
enum CommandView {
    Place(OrderRequest),
    Cancel {
        #[allow(dead_code)]
        agent: AgentId,
        #[allow(dead_code)]
        order: OrderId,
    },
}

#[derive(Deserialize)]
struct MarketViewView {
    last_price: Vec<Option<Price>>,
}

/// How a moment is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// The last tick at or before this time (ms since the Unix epoch).
    At(u64),
    /// A tick of a run (the latest run when `None`).
    Tick(Option<i64>, Tick),
    /// A tick's correlation id: the run's seed and the tick number.
    Correlation(gamesa_proto::CorrelationId),
}

/// The run and tick a moment names.
pub fn resolve(reader: &JournalReader, moment: Moment) -> Result<(RunRecord, Tick), JournalError> {
    match moment {
        Moment::At(at_ms) => {
            let (run, tick) = reader.tick_at(at_ms)?.ok_or_else(|| {
                JournalError::NotFound(format!("nothing is journaled at or before {}", time(at_ms)))
            })?;
            Ok((reader.run(Some(run))?, tick))
        }
        Moment::Tick(run, tick) => Ok((reader.run(run)?, tick)),
        Moment::Correlation(correlation) => {
            let (seed, tick) = correlation.0.as_u64_pair();
            let run = reader
                .runs()?
                .into_iter()
                .rev()
                .find(|run| {
                    run.seed == seed
                        && reader
                            .tick_range(run.run)
                            .ok()
                            .flatten()
                            .is_some_and(|(first, last)| (first.0..=last.0).contains(&tick))
                })
                .ok_or_else(|| {
                    JournalError::NotFound(format!("no journaled run has a tick {correlation}"))
                })?;
            Ok((run, Tick(tick)))
        }
    }
}

/// Explains `component`'s limit at `tick` of `run`.
pub fn explain(
    reader: &JournalReader,
    run: &RunRecord,
    tick: Tick,
    component: &str,
    epoch_ticks: u64,
) -> Result<Explanation, JournalError> {
    let now = reader.tick(run.run, tick)?.ok_or_else(|| {
        JournalError::NotFound(format!(
            "tick {} of run {} is not journaled",
            tick.0, run.run
        ))
    })?;
    let view = decode(&now.decisions)?;
    let frame: &TelemetryFrame = &now.inputs.frame;
    let mut reading = frame.component(component).cloned();
    if reading.is_none() && !frame.components.is_empty() {
        let known: Vec<&str> = frame.components.iter().map(|c| c.id.as_str()).collect();
        return Err(JournalError::Read(format!(
            "no component `{component}` at tick {}; the frame has {}",
            tick.0,
            known.join(", ")
        )));
    }
    let connection = reader.connection();
    let limit_set = connection
        .query_row(
            "SELECT tick, at_ms, requester, requested, verdict, applied, reason, outcome
             FROM actuations
             WHERE run = ?1 AND target = ?2 AND tick <= ?3 AND applied IS NOT NULL
               AND (outcome IS NULL OR outcome NOT LIKE 'error:%')
             ORDER BY tick DESC LIMIT 1",
            params![run.run, format!("power.limit:{component}"), tick.0 as i64],
            |row| {
                Ok(LimitSet {
                    tick: row.get::<_, i64>(0)? as u64,
                    at_ms: row.get::<_, i64>(1)? as u64,
                    requester: row.get(2)?,
                    requested_mw: row.get::<_, Option<i64>>(3)?.map(|mw| mw as u64),
                    verdict: row.get(4)?,
                    applied_mw: row.get::<_, Option<i64>>(5)?.map(|mw| mw as u64),
                    reason: row.get(6)?,
                    outcome: row.get(7)?,
                })
            },
        )
        .optional()?;
    // A dry-run limit is read in place of the device's own, as the tick read it.
    if let (Some(reading), Some(set)) = (&mut reading, &limit_set)
        && set.outcome.as_deref() == Some("dry_run")
    {
        reading.limit_mw = set.applied_mw;
    }
    let mut explanation = Explanation {
        run: run.run,
        tick: tick.0,
        at_ms: now.inputs.at_ms,
        component: component.to_owned(),
        reading,
        limit_set: None,
        held: false,
        signals: Vec::new(),
        orders: Vec::new(),
        fills: Vec::new(),
        prices: Vec::new(),
    };
    let Some(limit_set) = limit_set else {
        explanation.held = view.held.iter().any(|held| held == component);
        explanation.signals = view.signals;
        explanation.prices = prices(&view.market);
        return Ok(explanation);
    };
    let then = match reader.tick(run.run, Tick(limit_set.tick))? {
        Some(recorded) => decode(&recorded.decisions)?,
        None => view,
    };
    let requester = run
        .participants
        .iter()
        .find(|(_, name)| *name == limit_set.requester)
        .map(|(id, _)| *id);
    explanation.held = then.held.iter().any(|held| held == component);
    explanation.orders = then
        .submissions
        .into_iter()
        .filter_map(|submission| match submission.command {
            CommandView::Place(order) if Some(order.owner) == requester => Some(order),
            _ => None,
        })
        .collect();
    explanation.signals = then.signals;
    explanation.prices = prices(&then.market);
    let from = limit_set.tick.saturating_sub(epoch_ticks.max(1) - 1);
    let mut fills = Vec::new();
    reader.for_each_tick(
        run.run,
        Tick(from),
        Some(Tick(limit_set.tick)),
        |recorded| {
            let kept: FillsView = serde_json::from_slice(&recorded.decisions).map_err(|error| {
                JournalError::Corrupt {
                    what: "a tick's decisions",
                    reason: error.to_string(),
                }
            })?;
            for (fill, verdict) in kept.fills {
                if Some(fill.buyer) == requester || Some(fill.seller) == requester {
                    fills.push(FillSeen {
                        tick: recorded.inputs.tick.0,
                        buyer: run.name(fill.buyer),
                        seller: run.name(fill.seller),
                        resource: fill.resource.to_string(),
                        quantity: fill.quantity.0,
                        price: fill.price.0,
                        verdict: verdict.decision().to_owned(),
                        reason: verdict.reason().to_string(),
                    });
                }
            }
            Ok(std::ops::ControlFlow::Continue(()))
        },
    )?;
    explanation.fills = fills;
    explanation.limit_set = Some(limit_set);
    Ok(explanation)
}

fn decode(decisions: &[u8]) -> Result<DecisionsView, JournalError> {
    serde_json::from_slice(decisions).map_err(|error| JournalError::Corrupt {
        what: "a tick's decisions",
        reason: error.to_string(),
    })
}

fn prices(market: &MarketViewView) -> Vec<(String, u64)> {
    Resource::ALL
        .into_iter()
        .zip(&market.last_price)
        .filter_map(|(resource, price)| price.map(|price| (resource.to_string(), price.0)))
        .collect()
}

/// A time in ms since the Unix epoch, as RFC 3339 in UTC.
pub fn time(at_ms: u64) -> String {
    i64::try_from(at_ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(|| format!("{at_ms} ms"), |timestamp| timestamp.to_string())
}

fn watts(mw: u64) -> String {
    format!("{:.1} W", mw as f64 / 1000.0)
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} at tick {} of run {} ({}):",
            self.component,
            self.tick,
            self.run,
            time(self.at_ms)
        )?;
        match &self.reading {
            Some(reading) => {
                let mut parts = Vec::new();
                if let Some(power) = reading.power_mw {
                    parts.push(format!("drawing {}", watts(power)));
                }
                match reading.limit_mw {
                    Some(limit) => parts.push(format!("limit {}", watts(limit))),
                    None => parts.push("no limit readable".to_owned()),
                }
                if let Some(temp) = reading.temp_mc {
                    parts.push(format!("{:.1} °C", f64::from(temp) / 1000.0));
                }
                parts.push(format!(
                    "{:.1} % busy",
                    f64::from(reading.utilization_permille) / 10.0
                ));
                writeln!(f, "  reading: {}", parts.join(", "))?;
            }
            None => writeln!(f, "  reading: the frame had no such component")?,
        }
        let Some(set) = &self.limit_set else {
            writeln!(
                f,
                "  no limit was written for it in this run up to this tick: it is the \
                 device's own"
            )?;
            return self.context(f);
        };
        let asked = set.requested_mw.map_or_else(|| "?".to_owned(), watts);
        let applied = set.applied_mw.map_or_else(|| "nothing".to_owned(), watts);
        let outcome = match set.outcome.as_deref() {
            Some("dry_run") => "recorded only (dry-run: nothing reached the hardware)",
            Some("written") => "written to the hardware",
            Some("unchanged") => "already in force (nothing written)",
            Some(other) => other,
            None => "not written",
        };
        let who = if set.requester == "guardian" {
            "the guardian (a safety action)".to_owned()
        } else {
            format!("agent `{}`", set.requester)
        };
        writeln!(
            f,
            "  set at tick {} ({}) by {who}: asked {asked}, guardian said {} ({}), \
             applied {applied}, {outcome}",
            set.tick,
            time(set.at_ms),
            set.verdict,
            set.reason
        )?;
        if self.held {
            writeln!(f, "  a safety hold covered {} then", self.component)?;
        }
        if self.orders.is_empty() {
            writeln!(f, "  {} placed no orders that tick", set.requester)?;
        }
        for order in &self.orders {
            writeln!(
                f,
                "  its order that tick: {:?} {} {} at {}",
                order.side, order.quantity.0, order.resource, order.price.0
            )?;
        }
        if self.fills.is_empty() {
            writeln!(f, "  it traded nothing in the epoch before")?;
        }
        // One line per tick, side and verdict: fills come in runs down a book.
        for group in self.fills.chunk_by(|a, b| {
            (a.tick, &a.buyer, &a.seller, &a.resource, &a.verdict)
                == (b.tick, &b.buyer, &b.seller, &b.resource, &b.verdict)
        }) {
            let first = &group[0];
            let quantity: u64 = group.iter().map(|fill| fill.quantity).sum();
            let low = group.iter().map(|fill| fill.price).min().unwrap_or(0);
            let high = group.iter().map(|fill| fill.price).max().unwrap_or(0);
            let prices = if low == high {
                format!("at {low}")
            } else {
                format!("at {low} to {high}")
            };
            let (verb, verdict) = match first.verdict.as_str() {
                "allow" => ("bought", "allowed, leased for the epoch".to_owned()),
                other => ("was matched", format!("{other}: {}", first.reason)),
            };
            writeln!(
                f,
                "  tick {}: {} {verb} {quantity} {} from {} in {} fills {prices} per unit ({verdict})",
                first.tick,
                first.buyer,
                first.resource,
                first.seller,
                group.len(),
            )?;
        }
        self.context(f)
    }
}

impl Explanation {
    fn context(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.signals.is_empty() {
            writeln!(f, "  no signals were live")?;
        } else {
            let signals: Vec<String> = self
                .signals
                .iter()
                .map(|signal| {
                    format!(
                        "{} ({:?}, strength {:?}, from {})",
                        signal.kind, signal.domain, signal.strength, signal.source
                    )
                })
                .collect();
            writeln!(f, "  signals live: {}", signals.join("; "))?;
        }
        if !self.prices.is_empty() {
            let prices: Vec<String> = self
                .prices
                .iter()
                .map(|(resource, price)| format!("{resource} {price}"))
                .collect();
            writeln!(f, "  last clearing prices: {}", prices.join(", "))?;
        }
        Ok(())
    }
}
