//! The replies: the frame the server writes, the result of each request, and the
//! client's decoding of whatever a server sends ([`decode_server_frame`]).

use gamesa_proto::{
    AgentId, CorrelationId, Credits, Experience, LeaseId, OrderId, Price, Quantity, Resource, Side,
    TelemetryFrame, Tick,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{ComponentName, DecodeError, ErrorBody, Event, Topic};

/// A reply as the server writes it.
#[derive(Debug, Serialize)]
pub struct ReplyFrame<'a, T: Serialize> {
    pub id: Option<u64>,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'a T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a ErrorBody>,
}

impl<'a, T: Serialize> ReplyFrame<'a, T> {
    pub fn ok(id: u64, result: &'a T) -> ReplyFrame<'a, T> {
        ReplyFrame {
            id: Some(id),
            ok: true,
            result: Some(result),
            error: None,
        }
    }
}

impl<'a> ReplyFrame<'a, ()> {
    pub fn error(id: Option<u64>, error: &'a ErrorBody) -> ReplyFrame<'a, ()> {
        ReplyFrame {
            id,
            ok: false,
            result: None,
            error: Some(error),
        }
    }
}

/// The server's limits, as `hello` reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_frame_bytes: u32,
    pub max_depth: u32,
    pub rate_limit_per_s: u32,
    pub rate_burst: u32,
    pub max_in_flight: u32,
    pub subscription_queue: u32,
    pub idle_timeout_ms: u64,
}

/// The result of `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloResult {
    pub protocol_version: u32,
    /// `gamesa/<version>`.
    pub server: String,
    pub client: String,
    /// The client's participant id in the market.
    pub agent: AgentId,
    pub effects: Vec<String>,
    pub limits: Limits,
}

/// The result of `signal`: queued for `tick`, traced by `correlation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalResult {
    pub correlation: CorrelationId,
    pub tick: Tick,
}

/// The result of `progress`: `micro` millionths of a unit are added to `component`'s
/// counter at `tick`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressResult {
    pub component: ComponentName,
    pub micro: u64,
    pub tick: Tick,
}

/// The result of `order`, sent after the tick that took it in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderResult {
    pub order: OrderId,
    pub correlation: CorrelationId,
    pub tick: Tick,
    /// Units traded in that tick.
    pub filled: u64,
    /// Units left resting in the book.
    pub resting: u64,
}

/// The result of `cancel`, sent after the tick that took it in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelResult {
    pub order: OrderId,
    pub tick: Tick,
    /// Units that were still resting and are no longer.
    pub cancelled: u64,
}

/// `query health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResult {
    /// `ok`, or `degraded` when an agent is isolated.
    pub status: String,
    pub protocol_version: u32,
    pub server: String,
    /// The last tick run; `None` before the first.
    pub tick: Option<Tick>,
    pub uptime_ms: u64,
    pub connections: u32,
    /// Names of isolated agents.
    pub isolated: Vec<String>,
}

/// `query telemetry`: the last frame sampled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelemetryResult {
    pub tick: Option<Tick>,
    pub frame: Option<TelemetryFrame>,
}

/// One aggregated price level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    pub price: Price,
    pub quantity: Quantity,
    pub orders: u32,
}

/// `query book`: one resource's book after the last tick, best levels first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookResult {
    pub resource: Resource,
    pub tick: Option<Tick>,
    pub last_price: Option<Price>,
    pub best_bid: Option<Price>,
    pub best_ask: Option<Price>,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
}

/// One live lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub lease: LeaseId,
    pub resource: Resource,
    pub holder: AgentId,
    pub holder_name: String,
    pub seller: AgentId,
    pub seller_name: String,
    pub quantity: Quantity,
    pub price: Price,
    pub start: Tick,
    pub expires_at: Tick,
    /// For `cpu_cores`: the core indices the lease holds, ascending (a cpuset).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cores: Vec<u32>,
}

/// `query allocations`: every live lease after the last tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationsResult {
    pub tick: Option<Tick>,
    pub leases: Vec<Allocation>,
}

/// `query account`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountResult {
    pub agent: AgentId,
    pub name: String,
    pub tick: Option<Tick>,
    pub available: Credits,
    pub escrowed: Credits,
    pub allowance: Credits,
}

/// Whether a participant is a configured agent or an ingress client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Agent,
    Client,
}

/// One participant of the market.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentEntry {
    pub id: AgentId,
    pub name: String,
    pub role: Role,
    /// The agent kind (`cpu`, `gpu`, ...); `client` for clients.
    pub kind: String,
    pub weight: u32,
    pub isolated: bool,
}

/// `query agents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentsResult {
    pub agents: Vec<AgentEntry>,
}

/// A bid or ask that was in the book while the market cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConsidered {
    pub order: OrderId,
    pub agent: AgentId,
    pub side: Side,
    pub price: Price,
    pub quantity: Quantity,
    /// Placed in that tick (`false`: resting from before).
    pub new: bool,
}

/// A fill the guardian decided on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationDecision {
    pub resource: Resource,
    pub buyer: AgentId,
    pub seller: AgentId,
    pub buy_order: OrderId,
    pub sell_order: OrderId,
    pub quantity: Quantity,
    pub clearing_price: Price,
    /// Every order of the resource in the book during the match.
    pub orders: Vec<OrderConsidered>,
}

/// A change to a knob the guardian decided on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActuationDecision {
    /// The agent that asked; absent for the guardian's own safety action.
    pub requester: Option<AgentId>,
    /// Such as `power.limit:gpu0`.
    pub target: String,
    /// What was asked, as `target = value`.
    pub requested: String,
    /// What was applied instead, for a clamp.
    pub clamped_to: Option<String>,
    /// The knob's value before and after, when it was applied.
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

/// The contract clause that did not hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedClause {
    pub contract: String,
    /// `pre`, `post` or `invariant`.
    pub phase: String,
    pub clause: String,
    /// How far on the wrong side (≤ 0), when it could be computed.
    pub margin: Option<f64>,
    pub outcome: String,
}

/// One decision with its rationale: exactly one of `allocation` and `actuation` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub tick: Tick,
    /// The tick's correlation id.
    pub correlation: CorrelationId,
    /// Correlation ids of injected requests taken in at that tick.
    pub caused_by: Vec<CorrelationId>,
    pub allocation: Option<AllocationDecision>,
    pub actuation: Option<ActuationDecision>,
    /// `allow`, `clamp` or `deny`.
    pub verdict: String,
    pub reason: String,
    /// The smallest margin among the contracts checked, when all held.
    pub tightest_margin: Option<f64>,
    pub failed_clause: Option<FailedClause>,
}

/// `query decisions`: matching decisions, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionsResult {
    /// The oldest and newest tick the log holds; absent when it holds none (or
    /// `telemetry.decision_log_ticks = 0`).
    pub oldest_tick: Option<Tick>,
    pub newest_tick: Option<Tick>,
    pub decisions: Vec<DecisionRecord>,
}

/// `query experiences`: the newest epochs of the journal's experience store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperiencesResult {
    pub experiences: Vec<ExperienceRecord>,
}

/// One power buyer's epoch, with whose and which run's; the epoch's fields are
/// [`Experience`]'s, side by side with these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperienceRecord {
    pub run: i64,
    pub agent: String,
    /// When its first tick ran, ms since the Unix epoch.
    pub at_ms: u64,
    #[serde(flatten)]
    pub experience: Experience,
}

/// The result of `attach`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachResult {
    pub agent: String,
    /// Its participant id in the market.
    pub id: AgentId,
    /// How long the daemon waits for each turn's `intents`.
    pub deadline_ms: u64,
}

/// The result of `intents`: the answer was taken for `tick`'s turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentsResult {
    pub agent: String,
    pub tick: Tick,
    pub intents: u32,
}

/// The result of `subscribe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeResult {
    pub topic: Topic,
    /// Events the connection's queue holds before the oldest are dropped.
    pub queue: u32,
}

/// The result of `unsubscribe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsubscribeResult {
    pub topic: Topic,
    /// Events this connection has lost so far, over all topics.
    pub lost: u64,
}

/// Any frame a client receives.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerFrame {
    Reply(Reply),
    Event(Event),
}

/// A reply; the result stays a MessagePack value until the client knows its type.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub id: Option<u64>,
    pub outcome: Result<rmpv::Value, ErrorBody>,
}

impl Reply {
    /// The result as `T`, or the server's error.
    pub fn into_result<T: DeserializeOwned>(self) -> Result<T, DecodeError> {
        match self.outcome {
            Ok(value) => from_value(value),
            Err(error) => Err(DecodeError::Server(error)),
        }
    }
}

/// Through bytes: `rmpv`'s own serde bridge does not read enums written as strings.
pub(super) fn from_value<T: DeserializeOwned>(value: rmpv::Value) -> Result<T, DecodeError> {
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &value)
        .map_err(|error| DecodeError::Malformed(error.to_string()))?;
    from_bytes(&bytes)
}

/// Decodes MessagePack written by [`crate::encode_frame`] (human-readable UUIDs).
fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut deserializer = rmp_serde::Deserializer::from_read_ref(bytes).with_human_readable();
    T::deserialize(&mut deserializer).map_err(|error| DecodeError::Malformed(error.to_string()))
}

/// Every field a server frame may have.
#[derive(Deserialize)]
struct RawServerFrame {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default)]
    result: Option<rmpv::Value>,
    #[serde(default)]
    error: Option<ErrorBody>,
    #[serde(default)]
    topic: Option<Topic>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    tick: Option<Tick>,
    #[serde(default)]
    lost: Option<u64>,
    #[serde(default)]
    data: Option<rmpv::Value>,
}

/// Decodes a frame body a server sent.
pub fn decode_server_frame(body: &[u8]) -> Result<ServerFrame, DecodeError> {
    let raw: RawServerFrame = from_bytes(body)?;
    if let Some(topic) = raw.topic {
        return Ok(ServerFrame::Event(Event {
            topic,
            seq: raw.seq.unwrap_or_default(),
            tick: raw.tick.unwrap_or_default(),
            lost: raw.lost.unwrap_or_default(),
            data: raw.data.unwrap_or(rmpv::Value::Nil),
        }));
    }
    let outcome = match (raw.ok, raw.error) {
        (Some(true), _) => Ok(raw.result.unwrap_or(rmpv::Value::Nil)),
        (Some(false), Some(error)) => Err(error),
        _ => {
            return Err(DecodeError::Malformed(
                "neither a reply (`ok`) nor an event (`topic`)".into(),
            ));
        }
    };
    Ok(ServerFrame::Reply(Reply {
        id: raw.id,
        outcome,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{ErrorCode, EventFrame, PricesEvent};

    #[test]
    fn replies_and_events_decode_on_the_client() {
        let mut out = Vec::new();
        let result = SubscribeResult {
            topic: Topic::Fills,
            queue: 8,
        };
        crate::encode_frame(&ReplyFrame::ok(9, &result), &mut out).unwrap();
        let ServerFrame::Reply(reply) = decode_server_frame(&out[4..]).unwrap() else {
            panic!("not a reply")
        };
        assert_eq!(reply.id, Some(9));
        assert_eq!(reply.into_result::<SubscribeResult>().unwrap(), result);

        out.clear();
        let error = ErrorBody::new(ErrorCode::Forbidden, "no");
        crate::encode_frame(&ReplyFrame::error(None, &error), &mut out).unwrap();
        let ServerFrame::Reply(reply) = decode_server_frame(&out[4..]).unwrap() else {
            panic!("not a reply")
        };
        assert_eq!(reply.outcome, Err(error));

        out.clear();
        let event = EventFrame {
            topic: Topic::Prices,
            seq: 3,
            tick: Tick(12),
            lost: 2,
            data: PricesEvent { prices: vec![] },
        };
        crate::encode_frame(&event, &mut out).unwrap();
        let ServerFrame::Event(event) = decode_server_frame(&out[4..]).unwrap() else {
            panic!("not an event")
        };
        assert_eq!((event.topic, event.seq, event.lost), (Topic::Prices, 3, 2));
        assert_eq!(
            event.data_as::<PricesEvent>().unwrap(),
            PricesEvent { prices: vec![] }
        );
    }
}
