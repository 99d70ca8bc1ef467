//! The HTTP API on a live `gamesa run`: every documented route is served, queries
//! answer what the socket answers, orders and cancels settle after their tick, and
//! the socket's effects and audit apply to HTTP clients too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http_support;

use gamesa_wire::{AgentsResult, Client, QueryName, Request};
use http_support::{Daemon, GAME, READER, TRADER, write_config};

fn daemon(dir: &std::path::Path) -> Daemon {
    Daemon::start(&write_config(dir, |_| {}))
}

#[test]
fn every_documented_route_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon(dir.path());
    let mut http = daemon.client();
    for (method, path) in gamesa_http::routes() {
        let concrete = path
            .replace("{resource}", "power_budget_mw")
            .replace("{name}", "game")
            .replace("{id}", "987654321")
            .replace("/v1/why", "/v1/why?component=gpu0&tick=0");
        let (token, body) = match (method, path) {
            ("POST", "/v1/signals") => (
                GAME,
                Some(r#"{"kind": "game_started", "domain": "performance", "strength": 0.5}"#),
            ),
            ("POST", "/v1/orders") => (
                TRADER,
                Some(
                    r#"{"resource": "power_budget_mw", "side": "bid", "price": 1, "quantity": 10, "time_in_force": "ioc"}"#,
                ),
            ),
            (_, path) if path.starts_with("/v1/orders") => (TRADER, None),
            _ => (GAME, None),
        };
        let response = http.send(method, &concrete, Some(token), body);
        let routed = !(response.status == 404 || response.status == 405)
            || response.code() != "unknown_type";
        assert!(routed, "{method} {concrete}: {}", response.text());
        let content_type = response.header("content-type").unwrap();
        if path == "/metrics" {
            assert!(content_type.starts_with("text/plain; version=0.0.4"));
        } else {
            assert_eq!(content_type, "application/json", "{method} {path}");
        }
        // Only a cancel of an order that does not exist, experiences with the journal
        // off, a why of a tick the journal has not committed yet, and the fleet of a
        // node not in fleet mode (tests/fleet_daemons.rs asks a fleet node) are not 200.
        match (method, path) {
            ("DELETE", _) => assert_eq!(response.code(), "unknown_order"),
            (_, "/v1/experiences") => {
                assert!(response.status == 200 || response.code() == "unavailable")
            }
            (_, "/v1/fleet") => assert_eq!(response.code(), "unavailable"),
            (_, "/v1/why") => {
                assert!(response.status == 200 || response.code() == "invalid_request")
            }
            _ => assert_eq!(response.status, 200, "{method} {path}: {}", response.text()),
        }
    }
    let document = http.get("/v1/openapi.json", None).json();
    assert_eq!(document["info"]["title"], "GAMESA HTTP API");
}

#[test]
fn queries_answer_what_the_socket_answers() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon(dir.path());
    let mut http = daemon.client();
    let mut socket = Client::connect_unix(&daemon.socket).unwrap();
    socket.hello("game", GAME).unwrap();
    let over_socket: AgentsResult = socket.call_as(&Request::query(QueryName::Agents)).unwrap();
    let over_http = http.get("/v1/agents", Some(GAME));
    assert_eq!(over_http.status, 200);
    assert_eq!(
        over_http.json(),
        serde_json::to_value(&over_socket).unwrap()
    );

    let telemetry = http.get("/v1/telemetry", Some(GAME)).json();
    assert!(telemetry["tick"].as_u64().is_some());
    let components = telemetry["frame"]["components"].as_array().unwrap();
    assert!(
        components.iter().any(|component| component["id"] == "gpu0"),
        "{telemetry}"
    );
    let book = http
        .get("/v1/book/power_budget_mw?levels=3", Some(GAME))
        .json();
    assert_eq!(book["resource"], "power_budget_mw");
    assert!(book["bids"].as_array().unwrap().len() <= 3);
    let account = http.get("/v1/accounts/trader", Some(GAME)).json();
    assert_eq!(account["name"], "trader");
    let decisions = http
        .get("/v1/decisions?vetoes_only=true&limit=5", Some(GAME))
        .json();
    assert!(decisions["decisions"].as_array().unwrap().len() <= 5);
    let ready = http.get("/health/ready", None);
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "ready");
    assert_eq!(http.get("/health/live", None).status, 200);
}

#[test]
fn an_order_rests_then_is_cancelled_after_its_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon(dir.path());
    let mut http = daemon.client();
    // A bid at one credit per mW rests: no agent sells power that cheaply.
    let placed = http.send(
        "POST",
        "/v1/orders",
        Some(TRADER),
        Some(r#"{"resource": "power_budget_mw", "side": "bid", "price": 1, "quantity": 1000}"#),
    );
    assert_eq!(placed.status, 200, "{}", placed.text());
    let placed = placed.json();
    assert_eq!(placed["resting"], 1000, "{placed}");
    let order = placed["order"].as_u64().unwrap();
    let cancelled = http.send("DELETE", &format!("/v1/orders/{order}"), Some(TRADER), None);
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    assert_eq!(cancelled.json()["cancelled"], 1000);
    assert!(cancelled.json()["tick"].as_u64() > placed["tick"].as_u64());
    let again = http.send("DELETE", &format!("/v1/orders/{order}"), Some(TRADER), None);
    assert_eq!(
        (again.status, again.code().as_str()),
        (404, "unknown_order")
    );
    // More than the trader's credits: the guardian's ledger refuses it.
    let too_dear = http.send(
        "POST",
        "/v1/orders",
        Some(TRADER),
        Some(r#"{"resource": "power_budget_mw", "side": "bid", "price": 1000000000, "quantity": 1000000000}"#),
    );
    assert_eq!(
        (too_dear.status, too_dear.code().as_str()),
        (409, "insufficient_credits"),
        "{}",
        too_dear.text()
    );
}

#[test]
fn effects_and_the_audit_log_are_the_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon(dir.path());
    let mut http = daemon.client();
    let sent = http.send(
        "POST",
        "/v1/signals",
        Some(GAME),
        Some(r#"{"kind": "game_started", "domain": "performance", "strength": 0.8, "ttl_ticks": 20}"#),
    );
    assert_eq!(sent.status, 200, "{}", sent.text());
    assert!(sent.json()["correlation"].as_str().is_some());
    let denied = http.send(
        "POST",
        "/v1/signals",
        Some(GAME),
        Some(r#"{"kind": "overheat", "domain": "safety", "strength": 1}"#),
    );
    assert_eq!((denied.status, denied.code().as_str()), (403, "forbidden"));
    assert!(denied.text().contains("signal:safety"), "{}", denied.text());
    let denied = http.get("/v1/telemetry", Some(READER));
    assert_eq!((denied.status, denied.code().as_str()), (403, "forbidden"));
    let ordered = http.send(
        "POST",
        "/v1/orders",
        Some(GAME),
        Some(r#"{"resource": "power_budget_mw", "side": "bid", "price": 1, "quantity": 1}"#),
    );
    assert_eq!(
        (ordered.status, ordered.code().as_str()),
        (403, "forbidden")
    );
    // The audit log names the client as the socket's does.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !daemon.logged(&[
        "ingress request denied: missing effect",
        "reader",
        "query:telemetry",
    ]) {
        assert!(std::time::Instant::now() < deadline, "no audit record");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(daemon.logged(&["missing effect", "game", "signal:safety"]));
    // A held signal needs a connection that stays open: only the socket has one.
    let held = http.send(
        "POST",
        "/v1/signals",
        Some(GAME),
        Some(r#"{"kind": "game_started", "domain": "performance", "strength": 1, "hold": true}"#),
    );
    assert_eq!(
        (held.status, held.code().as_str()),
        (400, "invalid_request")
    );
}

#[test]
fn why_reads_the_journal_as_the_cli_does() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon(dir.path());
    let mut http = daemon.client();
    // The journal commits a batch every 50 ticks or 5 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let over_http = loop {
        let response = http.get("/v1/why?component=gpu0&tick=5", Some(GAME));
        if response.status == 200 {
            break response.json();
        }
        assert_eq!(response.code(), "invalid_request", "{}", response.text());
        assert!(std::time::Instant::now() < deadline, "{}", response.text());
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(over_http["component"], "gpu0");
    assert_eq!(over_http["tick"], 5);
    assert!(
        over_http["reading"]["power_mw"].as_u64().is_some(),
        "{over_http}"
    );
    // The same query over the socket gives the same explanation.
    let mut socket = Client::connect_unix(&daemon.socket).unwrap();
    socket.hello("game", GAME).unwrap();
    let over_socket: gamesa_runtime::journal::why::Explanation = socket
        .call_as(&Request::Query(gamesa_wire::QueryRequest {
            component: Some("gpu0".into()),
            tick: Some(gamesa_proto::Tick(5)),
            ..gamesa_wire::QueryRequest::new(QueryName::Why)
        }))
        .unwrap();
    assert_eq!(over_http, serde_json::to_value(&over_socket).unwrap());
    for bad in [
        "/v1/why?tick=5",
        "/v1/why?component=gpu0",
        "/v1/why?component=gpu0&tick=5&at_ms=1",
        "/v1/why?component=gpu0&tick=99999999",
    ] {
        let response = http.get(bad, Some(GAME));
        assert_eq!(
            (response.status, response.code().as_str()),
            (400, "invalid_request"),
            "{bad}: {}",
            response.text()
        );
    }
}
