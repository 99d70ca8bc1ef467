//! The messages of the ingress protocol, version [`PROTOCOL_VERSION`]: requests, the one
//! reply each gets, subscription events, and the stable error codes.
//!
//! Every frame body is a MessagePack map with named fields. A request names its kind in
//! `type` and carries a client-chosen `id`; fields a message does not define are ignored,
//! so a client may send optional fields a later version adds. A reply is
//! `{ id, ok: true, result }` or `{ id, ok: false, error: { code, message } }`; an event
//! is `{ topic, seq, tick, lost, data }` and has no `id`.
//!
//! Decoding runs in three steps, each with its own error code: the structure check
//! ([`crate::check_structure`]), the head (`id` and `type`), then the fields of that type.

use std::fmt;

use gamesa_proto::{
    AgentId, CorrelationId, Credits, Domain, LeaseId, OrderId, Price, Quantity, Resource, Side,
    SignalKind, Strength, TelemetryFrame, Tick,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::structure::{StructureError, check_structure};

/// The protocol version this crate speaks; `hello` must name it.
pub const PROTOCOL_VERSION: u32 = 1;
/// The default frame-size cap, in bytes of body.
pub const DEFAULT_MAX_FRAME_BYTES: u32 = 64 * 1024;
/// How deep containers may nest in a request.
pub const MAX_DEPTH: usize = 16;
/// The ttl of an injected signal when the request names none.
pub const DEFAULT_SIGNAL_TTL_TICKS: u32 = 10;
/// The most units of work one `progress` report may carry (10^12: the counter's
/// micro-units of it stay well inside a u64).
pub const MAX_PROGRESS_AMOUNT: f64 = 1e12;

/// Why a request failed: stable, lowercase, and part of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The length prefix is over the cap; the server closes the connection after it.
    FrameTooLarge,
    /// The body is not exactly one well-formed MessagePack value.
    MalformedFrame,
    /// Containers nest deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Not a map, or a field is missing, of the wrong type, or out of range.
    InvalidRequest,
    /// `type` names no request of this version.
    UnknownType,
    /// `hello` named a protocol version the server does not speak.
    UnsupportedVersion,
    /// Anything but `hello` and the `health` query before `hello`.
    NotAuthenticated,
    /// `hello` with an unknown client or a wrong token.
    Unauthorized,
    /// A second `hello` on an authenticated connection.
    AlreadyAuthenticated,
    /// The client lacks the effect the request needs; the denial is audited.
    Forbidden,
    /// Over the connection's request rate.
    RateLimited,
    /// `cancel` named an order that is not one of this client's resting orders.
    UnknownOrder,
    /// `progress` named a component the runtime does not manage.
    UnknownComponent,
    /// The guardian's ledger refused the bid: not enough credits.
    InsufficientCredits,
    /// The exchange refused the order or cancel.
    Rejected,
    /// The server has as many connections as it allows; it closes this one.
    TooManyConnections,
    /// Nothing was received for the idle timeout; the server closes the connection.
    IdleTimeout,
    /// The runtime is stopping; requests still waiting for a tick get this.
    ShuttingDown,
    /// A fault of the server itself.
    Internal,
    /// A code this version of the crate does not know (sent by a newer server).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::MalformedFrame => "malformed_frame",
            ErrorCode::TooDeep => "too_deep",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::NotAuthenticated => "not_authenticated",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::AlreadyAuthenticated => "already_authenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::UnknownOrder => "unknown_order",
            ErrorCode::UnknownComponent => "unknown_component",
            ErrorCode::InsufficientCredits => "insufficient_credits",
            ErrorCode::Rejected => "rejected",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::IdleTimeout => "idle_timeout",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `error` of a failed reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// The `type` of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestType {
    Hello,
    Signal,
    Order,
    Cancel,
    Query,
    Subscribe,
    Unsubscribe,
    Progress,
}

impl RequestType {
    pub const ALL: [RequestType; 8] = [
        RequestType::Hello,
        RequestType::Signal,
        RequestType::Order,
        RequestType::Cancel,
        RequestType::Query,
        RequestType::Subscribe,
        RequestType::Unsubscribe,
        RequestType::Progress,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestType::Hello => "hello",
            RequestType::Signal => "signal",
            RequestType::Order => "order",
            RequestType::Cancel => "cancel",
            RequestType::Query => "query",
            RequestType::Subscribe => "subscribe",
            RequestType::Unsubscribe => "unsubscribe",
            RequestType::Progress => "progress",
        }
    }

    pub fn parse(name: &str) -> Option<RequestType> {
        RequestType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// `hello`: opens a session. `client` is the client's name in the server's config and
/// `token` its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol_version: u32,
    pub client: String,
    pub token: String,
}

/// `signal`: inject a signal, taken in at the next tick (needs `signal:<domain>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalRequest {
    pub kind: SignalKind,
    pub domain: Domain,
    /// A number in `[0, 1]`.
    pub strength: Strength,
    /// Ticks the signal stays live; [`DEFAULT_SIGNAL_TTL_TICKS`] when absent.
    #[serde(default)]
    pub ttl_ticks: Option<u32>,
}

/// How long an order may rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// Rests until filled, cancelled, or `expires_after_ticks` have passed.
    #[default]
    Limit,
    /// Immediate-or-cancel: trades what it can in its tick, never rests.
    Ioc,
}

/// `order`: place a bid or an ask through the client's own credit account, in the next
/// tick (needs `order:<resource>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequestBody {
    pub resource: Resource,
    pub side: Side,
    /// Credits per unit, 1 to 1 000 000 000.
    pub price: Price,
    /// Units of the resource, 1 to 1 000 000 000.
    pub quantity: Quantity,
    #[serde(default)]
    pub time_in_force: OrderKind,
    /// A limit order rests at most this many ticks, counting the one that takes it in
    /// (at least 1); absent: until filled or cancelled.
    #[serde(default)]
    pub expires_after_ticks: Option<u64>,
}

/// `cancel`: cancel one of the client's resting orders in the next tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    pub order: OrderId,
}

/// What a `query` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryName {
    Health,
    Telemetry,
    Book,
    Allocations,
    Account,
    Agents,
    /// The decision log: allocations and actuations with their rationale.
    Decisions,
}

impl QueryName {
    /// The scope of the `query:<scope>` effect it needs (one of `QUERY_SCOPES`).
    pub fn as_str(self) -> &'static str {
        match self {
            QueryName::Health => "health",
            QueryName::Telemetry => "telemetry",
            QueryName::Book => "book",
            QueryName::Allocations => "allocations",
            QueryName::Account => "account",
            QueryName::Agents => "agents",
            QueryName::Decisions => "decisions",
        }
    }
}

/// `query`: read the runtime's state as of the last tick (needs `query:<query>`, except
/// `health`, which anyone may ask, even before `hello`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryRequest {
    pub query: QueryName,
    /// `book`: required. `allocations`: only this resource's leases.
    #[serde(default)]
    pub resource: Option<Resource>,
    /// `account`: whose account (an agent's or client's name); default: the caller's.
    #[serde(default)]
    pub agent: Option<String>,
    /// `book`: price levels per side, 1 to 100 (default 10).
    #[serde(default)]
    pub levels: Option<u32>,
    /// `decisions`: only those of this tick or later.
    #[serde(default)]
    pub since_tick: Option<Tick>,
    /// `decisions`: only those of the tick with this correlation id, or of a tick that
    /// took in the injected request with this one.
    #[serde(default)]
    pub correlation: Option<CorrelationId>,
    /// `decisions`: only denials and clamps.
    #[serde(default)]
    pub vetoes_only: Option<bool>,
    /// `decisions`: at most this many, the newest (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<u32>,
}

impl QueryRequest {
    /// A query with no parameters.
    pub fn new(query: QueryName) -> QueryRequest {
        QueryRequest {
            query,
            resource: None,
            agent: None,
            levels: None,
            since_tick: None,
            correlation: None,
            vetoes_only: None,
            limit: None,
        }
    }
}

/// A stream a client can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// Every fill the guardian allowed.
    Fills,
    /// Last trade and best bid/ask of every resource, once per tick.
    Prices,
    /// Signals that went live (raised by agents or injected).
    Signals,
    /// Every deny and clamp: fills, actuations, and refused intents.
    Vetoes,
}

impl Topic {
    pub const ALL: [Topic; 4] = [Topic::Fills, Topic::Prices, Topic::Signals, Topic::Vetoes];

    /// The scope of the `subscribe:<scope>` effect it needs (one of `SUBSCRIBE_SCOPES`).
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Fills => "fills",
            Topic::Prices => "prices",
            Topic::Signals => "signals",
            Topic::Vetoes => "vetoes",
        }
    }

    /// A bit per topic, for subscription sets.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// `subscribe` and `unsubscribe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRequest {
    pub topic: Topic,
}

/// A component's id as a `progress` report names it (`cpu`, `gpu0`): 1 to 64 characters
/// of `[A-Za-z0-9_.-]`, so that `progress:<id>` is a valid effect.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ComponentName(String);

impl ComponentName {
    pub fn new(name: impl Into<String>) -> Result<ComponentName, String> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if valid {
            Ok(ComponentName(name))
        } else {
            Err(format!(
                "`{}` is not a component id (1 to 64 characters of [A-Za-z0-9_.-])",
                name.escape_debug()
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ComponentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ComponentName {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        ComponentName::new(name)
    }
}

impl From<ComponentName> for String {
    fn from(name: ComponentName) -> String {
        name.0
    }
}

/// Units of work done, in the workload's own unit (frames, steps, batches): a finite
/// number from 0 to [`MAX_PROGRESS_AMOUNT`]. Kept as sent, so that it re-encodes
/// exactly; [`ProgressAmount::micro`] is what the runtime counts.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct ProgressAmount(f64);

impl ProgressAmount {
    pub fn units(self) -> f64 {
        self.0
    }

    /// The amount in millionths of a unit, rounded to the nearest.
    pub fn micro(self) -> u64 {
        // Finite and within 0..=10^12 by construction, so 0..=10^18 fits a u64.
        (self.0 * 1e6).round() as u64
    }
}

impl TryFrom<f64> for ProgressAmount {
    type Error = String;

    fn try_from(units: f64) -> Result<Self, Self::Error> {
        if units.is_finite() && (0.0..=MAX_PROGRESS_AMOUNT).contains(&units) {
            // -0.0 passes the range check; keep the wire form plain.
            Ok(ProgressAmount(units.abs()))
        } else {
            Err(format!(
                "{units} is not a number of units from 0 to {MAX_PROGRESS_AMOUNT:e}"
            ))
        }
    }
}

impl From<ProgressAmount> for f64 {
    fn from(amount: ProgressAmount) -> f64 {
        amount.0
    }
}

/// `progress`: work a workload did on a component since its previous report, added to
/// the component's progress counter at the next tick (needs `progress:<component>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressRequest {
    pub component: ComponentName,
    pub amount: ProgressAmount,
}

/// A request of any type.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Hello(Hello),
    Signal(SignalRequest),
    Order(OrderRequestBody),
    Cancel(CancelRequest),
    Query(QueryRequest),
    Subscribe(TopicRequest),
    Unsubscribe(TopicRequest),
    Progress(ProgressRequest),
}

impl Request {
    pub fn request_type(&self) -> RequestType {
        match self {
            Request::Hello(_) => RequestType::Hello,
            Request::Signal(_) => RequestType::Signal,
            Request::Order(_) => RequestType::Order,
            Request::Cancel(_) => RequestType::Cancel,
            Request::Query(_) => RequestType::Query,
            Request::Subscribe(_) => RequestType::Subscribe,
            Request::Unsubscribe(_) => RequestType::Unsubscribe,
            Request::Progress(_) => RequestType::Progress,
        }
    }

    /// A `query` with no parameters.
    pub fn query(query: QueryName) -> Request {
        Request::Query(QueryRequest::new(query))
    }

    /// Appends this request as one frame with the given id.
    pub fn encode(&self, id: u64, out: &mut Vec<u8>) -> Result<(), crate::FrameError> {
        fn framed<T: Serialize>(
            id: u64,
            kind: RequestType,
            body: &T,
            out: &mut Vec<u8>,
        ) -> Result<(), crate::FrameError> {
            crate::encode_frame(
                &Envelope {
                    id,
                    kind: kind.as_str(),
                    body,
                },
                out,
            )
        }
        let kind = self.request_type();
        match self {
            Request::Hello(body) => framed(id, kind, body, out),
            Request::Signal(body) => framed(id, kind, body, out),
            Request::Order(body) => framed(id, kind, body, out),
            Request::Cancel(body) => framed(id, kind, body, out),
            Request::Query(body) => framed(id, kind, body, out),
            Request::Subscribe(body) | Request::Unsubscribe(body) => framed(id, kind, body, out),
            Request::Progress(body) => framed(id, kind, body, out),
        }
    }
}

/// A request as it goes on the wire: `id`, `type`, then the body's fields.
#[derive(Serialize)]
struct Envelope<'a, T> {
    id: u64,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

/// `id` and `type`, read before the rest of a request.
#[derive(Deserialize)]
struct RawHead<'a> {
    #[serde(default)]
    id: Option<u64>,
    #[serde(rename = "type", default, borrow)]
    kind: Option<&'a str>,
}

/// A request that could not be decoded: the error reply to send, with the request's id
/// when it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub id: Option<u64>,
    pub error: ErrorBody,
}

/// The head of a request whose structure is sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead {
    pub id: u64,
    pub kind: RequestType,
}

/// The request's `id`, when it can be read, however unsound the rest of `body` is: an
/// error reply echoes it (`id` is nil only when it cannot be read).
pub fn request_id(body: &[u8]) -> Option<u64> {
    crate::structure::top_level_u64(body, "id")
}

/// Checks the structure of `body` and reads its `id` and `type`.
pub fn decode_head(body: &[u8]) -> Result<RequestHead, RequestError> {
    // The structure or the head is unsound, but the id may still be readable.
    let unsound = |error: ErrorBody| RequestError {
        id: request_id(body),
        error,
    };
    check_structure(body, MAX_DEPTH).map_err(|error| {
        unsound(match error {
            StructureError::TooDeep { .. } => ErrorBody::new(ErrorCode::TooDeep, error.to_string()),
            _ => ErrorBody::new(
                ErrorCode::MalformedFrame,
                format!("not one MessagePack value: {error}"),
            ),
        })
    })?;
    let head: RawHead<'_> = decode_fields(body).map_err(unsound)?;
    let Some(id) = head.id else {
        return Err(unsound(ErrorBody::new(
            ErrorCode::InvalidRequest,
            "missing field `id` (an unsigned integer)",
        )));
    };
    let with_id = |error: ErrorBody| RequestError {
        id: Some(id),
        error,
    };
    let Some(name) = head.kind else {
        return Err(with_id(ErrorBody::new(
            ErrorCode::InvalidRequest,
            "missing field `type`",
        )));
    };
    let kind = RequestType::parse(name).ok_or_else(|| {
        with_id(ErrorBody::new(
            ErrorCode::UnknownType,
            format!(
                "unknown request type `{}` (expected hello, signal, order, cancel, query, \
                 subscribe, unsubscribe or progress)",
                name.escape_debug()
            ),
        ))
    })?;
    Ok(RequestHead { id, kind })
}

/// Reads the fields of a request whose head `decode_head` accepted.
pub fn decode_body(head: RequestHead, body: &[u8]) -> Result<Request, RequestError> {
    let fields = || -> Result<Request, ErrorBody> {
        Ok(match head.kind {
            RequestType::Hello => Request::Hello(decode_fields(body)?),
            RequestType::Signal => Request::Signal(decode_fields(body)?),
            RequestType::Order => Request::Order(decode_fields(body)?),
            RequestType::Cancel => Request::Cancel(decode_fields(body)?),
            RequestType::Query => Request::Query(decode_fields(body)?),
            RequestType::Subscribe => Request::Subscribe(decode_fields(body)?),
            RequestType::Unsubscribe => Request::Unsubscribe(decode_fields(body)?),
            RequestType::Progress => Request::Progress(decode_fields(body)?),
        })
    };
    fields().map_err(|error| RequestError {
        id: Some(head.id),
        error,
    })
}

/// A whole request: structure, head, then fields.
pub fn decode_request(body: &[u8]) -> Result<(u64, Request), RequestError> {
    let head = decode_head(body)?;
    decode_body(head, body).map(|request| (head.id, request))
}

/// Decodes a map whose structure was checked; the error names the field at fault.
fn decode_fields<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, ErrorBody> {
    let mut deserializer = rmp_serde::Deserializer::from_read_ref(body).with_human_readable();
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = if path == "." || path.is_empty() {
            format!("not a request map: {inner}")
        } else {
            format!("field `{path}`: {inner}")
        };
        ErrorBody::new(ErrorCode::InvalidRequest, message)
    })
}

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

/// A server frame or result a client could not make sense of, or an error reply.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("server frame: {0}")]
    Malformed(String),
    #[error("server error {0}")]
    Server(ErrorBody),
}

/// Through bytes: `rmpv`'s own serde bridge does not read enums written as strings.
fn from_value<T: DeserializeOwned>(value: rmpv::Value) -> Result<T, DecodeError> {
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

    fn body(request: &Request, id: u64) -> Vec<u8> {
        let mut out = Vec::new();
        request.encode(id, &mut out).unwrap();
        out.split_off(4)
    }

    #[test]
    fn requests_round_trip() {
        let requests = [
            Request::Hello(Hello {
                protocol_version: PROTOCOL_VERSION,
                client: "game".into(),
                token: "secret".into(),
            }),
            Request::Signal(SignalRequest {
                kind: SignalKind::new("game_started").unwrap(),
                domain: Domain::Performance,
                strength: Strength::try_from(0.9).unwrap(),
                ttl_ticks: Some(20),
            }),
            Request::Order(OrderRequestBody {
                resource: Resource::GpuMemoryMb,
                side: Side::Bid,
                price: Price(50),
                quantity: Quantity(512),
                time_in_force: OrderKind::Limit,
                expires_after_ticks: Some(10),
            }),
            Request::Cancel(CancelRequest { order: OrderId(3) }),
            Request::Query(QueryRequest {
                resource: Some(Resource::PowerBudgetMw),
                levels: Some(5),
                ..QueryRequest::new(QueryName::Book)
            }),
            Request::Query(QueryRequest {
                since_tick: Some(Tick(40)),
                correlation: Some(CorrelationId::from_parts(1, 2)),
                vetoes_only: Some(true),
                limit: Some(20),
                ..QueryRequest::new(QueryName::Decisions)
            }),
            Request::Subscribe(TopicRequest {
                topic: Topic::Fills,
            }),
            Request::Unsubscribe(TopicRequest {
                topic: Topic::Vetoes,
            }),
            Request::Progress(ProgressRequest {
                component: ComponentName::new("gpu0").unwrap(),
                amount: ProgressAmount::try_from(12.5).unwrap(),
            }),
        ];
        for (id, request) in requests.into_iter().enumerate() {
            let bytes = body(&request, id as u64);
            assert_eq!(decode_request(&bytes), Ok((id as u64, request)));
        }
    }

    #[test]
    fn the_wire_form_is_a_plain_map() {
        let bytes = body(&Request::query(QueryName::Health), 7);
        let value = rmpv::decode::read_value(&mut bytes.as_slice()).unwrap();
        let map: Vec<(String, String)> = value
            .as_map()
            .unwrap()
            .iter()
            .map(|(key, value)| (key.as_str().unwrap().to_owned(), value.to_string()))
            .collect();
        assert!(map.contains(&("id".into(), "7".into())));
        assert!(map.contains(&("type".into(), "\"query\"".into())));
        assert!(map.contains(&("query".into(), "\"health\"".into())));
    }

    fn map(pairs: &[(&str, rmpv::Value)]) -> Vec<u8> {
        let value = rmpv::Value::Map(
            pairs
                .iter()
                .map(|(key, value)| (rmpv::Value::from(*key), value.clone()))
                .collect(),
        );
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &value).unwrap();
        bytes
    }

    fn code_of(bytes: &[u8]) -> (Option<u64>, ErrorCode) {
        let error = decode_request(bytes).unwrap_err();
        (error.id, error.error.code)
    }

    #[test]
    fn each_kind_of_bad_request_has_its_code() {
        assert_eq!(code_of(&[0xc1]), (None, ErrorCode::MalformedFrame));
        assert_eq!(code_of(b"hello"), (None, ErrorCode::MalformedFrame));
        let mut deep = vec![0x91; 40];
        deep.push(0);
        assert_eq!(code_of(&deep), (None, ErrorCode::TooDeep));
        assert_eq!(code_of(&[0x93, 1, 2, 3]), (None, ErrorCode::InvalidRequest));
        assert_eq!(
            code_of(&map(&[("type", "query".into())])),
            (None, ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code_of(&map(&[("id", 4.into()), ("type", "teleport".into())])),
            (Some(4), ErrorCode::UnknownType)
        );
        let wrong_type = map(&[
            ("id", 5.into()),
            ("type", "signal".into()),
            ("kind", "game_started".into()),
            ("domain", "performance".into()),
            ("strength", "very".into()),
        ]);
        let error = decode_request(&wrong_type).unwrap_err();
        assert_eq!(error.id, Some(5));
        assert_eq!(error.error.code, ErrorCode::InvalidRequest);
        assert!(error.error.message.contains("strength"), "{}", error.error);
        let out_of_range = map(&[
            ("id", 6.into()),
            ("type", "signal".into()),
            ("kind", "game_started".into()),
            ("domain", "performance".into()),
            ("strength", 3.5.into()),
        ]);
        assert_eq!(code_of(&out_of_range), (Some(6), ErrorCode::InvalidRequest));
    }

    #[test]
    fn progress_amounts_are_finite_non_negative_numbers_of_units() {
        let progress = |amount: rmpv::Value, component: &str| {
            map(&[
                ("id", 12.into()),
                ("type", "progress".into()),
                ("component", component.into()),
                ("amount", amount),
            ])
        };
        let (_, request) = decode_request(&progress(12.5.into(), "gpu0")).unwrap();
        let Request::Progress(report) = request else {
            panic!("not a progress request")
        };
        assert_eq!(report.amount.micro(), 12_500_000);
        assert_eq!(report.component.as_str(), "gpu0");
        let (_, request) = decode_request(&progress(3.into(), "cpu")).unwrap();
        assert!(matches!(request, Request::Progress(report) if report.amount.micro() == 3_000_000));
        for bad in [
            rmpv::Value::from(-1.0),
            rmpv::Value::from(-1),
            rmpv::Value::from(f64::NAN),
            rmpv::Value::from(f64::INFINITY),
            rmpv::Value::from(f64::NEG_INFINITY),
            rmpv::Value::from(2e12),
            rmpv::Value::from("12"),
            rmpv::Value::Nil,
        ] {
            let error = decode_request(&progress(bad.clone(), "gpu0")).unwrap_err();
            assert_eq!(error.id, Some(12), "{bad}");
            assert_eq!(error.error.code, ErrorCode::InvalidRequest, "{bad}");
            assert!(error.error.message.contains("amount"), "{}", error.error);
        }
        for bad in ["", "gpu 0", "gpu:0", &"g".repeat(65)] {
            let error = decode_request(&progress(1.0.into(), bad)).unwrap_err();
            assert_eq!(error.error.code, ErrorCode::InvalidRequest, "{bad}");
            assert!(error.error.message.contains("component"), "{}", error.error);
        }
        let missing = map(&[
            ("id", 13.into()),
            ("type", "progress".into()),
            ("component", "gpu0".into()),
        ]);
        let error = decode_request(&missing).unwrap_err();
        assert!(error.error.message.contains("amount"), "{}", error.error);
    }

    #[test]
    fn a_readable_id_survives_an_unsound_rest() {
        let mut deep = rmpv::Value::from(0);
        for _ in 0..20 {
            deep = rmpv::Value::Array(vec![deep]);
        }
        let too_deep = map(&[
            ("id", 8.into()),
            ("type", "query".into()),
            ("query", "health".into()),
            ("extra", deep),
        ]);
        assert_eq!(code_of(&too_deep), (Some(8), ErrorCode::TooDeep));
        let mut trailing = map(&[("id", 9.into()), ("type", "query".into())]);
        trailing.push(0x01);
        assert_eq!(code_of(&trailing), (Some(9), ErrorCode::MalformedFrame));
        let mut bad_marker = map(&[("id", 10.into()), ("type", "query".into())]);
        bad_marker[0] += 1;
        bad_marker.extend([0xa1, b'x', 0xc1]);
        assert_eq!(code_of(&bad_marker), (Some(10), ErrorCode::MalformedFrame));
        let mistyped_type = map(&[("id", 11.into()), ("type", 3.into())]);
        assert_eq!(
            code_of(&mistyped_type),
            (Some(11), ErrorCode::InvalidRequest)
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let bytes = map(&[
            ("id", 1.into()),
            ("type", "query".into()),
            ("query", "health".into()),
            ("since_version_2", true.into()),
        ]);
        assert_eq!(
            decode_request(&bytes),
            Ok((1, Request::query(QueryName::Health)))
        );
    }

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

    /// The stable-toolchain stand-in for the cargo-fuzz target: random bytes, and valid
    /// requests with bytes flipped, cut or appended, never panic the decoder, and
    /// whatever decodes re-encodes to the same request.
    mod decoder_properties {
        use proptest::prelude::*;

        use super::*;

        fn valid_bodies() -> Vec<Vec<u8>> {
            let requests = [
                Request::query(QueryName::Health),
                Request::Signal(SignalRequest {
                    kind: SignalKind::new("game_started").unwrap(),
                    domain: Domain::Performance,
                    strength: Strength::try_from(0.5).unwrap(),
                    ttl_ticks: Some(3),
                }),
                Request::Order(OrderRequestBody {
                    resource: Resource::PowerBudgetMw,
                    side: Side::Ask,
                    price: Price(9),
                    quantity: Quantity(1000),
                    time_in_force: OrderKind::Ioc,
                    expires_after_ticks: None,
                }),
                Request::Hello(Hello {
                    protocol_version: 1,
                    client: "c".into(),
                    token: "t".into(),
                }),
                Request::Progress(ProgressRequest {
                    component: ComponentName::new("gpu0").unwrap(),
                    amount: ProgressAmount::try_from(0.25).unwrap(),
                }),
            ];
            requests.iter().map(|request| body(request, 3)).collect()
        }

        fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
            if let Ok((id, request)) = decode_request(bytes) {
                let again = body(&request, id);
                prop_assert_eq!(decode_request(&again), Ok((id, request)));
            }
            let mut rest = bytes;
            while let Ok(Some(total)) = crate::split_frame(rest, 1024) {
                let _ = decode_request(&rest[4..total]);
                rest = &rest[total..];
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2_000))]

            #[test]
            fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                check(&bytes)?;
            }

            #[test]
            fn mutated_requests(
                which in 0usize..5,
                edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
                cut in any::<Option<usize>>(),
            ) {
                let mut bytes = valid_bodies().swap_remove(which);
                for (at, value) in edits {
                    let at = at % (bytes.len() + 1);
                    if at == bytes.len() {
                        bytes.push(value);
                    } else {
                        bytes[at] = value;
                    }
                }
                if let Some(cut) = cut {
                    bytes.truncate(cut % (bytes.len() + 1));
                }
                check(&bytes)?;
            }
        }
    }

    #[test]
    fn error_codes_are_stable_strings() {
        let bytes = rmp_serde::to_vec_named(&ErrorCode::RateLimited).unwrap();
        assert_eq!(bytes[1..], *b"rate_limited");
        let unknown: ErrorCode = from_value(rmpv::Value::from("brand_new")).unwrap();
        assert_eq!(unknown, ErrorCode::Unknown);
    }
}
