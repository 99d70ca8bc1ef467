//! Fleet mode over NATS (`docs/fleet.md`): one task per node that runs the
//! `gamesa-fleet` core over a NATS server with JetStream. Nodes talk only through
//! NATS:
//! - **election**: the key `leader` of the key-value bucket `gamesa-fleet-<cluster>`,
//!   whose entries expire a lease after their last write. A node creates it when absent
//!   (create-if-absent) and becomes leader for the term of that revision; the leader
//!   renews it every third of a lease (compare-and-set on its revision) and is no
//!   longer leader when a renewal fails or its mandate runs out on its own clock;
//! - **orders**: each epoch a node sends its [`Order`] by request/reply on
//!   `gamesa.<cluster>.orders`, which only the leader answers;
//! - **grants**: each epoch the leader clears the orders it received and publishes
//!   each [`Grant`] on `gamesa.<cluster>.grants.<node>`.
//!
//! Messages are MessagePack maps with named fields. One that does not decode is dropped
//! and counted, never applied. The node's cap ([`FleetLink::cap_mw`]) is read by the
//! tick loop before each tick and becomes the node's `node.cap_mw`.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use async_nats::{Client, ConnectOptions, Subscriber, jetstream::kv};
use futures_util::StreamExt;
use gamesa_fleet::{BidStep, Grant, Leader, LeaderSettings, NodeLeases, Order, Split, Term};
use serde::{Deserialize, Serialize};

/// The key whose holder leads.
const LEADER_KEY: &str = "leader";

/// How the link authenticates to NATS.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    UserPassword {
        user: String,
        password: String,
    },
    /// An nkey seed (`SU...`).
    NKey(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        match self {
            Auth::None => f.write_str("None"),
            Auth::UserPassword { user, .. } => write!(f, "UserPassword({user}, <redacted>)"),
            Auth::NKey(_) => f.write_str("NKey(<redacted>)"),
        }
    }
}

/// Everything the link needs, read from `[fleet]`.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    pub nats_url: String,
    pub cluster: String,
    pub node: String,
    pub weight: u32,
    pub budget_mw: u64,
    pub safe_shares_mw: BTreeMap<String, u64>,
    pub epoch_ms: u64,
    pub lease_ms: u64,
    pub margin_ms: u64,
    pub split: Split,
    pub auth: Auth,
}

/// One node's last order and grant, as the leader saw them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLine {
    pub node: String,
    pub draw_mw: u64,
    /// What it asked for beyond its safe share, and at the highest price it bid.
    pub demand_mw: u64,
    pub top_price: u64,
    pub granted_mw: u64,
}

/// What the link knows, for `query fleet`, metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetStatus {
    pub node: String,
    /// The leader's name and term, as last seen in the key-value bucket.
    pub leader: Option<String>,
    pub term: u64,
    pub is_leader: bool,
    pub connected: bool,
    pub safe_share_mw: u64,
    /// The pool held now, and until when (ms on this node's clock since the link began).
    pub leased_mw: u64,
    pub lease_until_ms: Option<u64>,
    /// What the node last reported: its draw and its bid.
    pub draw_mw: u64,
    pub bids: Vec<BidStep>,
    pub orders_sent: u64,
    pub orders_unanswered: u64,
    pub grants_taken: u64,
    /// Grants refused (stale term, unknown order, too late) and messages that did not
    /// decode: dropped, never applied.
    pub grants_refused: u64,
    pub malformed: u64,
    /// On the leader, every node that ordered in the last epoch; empty elsewhere.
    pub nodes: Vec<NodeLine>,
}

#[derive(Debug)]
struct Shared {
    leases: NodeLeases,
    status: FleetStatus,
    /// The `traceparent` of the clearing behind the newest grant taken, until the
    /// next tick links to it.
    grant_trace: Option<String>,
}

/// The node's link to its fleet: a task on the caller's tokio runtime, and what the tick
/// loop reads of it.
#[derive(Debug)]
pub struct FleetLink {
    shared: Arc<Mutex<Shared>>,
    started: Instant,
    task: tokio::task::JoinHandle<()>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // Every critical section leaves the state consistent before it could panic.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl FleetLink {
    /// Starts the link on the current tokio runtime. It connects in the background and
    /// keeps reconnecting; until it holds a lease the node's cap is its safe share.
    pub fn start(settings: LinkSettings) -> FleetLink {
        let safe = settings
            .safe_shares_mw
            .get(&settings.node)
            .copied()
            .unwrap_or(0);
        let shared = Arc::new(Mutex::new(Shared {
            leases: NodeLeases::new(
                settings.node.clone(),
                safe,
                settings.lease_ms,
                settings.margin_ms,
            ),
            status: FleetStatus {
                node: settings.node.clone(),
                safe_share_mw: safe,
                ..FleetStatus::default()
            },
            grant_trace: None,
        }));
        let started = Instant::now();
        let task = tokio::spawn(run(settings, Arc::clone(&shared), started));
        FleetLink {
            shared,
            started,
            task,
        }
    }

    /// The node's cap now: its safe share plus its lease, if still valid.
    pub fn cap_mw(&self) -> u64 {
        lock(&self.shared).leases.cap_mw(now_ms(self.started))
    }

    /// What the node draws and bids, for its next order.
    pub fn report(&self, draw_mw: u64, bids: Vec<BidStep>) {
        let mut shared = lock(&self.shared);
        shared.status.draw_mw = draw_mw;
        shared.status.bids = bids;
    }

    /// The `traceparent` of the leader's clearing behind the grant taken since the last
    /// call, if any: the tick that first runs under it links to that span.
    pub fn take_grant_trace(&self) -> Option<String> {
        lock(&self.shared).grant_trace.take()
    }

    /// The node's safe share, in mW.
    pub fn safe_share_mw(&self) -> u64 {
        lock(&self.shared).status.safe_share_mw
    }

    /// The figures `gamesa.fleet.*` reports after a tick that took in `cap_mw`: read
    /// once a tick, so it copies counters only (not the leader's node table).
    pub fn figures(&self, cap_mw: u64) -> gamesa_telemetry::FleetFigures {
        let now = now_ms(self.started);
        let shared = lock(&self.shared);
        let status = &shared.status;
        gamesa_telemetry::FleetFigures {
            cap_mw,
            leased_mw: shared.leases.leased_mw(now),
            is_leader: status.is_leader,
            term: status.term,
            orders_sent: status.orders_sent,
            orders_unanswered: status.orders_unanswered,
            grants_taken: status.grants_taken,
            grants_refused: status.grants_refused,
            malformed: status.malformed,
        }
    }

    pub fn status(&self) -> FleetStatus {
        let now = now_ms(self.started);
        let shared = lock(&self.shared);
        FleetStatus {
            leased_mw: shared.leases.leased_mw(now),
            lease_until_ms: shared.leases.lease_until_ms(),
            ..shared.status.clone()
        }
    }

    /// Milliseconds on this link's clock.
    pub fn now_ms(&self) -> u64 {
        now_ms(self.started)
    }
}

impl Drop for FleetLink {
    fn drop(&mut self) {
        // The mandate, if held, lapses on the server by itself.
        self.task.abort();
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain structs of strings and integers: encoding cannot fail.
    rmp_serde::to_vec_named(value).unwrap_or_default()
}

async fn connect(settings: &LinkSettings) -> Result<Client, async_nats::ConnectError> {
    let options = ConnectOptions::new()
        .name(format!("gamesa-fleet {}", settings.node))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .request_timeout(Some(Duration::from_millis(settings.epoch_ms / 2)))
        .connection_timeout(Duration::from_millis(settings.epoch_ms.max(1_000)));
    let options = match &settings.auth {
        Auth::None => options,
        Auth::UserPassword { user, password } => {
            options.user_and_password(user.clone(), password.clone())
        }
        Auth::NKey(seed) => options.nkey(seed.clone()),
    };
    options.connect(settings.nats_url.as_str()).await
}

/// The link's life: connect (retrying in the background), then serve.
async fn run(settings: LinkSettings, shared: Arc<Mutex<Shared>>, started: Instant) {
    let client = match connect(&settings).await {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, url = %settings.nats_url, "fleet: cannot connect to NATS; the node stays at its safe share");
            return;
        }
    };
    Node {
        settings,
        shared,
        started,
        client,
        office: None,
        orders: Vec::new(),
    }
    .serve()
    .await;
}

/// The office of a leader: its core, the key's revision it last wrote, and the
/// subscription that receives the orders.
struct Office {
    leader: Leader,
    revision: u64,
    orders: Subscriber,
}

struct Node {
    settings: LinkSettings,
    shared: Arc<Mutex<Shared>>,
    started: Instant,
    client: Client,
    office: Option<Office>,
    /// Orders received this epoch, as leader.
    orders: Vec<Order>,
}

impl Node {
    fn now(&self) -> u64 {
        now_ms(self.started)
    }

    fn subject(&self, what: &str) -> String {
        format!("gamesa.{}.{what}", self.settings.cluster)
    }

    async fn serve(mut self) {
        let grants_subject = self.subject(&format!("grants.{}", self.settings.node));
        let mut grants = loop {
            match self.client.subscribe(grants_subject.clone()).await {
                Ok(grants) => break grants,
                Err(error) => {
                    tracing::warn!(%error, "fleet: cannot subscribe to grants; retrying");
                    tokio::time::sleep(Duration::from_millis(self.settings.epoch_ms)).await;
                }
            }
        };
        let mut store: Option<kv::Store> = None;
        let mut epoch = tokio::time::interval(Duration::from_millis(self.settings.epoch_ms));
        let mut election =
            tokio::time::interval(Duration::from_millis((self.settings.lease_ms / 3).max(1)));
        epoch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        election.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = epoch.tick() => {
                    self.send_order();
                    self.clear().await;
                }
                _ = election.tick() => {
                    if store.is_none() {
                        store = self.bucket().await;
                    }
                    if let Some(store) = &store {
                        self.elect(store).await;
                    }
                }
                Some(message) = grants.next() => self.take_grant(&message.payload),
                Some(message) = next_order(&mut self.office) => self.take_order(message).await,
            }
            let connected = matches!(
                self.client.connection_state(),
                async_nats::connection::State::Connected
            );
            lock(&self.shared).status.connected = connected;
        }
    }

    /// The election's bucket, created if absent.
    async fn bucket(&self) -> Option<kv::Store> {
        let jetstream = async_nats::jetstream::new(self.client.clone());
        let config = kv::Config {
            bucket: format!("gamesa-fleet-{}", self.settings.cluster),
            history: 1,
            max_age: Duration::from_millis(self.settings.lease_ms),
            ..kv::Config::default()
        };
        if let Ok(store) = jetstream.get_key_value(config.bucket.clone()).await {
            return Some(store);
        }
        match jetstream.create_key_value(config).await {
            Ok(store) => Some(store),
            Err(error) => {
                tracing::warn!(%error, "fleet: no key-value bucket for the election (is JetStream on?)");
                None
            }
        }
    }

    /// Takes office when the key is free, renews the mandate when holding it, steps
    /// down when a renewal fails.
    async fn elect(&mut self, store: &kv::Store) {
        let sent = self.now();
        let mandate_until = sent + self.settings.lease_ms;
        let name = self.settings.node.clone();
        match self.office.as_mut() {
            Some(office) => {
                match store
                    .update(
                        LEADER_KEY,
                        name.clone().into_bytes().into(),
                        office.revision,
                    )
                    .await
                {
                    Ok(revision) => {
                        office.revision = revision;
                        office.leader.renew(mandate_until);
                    }
                    Err(error) => {
                        tracing::warn!(%error, term = office.leader.term().0, "fleet: lost the mandate; no longer leader");
                        self.office = None;
                        let mut shared = lock(&self.shared);
                        shared.status.is_leader = false;
                        shared.status.nodes.clear();
                    }
                }
            }
            None => match store
                .create(LEADER_KEY, name.clone().into_bytes().into())
                .await
            {
                Ok(revision) => {
                    let orders = match self.client.subscribe(self.subject("orders")).await {
                        Ok(orders) => orders,
                        Err(error) => {
                            tracing::warn!(%error, "fleet: won the election but cannot hear orders");
                            return;
                        }
                    };
                    let split = self.settings.split;
                    let leader = Leader::take_office(
                        LeaderSettings {
                            budget_mw: self.settings.budget_mw,
                            lease_ms: self.settings.lease_ms,
                            margin_ms: self.settings.margin_ms,
                        },
                        Term(revision),
                        split,
                        self.settings.safe_shares_mw.clone(),
                        sent,
                        mandate_until,
                    );
                    match leader {
                        Ok(leader) => {
                            tracing::info!(term = revision, "fleet: elected leader");
                            self.office = Some(Office {
                                leader,
                                revision,
                                orders,
                            });
                            let mut shared = lock(&self.shared);
                            shared.status.is_leader = true;
                            shared.status.leader = Some(name);
                            shared.status.term = revision;
                        }
                        Err(error) => tracing::error!(%error, "fleet: cannot lead"),
                    }
                }
                Err(_) => {
                    if let Ok(Some(entry)) = store.entry(LEADER_KEY).await {
                        let mut shared = lock(&self.shared);
                        shared.status.leader =
                            Some(String::from_utf8_lossy(&entry.value).into_owned());
                        shared.status.term = shared.status.term.max(shared.leases.term().0);
                    }
                }
            },
        }
    }

    /// Sends this epoch's order; its answer is awaited on a task of its own.
    fn send_order(&self) {
        let order = {
            let mut shared = lock(&self.shared);
            let request = shared.leases.ask(self.now());
            shared.status.orders_sent += 1;
            Order {
                node: self.settings.node.clone(),
                request,
                draw_mw: shared.status.draw_mw,
                weight: self.settings.weight,
                bids: shared.status.bids.clone(),
            }
        };
        let (client, subject, shared) = (
            self.client.clone(),
            self.subject("orders"),
            Arc::clone(&self.shared),
        );
        tokio::spawn(async move {
            if client
                .request(subject, encode(&order).into())
                .await
                .is_err()
            {
                // No leader, or none in time: the lease held runs out by itself.
                lock(&shared).status.orders_unanswered += 1;
            }
        });
    }

    fn take_grant(&self, payload: &[u8]) {
        let now = self.now();
        let mut shared = lock(&self.shared);
        match rmp_serde::from_slice::<Grant>(payload) {
            Ok(grant) => match shared.leases.accept(&grant, now) {
                Ok(()) => {
                    shared.status.grants_taken += 1;
                    shared.status.term = shared.status.term.max(grant.term.0);
                    if grant.trace.is_some() {
                        shared.grant_trace = grant.trace;
                    }
                }
                Err(refused) => {
                    shared.status.grants_refused += 1;
                    tracing::warn!(%refused, term = grant.term.0, "fleet: grant refused");
                }
            },
            Err(error) => {
                shared.status.malformed += 1;
                tracing::warn!(%error, "fleet: a grant that does not decode was dropped");
            }
        }
    }

    async fn take_order(&mut self, message: async_nats::Message) {
        match rmp_serde::from_slice::<Order>(&message.payload) {
            Ok(order) => {
                self.orders.push(order);
                if let Some(reply) = message.reply {
                    let _ = self.client.publish(reply, Vec::new().into()).await;
                }
            }
            Err(error) => {
                lock(&self.shared).status.malformed += 1;
                tracing::warn!(%error, "fleet: an order that does not decode was dropped");
            }
        }
    }

    /// As leader: this epoch's orders cleared into grants, one message per node.
    async fn clear(&mut self) {
        let orders = std::mem::take(&mut self.orders);
        let now = self.now();
        let Some(office) = self.office.as_mut() else {
            lock(&self.shared).status.nodes.clear();
            return;
        };
        let mut grants = office.leader.clear(now, &orders);
        if !grants.is_empty() {
            // One span per clearing; every grant carries it, so the nodes' ticks that
            // run under a grant link back to the epoch that made it.
            let span = tracing::info_span!(
                target: "gamesa::fleet",
                "fleet.clear",
                "gamesa.fleet.term" = office.leader.term().0,
                "gamesa.fleet.orders" = orders.len(),
                "gamesa.fleet.granted_mw" = grants.iter().map(|grant| grant.mw).sum::<u64>(),
            );
            let trace = gamesa_telemetry::traceparent(&span);
            for grant in &mut grants {
                grant.trace.clone_from(&trace);
            }
            lock(&self.shared).status.nodes = grants
                .iter()
                .map(|grant| {
                    let order = orders.iter().rev().find(|order| order.node == grant.node);
                    NodeLine {
                        node: grant.node.clone(),
                        draw_mw: order.map_or(0, |order| order.draw_mw),
                        demand_mw: order.map_or(0, Order::demand_mw),
                        top_price: order
                            .and_then(|order| order.bids.iter().map(|step| step.price).max())
                            .unwrap_or(0),
                        granted_mw: grant.mw,
                    }
                })
                .collect();
        }
        for grant in grants {
            let subject = format!("gamesa.{}.grants.{}", self.settings.cluster, grant.node);
            if let Err(error) = self.client.publish(subject, encode(&grant).into()).await {
                tracing::warn!(%error, node = %grant.node, "fleet: a grant could not be sent");
            }
        }
    }
}

/// The next order, when this node leads; never otherwise.
async fn next_order(office: &mut Option<Office>) -> Option<async_nats::Message> {
    match office {
        Some(office) => office.orders.next().await,
        None => std::future::pending().await,
    }
}
