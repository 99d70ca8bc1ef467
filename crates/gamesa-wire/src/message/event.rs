//! The subscription events: the [`Topic`]s, the frame the server writes, each topic's
//! data, and the [`Event`] a client reads.

use gamesa_proto::{
    AgentId, CorrelationId, Domain, OrderId, Price, Quantity, Resource, Side, SignalKind, Strength,
    Tick,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{DecodeError, names::wire_names, reply::from_value};

wire_names! {
    /// A stream a client can subscribe to. Its wire name is the scope of the
    /// `subscribe:<scope>` effect it needs (one of `SUBSCRIBE_SCOPES`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Topic {
        /// Every fill the guardian allowed.
        Fills = "fills",
        /// Last trade and best bid/ask of every resource, once per tick.
        Prices = "prices",
        /// Signals that went live (raised by agents or injected).
        Signals = "signals",
        /// Every deny and clamp: fills, actuations, and refused intents.
        Vetoes = "vetoes",
        /// An external agent's turn: only to the connection that attached it, never
        /// by `subscribe`.
        Turn = "turn",
    }
}

impl Topic {
    /// The topics `subscribe` takes: every one but [`Topic::Turn`].
    pub const SUBSCRIBABLE: [Topic; 4] =
        [Topic::Fills, Topic::Prices, Topic::Signals, Topic::Vetoes];

    /// A bit per topic, for subscription sets.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// An event as the server writes it. `lost` counts the events this connection lost
/// (queue full, oldest dropped) since the previous event it was sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventFrame<T> {
    pub topic: Topic,
    /// Numbers the connection's events from 1, lost ones included: a gap of `lost`.
    pub seq: u64,
    pub tick: Tick,
    pub lost: u64,
    pub data: T,
}

/// `fills`: one allowed fill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillEvent {
    pub resource: Resource,
    pub buyer: AgentId,
    pub buyer_name: String,
    pub seller: AgentId,
    pub seller_name: String,
    pub buy_order: OrderId,
    pub sell_order: OrderId,
    pub price: Price,
    pub quantity: Quantity,
    pub aggressor: Side,
    /// Set when a client's order took part: the correlation of its `order` request.
    pub correlation: Option<CorrelationId>,
}

/// One resource's prices in a `prices` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceLine {
    pub resource: Resource,
    pub last: Option<Price>,
    pub best_bid: Option<Price>,
    pub best_ask: Option<Price>,
}

/// `prices`: every resource, once per tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricesEvent {
    pub prices: Vec<PriceLine>,
}

/// `signals`: a signal that went live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalEvent {
    pub kind: SignalKind,
    pub domain: Domain,
    pub strength: Strength,
    pub source: AgentId,
    pub source_name: String,
    pub ttl_ticks: u32,
    pub correlation: Option<CorrelationId>,
}

/// `vetoes`: a deny or a clamp, with the guardian's reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VetoEvent {
    /// `fill`, `actuation` or `intent`.
    pub subject: String,
    /// `deny` or `clamp`.
    pub decision: String,
    /// Who asked, when an agent or client did (`None` for the guardian's own action).
    pub principal: Option<AgentId>,
    pub principal_name: Option<String>,
    /// What was asked, in words.
    pub request: String,
    pub reason: String,
}

/// `turn`: an attached external agent's observation of one tick. Answer it with an
/// `intents` request for `tick` within `deadline_ms` of the event being sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnEvent {
    pub agent: String,
    pub deadline_ms: u64,
    pub observation: gamesa_agent::OwnedObservation,
}

/// An event of a subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub topic: Topic,
    pub seq: u64,
    pub tick: Tick,
    pub lost: u64,
    pub data: rmpv::Value,
}

impl Event {
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        from_value(self.data.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_are_the_subscribe_scopes() {
        assert_eq!(
            Topic::SUBSCRIBABLE.map(Topic::as_str),
            gamesa_proto::SUBSCRIBE_SCOPES
        );
    }
}
