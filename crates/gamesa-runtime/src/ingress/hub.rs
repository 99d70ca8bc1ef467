//! The hub between the ingress server and the tick: what clients sent waits here for
//! the next tick, and what a tick did comes back here for replies, subscribers and
//! queries. The tick never waits on a client: it takes the intake in one short lock,
//! and publishing only pushes onto bounded queues.
//!
//! # Invariants
//! - the intake enters a tick in canonical order: by client id, then arrival order of
//!   that client's messages
//! - every order and cancel taken in gets exactly one reply: after its tick, or
//!   `shutting_down` when the runtime stops first
//! - the snapshot queries read is replaced before any reply or event of the same tick
//!   is sent: a query that follows a reply reads that reply's tick or a later one
//! - the order in which the session table is iterated never reaches a decision: it only
//!   picks which independent queue receives a copy of an event first

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::Instant,
};

use dashmap::DashMap;
use gamesa_agent::{Intent, OrderIntent};
use gamesa_engine::Outcome;
use gamesa_guardian::StampedIntent;
use gamesa_guardian::{AccountBalance, LedgerError, Reason, Verdict};
use gamesa_market::MarketEvent;
use gamesa_proto::{
    AgentId, CorrelationId, Domain, OrderId, Resource, Signal, SignalKind, TelemetryFrame, Tick,
    TimeInForce,
};
use gamesa_wire::{
    AgentEntry, Allocation, BookResult, CancelResult, DEFAULT_SIGNAL_TTL_TICKS, ErrorBody,
    ErrorCode, FillEvent, Level, Limits, MAX_DEPTH, OrderKind, OrderRequestBody, OrderResult,
    PriceLine, PricesEvent, ProgressRequest, ProgressResult, ReplyFrame, Role, SignalEvent,
    SignalRequest, SignalResult, Topic, VetoEvent, encode_frame,
};
use serde::Serialize;
use tokio::sync::mpsc;

use super::{
    clients::{ClientDirectory, ClientEntry},
    subscriptions::{EventData, EventQueue, PublishedEvent},
};
use crate::{
    ActorGone, Config, TickOutput,
    actors::{exchange::Overview, guardian::Accounts},
    conductor::Conductor,
    config::IngressConfig,
    telemetry::{DecisionLog, IngressLink, request_span},
};

/// Price levels kept per side of each book for queries.
pub const BOOK_LEVELS: usize = 100;

/// Where a deferred reply goes: the request's id and its connection's reply channel.
#[derive(Debug, Clone)]
pub struct ReplyTo {
    pub id: u64,
    /// Unbounded, because the connection bounds how many requests it leaves waiting
    /// (`max_in_flight`); a closed channel means the client is gone.
    pub sender: mpsc::UnboundedSender<Vec<u8>>,
}

impl ReplyTo {
    fn ok<T: Serialize>(&self, result: &T) {
        let mut frame = Vec::with_capacity(96);
        match encode_frame(&ReplyFrame::ok(self.id, result), &mut frame) {
            Ok(()) => {
                let _ = self.sender.send(frame);
            }
            Err(error) => self.error(ErrorBody::new(ErrorCode::Internal, error.to_string())),
        }
    }

    fn error(&self, error: ErrorBody) {
        let mut frame = Vec::with_capacity(96);
        if encode_frame(&ReplyFrame::error(Some(self.id), &error), &mut frame).is_ok() {
            let _ = self.sender.send(frame);
        }
    }
}

/// A client's order or cancel, waiting for a tick.
#[derive(Debug, Clone, Copy)]
enum Submission {
    Order(OrderRequestBody),
    Cancel(OrderId),
}

#[derive(Debug)]
struct Submitted {
    submission: Submission,
    correlation: CorrelationId,
    reply: ReplyTo,
}

/// What clients sent since the last tick took it in.
#[derive(Debug, Default)]
struct Intake {
    /// The tick that will take in what arrives now.
    next_tick: Tick,
    /// Each with the link from its `ingress.request` span to the tick that takes it in.
    signals: BTreeMap<AgentId, Vec<(Signal, IngressLink)>>,
    submissions: BTreeMap<AgentId, Vec<Submitted>>,
    /// Progress reported per component, in micro-units, saturating: a sum, so the order
    /// in which clients reported does not matter.
    progress: BTreeMap<String, u64>,
}

/// A submission a tick took in, waiting for that tick's outcome.
#[derive(Debug)]
struct Awaiting {
    agent: AgentId,
    sequence: u64,
    submitted: Submitted,
}

/// A client's order known to rest in the book.
#[derive(Debug, Clone, Copy)]
pub struct ClientOrder {
    pub owner: AgentId,
    pub resource: Resource,
    pub correlation: CorrelationId,
    pub remaining: u64,
}

/// The state queries read: as of the end of the last tick.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub tick: Option<Tick>,
    pub frame: Option<Arc<TelemetryFrame>>,
    /// One per resource, in `Resource::ALL` order, with up to [`BOOK_LEVELS`] levels.
    pub books: Vec<BookResult>,
    pub leases: Vec<Allocation>,
    pub accounts: BTreeMap<AgentId, AccountBalance>,
    pub isolated: BTreeSet<AgentId>,
}

/// Only the tick touches this.
#[derive(Debug, Default)]
struct TickSide {
    awaiting: Vec<Awaiting>,
    /// The live signals after the previous tick, to publish only new ones.
    live_signals: BTreeSet<(SignalKind, Domain, AgentId, Option<CorrelationId>)>,
}

/// Counters for `health` and tests.
#[derive(Debug, Default)]
pub struct IngressCounters {
    pub requests: AtomicU64,
    pub denied: AtomicU64,
    pub connections: AtomicU32,
}

/// Shared by the server's connections and the runtime's tick loop.
#[derive(Debug)]
pub struct IngressHub {
    settings: IngressConfig,
    directory: ClientDirectory,
    participants: Vec<AgentEntry>,
    names: BTreeMap<AgentId, String>,
    /// `guardian.components`: components a client may report progress for even before
    /// a frame has shown them.
    configured_components: BTreeSet<String>,
    started: Instant,
    intake: Mutex<Intake>,
    tick_side: Mutex<TickSide>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// The runtime's decision log, for `query decisions`; set when the hub is attached.
    decision_log: OnceLock<DecisionLog>,
    client_orders: Mutex<BTreeMap<OrderId, ClientOrder>>,
    /// Each connection's event queue, by connection number.
    queues: DashMap<u64, Arc<EventQueue>>,
    next_connection: AtomicU64,
    next_correlation: AtomicU64,
    stopping: AtomicBool,
    /// The last tick run, for audit records of requests checked between ticks.
    last_tick: AtomicU64,
    pub counters: IngressCounters,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section below leaves its data consistent before it can panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl IngressHub {
    /// Builds the hub for `config`; tokens named by `token_env` are read through `env`.
    pub fn new(
        config: &Config,
        env: &mut dyn FnMut(&str) -> Option<String>,
    ) -> Result<IngressHub, String> {
        let directory = ClientDirectory::from_config(config, env)?;
        let mut participants: Vec<AgentEntry> = crate::assemble::agent_specs(config)
            .into_iter()
            .map(|spec| AgentEntry {
                id: spec.id,
                name: spec.name,
                role: Role::Agent,
                kind: spec.kind,
                weight: spec.weight,
                isolated: false,
            })
            .collect();
        participants.extend(
            crate::assemble::client_ids(config)
                .into_iter()
                .map(|(id, client)| AgentEntry {
                    id,
                    name: client.name.clone(),
                    role: Role::Client,
                    kind: "client".into(),
                    weight: client.weight,
                    isolated: false,
                }),
        );
        let names = participants
            .iter()
            .map(|entry| (entry.id, entry.name.clone()))
            .collect();
        Ok(IngressHub {
            settings: config.ingress.clone(),
            directory,
            participants,
            names,
            configured_components: config.guardian.components.iter().cloned().collect(),
            started: Instant::now(),
            intake: Mutex::new(Intake::default()),
            tick_side: Mutex::new(TickSide::default()),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            decision_log: OnceLock::new(),
            client_orders: Mutex::new(BTreeMap::new()),
            queues: DashMap::new(),
            next_connection: AtomicU64::new(1),
            next_correlation: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            last_tick: AtomicU64::new(0),
            counters: IngressCounters::default(),
        })
    }

    pub fn settings(&self) -> &IngressConfig {
        &self.settings
    }

    pub fn directory(&self) -> &ClientDirectory {
        &self.directory
    }

    pub fn participants(&self) -> &[AgentEntry] {
        &self.participants
    }

    pub fn name_of(&self, agent: AgentId) -> String {
        self.names
            .get(&agent)
            .cloned()
            .unwrap_or_else(|| agent.to_string())
    }

    pub fn agent_named(&self, name: &str) -> Option<AgentId> {
        self.participants
            .iter()
            .find(|entry| entry.name == name)
            .map(|entry| entry.id)
    }

    pub fn uptime_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The limits `hello` reports.
    pub fn limits(&self) -> Limits {
        let settings = &self.settings;
        Limits {
            max_frame_bytes: settings.max_frame_bytes,
            max_depth: MAX_DEPTH as u32,
            rate_limit_per_s: settings.rate_limit_per_s,
            rate_burst: settings.rate_burst,
            max_in_flight: settings.max_in_flight,
            subscription_queue: settings.subscription_queue,
            idle_timeout_ms: (settings.idle_timeout_s * 1000.0) as u64,
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Answers `query decisions` from `log` (the first log given is kept).
    pub fn set_decision_log(&self, log: DecisionLog) {
        let _ = self.decision_log.set(log);
    }

    /// The decision log, once the hub is attached to a runtime.
    pub fn decision_log(&self) -> Option<&DecisionLog> {
        self.decision_log.get()
    }

    pub fn current_tick(&self) -> Tick {
        Tick(self.last_tick.load(Ordering::Relaxed))
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Registers a connection's event queue; returns its number.
    pub fn open_connection(&self) -> (u64, Arc<EventQueue>) {
        let number = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let queue = Arc::new(EventQueue::new(self.settings.subscription_queue as usize));
        self.queues.insert(number, Arc::clone(&queue));
        (number, queue)
    }

    pub fn close_connection(&self, number: u64) {
        self.queues.remove(&number);
    }

    fn correlation_for(&self, client: &ClientEntry) -> CorrelationId {
        // Client id in the high half, a counter in the low: unique within a run, and
        // the same sequence of requests gets the same ids.
        let sequence = self.next_correlation.fetch_add(1, Ordering::Relaxed);
        CorrelationId::from_parts(0x6761_6d65_0000_0000 | u64::from(client.agent.0), sequence)
    }

    /// Queues a signal for the next tick; it is traced by the returned correlation id.
    pub fn inject_signal(
        &self,
        client: &ClientEntry,
        request_id: u64,
        request: &SignalRequest,
    ) -> SignalResult {
        let correlation = self.correlation_for(client);
        let span = request_span(&client.name, "signal", &request_id.to_string(), correlation);
        let link = IngressLink::of(&span, Some(correlation));
        let signal = Signal {
            kind: request.kind.clone(),
            domain: request.domain,
            strength: request.strength,
            source: client.agent,
            ttl_ticks: request.ttl_ticks.unwrap_or(DEFAULT_SIGNAL_TTL_TICKS).max(1),
            correlation: Some(correlation),
        };
        let mut intake = lock(&self.intake);
        intake
            .signals
            .entry(client.agent)
            .or_default()
            .push((signal, link));
        tracing::info!(
            target: "gamesa::ingress",
            %correlation,
            client = %client.name,
            kind = %request.kind,
            domain = %request.domain,
            tick = intake.next_tick.0,
            "ingress.request signal queued"
        );
        SignalResult {
            correlation,
            tick: intake.next_tick,
        }
    }

    /// Whether the runtime manages `component`: configured in `guardian.components`, or
    /// in the last telemetry frame.
    pub fn knows_component(&self, component: &str) -> bool {
        self.configured_components.contains(component)
            || self
                .snapshot()
                .frame
                .as_ref()
                .is_some_and(|frame| frame.component(component).is_some())
    }

    /// Queues a workload's progress report for the next tick, which adds it to the
    /// component's counter; an unknown component is refused.
    pub fn report_progress(
        &self,
        client: &ClientEntry,
        request: &ProgressRequest,
    ) -> Result<ProgressResult, ErrorBody> {
        let component = request.component.as_str();
        if !self.knows_component(component) {
            return Err(ErrorBody::new(
                ErrorCode::UnknownComponent,
                format!("`{component}` is not a component this runtime manages"),
            ));
        }
        let micro = request.amount.micro();
        let mut intake = lock(&self.intake);
        let counter = intake.progress.entry(component.to_owned()).or_default();
        *counter = counter.saturating_add(micro);
        // Workloads may report every frame: debug, not info.
        tracing::debug!(
            target: "gamesa::ingress",
            client = %client.name,
            component,
            micro,
            tick = intake.next_tick.0,
            "ingress.request progress queued"
        );
        Ok(ProgressResult {
            component: request.component.clone(),
            micro,
            tick: intake.next_tick,
        })
    }

    /// Queues an order for the next tick; the reply follows that tick.
    pub fn submit_order(&self, client: &ClientEntry, order: OrderRequestBody, reply: ReplyTo) {
        self.submit(client, Submission::Order(order), reply);
    }

    /// Queues a cancel for the next tick; the reply follows that tick.
    pub fn submit_cancel(&self, client: &ClientEntry, order: OrderId, reply: ReplyTo) {
        self.submit(client, Submission::Cancel(order), reply);
    }

    fn submit(&self, client: &ClientEntry, submission: Submission, reply: ReplyTo) {
        if self.is_stopping() {
            reply.error(ErrorBody::new(
                ErrorCode::ShuttingDown,
                "the runtime is stopping",
            ));
            return;
        }
        let correlation = self.correlation_for(client);
        let mut intake = lock(&self.intake);
        tracing::info!(
            target: "gamesa::ingress",
            %correlation,
            client = %client.name,
            ?submission,
            tick = intake.next_tick.0,
            "ingress.request queued"
        );
        intake
            .submissions
            .entry(client.agent)
            .or_default()
            .push(Submitted {
                submission,
                correlation,
                reply,
            });
    }

    /// The resource of one of `owner`'s resting orders.
    pub fn resting_order(&self, owner: AgentId, order: OrderId) -> Option<Resource> {
        lock(&self.client_orders)
            .get(&order)
            .filter(|known| known.owner == owner)
            .map(|known| known.resource)
    }

    /// Before a tick: hands the conductor every signal, order, cancel and progress report
    /// that arrived, in canonical order.
    pub fn take_in(&self, conductor: &mut Conductor) {
        let tick = conductor.next_tick();
        let (signals, submissions, progress) = {
            let mut intake = lock(&self.intake);
            intake.next_tick = tick.next();
            (
                std::mem::take(&mut intake.signals),
                std::mem::take(&mut intake.submissions),
                std::mem::take(&mut intake.progress),
            )
        };
        for (component, micro) in progress {
            conductor.report_progress(&component, micro);
        }
        for (signal, link) in signals.into_values().flatten() {
            conductor.inject_linked(signal, link);
        }
        let mut stamped = Vec::new();
        let mut awaiting = Vec::new();
        for (agent, list) in submissions {
            for (sequence, submitted) in list.into_iter().enumerate() {
                let sequence = sequence as u64;
                let intent = match submitted.submission {
                    Submission::Order(order) => Intent::Place(order_intent(&order, tick)),
                    Submission::Cancel(order) => Intent::Cancel(order),
                };
                stamped.push(StampedIntent {
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
        conductor.inject_intents(stamped);
        lock(&self.tick_side).awaiting.extend(awaiting);
    }

    /// After a tick: refreshes the state queries read, then answers the orders and
    /// cancels it took in and publishes its events (in that order: read-after-order).
    pub async fn after_tick(
        &self,
        report: &TickOutput,
        conductor: &Conductor,
    ) -> Result<(), ActorGone> {
        let actors = conductor.actors();
        let overview = actors
            .exchange
            .send(Overview {
                levels: BOOK_LEVELS,
            })
            .await
            .map_err(|error| ActorGone {
                actor: "exchange",
                reason: error.to_string(),
            })?;
        let accounts = actors
            .guardian
            .send(Accounts)
            .await
            .map_err(|error| ActorGone {
                actor: "guardian",
                reason: error.to_string(),
            })?;

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
                .map(|lease| Allocation {
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
            isolated: conductor.isolated().into_iter().collect(),
        };
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
        self.last_tick.store(report.tick.0, Ordering::Release);

        let awaiting = std::mem::take(&mut lock(&self.tick_side).awaiting);
        let correlations = self.settle_orders(report, awaiting);
        self.publish(report, &correlations);
        Ok(())
    }

    /// Replies to each order and cancel the tick took in, from what the engine says
    /// became of it, and keeps the client orders still resting (for the correlation of
    /// their later fills). Returns the correlation of every client order that traded.
    fn settle_orders(
        &self,
        report: &TickOutput,
        awaiting: Vec<Awaiting>,
    ) -> BTreeMap<OrderId, CorrelationId> {
        let tick = report.tick;
        let clients: BTreeSet<AgentId> = awaiting.iter().map(|waiting| waiting.agent).collect();
        let mut outcomes = report.outcomes(|agent| clients.contains(&agent));
        let mut orders = lock(&self.client_orders);
        // Orders placed this tick are known before the events are read: their own fills
        // of this tick count against them.
        for waiting in &awaiting {
            if let (
                Submission::Order(body),
                Some(Outcome::Placed {
                    order, quantity, ..
                }),
            ) = (
                &waiting.submitted.submission,
                outcomes.get(&(waiting.agent, waiting.sequence)),
            ) {
                orders.insert(
                    *order,
                    ClientOrder {
                        owner: waiting.agent,
                        resource: body.resource,
                        correlation: waiting.submitted.correlation,
                        remaining: quantity.0,
                    },
                );
            }
        }
        let mut traded = BTreeMap::new();
        for event in &report.market_events {
            match event {
                MarketEvent::Filled { fill, .. } => {
                    for order in [fill.buy_order, fill.sell_order] {
                        let Some(known) = orders.get_mut(&order) else {
                            continue;
                        };
                        known.remaining = known.remaining.saturating_sub(fill.quantity.0);
                        traded.insert(order, known.correlation);
                        tracing::info!(
                            target: "gamesa::ingress",
                            correlation = %known.correlation,
                            %order,
                            quantity = fill.quantity.0,
                            price = fill.price.0,
                            "client order filled"
                        );
                        if known.remaining == 0 {
                            orders.remove(&order);
                        }
                    }
                }
                MarketEvent::Cancelled(cancellation) => {
                    orders.remove(&cancellation.order);
                }
                _ => {}
            }
        }
        drop(orders);
        for waiting in awaiting {
            let reply = &waiting.submitted.reply;
            let outcome = outcomes.remove(&(waiting.agent, waiting.sequence));
            match (waiting.submitted.submission, outcome) {
                (_, Some(Outcome::Denied(reason))) => reply.error(denial(&reason)),
                (_, Some(Outcome::Rejected(error))) => {
                    reply.error(ErrorBody::new(ErrorCode::Rejected, error.to_string()))
                }
                (Submission::Cancel(_), Some(Outcome::Cancelled { order, remaining })) => {
                    reply.ok(&CancelResult {
                        order,
                        tick,
                        cancelled: remaining.0,
                    })
                }
                (Submission::Cancel(order), _) => reply.error(ErrorBody::new(
                    ErrorCode::Rejected,
                    format!("{order} was no longer resting"),
                )),
                (Submission::Order(_), Some(placed @ Outcome::Placed { order, filled, .. })) => {
                    reply.ok(&OrderResult {
                        order,
                        correlation: waiting.submitted.correlation,
                        tick,
                        filled: filled.0,
                        resting: placed.resting().map_or(0, |resting| resting.0),
                    })
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
                    request: format!("{:?}", stamped.intent),
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

    /// The runtime is stopping: everything still waiting for a tick is answered
    /// `shutting_down`, and nothing new is taken.
    pub fn close(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        let shutting_down = || ErrorBody::new(ErrorCode::ShuttingDown, "the runtime is stopping");
        let submissions = std::mem::take(&mut lock(&self.intake).submissions);
        for submitted in submissions.into_values().flatten() {
            submitted.reply.error(shutting_down());
        }
        let awaiting = std::mem::take(&mut lock(&self.tick_side).awaiting);
        for waiting in awaiting {
            waiting.submitted.reply.error(shutting_down());
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
