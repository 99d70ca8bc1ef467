//! The hub's tick side: before a tick, the intake is handed over in canonical order;
//! after it, the snapshot queries read is replaced, each order and cancel is answered
//! from the engine's outcome of it, and the tick's events go to the subscribers.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, PoisonError, atomic::Ordering},
};

use gamesa_agent::{Intent, OrderIntent};
use gamesa_engine::Outcome;
use gamesa_guardian::{LedgerError, Reason, StampedIntent, Verdict};
use gamesa_market::{ActiveLease, MarketEvent};
use gamesa_proto::{AgentId, CorrelationId, OrderId, Resource, Tick, TimeInForce};
use gamesa_wire::{
    Allocation, BookResult, CancelResult, ErrorBody, ErrorCode, FillEvent, Level, OrderKind,
    OrderRequestBody, OrderResult, PriceLine, PricesEvent, SignalEvent, Topic, VetoEvent,
};

use super::{Awaiting, HubIntake, IngressHub, MarketState, Settled, Snapshot, Submission, lock};
use gamesa_engine::TickOutput;

use crate::subscriptions::{EventData, PublishedEvent};

impl IngressHub {
    /// Before the tick numbered `tick`: every signal, order, cancel and progress report
    /// that arrived, for the engine's intake, in canonical order.
    pub fn take_in(&self, tick: Tick) -> HubIntake {
        let (signals, submissions, progress, work_left) = {
            let mut intake = lock(&self.intake);
            intake.next_tick = tick.next();
            (
                std::mem::take(&mut intake.signals),
                std::mem::take(&mut intake.submissions),
                std::mem::take(&mut intake.progress),
                std::mem::take(&mut intake.work_left),
            )
        };
        let mut taken = HubIntake {
            signals: signals.into_values().flatten().collect(),
            progress: progress.into_iter().collect(),
            work_left: work_left.into_iter().collect(),
            ..HubIntake::default()
        };
        let mut awaiting = Vec::new();
        for (agent, list) in submissions {
            for (sequence, submitted) in list.into_iter().enumerate() {
                let sequence = sequence as u64;
                let intent = match submitted.submission {
                    Submission::Order(order) => Intent::Place(order_intent(&order, tick)),
                    Submission::Cancel(order) => Intent::Cancel(order),
                };
                taken.intents.push(StampedIntent {
                    agent,
                    sequence,
                    intent,
                });
                awaiting.push(Awaiting {
                    agent,
                    sequence,
                    submitted,
                });
            }
        }
        lock(&self.tick_side).awaiting.extend(awaiting);
        taken
    }

    /// After a tick: refreshes the state queries read from `market`, then answers the
    /// orders and cancels the tick took in and publishes its events (in that order:
    /// read-after-order).
    pub fn after_tick(&self, report: &TickOutput, market: MarketState) {
        let MarketState {
            overview,
            accounts,
            isolated,
        } = market;
        // The snapshot is replaced before any reply or event of this tick goes out: a
        // client that reads its account right after an order's reply sees that order.
        let snapshot = Snapshot {
            tick: Some(report.tick),
            frame: Some(Arc::clone(&report.frame)),
            books: overview
                .books
                .into_iter()
                .map(|(resource, depth, last_price)| {
                    let levels = |side: Vec<gamesa_market::DepthLevel>| {
                        side.into_iter()
                            .map(|level| Level {
                                price: level.price,
                                quantity: level.quantity,
                                orders: level.orders,
                            })
                            .collect::<Vec<_>>()
                    };
                    BookResult {
                        resource,
                        tick: Some(report.tick),
                        last_price,
                        best_bid: depth.bids.first().map(|level| level.price),
                        best_ask: depth.asks.first().map(|level| level.price),
                        bids: levels(depth.bids),
                        asks: levels(depth.asks),
                    }
                })
                .collect(),
            leases: overview
                .leases
                .into_iter()
                .map(|ActiveLease { lease, allocation }| Allocation {
                    cores: match allocation {
                        gamesa_market::Allocation::Cores(cores) => cores,
                        _ => Vec::new(),
                    },
                    lease: lease.id,
                    resource: lease.resource,
                    holder: lease.holder,
                    holder_name: self.name_of(lease.holder),
                    seller: lease.seller,
                    seller_name: self.name_of(lease.seller),
                    quantity: lease.quantity,
                    price: lease.price,
                    start: lease.start,
                    expires_at: lease.expires_at,
                })
                .collect(),
            accounts: accounts.into_iter().collect(),
            isolated: isolated.into_iter().collect(),
            client_orders: overview
                .orders
                .iter()
                .map(|(order, request)| (*order, (request.owner, request.resource)))
                .collect(),
        };
        let snapshot = Arc::new(snapshot);
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::clone(&snapshot);
        self.last_tick.store(report.tick.0, Ordering::Release);
        let since_start_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_tick_at_us
            .store(since_start_us.saturating_add(1), Ordering::Release);

        let awaiting = std::mem::take(&mut lock(&self.tick_side).awaiting);
        let correlations = self.settle_orders(report, awaiting, &snapshot.client_orders);
        self.publish(report, &correlations);
    }

    /// Replies to each order and cancel the tick took in, from what the engine says
    /// became of it, and keeps the client orders still resting (for the correlation of
    /// their later fills). Returns the correlation of every client order that traded.
    fn settle_orders(
        &self,
        report: &TickOutput,
        awaiting: Vec<Awaiting>,
        resting: &BTreeMap<OrderId, (AgentId, Resource)>,
    ) -> BTreeMap<OrderId, CorrelationId> {
        let tick = report.tick;
        let clients: BTreeSet<AgentId> = awaiting.iter().map(|waiting| waiting.agent).collect();
        let mut outcomes = report.outcomes(|agent| clients.contains(&agent));
        let mut correlations = lock(&self.correlations);
        for waiting in &awaiting {
            if let Some(Outcome::Placed { order, .. }) =
                outcomes.get(&(waiting.agent, waiting.sequence))
            {
                correlations.insert(*order, waiting.submitted.correlation);
            }
        }
        let mut traded = BTreeMap::new();
        for event in &report.market_events {
            if let MarketEvent::Filled { fill, .. } = event {
                for order in [fill.buy_order, fill.sell_order] {
                    let Some(correlation) = correlations.get(&order).copied() else {
                        continue;
                    };
                    traded.insert(order, correlation);
                    tracing::info!(
                        target: "gamesa::ingress",
                        %correlation,
                        %order,
                        quantity = fill.quantity.0,
                        price = fill.price.0,
                        "client order filled"
                    );
                }
            }
        }
        // What left the book (filled, cancelled, expired) needs no correlation any more.
        correlations.retain(|order, _| resting.contains_key(order));
        drop(correlations);
        for waiting in awaiting {
            let reply = &waiting.submitted.reply;
            let outcome = outcomes.remove(&(waiting.agent, waiting.sequence));
            match (waiting.submitted.submission, outcome) {
                (_, Some(Outcome::Denied(reason))) => reply.error(denial(&reason)),
                (_, Some(Outcome::Rejected(error))) => {
                    reply.error(ErrorBody::new(ErrorCode::Rejected, error.to_string()))
                }
                (Submission::Cancel(_), Some(Outcome::Cancelled { order, remaining })) => {
                    reply.ok(Settled::Cancel(CancelResult {
                        order,
                        tick,
                        cancelled: remaining.0,
                    }))
                }
                (Submission::Cancel(order), _) => reply.error(ErrorBody::new(
                    ErrorCode::Rejected,
                    format!("{order} was no longer resting"),
                )),
                (Submission::Order(_), Some(placed @ Outcome::Placed { order, filled, .. })) => {
                    reply.ok(Settled::Order(OrderResult {
                        order,
                        correlation: waiting.submitted.correlation,
                        tick,
                        filled: filled.0,
                        resting: placed.resting().map_or(0, |resting| resting.0),
                    }))
                }
                (Submission::Order(_), _) => reply.error(ErrorBody::new(
                    ErrorCode::Internal,
                    "the exchange reported nothing for this order",
                )),
            }
        }
        traded
    }

    /// Offers the tick's events to every subscribed connection.
    fn publish(&self, report: &TickOutput, correlations: &BTreeMap<OrderId, CorrelationId>) {
        let tick = report.tick;
        let mut events = Vec::new();
        let mut event = |topic, data| {
            events.push(Arc::new(PublishedEvent { topic, tick, data }));
        };
        for (fill, verdict) in &report.fills {
            if matches!(verdict, Verdict::Allow { .. }) {
                event(
                    Topic::Fills,
                    EventData::Fill(FillEvent {
                        resource: fill.resource,
                        buyer: fill.buyer,
                        buyer_name: self.name_of(fill.buyer),
                        seller: fill.seller,
                        seller_name: self.name_of(fill.seller),
                        buy_order: fill.buy_order,
                        sell_order: fill.sell_order,
                        price: fill.price,
                        quantity: fill.quantity,
                        aggressor: fill.aggressor,
                        correlation: correlations
                            .get(&fill.buy_order)
                            .or_else(|| correlations.get(&fill.sell_order))
                            .copied(),
                    }),
                );
            } else {
                event(
                    Topic::Vetoes,
                    EventData::Veto(self.veto(
                        "fill",
                        Some(fill.buyer),
                        format!(
                            "{} {} of {} from {} at {}",
                            self.name_of(fill.buyer),
                            fill.quantity,
                            fill.resource,
                            self.name_of(fill.seller),
                            fill.price
                        ),
                        verdict,
                    )),
                );
            }
        }
        event(
            Topic::Prices,
            EventData::Prices(PricesEvent {
                prices: Resource::ALL
                    .into_iter()
                    .map(|resource| PriceLine {
                        resource,
                        last: report.market.last_price[resource.index()],
                        best_bid: report.market.best_bid[resource.index()],
                        best_ask: report.market.best_ask[resource.index()],
                    })
                    .collect(),
            }),
        );
        {
            let mut side = lock(&self.tick_side);
            let live: BTreeSet<_> = report
                .signals
                .iter()
                .map(|signal| {
                    (
                        signal.kind.clone(),
                        signal.domain,
                        signal.source,
                        signal.correlation,
                    )
                })
                .collect();
            for signal in &report.signals {
                let key = (
                    signal.kind.clone(),
                    signal.domain,
                    signal.source,
                    signal.correlation,
                );
                if !side.live_signals.contains(&key) {
                    event(
                        Topic::Signals,
                        EventData::Signal(SignalEvent {
                            kind: signal.kind.clone(),
                            domain: signal.domain,
                            strength: signal.strength,
                            source: signal.source,
                            source_name: self.name_of(signal.source),
                            ttl_ticks: signal.ttl_ticks,
                            correlation: signal.correlation,
                        }),
                    );
                }
            }
            side.live_signals = live;
        }
        for record in &report.actuations {
            if !matches!(record.verdict, Verdict::Allow { .. }) {
                event(
                    Topic::Vetoes,
                    EventData::Veto(self.veto(
                        "actuation",
                        record.requester,
                        record.requested.to_string(),
                        &record.verdict,
                    )),
                );
            }
        }
        for (stamped, reason) in &report.denied_intents {
            event(
                Topic::Vetoes,
                EventData::Veto(VetoEvent {
                    subject: "intent".into(),
                    decision: "deny".into(),
                    principal: Some(stamped.agent),
                    principal_name: Some(self.name_of(stamped.agent)),
                    request: stamped.intent.to_string(),
                    reason: reason.to_string(),
                }),
            );
        }
        if events.is_empty() {
            return;
        }
        for queue in self.queues.iter() {
            for event in &events {
                queue.value().offer(event);
            }
        }
    }

    fn veto(
        &self,
        subject: &str,
        principal: Option<AgentId>,
        request: String,
        verdict: &Verdict,
    ) -> VetoEvent {
        VetoEvent {
            subject: subject.into(),
            decision: verdict.decision().into(),
            principal,
            principal_name: principal.map(|agent| self.name_of(agent)),
            request,
            reason: verdict.reason().to_string(),
        }
    }
}

/// The error reply for an intent the guardian refused at admission.
fn denial(reason: &Reason) -> ErrorBody {
    let code = match reason {
        Reason::EffectDenied { .. } => ErrorCode::Forbidden,
        Reason::Ledger {
            error: LedgerError::InsufficientBalance { .. },
        } => ErrorCode::InsufficientCredits,
        _ => ErrorCode::Rejected,
    };
    ErrorBody::new(code, reason.to_string())
}

/// The agent-side intent of a client's order, taken in at `tick`.
fn order_intent(order: &OrderRequestBody, tick: Tick) -> OrderIntent {
    let time_in_force = match order.time_in_force {
        OrderKind::Ioc => TimeInForce::ImmediateOrCancel,
        OrderKind::Limit => TimeInForce::Limit {
            expires_at: order
                .expires_after_ticks
                .map(|ticks| tick.plus(ticks.max(1) - 1)),
        },
    };
    OrderIntent {
        resource: order.resource,
        side: order.side,
        price: order.price,
        quantity: order.quantity,
        time_in_force,
    }
}
