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
use gamesa_guardian::AccountBalance;
use gamesa_proto::{
    AgentId, CorrelationId, Domain, OrderId, Resource, Signal, SignalKind, TelemetryFrame, Tick,
};
use gamesa_wire::{
    AgentEntry, Allocation, BookResult, CancelResult, DEFAULT_SIGNAL_TTL_TICKS, ErrorBody,
    ErrorCode, Limits, MAX_DEPTH, OrderRequestBody, OrderResult, ProgressRequest, ProgressResult,
    Role, SignalRequest, SignalResult,
};
use serde::Serialize;
use tokio::sync::mpsc;

use super::{
    clients::{ClientDirectory, ClientEntry},
    subscriptions::EventQueue,
};
use gamesa_config::{Config, IngressConfig};
use gamesa_engine::cores::MarketOverview;
use gamesa_guardian::StampedIntent;
use gamesa_telemetry::{DecisionLog, IngressLink, request_span};

mod tick;

/// Price levels kept per side of each book for queries.
pub const BOOK_LEVELS: usize = 100;

/// What clients sent since the last tick, for the engine's intake.
#[derive(Debug, Default)]
pub struct HubIntake {
    /// Each with the link to the ingress request it came from.
    pub signals: Vec<(Signal, IngressLink)>,
    /// In canonical order: by client id, then arrival.
    pub intents: Vec<StampedIntent>,
    pub progress: Vec<(String, u64)>,
    /// The work left per component, where a report said.
    pub work_left: Vec<(String, u64)>,
}

/// The market and the bank as a tick left them: what queries read until the next.
#[derive(Debug, Clone, Default)]
pub struct MarketState {
    /// Books [`BOOK_LEVELS`] deep and every live lease.
    pub overview: MarketOverview,
    pub accounts: Vec<(AgentId, AccountBalance)>,
    pub isolated: Vec<AgentId>,
}

/// What became of an order or cancel after its tick: a door encodes it for its client
/// (a MessagePack frame on the socket, a JSON body over HTTP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Settled {
    Order(OrderResult),
    Cancel(CancelResult),
}

/// A deferred reply: the request's id, and what became of it.
pub type Deferred = (u64, Result<Settled, ErrorBody>);

/// Where a deferred reply goes: the request's id and its door's reply channel.
#[derive(Debug, Clone)]
pub struct ReplyTo {
    pub id: u64,
    /// Unbounded, because each door bounds how many requests it leaves waiting (the
    /// socket's `max_in_flight`, one per HTTP request); a closed channel means the
    /// client is gone.
    pub sender: mpsc::UnboundedSender<Deferred>,
}

impl ReplyTo {
    fn ok(&self, result: Settled) {
        let _ = self.sender.send((self.id, Ok(result)));
    }

    fn error(&self, error: ErrorBody) {
        let _ = self.sender.send((self.id, Err(error)));
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
    /// Work left per component: the newest report's.
    work_left: BTreeMap<String, u64>,
}

/// A submission a tick took in, waiting for that tick's outcome.
#[derive(Debug)]
struct Awaiting {
    agent: AgentId,
    sequence: u64,
    submitted: Submitted,
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
    /// Every client's resting orders, by id: owner and resource (read from the
    /// exchange after the tick, not tracked here).
    pub client_orders: BTreeMap<OrderId, (AgentId, Resource)>,
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
    /// Who may connect, and who trades; a reload replaces it whole.
    roster: RwLock<Arc<Roster>>,
    /// How many times the roster was replaced: connections re-check their session only
    /// when it moved.
    roster_generation: AtomicU64,
    /// Every participant's name since start: a reload adds newcomers' and keeps gone
    /// ones', for the events and records that still name them.
    names: RwLock<BTreeMap<AgentId, String>>,
    started: Instant,
    intake: Mutex<Intake>,
    tick_side: Mutex<TickSide>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// The runtime's decision log, for `query decisions`; set when the hub is attached.
    decision_log: OnceLock<DecisionLog>,
    /// The journal file, once one is attached: `query experiences` reads it.
    journal: OnceLock<std::path::PathBuf>,
    /// Opened at the first `query experiences`, read-only, and kept.
    journal_reader: Mutex<Option<gamesa_journal::JournalReader>>,
    /// The correlation of each client order still resting, to tag its later fills.
    correlations: Mutex<BTreeMap<OrderId, CorrelationId>>,
    /// How many connections hold each client's signal of each kind: the queue keeps
    /// one per `(kind, source)`, so it is released only when the last of them ends.
    holds: Mutex<BTreeMap<(AgentId, gamesa_proto::SignalKind), usize>>,
    /// Each connection's event queue, by connection number.
    queues: DashMap<u64, Arc<EventQueue>>,
    next_connection: AtomicU64,
    next_correlation: AtomicU64,
    stopping: AtomicBool,
    /// The last tick run, for audit records of requests checked between ticks.
    last_tick: AtomicU64,
    /// When the last tick ended, in µs since `started` plus one (0: no tick yet).
    last_tick_at_us: AtomicU64,
    pub counters: IngressCounters,
    /// Which connection answers each external agent's turns.
    pub external: crate::external::ExternalSeats,
    /// Fleet mode's link, for `query fleet`, once one is attached.
    fleet: OnceLock<Arc<gamesa_fleet_nats::FleetLink>>,
}

/// The clients and participants of one config, which a reload replaces whole: who
/// may connect with which token and effects, who trades, and the components.
#[derive(Debug)]
pub struct Roster {
    pub directory: ClientDirectory,
    pub participants: Vec<AgentEntry>,
    /// `guardian.components`: components a client may report progress for even before
    /// a frame has shown them.
    pub configured_components: BTreeSet<String>,
    /// The agents that live in other processes, and the client each answers through.
    pub external: Vec<crate::external::ExternalAgent>,
    /// `runtime.agent_deadline_ms` as it stands: what `attach` tells an external agent.
    pub agent_deadline_ms: u64,
}

impl Roster {
    /// Tokens named by `token_env` are read through `env`.
    pub fn from_config(
        config: &Config,
        env: &mut dyn FnMut(&str) -> Option<String>,
    ) -> Result<Roster, String> {
        let directory = ClientDirectory::from_config(config, env)?;
        let mut participants: Vec<AgentEntry> = gamesa_config::assemble::agent_specs(config)
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
        participants.extend(gamesa_config::assemble::client_ids(config).into_iter().map(
            |(id, client)| AgentEntry {
                id,
                name: client.name.clone(),
                role: Role::Client,
                kind: "client".into(),
                weight: client.weight,
                isolated: false,
            },
        ));
        let external = gamesa_config::assemble::agent_specs(config)
            .into_iter()
            .zip(&config.agents)
            .filter_map(|(spec, agent)| {
                Some(crate::external::ExternalAgent {
                    id: spec.id,
                    name: spec.name,
                    client: agent.client.clone()?,
                })
            })
            .collect();
        Ok(Roster {
            directory,
            participants,
            configured_components: config.guardian.components.iter().cloned().collect(),
            external,
            agent_deadline_ms: u64::try_from(config.runtime.agent_deadline().as_millis())
                .unwrap_or(u64::MAX),
        })
    }
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
        let roster = Roster::from_config(config, env)?;
        let external = crate::external::ExternalSeats::default();
        external.set_agents(roster.external.clone());
        let names = roster
            .participants
            .iter()
            .map(|entry| (entry.id, entry.name.clone()))
            .collect();
        Ok(IngressHub {
            settings: config.ingress.clone(),
            roster: RwLock::new(Arc::new(roster)),
            roster_generation: AtomicU64::new(0),
            names: RwLock::new(names),
            started: Instant::now(),
            intake: Mutex::new(Intake::default()),
            tick_side: Mutex::new(TickSide::default()),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            decision_log: OnceLock::new(),
            journal: OnceLock::new(),
            journal_reader: Mutex::new(None),
            correlations: Mutex::new(BTreeMap::new()),
            holds: Mutex::new(BTreeMap::new()),
            queues: DashMap::new(),
            next_connection: AtomicU64::new(1),
            next_correlation: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            last_tick: AtomicU64::new(0),
            last_tick_at_us: AtomicU64::new(0),
            counters: IngressCounters::default(),
            external,
            fleet: OnceLock::new(),
        })
    }

    pub fn settings(&self) -> &IngressConfig {
        &self.settings
    }

    /// The clients and participants as the config last loaded (or reloaded) says.
    pub fn roster(&self) -> Arc<Roster> {
        Arc::clone(&self.roster.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// A reload: the new config's participants, clients (tokens, effects, weights)
    /// and components ([`Roster::from_config`]). A connection already authenticated
    /// takes its client's new effects at its next request, or must say hello again
    /// when its token changed or its client is gone.
    pub fn set_roster(&self, roster: Roster) {
        {
            let mut names = self.names.write().unwrap_or_else(PoisonError::into_inner);
            for entry in &roster.participants {
                names.entry(entry.id).or_insert_with(|| entry.name.clone());
            }
        }
        self.external.set_agents(roster.external.clone());
        *self.roster.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(roster);
        self.roster_generation.fetch_add(1, Ordering::Release);
    }

    /// Bumped by every [`IngressHub::set_roster`].
    pub fn roster_generation(&self) -> u64 {
        self.roster_generation.load(Ordering::Acquire)
    }

    /// A participant's name (of now, or of before a reload removed it), else its id.
    pub fn name_of(&self, agent: AgentId) -> String {
        self.names
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&agent)
            .cloned()
            .unwrap_or_else(|| agent.to_string())
    }

    pub fn agent_named(&self, name: &str) -> Option<AgentId> {
        self.roster()
            .participants
            .iter()
            .find(|entry| entry.name == name)
            .map(|entry| entry.id)
    }

    pub fn uptime_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// How long ago the last tick ended; `None` before the first.
    pub fn since_last_tick(&self) -> Option<std::time::Duration> {
        let at_us = self
            .last_tick_at_us
            .load(Ordering::Acquire)
            .checked_sub(1)?;
        Some(
            self.started
                .elapsed()
                .saturating_sub(std::time::Duration::from_micros(at_us)),
        )
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

    /// The journal `query experiences` reads (`docs/journal.md`).
    pub fn set_journal(&self, path: &std::path::Path) {
        let _ = self.journal.set(path.to_owned());
    }

    /// The newest `limit` experiences in the journal (of `agent`, or every agent);
    /// `None` when no journal is attached.
    pub fn experiences(
        &self,
        agent: Option<&str>,
        limit: usize,
    ) -> Option<Result<Vec<gamesa_journal::experience::Journaled>, gamesa_journal::JournalError>>
    {
        self.read_journal(|reader| {
            gamesa_journal::experience::latest(reader.connection(), agent, limit)
                .map_err(|error| gamesa_journal::JournalError::Read(error.to_string()))
        })
    }

    /// Why `component` had the limit it had at `moment` (`gamesa why`); `None` when
    /// no journal is attached.
    pub fn why(
        &self,
        moment: gamesa_journal::why::Moment,
        component: &str,
    ) -> Option<Result<gamesa_journal::why::Explanation, gamesa_journal::JournalError>> {
        use gamesa_journal::why;
        self.read_journal(|reader| {
            let (run, tick) = why::resolve(reader, moment)?;
            why::explain(reader, &run, tick, component, run.epoch_ticks())
        })
    }

    /// Runs `read` on the journal, opened read-only at the first call and kept;
    /// `None` when no journal is attached.
    fn read_journal<T>(
        &self,
        read: impl FnOnce(&gamesa_journal::JournalReader) -> Result<T, gamesa_journal::JournalError>,
    ) -> Option<Result<T, gamesa_journal::JournalError>> {
        let path = self.journal.get()?;
        let mut reader = lock(&self.journal_reader);
        if reader.is_none() {
            match gamesa_journal::JournalReader::open(path) {
                Ok(opened) => *reader = Some(opened),
                Err(error) => return Some(Err(error)),
            }
        }
        Some(read(reader.as_ref()?))
    }

    /// The decision log, once the hub is attached to a runtime.
    /// Fleet mode is on: `query fleet` reads `link`.
    pub fn set_fleet(&self, link: Arc<gamesa_fleet_nats::FleetLink>) {
        let _ = self.fleet.set(link);
    }

    /// What the fleet link knows now; `None` outside fleet mode.
    pub fn fleet_status(&self) -> Option<gamesa_fleet_nats::FleetStatus> {
        self.fleet.get().map(|link| link.status())
    }

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
        self.external.detach(number);
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
            // Held: live until the connection releases it (`release_signal`).
            ttl_ticks: match request.hold {
                true => u32::MAX,
                false => request.ttl_ticks.unwrap_or(DEFAULT_SIGNAL_TTL_TICKS).max(1),
            },
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

    /// A connection began holding `kind` for `client` (`hold`).
    pub fn hold_signal(&self, client: &ClientEntry, kind: &gamesa_proto::SignalKind) {
        *lock(&self.holds)
            .entry((client.agent, kind.clone()))
            .or_default() += 1;
    }

    /// A connection stopped holding `kind` for `client`: it closed (`release` is
    /// true), or sent the kind again without `hold`, which replaced the held signal
    /// in the queue. When no other connection of the client holds the kind, a closing
    /// connection's signal is released: the same signal with a ttl of one tick replaces
    /// it in the scheduler's queue, so it is gone after the next tick. The release goes
    /// through the tick's intake like any signal, so the journal records it. Returns
    /// whether it was released.
    pub fn unhold_signal(&self, client: &ClientEntry, held: &SignalRequest, release: bool) -> bool {
        let last = {
            let mut holds = lock(&self.holds);
            let key = (client.agent, held.kind.clone());
            let count = holds.get(&key).copied().unwrap_or(0).saturating_sub(1);
            if count == 0 {
                holds.remove(&key);
            } else {
                holds.insert(key, count);
            }
            count == 0
        };
        if !(release && last) {
            return false;
        }
        let release = SignalRequest {
            ttl_ticks: Some(1),
            hold: false,
            ..held.clone()
        };
        tracing::info!(
            target: "gamesa::ingress",
            client = %client.name,
            kind = %held.kind,
            "a held signal is released: the last connection holding it closed"
        );
        self.inject_signal(client, 0, &release);
        true
    }

    /// Whether the runtime manages `component`: configured in `guardian.components`, or
    /// in the last telemetry frame.
    pub fn knows_component(&self, component: &str) -> bool {
        self.roster().configured_components.contains(component)
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
        if let Some(left) = request.left {
            intake.work_left.insert(component.to_owned(), left.micro());
        }
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

    /// The resource of one of `owner`'s resting orders, as the last tick left the book.
    pub fn resting_order(&self, owner: AgentId, order: OrderId) -> Option<Resource> {
        self.snapshot()
            .client_orders
            .get(&order)
            .filter(|(known, _)| *known == owner)
            .map(|(_, resource)| *resource)
    }

    /// Every client's account id, in id order.
    pub fn client_ids(&self) -> Vec<AgentId> {
        let mut ids: Vec<AgentId> = self
            .roster()
            .directory
            .iter()
            .map(|client| client.agent)
            .collect();
        ids.sort();
        ids
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
