//! What the journal keeps of one tick: the inputs the engine consumed
//! ([`TickInputs`]), enough to run the tick again, and what it decided
//! ([`decisions_json`]), the canonical bytes a replay is compared against.

use gamesa_engine::{AgentFailure, Intake, TickOutput};
use gamesa_hw::Applied;
use gamesa_proto::{AgentId, TelemetryFrame, Tick};
use serde::{Deserialize, Serialize};

/// Everything one tick consumed that did not come from the engine's own state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickInputs {
    pub tick: Tick,
    /// When the tick ran, in ms since the Unix epoch. Read for `gamesa why --at` and
    /// retention; no decision depends on it.
    pub at_ms: u64,
    /// The frame as the sensors gave it, before dry-run limits and reported progress
    /// were written in.
    pub frame: TelemetryFrame,
    /// Injected signals, clients' orders and cancels, progress reports, sample errors.
    pub intake: Intake,
    /// Agents that missed their deadline, with the deadline in ms: the shell's thread
    /// timing, which the engine cannot reproduce by itself.
    pub late: Vec<(AgentId, u64)>,
    /// What the actuator did with each actuation the tick asked for, in order.
    pub actuated: Vec<Result<Applied, String>>,
    /// Targets the actuator could not restore, with why.
    pub restore_failed: Vec<(String, String)>,
}

impl TickInputs {
    /// The inputs of a tick the shell ran: `frame` and `intake` as they were handed to
    /// the engine, and the rest read from its `output` once actuated.
    pub fn new(at_ms: u64, frame: TelemetryFrame, intake: Intake, output: &TickOutput) -> Self {
        TickInputs {
            tick: output.tick,
            at_ms,
            frame,
            intake,
            late: output
                .failures
                .iter()
                .filter_map(|failure| match failure.failure {
                    AgentFailure::MissedDeadline { deadline_ms } => {
                        Some((failure.agent, deadline_ms))
                    }
                    _ => None,
                })
                .collect(),
            actuated: output
                .actuations
                .iter()
                .filter_map(|record| record.outcome.clone())
                .collect(),
            restore_failed: output.restore_failed.clone(),
        }
    }
}

/// A tick's decisions as they are journaled and compared: everything in
/// [`TickOutput`] but the timings (read, never decided on) and `restore_failed` (an
/// input).
#[derive(Serialize)]
struct Decisions<'a> {
    tick: Tick,
    correlation: &'a gamesa_proto::CorrelationId,
    frame: &'a TelemetryFrame,
    sample_errors: &'a [String],
    mint: &'a Option<Result<gamesa_guardian::MintReport, gamesa_guardian::LedgerError>>,
    signals: &'a [gamesa_proto::Signal],
    preempting: &'a [gamesa_proto::Signal],
    refused_signals: &'a [(gamesa_proto::Signal, gamesa_signals::SignalError)],
    held: &'a [String],
    revoked_power_of: &'a [AgentId],
    no_safe_limit: &'a [String],
    resting: &'a [(gamesa_proto::OrderId, gamesa_proto::OrderRequest)],
    intents_by_agent: &'a [(AgentId, usize)],
    intents_checked: usize,
    denied_intents: &'a [(gamesa_guardian::StampedIntent, gamesa_guardian::Reason)],
    submissions: &'a [gamesa_market::Submission],
    capacities: &'a [(AgentId, gamesa_proto::Resource, gamesa_proto::Quantity)],
    market_events: &'a [gamesa_market::MarketEvent],
    market_errors: &'a [(
        Option<(AgentId, gamesa_proto::Resource)>,
        gamesa_market::MarketError,
    )],
    fills: &'a [(gamesa_proto::Fill, gamesa_guardian::Verdict)],
    actuations: &'a [gamesa_engine::ActuationRecord],
    preempted: &'a [(AgentId, gamesa_proto::Actuation)],
    failures: &'a [gamesa_engine::FailureRecord],
    restore: &'a [String],
    market: &'a gamesa_agent::MarketView,
    audit: &'a [gamesa_guardian::AuditRecord],
    postings: &'a [gamesa_guardian::Posting],
}

/// Writes `output`'s decisions into `buffer` (cleared first) as JSON: the same
/// decisions give the same bytes, so a replay compares bytes.
pub fn decisions_json(output: &TickOutput, buffer: &mut Vec<u8>) {
    buffer.clear();
    let decisions = Decisions {
        tick: output.tick,
        correlation: &output.correlation,
        frame: &output.frame,
        sample_errors: &output.sample_errors,
        mint: &output.mint,
        signals: &output.signals,
        preempting: &output.preempting,
        refused_signals: &output.refused_signals,
        held: &output.held,
        revoked_power_of: &output.revoked_power_of,
        no_safe_limit: &output.no_safe_limit,
        resting: &output.resting,
        intents_by_agent: &output.intents_by_agent,
        intents_checked: output.intents_checked,
        denied_intents: &output.denied_intents,
        submissions: &output.submissions,
        capacities: &output.capacities,
        market_events: &output.market_events,
        market_errors: &output.market_errors,
        fills: &output.fills,
        actuations: &output.actuations,
        preempted: &output.preempted,
        failures: &output.failures,
        restore: &output.restore,
        market: &output.market,
        audit: &output.audit,
        postings: &output.postings,
    };
    // Every field serializes with derived impls over strings, integers, floats and
    // sequences: JSON cannot refuse them (non-string map keys do not occur).
    if let Err(error) = serde_json::to_writer(&mut *buffer, &decisions) {
        buffer.clear();
        buffer.extend_from_slice(
            format!("{{\"unserializable\":{:?}}}", error.to_string()).as_bytes(),
        );
    }
}
