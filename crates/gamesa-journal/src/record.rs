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
    /// The frame as the tick read it: the sensors' sample with the dry-run limits in
    /// force and the reported progress written in. Reading it again writes in the same
    /// values, so the engine reads it as it did.
    pub frame: TelemetryFrame,
    /// Injected signals, clients' orders and cancels, progress reports, sample errors,
    /// the agents that missed their deadline (`Intake::late`: the shell's thread
    /// timing, which the engine cannot reproduce by itself), and what out-of-process
    /// agents answered (`Intake::answered`: another process is not the engine's to run
    /// again).
    pub intake: Intake,
    /// What the actuator did with each actuation the tick asked for, in order.
    pub actuated: Vec<Result<Applied, String>>,
    /// Targets the actuator could not restore, with why.
    pub restore_failed: Vec<(String, String)>,
    /// The configs reloads applied just before this tick, in order (TOML, tokens
    /// redacted): replay applies them at the same place.
    #[serde(default)]
    pub reloads: Vec<String>,
}

impl TickInputs {
    /// The inputs of a tick the shell ran: `intake` as it was handed to the engine, with
    /// the agents it found late, and the rest read from its `output` once actuated.
    /// What out-of-process agents answered is taken from the output too (`Intake::answered`).
    pub fn new(at_ms: u64, mut intake: Intake, output: &TickOutput, reloads: Vec<String>) -> Self {
        intake.answered = output.answered.clone();
        intake.late = output
            .failures
            .iter()
            .filter_map(|failure| match failure.failure {
                AgentFailure::MissedDeadline { deadline_ms } => Some((failure.agent, deadline_ms)),
                _ => None,
            })
            .collect();
        TickInputs {
            tick: output.tick,
            at_ms,
            frame: TelemetryFrame::clone(&output.frame),
            intake,
            actuated: output
                .actuations
                .iter()
                .filter_map(|record| record.outcome.clone())
                .collect(),
            restore_failed: output.restore_failed.clone(),
            reloads,
        }
    }
}

/// The decisions kept field by field: what `gamesa why` reads and a replay's
/// divergence is shown in. Everything in [`TickOutput`] but the market events, effect
/// checks, ledger postings and resting orders (large, and following from these and
/// earlier ticks), the prepared frame (the inputs have it), the timings (read, never
/// decided on) and `restore_failed` (an input).
#[derive(Serialize)]
struct Kept<'a> {
    tick: Tick,
    correlation: &'a gamesa_proto::CorrelationId,
    sample_errors: &'a [String],
    mint: &'a Option<Result<gamesa_guardian::MintReport, gamesa_guardian::LedgerError>>,
    signals: &'a [gamesa_proto::Signal],
    preempting: &'a [gamesa_proto::Signal],
    refused_signals: &'a [(gamesa_proto::Signal, gamesa_signals::SignalError)],
    held: &'a [String],
    revoked_power_of: &'a [AgentId],
    no_safe_limit: &'a [String],
    intents_by_agent: &'a [(AgentId, usize)],
    intents_checked: usize,
    denied_intents: &'a [(gamesa_guardian::StampedIntent, gamesa_guardian::Reason)],
    submissions: &'a [gamesa_market::Submission],
    capacities: &'a [(AgentId, gamesa_proto::Resource, gamesa_proto::Quantity)],
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
}

impl<'a> Kept<'a> {
    fn of(output: &'a TickOutput) -> Kept<'a> {
        Kept {
            tick: output.tick,
            correlation: &output.correlation,
            sample_errors: &output.sample_errors,
            mint: &output.mint,
            signals: &output.signals,
            preempting: &output.preempting,
            refused_signals: &output.refused_signals,
            held: &output.held,
            revoked_power_of: &output.revoked_power_of,
            no_safe_limit: &output.no_safe_limit,
            intents_by_agent: &output.intents_by_agent,
            intents_checked: output.intents_checked,
            denied_intents: &output.denied_intents,
            submissions: &output.submissions,
            capacities: &output.capacities,
            market_errors: &output.market_errors,
            fills: &output.fills,
            actuations: &output.actuations,
            preempted: &output.preempted,
            failures: &output.failures,
            restore: &output.restore,
            market: &output.market,
        }
    }
}

/// Every decision of a tick, for its digest.
#[derive(Serialize)]
struct All<'a> {
    kept: Kept<'a>,
    resting: &'a [(gamesa_proto::OrderId, gamesa_proto::OrderRequest)],
    frame: &'a TelemetryFrame,
    market_events: &'a [gamesa_market::MarketEvent],
    audit: &'a [gamesa_guardian::AuditRecord],
    postings: &'a [gamesa_guardian::Posting],
}

/// Writes the decisions `output` keeps field by field into `buffer` (cleared first),
/// as JSON in a fixed field order: the same decisions give the same bytes.
pub fn decisions_json(output: &TickOutput, buffer: &mut Vec<u8>) {
    buffer.clear();
    // Every field serializes with derived impls over strings, integers, floats and
    // sequences, which JSON cannot refuse (no map has a non-string key).
    if let Err(error) = serde_json::to_writer(&mut *buffer, &Kept::of(output)) {
        buffer.clear();
        buffer.extend_from_slice(
            serde_json::json!({ "unserializable": error.to_string() })
                .to_string()
                .as_bytes(),
        );
    }
}

/// A 64-bit digest (XXH3) of every decision of `output`, kept or not: replay compares
/// it first. Two different decisions of a tick share one with odds of 2⁻⁶⁴.
pub fn decisions_digest(output: &TickOutput) -> u64 {
    let mut hasher = Digest(xxhash_rust::xxh3::Xxh3::new());
    let all = All {
        kept: Kept::of(output),
        resting: &output.resting,
        frame: &output.frame,
        market_events: &output.market_events,
        audit: &output.audit,
        postings: &output.postings,
    };
    // MessagePack with structs as arrays: compact and quick to produce, and as
    // deterministic as the JSON. It cannot fail on these types (see above).
    let _ = rmp_serde::encode::write(&mut hasher, &all);
    hasher.0.digest()
}

/// An `io::Write` into the hasher, so the digest needs no buffer.
struct Digest(xxhash_rust::xxh3::Xxh3);

impl std::io::Write for Digest {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
