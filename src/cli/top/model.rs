//! What `gamesa top` knows of the daemon: the replies and events it read, folded into
//! one state, with the time passed in as `now`. No I/O.
//!
//! # Invariants
//! - `signals` and `vetoes` are newest first and hold at most [`MAX_SIGNALS`] and
//!   [`MAX_VETOES`]
//! - every shown signal went live at or before the newest tick seen, and has not expired
//!   by it (a signal from before a daemon restart is dropped at the first tick seen
//!   after it)
//! - a component's draw history holds only samples of the last [`HISTORY`]
//! - while paused, the screen shows the snapshot taken when the pause began; updates
//!   still reach the live one, and the connection's state is always the live one

use std::{
    collections::{BTreeMap, VecDeque},
    time::{Duration, Instant},
};

use gamesa_proto::{ComponentTelemetry, Resource, Tick};
use gamesa_wire::{
    Allocation, AllocationsResult, Event, PriceLine, PricesEvent, SignalEvent, TelemetryResult,
    Topic, VetoEvent,
};

/// How far back a component's draw is drawn.
pub const HISTORY: Duration = Duration::from_secs(60);
/// Signals kept on screen at most.
pub const MAX_SIGNALS: usize = 32;
/// Vetoes kept on screen at most.
pub const MAX_VETOES: usize = 32;
/// Connected, but nothing read for this long: the screen says the data is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(3);

/// Something the connection read or went through.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Said hello and subscribed; `server` is the daemon's name from `query health`.
    Connected {
        server: Option<String>,
    },
    /// The connection was lost, or could not be made; it is tried again.
    Disconnected {
        reason: String,
    },
    Telemetry(Box<TelemetryResult>),
    Allocations(AllocationsResult),
    Event(Event),
    /// The daemon refused or could not answer something top asked for (a query the
    /// client may not make, a topic it may not subscribe to).
    Refused {
        what: String,
        message: String,
    },
}

/// The state of the connection to the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Before the first attempt has ended.
    Connecting,
    Connected {
        server: Option<String>,
    },
    Disconnected {
        reason: String,
        /// When the connection was lost (or the first attempt failed), not the latest
        /// failed retry: the screen counts the seconds from here.
        since: Instant,
    },
}

/// A signal that went live at `tick`, shown until `expires_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownSignal {
    pub tick: Tick,
    pub expires_at: Tick,
    pub signal: SignalEvent,
}

/// A deny or a clamp of the guardian, as read at `tick`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownVeto {
    pub tick: Tick,
    pub veto: VetoEvent,
}

/// Everything the daemon said, as of one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The newest tick any reply or event carried.
    pub tick: Option<Tick>,
    /// The last telemetry frame read.
    pub frame: Option<gamesa_proto::TelemetryFrame>,
    /// Each component's draw in mW, oldest first, with when it was read.
    draw: BTreeMap<String, VecDeque<(Instant, u64)>>,
    /// The last `prices` line of each resource, by [`Resource::index`].
    prices: [Option<PriceLine>; Resource::ALL.len()],
    /// Every live lease, as of the last `query allocations`.
    pub leases: Vec<Allocation>,
    pub signals: VecDeque<ShownSignal>,
    pub vetoes: VecDeque<ShownVeto>,
    /// Events the daemon dropped because this client read too slowly, in all.
    pub lost_events: u64,
    /// The last thing that went wrong short of losing the connection.
    pub notice: Option<String>,
}

impl Snapshot {
    /// The last prices of `resource`, once a `prices` event has carried it.
    pub fn prices(&self, resource: Resource) -> Option<&PriceLine> {
        self.prices[resource.index()].as_ref()
    }

    /// `component`'s draw over the last [`HISTORY`] in `buckets` equal slices of time,
    /// oldest first: the highest draw read in each slice, `None` where none was read.
    pub fn draw_history(&self, component: &str, now: Instant, buckets: usize) -> Vec<Option<u64>> {
        let mut slices = vec![None; buckets];
        let Some(samples) = self.draw.get(component) else {
            return slices;
        };
        if buckets == 0 {
            return slices;
        }
        let window = HISTORY.as_nanos();
        for &(at, draw_mw) in samples {
            let age = now.saturating_duration_since(at).as_nanos();
            if age >= window {
                continue;
            }
            // age < window, so the quotient is below `buckets`: it fits in usize.
            let from_newest = (age * buckets as u128 / window) as usize;
            let slice = &mut slices[buckets - 1 - from_newest.min(buckets - 1)];
            *slice = Some(slice.map_or(draw_mw, |highest: u64| highest.max(draw_mw)));
        }
        slices
    }

    /// The node's power budget as leased: each holder with the milliwatts it holds in
    /// all, the largest first.
    pub fn power_split(&self) -> Vec<(String, u64)> {
        let mut by_holder: BTreeMap<&str, u64> = BTreeMap::new();
        for lease in self
            .leases
            .iter()
            .filter(|lease| lease.resource == Resource::PowerBudgetMw)
        {
            let held = by_holder.entry(lease.holder_name.as_str()).or_default();
            *held = held.saturating_add(lease.quantity.0);
        }
        let mut split: Vec<(String, u64)> = by_holder
            .into_iter()
            .map(|(holder, held)| (holder.to_owned(), held))
            .collect();
        split.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        split
    }

    /// How many leases of `resource` are live, and the units they hold in all.
    pub fn leased(&self, resource: Resource) -> (usize, u64) {
        self.leases
            .iter()
            .filter(|lease| lease.resource == resource)
            .fold((0, 0u64), |(count, units), lease| {
                (count + 1, units.saturating_add(lease.quantity.0))
            })
    }

    fn observe_tick(&mut self, tick: Tick) {
        let newest = match self.tick {
            Some(seen) if seen > tick => seen,
            _ => tick,
        };
        self.tick = Some(newest);
        self.signals
            .retain(|shown| shown.tick <= newest && newest < shown.expires_at);
    }

    fn telemetry(&mut self, result: TelemetryResult, now: Instant) {
        if let Some(tick) = result.tick {
            self.observe_tick(tick);
        }
        let Some(frame) = result.frame else {
            return;
        };
        self.draw
            .retain(|id, _| frame.components.iter().any(|component| &component.id == id));
        for component in &frame.components {
            let samples = self.draw.entry(component.id.clone()).or_default();
            if let Some(draw_mw) = component.power_mw {
                samples.push_back((now, draw_mw));
            }
            while samples
                .front()
                .is_some_and(|&(at, _)| now.saturating_duration_since(at) >= HISTORY)
            {
                samples.pop_front();
            }
        }
        self.frame = Some(frame);
    }

    fn event(&mut self, event: &Event) {
        self.lost_events = self.lost_events.saturating_add(event.lost);
        self.observe_tick(event.tick);
        let decoded = match event.topic {
            Topic::Prices => event.data_as::<PricesEvent>().map(|prices| {
                for line in prices.prices {
                    self.prices[line.resource.index()] = Some(line);
                }
            }),
            Topic::Signals => event.data_as::<SignalEvent>().map(|signal| {
                self.signal(event.tick, signal);
            }),
            Topic::Vetoes => event.data_as::<VetoEvent>().map(|veto| {
                self.vetoes.push_front(ShownVeto {
                    tick: event.tick,
                    veto,
                });
                self.vetoes.truncate(MAX_VETOES);
            }),
            // Not subscribed to (turns come only with `attach`); nothing shows them.
            Topic::Fills | Topic::Turn => Ok(()),
        };
        if let Err(error) = decoded {
            self.notice = Some(format!(
                "a {} event top cannot read: {error}",
                event.topic.as_str()
            ));
        }
    }

    fn signal(&mut self, tick: Tick, signal: SignalEvent) {
        // The same condition raised again by the same source replaces the one shown.
        self.signals.retain(|shown| {
            shown.signal.kind != signal.kind || shown.signal.source != signal.source
        });
        let expires_at = tick.plus(u64::from(signal.ttl_ticks));
        if tick < expires_at {
            self.signals.push_front(ShownSignal {
                tick,
                expires_at,
                signal,
            });
            self.signals.truncate(MAX_SIGNALS);
        }
    }
}

/// A component's power limit less its draw, in mW, when both are known.
pub fn power_headroom_mw(component: &ComponentTelemetry) -> Option<i64> {
    let limit = i64::try_from(component.limit_mw?).unwrap_or(i64::MAX);
    let draw = i64::try_from(component.power_mw?).unwrap_or(i64::MAX);
    Some(limit.saturating_sub(draw))
}

/// How far a component is below the temperature it must stay under, in m°C, when
/// both are known.
pub fn thermal_headroom_mc(component: &ComponentTelemetry) -> Option<i32> {
    Some(component.t_max_mc?.saturating_sub(component.temp_mc?))
}

/// The whole state of `gamesa top`: what it read, the connection, and what the keys
/// chose.
#[derive(Debug, Clone)]
pub struct Model {
    live: Snapshot,
    /// The snapshot on screen while paused: the display freezes, the reading does not.
    frozen: Option<Snapshot>,
    link: Link,
    resource: Resource,
    /// When anything was last read from the daemon.
    last_heard: Option<Instant>,
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

impl Model {
    pub fn new() -> Model {
        Model {
            live: Snapshot::default(),
            frozen: None,
            link: Link::Connecting,
            resource: Resource::PowerBudgetMw,
            last_heard: None,
        }
    }

    /// Folds `update` in. Returns whether the screen changes: while paused, only the
    /// connection's state does.
    pub fn apply(&mut self, update: Update, now: Instant) -> bool {
        let shows_link = matches!(
            update,
            Update::Connected { .. } | Update::Disconnected { .. }
        );
        match update {
            Update::Connected { server } => {
                self.link = Link::Connected { server };
                self.last_heard = Some(now);
                // A new connection may be to a new daemon, whose ticks start again: the
                // first tick read from here on decides which signals still stand.
                self.live.tick = None;
            }
            Update::Disconnected { reason } => {
                let since = match &self.link {
                    Link::Disconnected { since, .. } => *since,
                    Link::Connecting | Link::Connected { .. } => now,
                };
                self.link = Link::Disconnected { reason, since };
            }
            Update::Telemetry(result) => {
                self.last_heard = Some(now);
                self.live.telemetry(*result, now);
            }
            Update::Allocations(result) => {
                self.last_heard = Some(now);
                if let Some(tick) = result.tick {
                    self.live.observe_tick(tick);
                }
                self.live.leases = result.leases;
            }
            Update::Event(event) => {
                self.last_heard = Some(now);
                self.live.event(&event);
            }
            Update::Refused { what, message } => {
                self.live.notice = Some(format!("{what}: {message}"));
            }
        }
        shows_link || self.frozen.is_none()
    }

    /// Freezes the screen, or lets it follow the daemon again.
    pub fn toggle_pause(&mut self) {
        self.frozen = match self.frozen.take() {
            Some(_) => None,
            None => Some(self.live.clone()),
        };
    }

    pub fn paused(&self) -> bool {
        self.frozen.is_some()
    }

    /// Shows the next resource's market (after the last, the first again).
    pub fn next_resource(&mut self) {
        self.resource = Resource::ALL[(self.resource.index() + 1) % Resource::ALL.len()];
    }

    /// Shows the previous resource's market.
    pub fn previous_resource(&mut self) {
        let count = Resource::ALL.len();
        self.resource = Resource::ALL[(self.resource.index() + count - 1) % count];
    }

    /// The resource whose market is shown.
    pub fn resource(&self) -> Resource {
        self.resource
    }

    /// What is on screen: the live snapshot, or the frozen one while paused.
    pub fn shown(&self) -> &Snapshot {
        self.frozen.as_ref().unwrap_or(&self.live)
    }

    pub fn link(&self) -> &Link {
        &self.link
    }

    /// How long nothing has been read while connected, once that is over
    /// [`STALE_AFTER`].
    pub fn silent_for(&self, now: Instant) -> Option<Duration> {
        if !matches!(self.link, Link::Connected { .. }) {
            return None;
        }
        let silent = now.saturating_duration_since(self.last_heard?);
        (silent >= STALE_AFTER).then_some(silent)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use gamesa_proto::{
        AgentId, ComponentKind, Domain, LeaseId, NodeTelemetry, Price, Quantity, SignalKind,
        Strength, TelemetryFrame,
    };
    use gamesa_wire::{EventFrame, ServerFrame};
    use serde::Serialize;

    use super::*;

    /// An event as the client reads it: encoded as the server writes it, then decoded.
    pub(crate) fn event<T: Serialize>(topic: Topic, tick: u64, data: T) -> Event {
        let mut bytes = Vec::new();
        gamesa_wire::encode_frame(
            &EventFrame {
                topic,
                seq: 1,
                tick: Tick(tick),
                lost: 0,
                data,
            },
            &mut bytes,
        )
        .unwrap();
        match gamesa_wire::decode_server_frame(&bytes[4..]).unwrap() {
            ServerFrame::Event(event) => event,
            ServerFrame::Reply(reply) => panic!("an event decoded as {reply:?}"),
        }
    }

    pub(crate) fn component(
        id: &str,
        power_mw: u64,
        limit_mw: u64,
        temp_mc: i32,
    ) -> ComponentTelemetry {
        ComponentTelemetry {
            id: id.into(),
            kind: if id == "cpu" {
                ComponentKind::Cpu
            } else {
                ComponentKind::Gpu
            },
            utilization_permille: 500,
            power_mw: Some(power_mw),
            temp_mc: Some(temp_mc),
            t_max_mc: Some(90_000),
            limit_mw: Some(limit_mw),
            limit_min_mw: None,
            limit_max_mw: None,
            progress_micro: None,
            work_left_micro: None,
        }
    }

    pub(crate) fn telemetry(tick: u64, components: Vec<ComponentTelemetry>) -> Update {
        Update::Telemetry(Box::new(TelemetryResult {
            tick: Some(Tick(tick)),
            frame: Some(TelemetryFrame {
                tick: Tick(tick),
                components,
                node: NodeTelemetry {
                    draw_mw: Some(150_000),
                    cap_mw: Some(200_000),
                },
                ..TelemetryFrame::default()
            }),
        }))
    }

    pub(crate) fn prices(tick: u64, resource: Resource, last: u64, bid: u64, ask: u64) -> Update {
        Update::Event(event(
            Topic::Prices,
            tick,
            PricesEvent {
                prices: vec![PriceLine {
                    resource,
                    last: Some(Price(last)),
                    best_bid: Some(Price(bid)),
                    best_ask: Some(Price(ask)),
                }],
            },
        ))
    }

    pub(crate) fn signal(tick: u64, kind: &str, ttl_ticks: u32) -> Update {
        Update::Event(event(
            Topic::Signals,
            tick,
            SignalEvent {
                kind: SignalKind::new(kind).unwrap(),
                domain: Domain::Performance,
                strength: Strength::MAX,
                source: AgentId(900),
                source_name: "game".into(),
                ttl_ticks,
                correlation: None,
            },
        ))
    }

    pub(crate) fn veto(tick: u64, reason: &str) -> Update {
        Update::Event(event(
            Topic::Vetoes,
            tick,
            VetoEvent {
                subject: "fill".into(),
                decision: "deny".into(),
                principal: Some(AgentId(3)),
                principal_name: Some("gpu0".into()),
                request: "buy 5000 power_budget_mw".into(),
                reason: reason.into(),
            },
        ))
    }

    pub(crate) fn lease(holder: &str, resource: Resource, quantity: u64) -> Allocation {
        Allocation {
            lease: LeaseId(1),
            resource,
            holder: AgentId(1),
            holder_name: holder.into(),
            seller: AgentId(0),
            seller_name: "power".into(),
            quantity: Quantity(quantity),
            price: Price(10),
            start: Tick(1),
            expires_at: Tick(10),
            cores: Vec::new(),
        }
    }

    #[test]
    fn headroom_is_limit_less_draw_and_t_max_less_temperature() {
        let gpu = component("gpu0", 180_000, 200_000, 71_500);
        assert_eq!(power_headroom_mw(&gpu), Some(20_000));
        assert_eq!(thermal_headroom_mc(&gpu), Some(18_500));
        let over = component("gpu0", 210_000, 200_000, 95_000);
        assert_eq!(power_headroom_mw(&over), Some(-10_000));
        assert_eq!(thermal_headroom_mc(&over), Some(-5_000));
        let unknown = ComponentTelemetry {
            limit_mw: None,
            t_max_mc: None,
            ..gpu
        };
        assert_eq!(power_headroom_mw(&unknown), None);
        assert_eq!(thermal_headroom_mc(&unknown), None);
    }

    #[test]
    fn the_draw_history_keeps_the_last_minute_in_slices() {
        let start = Instant::now();
        let mut model = Model::new();
        for second in 0..90u64 {
            model.apply(
                telemetry(
                    second * 10,
                    vec![component("cpu", 1_000 * second, 65_000, 50_000)],
                ),
                start + Duration::from_secs(second),
            );
        }
        let now = start + Duration::from_secs(89);
        let history = model.shown().draw_history("cpu", now, 6);
        // Six 10 s slices of the last minute (seconds 30..=89): the highest of each.
        assert_eq!(
            history,
            [39_000, 49_000, 59_000, 69_000, 79_000, 89_000].map(Some)
        );
        assert_eq!(
            model.shown().draw.get("cpu").map(VecDeque::len),
            Some(60),
            "samples older than a minute are dropped"
        );
        assert_eq!(model.shown().draw_history("gpu0", now, 3), [None; 3]);
        // A component gone from the frame takes its history with it.
        model.apply(
            telemetry(900, vec![component("gpu0", 1, 2, 3)]),
            now + Duration::from_secs(1),
        );
        assert_eq!(model.shown().draw_history("cpu", now, 2), [None; 2]);
    }

    #[test]
    fn signals_are_newest_first_and_leave_when_their_ttl_passes() {
        let now = Instant::now();
        let mut model = Model::new();
        model.apply(signal(10, "game_started", 5), now);
        model.apply(signal(12, "render_heavy", 50), now);
        let kinds = |model: &Model| -> Vec<String> {
            model
                .shown()
                .signals
                .iter()
                .map(|shown| shown.signal.kind.to_string())
                .collect()
        };
        assert_eq!(kinds(&model), ["render_heavy", "game_started"]);
        model.apply(prices(14, Resource::PowerBudgetMw, 1, 1, 1), now);
        assert_eq!(kinds(&model), ["render_heavy", "game_started"]);
        // Live at ticks 10..=14, expired from 15 on.
        model.apply(prices(15, Resource::PowerBudgetMw, 1, 1, 1), now);
        assert_eq!(kinds(&model), ["render_heavy"]);
        // Raised again by the same source: one line, at the top.
        model.apply(signal(16, "game_started", 5), now);
        model.apply(signal(17, "render_heavy", 50), now);
        assert_eq!(kinds(&model), ["render_heavy", "game_started"]);
    }

    #[test]
    fn signals_of_a_daemon_before_its_restart_are_dropped() {
        let now = Instant::now();
        let mut model = Model::new();
        model.apply(Update::Connected { server: None }, now);
        model.apply(signal(500, "game_started", 1_000), now);
        model.apply(
            Update::Disconnected {
                reason: "closed".into(),
            },
            now,
        );
        model.apply(Update::Connected { server: None }, now);
        model.apply(prices(3, Resource::PowerBudgetMw, 1, 1, 1), now);
        assert!(model.shown().signals.is_empty());
        assert_eq!(model.shown().tick, Some(Tick(3)));
    }

    #[test]
    fn vetoes_are_newest_first_and_bounded() {
        let now = Instant::now();
        let mut model = Model::new();
        for tick in 0..(MAX_VETOES as u64 + 5) {
            model.apply(veto(tick, &format!("clause {tick}")), now);
        }
        let vetoes = &model.shown().vetoes;
        assert_eq!(vetoes.len(), MAX_VETOES);
        assert_eq!(vetoes[0].veto.reason, format!("clause {}", MAX_VETOES + 4));
        assert_eq!(vetoes[0].tick, Tick(MAX_VETOES as u64 + 4));
    }

    #[test]
    fn the_power_split_sums_each_holders_power_leases() {
        let now = Instant::now();
        let mut model = Model::new();
        model.apply(
            Update::Allocations(AllocationsResult {
                tick: Some(Tick(4)),
                leases: vec![
                    lease("cpu", Resource::PowerBudgetMw, 5_000),
                    lease("gpu0", Resource::PowerBudgetMw, 30_000),
                    lease("cpu", Resource::PowerBudgetMw, 7_000),
                    lease("cpu", Resource::CpuCores, 2),
                ],
            }),
            now,
        );
        assert_eq!(
            model.shown().power_split(),
            [("gpu0".to_owned(), 30_000), ("cpu".to_owned(), 12_000)]
        );
        assert_eq!(model.shown().leased(Resource::PowerBudgetMw), (3, 42_000));
        assert_eq!(model.shown().leased(Resource::CpuCores), (1, 2));
    }

    #[test]
    fn a_pause_freezes_the_screen_but_not_the_reading() {
        let now = Instant::now();
        let mut model = Model::new();
        model.apply(prices(1, Resource::PowerBudgetMw, 100, 90, 110), now);
        model.toggle_pause();
        assert!(!model.apply(prices(2, Resource::PowerBudgetMw, 200, 190, 210), now));
        let shown_last = |model: &Model| {
            model
                .shown()
                .prices(Resource::PowerBudgetMw)
                .and_then(|line| line.last)
        };
        assert_eq!(shown_last(&model), Some(Price(100)));
        assert!(model.apply(
            Update::Disconnected {
                reason: "gone".into()
            },
            now
        ));
        assert!(matches!(model.link(), Link::Disconnected { .. }));
        model.toggle_pause();
        assert_eq!(shown_last(&model), Some(Price(200)));
    }

    #[test]
    fn the_disconnection_keeps_its_first_time() {
        let start = Instant::now();
        let mut model = Model::new();
        for (second, reason) in [(0, "refused"), (1, "refused again")] {
            model.apply(
                Update::Disconnected {
                    reason: reason.into(),
                },
                start + Duration::from_secs(second),
            );
        }
        assert_eq!(
            model.link(),
            &Link::Disconnected {
                reason: "refused again".into(),
                since: start
            }
        );
    }

    #[test]
    fn silence_while_connected_is_stale() {
        let start = Instant::now();
        let mut model = Model::new();
        model.apply(Update::Connected { server: None }, start);
        assert_eq!(model.silent_for(start + Duration::from_secs(1)), None);
        assert_eq!(
            model.silent_for(start + Duration::from_secs(5)),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn an_event_top_cannot_read_is_a_notice_not_a_panic() {
        let now = Instant::now();
        let mut model = Model::new();
        model.apply(Update::Event(event(Topic::Prices, 3, "not prices")), now);
        let notice = model.shown().notice.clone().unwrap_or_default();
        assert!(notice.contains("prices event"), "{notice}");
    }

    #[test]
    fn resources_cycle_both_ways() {
        let mut model = Model::new();
        assert_eq!(model.resource(), Resource::PowerBudgetMw);
        model.next_resource();
        assert_eq!(model.resource(), Resource::ThermalHeadroomMc);
        model.previous_resource();
        model.previous_resource();
        assert_eq!(model.resource(), Resource::MemoryMb);
        model.next_resource();
        assert_eq!(model.resource(), Resource::PowerBudgetMw);
    }
}
