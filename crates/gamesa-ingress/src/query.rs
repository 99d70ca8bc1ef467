//! Answers to `query` requests, read from the hub's snapshot of the last tick: they
//! never wait for the tick or touch an actor.

use gamesa_wire::{
    AccountResult, ActuationDecision, AgentsResult, AllocationDecision, AllocationsResult,
    BookResult, DecisionRecord, DecisionsResult, ErrorBody, ErrorCode, ExperienceRecord,
    ExperiencesResult, FailedClause, HealthResult, OrderConsidered, PROTOCOL_VERSION, QueryName,
    QueryRequest, TelemetryResult,
};

use super::{clients::ClientEntry, hub::IngressHub, respond::Respond};
use gamesa_journal::{
    JournalError,
    why::{Explanation, Moment},
};
use gamesa_telemetry::{Decision, DecisionQuery, decision::Subject};

/// Price levels per side a `query book` returns when it sets no `levels`.
pub const DEFAULT_BOOK_LEVELS: u32 = 10;
/// The most price levels per side a `query book` may ask for (the hub keeps this many).
pub const MAX_BOOK_LEVELS: u32 = super::hub::BOOK_LEVELS as u32;
/// Decisions a `query decisions` returns when it sets no `limit`.
pub const DEFAULT_DECISIONS: u32 = 100;
/// The most decisions one reply carries.
pub const MAX_DECISIONS: u32 = 1_000;

/// Experiences a `query experiences` returns when it sets no `limit`.
pub const DEFAULT_EXPERIENCES: u32 = 100;
/// The most experiences one reply carries.
pub const MAX_EXPERIENCES: u32 = 1_000;

/// `gamesa/<version>`, as `hello` and `health` name the server.
pub fn server_name() -> String {
    format!("gamesa/{}", env!("CARGO_PKG_VERSION"))
}

/// Answers `query` (result or error) through `respond`.
pub fn answer(
    hub: &IngressHub,
    caller: Option<&ClientEntry>,
    query: &QueryRequest,
    respond: &mut impl Respond,
) {
    let snapshot = hub.snapshot();
    match query.query {
        QueryName::Health => {
            let isolated: Vec<String> = snapshot
                .isolated
                .iter()
                .map(|agent| hub.name_of(*agent))
                .collect();
            respond.ok(&HealthResult {
                status: if isolated.is_empty() {
                    "ok"
                } else {
                    "degraded"
                }
                .into(),
                protocol_version: PROTOCOL_VERSION,
                server: server_name(),
                tick: snapshot.tick,
                uptime_ms: hub.uptime_ms(),
                connections: hub
                    .counters
                    .connections
                    .load(std::sync::atomic::Ordering::Relaxed),
                isolated,
            })
        }
        QueryName::Telemetry => respond.ok(&TelemetryResult {
            tick: snapshot.tick,
            frame: snapshot.frame.as_deref().cloned(),
        }),
        QueryName::Book => {
            let Some(resource) = query.resource else {
                return respond.error(ErrorBody::new(
                    ErrorCode::InvalidRequest,
                    "the book query needs `resource`",
                ));
            };
            let levels = query.levels.unwrap_or(DEFAULT_BOOK_LEVELS);
            if !(1..=MAX_BOOK_LEVELS).contains(&levels) {
                return respond.error(ErrorBody::new(
                    ErrorCode::InvalidRequest,
                    format!("field `levels`: {levels} is outside 1..={MAX_BOOK_LEVELS}"),
                ));
            }
            let levels = levels as usize;
            let book = snapshot.books.get(resource.index()).map_or_else(
                || BookResult {
                    resource,
                    tick: snapshot.tick,
                    last_price: None,
                    best_bid: None,
                    best_ask: None,
                    bids: Vec::new(),
                    asks: Vec::new(),
                },
                |book| BookResult {
                    bids: book.bids.iter().take(levels).copied().collect(),
                    asks: book.asks.iter().take(levels).copied().collect(),
                    ..book.clone()
                },
            );
            respond.ok(&book)
        }
        QueryName::Allocations => respond.ok(&AllocationsResult {
            tick: snapshot.tick,
            leases: snapshot
                .leases
                .iter()
                .filter(|lease| query.resource.is_none_or(|only| lease.resource == only))
                .cloned()
                .collect(),
        }),
        QueryName::Account => {
            let agent = match (&query.agent, caller) {
                (Some(name), _) => hub.agent_named(name),
                (None, Some(caller)) => Some(caller.agent),
                (None, None) => None,
            };
            let Some(agent) = agent else {
                return respond.error(ErrorBody::new(
                    ErrorCode::InvalidRequest,
                    format!(
                        "no agent or client named `{}`",
                        query.agent.as_deref().unwrap_or_default()
                    ),
                ));
            };
            let balance = snapshot.accounts.get(&agent).copied().unwrap_or_default();
            respond.ok(&AccountResult {
                agent,
                name: hub.name_of(agent),
                tick: snapshot.tick,
                available: balance.available,
                escrowed: balance.escrowed,
                allowance: balance.allowance,
            })
        }
        QueryName::Agents => respond.ok(&AgentsResult {
            agents: hub
                .roster()
                .participants
                .iter()
                .map(|entry| gamesa_wire::AgentEntry {
                    isolated: snapshot.isolated.contains(&entry.id),
                    ..entry.clone()
                })
                .collect(),
        }),
        QueryName::Decisions => {
            let Some(log) = hub.decision_log() else {
                return respond.ok(&DecisionsResult {
                    oldest_tick: None,
                    newest_tick: None,
                    decisions: Vec::new(),
                });
            };
            let limit = query.limit.unwrap_or(DEFAULT_DECISIONS);
            if !(1..=MAX_DECISIONS).contains(&limit) {
                return respond.error(ErrorBody::new(
                    ErrorCode::InvalidRequest,
                    format!("field `limit`: {limit} is outside 1..={MAX_DECISIONS}"),
                ));
            }
            let found = log.query(&DecisionQuery {
                since: query.since_tick,
                correlation: query.correlation,
                resource: query.resource,
                vetoes_only: query.vetoes_only.unwrap_or(false),
                limit: limit as usize,
            });
            let span = log.span();
            respond.ok(&DecisionsResult {
                oldest_tick: span.map(|(oldest, _)| oldest),
                newest_tick: span.map(|(_, newest)| newest),
                decisions: found.iter().map(record_of).collect(),
            })
        }
        QueryName::Experiences => match experiences(hub, query) {
            Ok(result) => respond.ok(&result),
            Err(error) => respond.error(error),
        },
        QueryName::Why => match why(hub, query) {
            Ok(explanation) => respond.ok(&explanation),
            Err(error) => respond.error(error),
        },
        QueryName::Fleet => match hub.fleet_status() {
            Some(status) => respond.ok(&status),
            None => respond.error(ErrorBody::new(
                ErrorCode::Unavailable,
                "fleet mode is off on this node (`[fleet] enabled`)",
            )),
        },
    }
}

/// `query experiences`: the journal's newest epochs of power buyers.
fn experiences(hub: &IngressHub, query: &QueryRequest) -> Result<ExperiencesResult, ErrorBody> {
    let limit = query.limit.unwrap_or(DEFAULT_EXPERIENCES);
    if !(1..=MAX_EXPERIENCES).contains(&limit) {
        return Err(ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!("field `limit`: {limit} is outside 1..={MAX_EXPERIENCES}"),
        ));
    }
    let found = hub
        .experiences(query.agent.as_deref(), limit as usize)
        .ok_or_else(|| journal_off("experiences"))?
        .map_err(journal_error)?;
    Ok(ExperiencesResult {
        experiences: found
            .into_iter()
            .map(|journaled| ExperienceRecord {
                run: journaled.run,
                agent: journaled.agent,
                at_ms: journaled.at_ms,
                experience: journaled.experience,
            })
            .collect(),
    })
}

/// The journal is off: nothing is kept to read.
fn journal_off(what: &str) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::Unavailable,
        format!("the journal is off on this node: no {what} are kept"),
    )
}

/// A failure to read the journal: what was asked for is not there, or the journal
/// itself failed.
fn journal_error(error: JournalError) -> ErrorBody {
    match error {
        JournalError::NotFound(_) => ErrorBody::new(ErrorCode::InvalidRequest, error.to_string()),
        other => ErrorBody::new(ErrorCode::Internal, other.to_string()),
    }
}

/// `query why`: the causal chain behind a component's limit at one moment, as
/// `gamesa why` prints it (`docs/journal.md`).
fn why(hub: &IngressHub, query: &QueryRequest) -> Result<Explanation, ErrorBody> {
    let invalid = |message: &str| ErrorBody::new(ErrorCode::InvalidRequest, message);
    let component = query
        .component
        .as_deref()
        .ok_or_else(|| invalid("the why query needs `component`"))?;
    let moment = match (query.at_ms, query.tick, query.correlation) {
        (Some(at_ms), None, None) => Moment::At(at_ms),
        (None, Some(tick), None) => Moment::Tick(query.run, tick),
        (None, None, Some(correlation)) => Moment::Correlation(correlation),
        _ => {
            return Err(invalid(
                "the why query needs exactly one of `at_ms`, `tick` (with `run`, or the \
                 latest run) and `correlation`",
            ));
        }
    };
    hub.why(moment, component)
        .ok_or_else(|| journal_off("decisions"))?
        .map_err(journal_error)
}

/// A decision of the log as the protocol carries it.
fn record_of(decision: &Decision) -> DecisionRecord {
    let (allocation, actuation) = match &decision.subject {
        Subject::Allocation {
            resource,
            buyer,
            seller,
            buy_order,
            sell_order,
            quantity,
            clearing_price,
            orders,
        } => (
            Some(AllocationDecision {
                resource: *resource,
                buyer: *buyer,
                seller: *seller,
                buy_order: *buy_order,
                sell_order: *sell_order,
                quantity: *quantity,
                clearing_price: *clearing_price,
                orders: orders
                    .iter()
                    .map(|order| OrderConsidered {
                        order: order.order,
                        agent: order.agent,
                        side: order.side,
                        price: order.price,
                        quantity: order.quantity,
                        new: order.new,
                    })
                    .collect(),
            }),
            None,
        ),
        Subject::Actuation {
            requester,
            target,
            requested,
            clamped_to,
            old_value,
            new_value,
        } => (
            None,
            Some(ActuationDecision {
                requester: *requester,
                target: target.clone(),
                requested: requested.to_string(),
                clamped_to: clamped_to.as_ref().map(ToString::to_string),
                old_value: old_value.clone(),
                new_value: new_value.clone(),
            }),
        ),
    };
    DecisionRecord {
        tick: decision.tick,
        correlation: decision.correlation,
        caused_by: decision.caused_by.clone(),
        allocation,
        actuation,
        verdict: decision.verdict.to_owned(),
        reason: decision.reason.clone(),
        tightest_margin: decision.contracts.tightest_margin,
        failed_clause: decision
            .contracts
            .failed
            .as_ref()
            .map(|failed| FailedClause {
                contract: failed.contract.clone(),
                phase: failed.phase.as_str().to_owned(),
                clause: failed.clause.clone(),
                margin: failed.margin,
                outcome: failed.outcome.clone(),
            }),
    }
}
