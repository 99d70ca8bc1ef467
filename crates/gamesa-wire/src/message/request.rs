//! The requests: each type's fields, [`Request`] and its encoding, and the decoding of a
//! request in steps ([`decode_head`], [`decode_body`], or both in [`decode_request`]).

use std::fmt;

use gamesa_proto::{
    CorrelationId, Domain, OrderId, Price, Quantity, Resource, Side, SignalKind, Strength, Tick,
};
use serde::{Deserialize, Serialize};

use super::{ErrorBody, ErrorCode, MAX_DEPTH, RequestError, Topic, names::wire_names};
use crate::structure::{StructureError, check_structure};

/// The ttl of an injected signal when the request names none.
pub const DEFAULT_SIGNAL_TTL_TICKS: u32 = 10;
/// The most units of work one `progress` report may carry (10^12: the counter's
/// micro-units of it stay well inside a u64).
pub const MAX_PROGRESS_AMOUNT: f64 = 1e12;

wire_names! {
    /// The `type` of a request.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum RequestType {
        Hello = "hello",
        Signal = "signal",
        Order = "order",
        Cancel = "cancel",
        Query = "query",
        Subscribe = "subscribe",
        Unsubscribe = "unsubscribe",
        Progress = "progress",
        Attach = "attach",
        Intents = "intents",
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
    /// Hold the signal for the connection's lifetime instead: `ttl_ticks` is ignored,
    /// the signal stays live while the connection is open (which then never idles
    /// out), and it is released when the connection closes, however it closes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hold: bool,
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

wire_names! {
    /// What a `query` reads. Its wire name is the scope of the `query:<scope>` effect it
    /// needs (one of `QUERY_SCOPES`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum QueryName {
        Health = "health",
        Telemetry = "telemetry",
        Book = "book",
        Allocations = "allocations",
        Account = "account",
        Agents = "agents",
        /// The decision log: allocations and actuations with their rationale.
        Decisions = "decisions",
        /// The journal's experience store: power buyers' epochs (`docs/journal.md`).
        Experiences = "experiences",
        /// Why a component had the limit it had at a moment, from the journal
        /// (`gamesa why`, `docs/journal.md`).
        Why = "why",
        /// Fleet mode: the leader, the term, this node's lease, and on the leader every
        /// node's last order and grant (`docs/fleet.md`).
        Fleet = "fleet",
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
    /// `experiences`: only this agent's.
    #[serde(default)]
    pub agent: Option<String>,
    /// `book`: price levels per side, 1 to 100 (default 10).
    #[serde(default)]
    pub levels: Option<u32>,
    /// `decisions`: only those of this tick or later.
    #[serde(default)]
    pub since_tick: Option<Tick>,
    /// `decisions`: only those of the tick with this correlation id, or of a tick that
    /// took in the injected request with this one. `why`: the tick with this one.
    #[serde(default)]
    pub correlation: Option<CorrelationId>,
    /// `why`: the component (`gpu0`); required.
    #[serde(default)]
    pub component: Option<String>,
    /// `why`: the last journaled tick at or before this time, in ms since the Unix
    /// epoch.
    #[serde(default)]
    pub at_ms: Option<u64>,
    /// `why`: this tick of `run` (the latest run when `run` is absent).
    #[serde(default)]
    pub tick: Option<Tick>,
    /// `why`: the journal's run number, with `tick`.
    #[serde(default)]
    pub run: Option<i64>,
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
            component: None,
            at_ms: None,
            tick: None,
            run: None,
        }
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
/// `left`, when the workload knows its job's size, is the work the job still has to
/// do; the newest report's stands until another says otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressRequest {
    pub component: ComponentName,
    pub amount: ProgressAmount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left: Option<ProgressAmount>,
}

/// `attach`: this connection answers the turns of the external agent named `agent`
/// (`[[agents]] kind = "external"`), whose `client` in config must be the session's.
/// Its turns arrive as `turn` events; each is answered with `intents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachRequest {
    pub agent: String,
}

/// `intents`: an attached external agent's answer to its turn of `tick`, before that
/// turn's deadline. `agent` names it when the connection attached more than one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub tick: Tick,
    pub intents: Vec<gamesa_proto::Intent>,
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
    Attach(AttachRequest),
    Intents(IntentsRequest),
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
            Request::Attach(_) => RequestType::Attach,
            Request::Intents(_) => RequestType::Intents,
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
            Request::Attach(body) => framed(id, kind, body, out),
            Request::Intents(body) => framed(id, kind, body, out),
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
        let [others @ .., last] = RequestType::ALL.map(RequestType::as_str);
        with_id(ErrorBody::new(
            ErrorCode::UnknownType,
            format!(
                "unknown request type `{}` (expected {} or {last})",
                name.escape_debug(),
                others.join(", "),
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
            RequestType::Attach => Request::Attach(decode_fields(body)?),
            RequestType::Intents => Request::Intents(decode_fields(body)?),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::PROTOCOL_VERSION;

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
                hold: false,
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
            Request::Attach(AttachRequest {
                agent: "py-cores".into(),
            }),
            Request::Intents(IntentsRequest {
                agent: None,
                tick: Tick(9),
                intents: vec![
                    gamesa_proto::Intent::Cancel(OrderId(3)),
                    gamesa_proto::Intent::Place(gamesa_proto::OrderIntent {
                        resource: Resource::CpuCores,
                        side: Side::Ask,
                        price: Price(500),
                        quantity: Quantity(2),
                        time_in_force: gamesa_proto::TimeInForce::Limit {
                            expires_at: Some(Tick(9)),
                        },
                    }),
                ],
            }),
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
                left: None,
            }),
            Request::Progress(ProgressRequest {
                component: ComponentName::new("gpu0").unwrap(),
                amount: ProgressAmount::try_from(1.0).unwrap(),
                left: Some(ProgressAmount::try_from(99.0).unwrap()),
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
    fn an_unknown_type_lists_every_type() {
        let error = decode_request(&map(&[("id", 4.into()), ("type", "teleport".into())]))
            .unwrap_err()
            .error;
        assert_eq!(
            error.message,
            "unknown request type `teleport` (expected hello, signal, order, cancel, query, \
             subscribe, unsubscribe, progress, attach or intents)"
        );
    }

    #[test]
    fn query_names_are_the_query_scopes() {
        assert_eq!(
            QueryName::ALL.map(QueryName::as_str),
            gamesa_proto::QUERY_SCOPES
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
                    hold: false,
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
                    left: Some(ProgressAmount::try_from(3.0).unwrap()),
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
}
