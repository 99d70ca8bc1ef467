//! The decision log: one structured record per allocation decision — the bids the book
//! held, the clearing price, the contract evaluations and the verdict — kept for the
//! last few ticks so the ingress `query` can answer "why", and emitted as span events.
//!
//! A tick only keeps its raw material (its fills and actuations with their verdicts,
//! and the book of each resource that traded); [`Decision`]s with their text are built
//! when someone asks. Recording reads the [`TickOutput`] after the tick, so it can never
//! change one.
//!
//! # Invariants
//! - the log holds at most `capacity_ticks` ticks, oldest dropped first
//! - decisions of one tick are in the order the guardian took them: fills, then
//!   actuations

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
};

use gamesa_guardian::{ContractPhase, Reason, Verdict};
use gamesa_market::MarketEvent;
use gamesa_proto::{
    Actuation, AgentId, CorrelationId, Fill, OrderId, OrderRequest, Price, Quantity, Resource,
    Side, Tick,
};
use serde::Serialize;

use super::{
    spans::{margin, reason_kind},
    trace::{AttrValue, Phase, TickTrace},
};
use gamesa_engine::{ActuationRecord, TickOutput};

/// A bid or ask that was in the book while the market cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderConsidered {
    pub order: OrderId,
    pub agent: AgentId,
    pub side: Side,
    pub price: Price,
    pub quantity: Quantity,
    /// `true` when it was placed this tick, `false` when it was resting from before.
    pub new: bool,
}

/// What the contracts said about a decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContractEvaluation {
    /// The smallest margin among the contracts checked, when all held.
    pub tightest_margin: Option<f64>,
    /// The clause that did not hold, when one failed.
    pub failed: Option<FailedClause>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedClause {
    pub contract: String,
    pub phase: ContractPhase,
    pub clause: String,
    /// How far the clause is on the wrong side (≤ 0), when it could be computed.
    pub margin: Option<f64>,
    pub outcome: String,
}

impl ContractEvaluation {
    fn of(reason: &Reason) -> ContractEvaluation {
        match reason {
            Reason::Settled {
                tightest_margin, ..
            }
            | Reason::Passed { tightest_margin } => ContractEvaluation {
                tightest_margin: *tightest_margin,
                failed: None,
            },
            Reason::Contract { failure } | Reason::Improves { failure } => ContractEvaluation {
                tightest_margin: None,
                failed: Some(FailedClause {
                    contract: failure.contract.clone(),
                    phase: failure.phase,
                    clause: failure.clause.clone(),
                    margin: failure.outcome.margin(),
                    outcome: failure.outcome.to_string(),
                }),
            },
            _ => ContractEvaluation {
                tightest_margin: None,
                failed: None,
            },
        }
    }
}

/// What was decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    /// A fill: `quantity` of `resource` from `seller` to `buyer` at the clearing price.
    Allocation {
        resource: Resource,
        buyer: AgentId,
        seller: AgentId,
        buy_order: OrderId,
        sell_order: OrderId,
        quantity: Quantity,
        clearing_price: Price,
        /// Every order of this resource in the book during the match.
        orders: Vec<OrderConsidered>,
    },
    /// A change to a knob: `requested` by an agent (or the guardian's safety action).
    Actuation {
        requester: Option<AgentId>,
        target: String,
        requested: Actuation,
        /// What was applied instead, for a clamp.
        clamped_to: Option<Actuation>,
        /// The value before and after, when the actuator applied it.
        old_value: Option<String>,
        new_value: Option<String>,
    },
}

/// One decision and its rationale.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub tick: Tick,
    /// The tick's correlation id.
    pub correlation: CorrelationId,
    /// Correlation ids of the injected signals taken in at this tick.
    pub caused_by: Vec<CorrelationId>,
    pub subject: Subject,
    pub contracts: ContractEvaluation,
    /// `allow`, `clamp` or `deny`.
    pub verdict: &'static str,
    pub reason: String,
}

/// One tick's raw material, as the log keeps it.
#[derive(Debug, Clone)]
pub struct TickDecisions {
    tick: Tick,
    correlation: CorrelationId,
    caused_by: Vec<CorrelationId>,
    /// The orders of each resource that traded: resting at the start of the tick, then
    /// placed during it.
    books: Vec<(Resource, Vec<OrderConsidered>)>,
    fills: Vec<(Fill, Verdict)>,
    actuations: Vec<ActuationRecord>,
}

impl TickDecisions {
    /// Takes what a tick decided. `resting` are the orders open when it began.
    pub fn of(
        report: &TickOutput,
        resting: &[(OrderId, OrderRequest)],
        caused_by: &[CorrelationId],
    ) -> TickDecisions {
        let mut books: Vec<(Resource, Vec<OrderConsidered>)> = Vec::new();
        for (fill, _) in &report.fills {
            if books.iter().any(|(resource, _)| *resource == fill.resource) {
                continue;
            }
            let considered = |order: OrderId, request: &OrderRequest, new: bool| OrderConsidered {
                order,
                agent: request.owner,
                side: request.side,
                price: request.price,
                quantity: request.quantity,
                new,
            };
            let placed = report.market_events.iter().filter_map(|event| match event {
                MarketEvent::Accepted { order, request, .. } => Some((*order, request)),
                _ => None,
            });
            let orders = resting
                .iter()
                .filter(|(_, request)| request.resource == fill.resource)
                .map(|(order, request)| considered(*order, request, false))
                .chain(
                    placed
                        .filter(|(_, request)| request.resource == fill.resource)
                        .map(|(order, request)| considered(order, request, true)),
                )
                .collect();
            books.push((fill.resource, orders));
        }
        TickDecisions {
            tick: report.tick,
            correlation: report.correlation,
            caused_by: caused_by.to_vec(),
            books,
            fills: report.fills.clone(),
            actuations: report.actuations.clone(),
        }
    }

    pub fn tick(&self) -> Tick {
        self.tick
    }

    pub fn len(&self) -> usize {
        self.fills.len() + self.actuations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn book(&self, resource: Resource) -> &[OrderConsidered] {
        self.books
            .iter()
            .find(|(traded, _)| *traded == resource)
            .map(|(_, orders)| orders.as_slice())
            .unwrap_or_default()
    }

    fn decision(&self, subject: Subject, verdict: &Verdict) -> Decision {
        Decision {
            tick: self.tick,
            correlation: self.correlation,
            caused_by: self.caused_by.clone(),
            subject,
            contracts: ContractEvaluation::of(verdict.reason()),
            verdict: verdict.decision(),
            reason: verdict.reason().to_string(),
        }
    }

    /// The tick's decisions, with their rationale.
    pub fn decisions(&self) -> Vec<Decision> {
        let allocations = self.fills.iter().map(|(fill, verdict)| {
            self.decision(
                Subject::Allocation {
                    resource: fill.resource,
                    buyer: fill.buyer,
                    seller: fill.seller,
                    buy_order: fill.buy_order,
                    sell_order: fill.sell_order,
                    quantity: fill.quantity,
                    clearing_price: fill.price,
                    orders: self.book(fill.resource).to_vec(),
                },
                verdict,
            )
        });
        let actuations = self.actuations.iter().map(|record| {
            let applied = record
                .outcome
                .as_ref()
                .and_then(|outcome| outcome.as_ref().ok());
            self.decision(
                Subject::Actuation {
                    requester: record.requester,
                    target: record.requested.target(),
                    requested: record.requested.clone(),
                    clamped_to: match &record.verdict {
                        Verdict::Clamp { to, .. } => Some(to.clone()),
                        _ => None,
                    },
                    old_value: applied.map(|applied| applied.previous.clone()),
                    new_value: applied.map(|applied| applied.current.clone()),
                },
                &record.verdict,
            )
        });
        allocations.chain(actuations).collect()
    }

    /// Records each decision as a `decision` event on the tick span. The event holds
    /// what a search needs; the whole record, with the book, is in the log.
    pub fn emit(&self, trace: &mut TickTrace) {
        let common = |trace: &mut TickTrace, verdict: &Verdict| {
            let reason = verdict.reason();
            trace.event_attr("gamesa.verdict", verdict.decision());
            trace.event_attr("gamesa.reason.kind", reason_kind(reason));
            if !matches!(verdict, Verdict::Allow { .. }) {
                trace.event_attr("gamesa.reason", AttrValue::Reason(Box::new(reason.clone())));
            }
            if let Reason::Contract { failure } | Reason::Improves { failure } = reason {
                trace.event_attr("gamesa.contract.clause", failure.clause.clone());
            }
            if let Some(margin) = margin(reason) {
                trace.event_attr("gamesa.contract.margin", margin);
            }
        };
        for (fill, verdict) in &self.fills {
            let book = self.book(fill.resource);
            let bids = book.iter().filter(|order| order.side == Side::Bid).count();
            trace.event(
                Phase::ROOT,
                "decision",
                [
                    ("gamesa.decision.kind", "allocation".into()),
                    ("gamesa.resource", fill.resource.as_str().into()),
                    ("gamesa.buyer.id", fill.buyer.0.into()),
                    ("gamesa.seller.id", fill.seller.0.into()),
                    ("gamesa.quantity", fill.quantity.0.into()),
                    ("gamesa.price.clearing", fill.price.0.into()),
                    ("gamesa.orders.bids", bids.into()),
                    ("gamesa.orders.asks", (book.len() - bids).into()),
                ],
            );
            common(trace, verdict);
        }
        for record in &self.actuations {
            trace.event(
                Phase::ROOT,
                "decision",
                [
                    ("gamesa.decision.kind", "actuation".into()),
                    ("gamesa.actuation.target", record.requested.target().into()),
                ],
            );
            if let Some(agent) = record.requester {
                trace.event_attr("gamesa.agent.id", agent.0);
            }
            common(trace, &record.verdict);
        }
    }
}

/// The decisions of one tick (what [`DecisionLog::query`] returns for it).
pub fn decisions_of(
    report: &TickOutput,
    resting: &[(OrderId, OrderRequest)],
    caused_by: &[CorrelationId],
) -> Vec<Decision> {
    TickDecisions::of(report, resting, caused_by).decisions()
}

/// What to look up in the decision log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionQuery {
    /// Only decisions of this tick or later.
    pub since: Option<Tick>,
    /// Only decisions of this tick's correlation id, or caused by this injected one.
    pub correlation: Option<CorrelationId>,
    /// Only allocations of this resource.
    pub resource: Option<Resource>,
    /// Only vetoes and clamps.
    pub vetoes_only: bool,
    /// At most this many, the newest (0: all).
    pub limit: usize,
}

impl DecisionQuery {
    fn matches(&self, decision: &Decision) -> bool {
        self.since.is_none_or(|since| decision.tick >= since)
            && self.correlation.is_none_or(|correlation| {
                decision.correlation == correlation || decision.caused_by.contains(&correlation)
            })
            && self.resource.is_none_or(|resource| {
                matches!(&decision.subject, Subject::Allocation { resource: r, .. } if *r == resource)
            })
            && (!self.vetoes_only || decision.verdict != "allow")
    }
}

#[derive(Debug, Default)]
struct Ticks {
    capacity: usize,
    ticks: VecDeque<TickDecisions>,
}

/// The last ticks' decisions; cheap to clone and share with the ingress server.
#[derive(Debug, Clone, Default)]
pub struct DecisionLog {
    inner: Arc<Mutex<Ticks>>,
}

impl DecisionLog {
    /// A log of the last `capacity_ticks` ticks (0: records nothing).
    pub fn new(capacity_ticks: usize) -> DecisionLog {
        DecisionLog {
            inner: Arc::new(Mutex::new(Ticks {
                capacity: capacity_ticks,
                ticks: VecDeque::with_capacity(capacity_ticks.min(1024)),
            })),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.lock().capacity > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ticks> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps one tick's decisions, dropping the oldest tick when full.
    pub fn record(&self, decisions: TickDecisions) {
        let mut inner = self.lock();
        if inner.capacity == 0 {
            return;
        }
        while inner.ticks.len() >= inner.capacity {
            inner.ticks.pop_front();
        }
        inner.ticks.push_back(decisions);
    }

    /// The decisions that match, oldest first.
    pub fn query(&self, query: &DecisionQuery) -> Vec<Decision> {
        let inner = self.lock();
        let mut found: Vec<Decision> = inner
            .ticks
            .iter()
            .filter(|tick| query.since.is_none_or(|since| tick.tick >= since))
            .filter(|tick| {
                query.correlation.is_none_or(|correlation| {
                    tick.correlation == correlation || tick.caused_by.contains(&correlation)
                })
            })
            .flat_map(TickDecisions::decisions)
            .filter(|decision| query.matches(decision))
            .collect();
        if query.limit > 0 && found.len() > query.limit {
            found.drain(..found.len() - query.limit);
        }
        found
    }

    /// The oldest and newest tick held.
    pub fn span(&self) -> Option<(Tick, Tick)> {
        let inner = self.lock();
        Some((inner.ticks.front()?.tick, inner.ticks.back()?.tick))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(tick: u64) -> TickDecisions {
        let record = |verdict: Verdict| ActuationRecord {
            requester: Some(AgentId(1)),
            requested: Actuation::PowerLimit {
                component: "gpu0".into(),
                limit_mw: 1,
            },
            verdict,
            outcome: None,
        };
        TickDecisions {
            tick: Tick(tick),
            correlation: CorrelationId::from_parts(0, tick),
            caused_by: vec![CorrelationId::from_parts(9, 9)],
            books: Vec::new(),
            fills: Vec::new(),
            actuations: vec![
                record(Verdict::Allow {
                    reason: Reason::Passed {
                        tightest_margin: Some(2.0),
                    },
                }),
                record(Verdict::Deny {
                    reason: Reason::Invalid {
                        detail: "no".into(),
                    },
                }),
            ],
        }
    }

    #[test]
    fn the_log_keeps_the_last_ticks_and_filters() {
        let log = DecisionLog::new(2);
        for seq in 0..3 {
            log.record(tick(seq));
        }
        assert_eq!(log.span(), Some((Tick(1), Tick(2))));
        let all = log.query(&DecisionQuery::default());
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].contracts.tightest_margin, Some(2.0));
        assert_eq!(all[1].reason, "invalid request: no");
        let vetoes = log.query(&DecisionQuery {
            vetoes_only: true,
            ..DecisionQuery::default()
        });
        assert_eq!(vetoes.len(), 2);
        let by_tick = log.query(&DecisionQuery {
            correlation: Some(CorrelationId::from_parts(0, 2)),
            ..DecisionQuery::default()
        });
        assert_eq!(by_tick.len(), 2);
        assert!(by_tick.iter().all(|decision| decision.tick == Tick(2)));
        let caused = log.query(&DecisionQuery {
            correlation: Some(CorrelationId::from_parts(9, 9)),
            limit: 1,
            ..DecisionQuery::default()
        });
        assert_eq!(caused.len(), 1);
        assert_eq!(caused[0].tick, Tick(2));
        let off = DecisionLog::new(0);
        off.record(tick(0));
        assert!(off.query(&DecisionQuery::default()).is_empty());
    }
}
