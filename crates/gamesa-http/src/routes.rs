//! The route table and its handlers. Every `/v1` route but the OpenAPI document is a
//! protocol request (`docs/protocol.md`) with the same field names, authenticated by
//! a bearer token and carried out by [`gamesa_ingress::dispatch`].

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Extension, Router,
    extract::{Path, Query, Request as HttpRequest, State, rejection::QueryRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{MethodRouter, delete, get, post},
};
use gamesa_ingress::{IngressHub, dispatch, dispatch::Carried};
use gamesa_proto::{CorrelationId, OrderId, Resource, Tick};
use gamesa_telemetry::{PrometheusReader, prometheus::CONTENT_TYPE as PROMETHEUS_TEXT};
use gamesa_wire::{
    CancelRequest, ErrorBody, ErrorCode, OrderRequestBody, QueryName, QueryRequest, Request,
    SignalRequest,
};
use http_body_util::BodyExt as _;
use serde::{Deserialize, de::DeserializeOwned};
use tokio::sync::mpsc;

use super::{
    auth::{ClientSession, ConnectionState, Sessions, refused},
    reply::{JsonReply, failure, failure_with, json},
};

/// The OpenAPI 3.1 document of [`routes`], served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// What every handler shares.
#[derive(Debug)]
pub struct App {
    pub hub: Arc<IngressHub>,
    pub metrics: Option<PrometheusReader>,
    pub sessions: Sessions,
    pub max_body_bytes: usize,
    /// How long a body may take to arrive once its head has.
    pub body_timeout: Duration,
    /// A node whose last tick is older than this is not ready.
    pub stale_after: Duration,
    /// Request ids, for the `ingress.request` spans.
    pub next_id: AtomicU64,
}

/// Every route with its handler: the router is built from this table, and
/// [`routes`] lists it for the OpenAPI document's test, so the two cannot drift.
fn table() -> Vec<(&'static str, &'static str, MethodRouter<Arc<App>>)> {
    vec![
        ("GET", "/health/live", get(live)),
        ("GET", "/health/ready", get(ready)),
        ("GET", "/metrics", get(metrics)),
        ("GET", "/v1/openapi.json", get(openapi)),
        ("GET", "/v1/telemetry", get(telemetry)),
        ("GET", "/v1/book/{resource}", get(book)),
        ("GET", "/v1/allocations", get(allocations)),
        ("GET", "/v1/accounts/{name}", get(account)),
        ("GET", "/v1/agents", get(agents)),
        ("GET", "/v1/decisions", get(decisions)),
        ("GET", "/v1/experiences", get(experiences)),
        ("GET", "/v1/why", get(why)),
        ("GET", "/v1/fleet", get(fleet)),
        ("POST", "/v1/signals", post(signal)),
        ("POST", "/v1/orders", post(order)),
        ("DELETE", "/v1/orders/{id}", delete(cancel)),
    ]
}

/// Every route, as `(method, path)` with axum's `{parameter}` syntax: the OpenAPI
/// document lists exactly these (a test checks both ways).
pub fn routes() -> Vec<(&'static str, &'static str)> {
    table()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

/// The router over `app`; the server adds each connection's [`ConnectionState`].
pub fn router(app: Arc<App>) -> Router {
    table()
        .into_iter()
        .fold(Router::new(), |router, (_, path, handler)| {
            router.route(path, handler)
        })
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(app)
}

type Shared = State<Arc<App>>;
type Connection = Extension<Arc<ConnectionState>>;

fn invalid(message: impl Into<String>) -> Response {
    failure(ErrorBody::new(ErrorCode::InvalidRequest, message))
}

async fn unknown_route(request: HttpRequest) -> Response {
    failure(ErrorBody::new(
        ErrorCode::UnknownType,
        format!(
            "no route {} {}; the routes are in /v1/openapi.json",
            request.method(),
            request.uri().path()
        ),
    ))
}

async fn wrong_method(request: HttpRequest) -> Response {
    failure_with(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorBody::new(
            ErrorCode::UnknownType,
            format!(
                "{} is not served on {}; the routes are in /v1/openapi.json",
                request.method(),
                request.uri().path()
            ),
        ),
    )
}

async fn live() -> Response {
    json(StatusCode::OK, &serde_json::json!({ "status": "live" }))
}

/// Ready: ticking (the last tick within `stale_after`) and no agent isolated.
async fn ready(State(app): Shared) -> Response {
    let snapshot = app.hub.snapshot();
    let mut reasons = Vec::new();
    match app.hub.since_last_tick() {
        None => reasons.push("no tick has run yet".to_owned()),
        Some(since) if since > app.stale_after => reasons.push(format!(
            "the last tick ended {:.1} s ago (ready within {:.1} s)",
            since.as_secs_f64(),
            app.stale_after.as_secs_f64()
        )),
        Some(_) => {}
    }
    for agent in &snapshot.isolated {
        reasons.push(format!("agent `{}` is isolated", app.hub.name_of(*agent)));
    }
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(
        status,
        &serde_json::json!({
            "status": if reasons.is_empty() { "ready" } else { "not_ready" },
            "tick": snapshot.tick,
            "reasons": reasons,
        }),
    )
}

async fn metrics(State(app): Shared) -> Response {
    let Some(reader) = &app.metrics else {
        return failure(ErrorBody::new(
            ErrorCode::Unavailable,
            "metrics are not collected by this server",
        ));
    };
    match reader.scrape() {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(PROMETHEUS_TEXT),
            )],
            text,
        )
            .into_response(),
        Err(error) => failure(ErrorBody::new(ErrorCode::Internal, error.to_string())),
    }
}

async fn openapi() -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

async fn telemetry(
    State(app): Shared,
    Extension(connection): Connection,
    headers: HeaderMap,
) -> Response {
    let request = Ok(Request::query(QueryName::Telemetry));
    authorized(&app, &connection, &headers, request).await
}

async fn fleet(
    State(app): Shared,
    Extension(connection): Connection,
    headers: HeaderMap,
) -> Response {
    let request = Ok(Request::query(QueryName::Fleet));
    authorized(&app, &connection, &headers, request).await
}

async fn agents(
    State(app): Shared,
    Extension(connection): Connection,
    headers: HeaderMap,
) -> Response {
    let request = Ok(Request::query(QueryName::Agents));
    authorized(&app, &connection, &headers, request).await
}

/// A query string as `T`, or the error naming what is wrong with it.
type Params<T> = Result<Query<T>, QueryRejection>;

fn params<T>(params: Params<T>) -> Result<T, ErrorBody> {
    params
        .map(|Query(params)| params)
        .map_err(|rejection| ErrorBody::new(ErrorCode::InvalidRequest, rejection.body_text()))
}

fn resource_named(name: &str) -> Result<Resource, ErrorBody> {
    name.parse::<Resource>().map_err(|error| {
        ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!("resource `{name}`: {error}"),
        )
    })
}

fn maybe_resource(name: Option<&str>) -> Result<Option<Resource>, ErrorBody> {
    name.map(resource_named).transpose()
}

fn correlation(text: Option<&str>) -> Result<Option<CorrelationId>, ErrorBody> {
    text.map(str::parse::<CorrelationId>)
        .transpose()
        .map_err(|error| {
            ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!("parameter `correlation`: {error}"),
            )
        })
}

fn query(query: QueryRequest) -> Result<Request, ErrorBody> {
    Ok(Request::Query(query))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BookParams {
    levels: Option<u32>,
}

async fn book(
    State(app): Shared,
    Extension(connection): Connection,
    headers: HeaderMap,
    Path(resource): Path<String>,
    given: Params<BookParams>,
) -> Response {
    let request = (|| {
        query(QueryRequest {
            resource: Some(resource_named(&resource)?),
            levels: params(given)?.levels,
            ..QueryRequest::new(QueryName::Book)
        })
    })();
    authorized(&app, &connection, &headers, request).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllocationsParams {
    resource: Option<String>,
}

async fn allocations(
    State(app): Shared,
    Extension(connection): Connection,
    headers: HeaderMap,
    given: Params<AllocationsParams>,
) -> Response {
    let request = (|| {
        query(QueryRequest {
            resource: maybe_resource(params(given)?.resource.as_deref())?,
            ..QueryRequest::new(QueryName::Allocations)
        })
    })();
    authorized(&app, &connection, &headers, request).await
}

async fn account(
    State(app): Shared,
    Extension(connection): Connection,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let request = query(QueryRequest {
        agent: Some(name),
        ..QueryRequest::new(QueryName::Account)
    });
    authorized(&app, &connection, &headers, request).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionsParams {
    since_tick: Option<u64>,
    resource: Option<String>,
    vetoes_only: Option<bool>,
    limit: Option<u32>,
    correlation: Option<String>,
}

async fn decisions(
    State(app): Shared,
    Extension(connection): Connection,
    headers: HeaderMap,
    given: Params<DecisionsParams>,
) -> Response {
    let request = (|| {
        let given = params(given)?;
        let correlation = correlation(given.correlation.as_deref())?;
        query(QueryRequest {
            since_tick: given.since_tick.map(Tick),
            resource: maybe_resource(given.resource.as_deref())?,
            vetoes_only: given.vetoes_only,
            limit: given.limit,
            correlation,
            ..QueryRequest::new(QueryName::Decisions)
        })
    })();
    authorized(&app, &connection, &headers, request).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExperiencesParams {
    agent: Option<String>,
    limit: Option<u32>,
}

async fn experiences(
    State(app): Shared,
    Extension(connection): Connection,
    headers: HeaderMap,
    given: Params<ExperiencesParams>,
) -> Response {
    let request = params(given).and_then(|given| {
        query(QueryRequest {
            agent: given.agent,
            limit: given.limit,
            ..QueryRequest::new(QueryName::Experiences)
        })
    });
    authorized(&app, &connection, &headers, request).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WhyParams {
    component: String,
    at_ms: Option<u64>,
    tick: Option<u64>,
    run: Option<i64>,
    correlation: Option<String>,
}

async fn why(
    State(app): Shared,
    Extension(connection): Connection,
    headers: HeaderMap,
    given: Params<WhyParams>,
) -> Response {
    let request = (|| {
        let given = params(given)?;
        query(QueryRequest {
            component: Some(given.component),
            at_ms: given.at_ms,
            tick: given.tick.map(Tick),
            run: given.run,
            correlation: correlation(given.correlation.as_deref())?,
            ..QueryRequest::new(QueryName::Why)
        })
    })();
    authorized(&app, &connection, &headers, request).await
}

async fn signal(
    State(app): Shared,
    Extension(connection): Connection,
    request: HttpRequest,
) -> Response {
    let headers = request.headers().clone();
    let signal: SignalRequest = match read_json(&app, request).await {
        Ok(signal) => signal,
        Err(response) => return response,
    };
    if signal.hold {
        return invalid(
            "field `hold`: a held signal lives as long as its connection; HTTP has none to \
             hold it, so send it over the socket protocol",
        );
    }
    authorized(&app, &connection, &headers, Ok(Request::Signal(signal))).await
}

async fn order(
    State(app): Shared,
    Extension(connection): Connection,
    request: HttpRequest,
) -> Response {
    let headers = request.headers().clone();
    let order: OrderRequestBody = match read_json(&app, request).await {
        Ok(order) => order,
        Err(response) => return response,
    };
    authorized(&app, &connection, &headers, Ok(Request::Order(order))).await
}

async fn cancel(
    State(app): Shared,
    Extension(connection): Connection,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Ok(order) = id.parse::<u64>() else {
        return invalid(format!("`{id}` is not an order id (a whole number)"));
    };
    let request = Ok(Request::Cancel(CancelRequest {
        order: OrderId(order),
    }));
    authorized(&app, &connection, &headers, request).await
}

/// Authenticates the caller, then checks and carries out `request` as the socket
/// would: rate limit, session, effect check and audit, then the hub. A request that
/// could not be built from the route says why, to an authenticated caller only.
async fn authorized(
    app: &App,
    connection: &ConnectionState,
    headers: &HeaderMap,
    request: Result<Request, ErrorBody>,
) -> Response {
    let entry = match app.sessions.authenticate(&app.hub, connection, headers) {
        Ok(entry) => entry,
        Err(refusal) => return refused(refusal),
    };
    match request {
        Ok(request) => perform(app, &entry, request).await,
        Err(error) => failure(error),
    }
}

async fn perform(app: &App, entry: &Mutex<ClientSession>, request: Request) -> Response {
    let id = app.next_id.fetch_add(1, Ordering::Relaxed);
    app.hub.counters.requests.fetch_add(1, Ordering::Relaxed);
    let client = {
        let mut guard = entry.lock().unwrap_or_else(PoisonError::into_inner);
        let ClientSession {
            session,
            roster_seen,
        } = &mut *guard;
        if !session.admit_rate(Instant::now()) {
            let settings = app.hub.settings();
            return failure(ErrorBody::new(
                ErrorCode::RateLimited,
                format!(
                    "over {} requests per second (burst {})",
                    settings.rate_limit_per_s, settings.rate_burst
                ),
            ));
        }
        match dispatch::authorize(&app.hub, session, roster_seen, &request) {
            Ok(client) => client,
            Err(error) => return failure(error),
        }
    };
    let (sender, mut deferred) = mpsc::unbounded_channel();
    let mut reply = JsonReply::default();
    match dispatch::carry_out(
        &app.hub,
        client.as_ref(),
        (id, request),
        &sender,
        &mut reply,
    ) {
        Carried::Answered => reply.response.unwrap_or_else(|| {
            failure(ErrorBody::new(
                ErrorCode::Internal,
                "the request got no answer",
            ))
        }),
        Carried::AfterTick => {
            // The hub answers every order and cancel exactly once: after its tick, or
            // `shutting_down` when the runtime stops first.
            drop(sender);
            match deferred.recv().await {
                Some((_, Ok(settled))) => json(StatusCode::OK, &settled),
                Some((_, Err(error))) => failure(error),
                None => failure(ErrorBody::new(
                    ErrorCode::Internal,
                    "the runtime dropped the request without an answer",
                )),
            }
        }
        Carried::Door(_) => invalid("this request is not served over HTTP"),
    }
}

/// Reads a JSON body: `application/json`, at most `max_body_bytes`, arriving within
/// `body_timeout`, exactly one JSON value of `T`'s shape.
async fn read_json<T: DeserializeOwned>(app: &App, request: HttpRequest) -> Result<T, Response> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(failure_with(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorBody::new(
                ErrorCode::InvalidRequest,
                "send the body as `Content-Type: application/json`",
            ),
        ));
    }
    let too_large = || {
        failure(ErrorBody::new(
            ErrorCode::FrameTooLarge,
            format!("the body is over the {}-byte limit", app.max_body_bytes),
        ))
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > app.max_body_bytes as u64) {
        return Err(too_large());
    }
    let body = http_body_util::Limited::new(request.into_body(), app.max_body_bytes);
    let bytes = match tokio::time::timeout(app.body_timeout, body.collect()).await {
        Err(_) => {
            return Err(failure(ErrorBody::new(
                ErrorCode::IdleTimeout,
                format!(
                    "the body did not arrive within {:.1} s",
                    app.body_timeout.as_secs_f64()
                ),
            )));
        }
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            return Err(too_large());
        }
        Ok(Err(error)) => {
            return Err(failure(ErrorBody::new(
                ErrorCode::MalformedFrame,
                format!("reading the body: {error}"),
            )));
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    parse_json(&bytes).map_err(failure)
}

/// One JSON value of `T`'s shape: a syntax error is `malformed_frame`, a value of the
/// wrong shape `invalid_request` naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ErrorBody> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data if path == "." => {
                ErrorBody::new(ErrorCode::InvalidRequest, format!("the body: {inner}"))
            }
            serde_json::error::Category::Data => ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!("field `{path}`: {inner}"),
            ),
            _ => ErrorBody::new(
                ErrorCode::MalformedFrame,
                format!("the body is not one JSON value: {inner}"),
            ),
        }
    })?;
    deserializer.end().map_err(|error| {
        ErrorBody::new(
            ErrorCode::MalformedFrame,
            format!("the body is not one JSON value: {error}"),
        )
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_body_is_one_value_of_the_right_shape() {
        let signal: SignalRequest =
            parse_json(br#"{"kind": "game_started", "domain": "performance", "strength": 0.5}"#)
                .unwrap();
        assert_eq!(signal.kind.as_str(), "game_started");
        let error = parse_json::<SignalRequest>(b"{\"kind\": ").unwrap_err();
        assert_eq!(error.code, ErrorCode::MalformedFrame);
        let error = parse_json::<SignalRequest>(
            br#"{"kind": "game_started", "domain": "performance", "strength": 0.5} {}"#,
        )
        .unwrap_err();
        assert_eq!(error.code, ErrorCode::MalformedFrame, "{}", error.message);
        let error = parse_json::<SignalRequest>(
            br#"{"kind": "game_started", "domain": "performance", "strength": 7}"#,
        )
        .unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
        assert!(error.message.contains("strength"), "{}", error.message);
        let error = parse_json::<SignalRequest>(b"[1, 2]").unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let paths = document["paths"].as_object().unwrap();
        let mut documented = Vec::new();
        for (path, operations) in paths {
            for method in operations.as_object().unwrap().keys() {
                if ["get", "post", "delete", "put", "patch"].contains(&method.as_str()) {
                    documented.push((method.to_uppercase(), path.clone()));
                }
            }
        }
        documented.sort();
        let mut routed: Vec<(String, String)> = routes()
            .into_iter()
            .map(|(method, path)| (method.to_owned(), path.to_owned()))
            .collect();
        routed.sort();
        assert_eq!(documented, routed);
        assert!(
            document["openapi"].as_str().unwrap().starts_with("3.1"),
            "an OpenAPI 3.1 document"
        );
        let schemas = &document["components"]["schemas"];
        let names = |schema: &serde_json::Value| -> Vec<String> {
            schema["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|name| name.as_str().unwrap().to_owned())
                .collect()
        };
        let resources: Vec<String> = Resource::ALL
            .iter()
            .map(|resource| resource.as_str().to_owned())
            .collect();
        assert_eq!(names(&schemas["Resource"]), resources);
        let domains: Vec<String> = gamesa_proto::Domain::ALL
            .iter()
            .map(|domain| domain.as_str().to_owned())
            .collect();
        assert_eq!(
            names(&schemas["SignalRequest"]["properties"]["domain"]),
            domains
        );
    }
}
