//! Hand-made worlds for agents' unit tests: owned telemetry, signals, leases and orders
//! that lend themselves to an [`Observation`], and readers that pick orders and signals
//! out of the intents an agent returns.
//!
//! Built only for this crate's tests and under the `testkit` feature, which agents
//! enable in their dev-dependencies:
//! `gamesa-agent = { workspace = true, features = ["testkit"] }`.

use gamesa_proto::{
    AgentId, ComponentKind, ComponentTelemetry, Credits, Domain, Fill, Lease, LeaseId, OrderId,
    OrderRequest, Price, Quantity, Resource, Side, Signal, SignalKind, Strength, TelemetryFrame,
    Tick,
};

use crate::{Intent, MarketView, Observation, SignalIntent};

/// Everything an observation borrows, owned so a test can build and tweak it.
///
/// [`World::default`] is tick 100 with an empty frame and no credits.
#[derive(Debug, Clone)]
pub struct World {
    pub tick: Tick,
    pub frame: TelemetryFrame,
    pub signals: Vec<Signal>,
    pub fills: Vec<Fill>,
    pub leases: Vec<Lease>,
    pub open_orders: Vec<(OrderId, OrderRequest)>,
    pub balance: Credits,
    pub market: MarketView,
}

impl Default for World {
    fn default() -> World {
        World {
            tick: Tick(100),
            frame: TelemetryFrame {
                tick: Tick(100),
                ..TelemetryFrame::default()
            },
            signals: Vec::new(),
            fills: Vec::new(),
            leases: Vec::new(),
            open_orders: Vec::new(),
            balance: Credits(0),
            market: MarketView::default(),
        }
    }
}

impl World {
    /// A world whose frame holds `components`, for a buyer: its balance of 100 M credits
    /// is more than any bid a test makes, so no bid is cut for want of money.
    pub fn with_components(components: Vec<ComponentTelemetry>) -> World {
        let mut world = World {
            balance: Credits(100_000_000),
            ..World::default()
        };
        world.frame.components = components;
        world
    }

    pub fn components_mut(&mut self) -> &mut Vec<ComponentTelemetry> {
        &mut self.frame.components
    }

    /// What `agent` is told in this world, with epochs of 10 ticks.
    pub fn observation(&self, agent: AgentId) -> Observation<'_> {
        Observation {
            tick: self.tick,
            agent,
            epoch_ticks: 10,
            frame: &self.frame,
            signals: &self.signals,
            fills: &self.fills,
            leases: &self.leases,
            open_orders: &self.open_orders,
            balance: self.balance,
            market: &self.market,
        }
    }
}

/// A component with no readings and no limits at all.
pub fn component(id: &str, kind: ComponentKind) -> ComponentTelemetry {
    ComponentTelemetry::unread(id, kind)
}

/// A component with power limits 100..300 W and t_max 90 °C, idle, with no readings.
pub fn component_with_limits(id: &str, kind: ComponentKind) -> ComponentTelemetry {
    ComponentTelemetry {
        t_max_mc: Some(90_000),
        limit_min_mw: Some(100_000),
        limit_max_mw: Some(300_000),
        ..component(id, kind)
    }
}

/// A lease `holder` bought from an outside seller.
pub fn lease(holder: AgentId, resource: Resource, quantity: u64, expires_at: Tick) -> Lease {
    lease_between(holder, AgentId(99), resource, quantity, expires_at)
}

/// A lease `holder` bought from `seller`, at price 1 from tick 0.
pub fn lease_between(
    holder: AgentId,
    seller: AgentId,
    resource: Resource,
    quantity: u64,
    expires_at: Tick,
) -> Lease {
    Lease {
        id: LeaseId(1),
        resource,
        holder,
        seller,
        quantity: Quantity(quantity),
        price: Price(1),
        start: Tick(0),
        expires_at,
    }
}

/// A live signal from an outside source (agent 42) with a ttl of 3 ticks.
///
/// # Panics
/// When `kind` is not a valid signal kind or `strength_permille` is above 1000: a test
/// that asks for such a signal is wrong, and says so at once.
pub fn signal(kind: &str, domain: Domain, strength_permille: u16) -> Signal {
    Signal {
        kind: SignalKind::new(kind)
            .unwrap_or_else(|err| panic!("testkit::signal: bad kind `{kind}`: {err}")),
        domain,
        strength: Strength::from_permille(strength_permille)
            .unwrap_or_else(|err| panic!("testkit::signal: bad strength: {err}")),
        source: AgentId(42),
        ttl_ticks: 3,
        correlation: None,
    }
}

/// The first order `intents` place for `resource` on `side`, as (price, quantity).
pub fn placed(intents: &[Intent], resource: Resource, side: Side) -> Option<(Price, Quantity)> {
    intents.iter().find_map(|intent| match intent {
        Intent::Place(order) if order.resource == resource && order.side == side => {
            Some((order.price, order.quantity))
        }
        _ => None,
    })
}

/// The first ask in `intents`, as (price, quantity), from an agent that sells `resource`
/// and nothing else.
///
/// # Panics
/// When an ask is for another resource.
pub fn sole_ask(intents: &[Intent], resource: Resource) -> Option<(Price, Quantity)> {
    intents.iter().find_map(|intent| match intent {
        Intent::Place(order) if order.side == Side::Ask => {
            assert_eq!(order.resource, resource, "an ask for another resource");
            Some((order.price, order.quantity))
        }
        _ => None,
    })
}

/// The signals `intents` raise, in order, as (kind, domain, strength in permille).
pub fn raised(intents: &[Intent]) -> Vec<(String, Domain, u16)> {
    intents
        .iter()
        .filter_map(|intent| match intent {
            Intent::Raise(SignalIntent {
                kind,
                domain,
                strength,
                ..
            }) => Some((kind.to_string(), *domain, strength.permille())),
            _ => None,
        })
        .collect()
}
