//! What an agent sees at each tick: a read-only view assembled by the runtime.

use gamesa_proto::{
    AgentId, Credits, Fill, Lease, OrderId, OrderRequest, Price, Resource, Side, Signal,
    TelemetryFrame, Tick,
};

/// Public market data: the last trade price and best quotes of each resource, indexed
/// by [`Resource::index`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MarketView {
    pub last_price: [Option<Price>; Resource::ALL.len()],
    pub best_bid: [Option<Price>; Resource::ALL.len()],
    pub best_ask: [Option<Price>; Resource::ALL.len()],
}

impl MarketView {
    pub fn last_price(&self, resource: Resource) -> Option<Price> {
        self.last_price[resource.index()]
    }
}

/// Everything an agent is told at one tick. It serializes as a map with these field
/// names, which [`OwnedObservation`] reads back on the far side of a sandbox or socket.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Observation<'a> {
    pub tick: Tick,
    /// The agent being asked.
    pub agent: AgentId,
    /// Ticks per epoch: leases last one epoch by default, allowance is minted per epoch.
    pub epoch_ticks: u64,
    pub frame: &'a TelemetryFrame,
    /// Live signals addressed to everyone, highest-ranked first.
    pub signals: &'a [Signal],
    /// Fills this agent took part in since its previous observation.
    pub fills: &'a [Fill],
    /// Live leases this agent holds or has granted.
    pub leases: &'a [Lease],
    /// This agent's resting orders, with their ids so it can cancel them.
    pub open_orders: &'a [(OrderId, OrderRequest)],
    /// Credits available to spend (escrow excluded).
    pub balance: Credits,
    pub market: &'a MarketView,
}

/// An [`Observation`] that owns what it shows: what an agent in another address space (a
/// WASM module, an external process) decodes from the bytes its borrowed twin encodes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OwnedObservation {
    pub tick: Tick,
    pub agent: AgentId,
    pub epoch_ticks: u64,
    pub frame: TelemetryFrame,
    pub signals: Vec<Signal>,
    pub fills: Vec<Fill>,
    pub leases: Vec<Lease>,
    pub open_orders: Vec<(OrderId, OrderRequest)>,
    pub balance: Credits,
    pub market: MarketView,
}

impl OwnedObservation {
    /// The borrowed view an [`Agent`](crate::Agent) takes.
    pub fn view(&self) -> Observation<'_> {
        Observation {
            tick: self.tick,
            agent: self.agent,
            epoch_ticks: self.epoch_ticks,
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

impl From<&Observation<'_>> for OwnedObservation {
    fn from(observation: &Observation<'_>) -> OwnedObservation {
        OwnedObservation {
            tick: observation.tick,
            agent: observation.agent,
            epoch_ticks: observation.epoch_ticks,
            frame: observation.frame.clone(),
            signals: observation.signals.to_vec(),
            fills: observation.fills.to_vec(),
            leases: observation.leases.to_vec(),
            open_orders: observation.open_orders.to_vec(),
            balance: observation.balance,
            market: *observation.market,
        }
    }
}

impl Observation<'_> {
    /// Total quantity of `resource` this agent currently holds through leases.
    pub fn held(&self, resource: Resource) -> u64 {
        self.leases
            .iter()
            .filter(|lease| lease.holder == self.agent && lease.resource == resource)
            .map(|lease| lease.quantity.0)
            .sum()
    }

    /// Total quantity of `resource` this agent has leased out to others.
    pub fn granted(&self, resource: Resource) -> u64 {
        self.leases
            .iter()
            .filter(|lease| lease.seller == self.agent && lease.resource == resource)
            .map(|lease| lease.quantity.0)
            .sum()
    }

    /// What this agent has leased out of `resource` beyond this tick. A lease in its
    /// last tick hands its capacity back at this tick's match, before orders are
    /// matched, so the seller can offer it again now and the holder can renew it.
    pub fn granted_beyond_now(&self, resource: Resource) -> u64 {
        self.leases
            .iter()
            .filter(|lease| {
                lease.seller == self.agent
                    && lease.resource == resource
                    && lease.expires_at > self.tick
            })
            .map(|lease| lease.quantity.0)
            .sum()
    }

    /// Total quantity of `resource` this agent is offering in asks that still rest.
    pub fn resting_asks(&self, resource: Resource) -> u64 {
        self.open_orders
            .iter()
            .filter(|(_, order)| order.resource == resource && order.side == Side::Ask)
            .map(|(_, order)| order.quantity.0)
            .fold(0, u64::saturating_add)
    }
}
