//! Bad input to the HTTP API, one test per kind: each gets a JSON error with the
//! protocol's code and the right status (or, for a client that never finishes its
//! request head, a closed connection), and the daemon goes on serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http_support;

use std::time::Duration;

use http_support::{Daemon, GAME, set, write_config};

/// A daemon whose bodies are at most 1 KiB and whose clients have 0.5 s for a head.
fn daemon(dir: &std::path::Path) -> Daemon {
    Daemon::start(&write_config(dir, |table| {
        set(table, "http", "max_body_bytes", 1024);
        set(table, "http", "header_timeout_s", 0.5);
    }))
}

const SIGNAL: &str = r#"{"kind": "game_started", "domain": "performance", "strength": 0.5}"#;

/// The daemon still answers a good request on a fresh connection.
fn still_serves(daemon: &Daemon) {
    let response = daemon.client().get("/v1/telemetry", Some(GAME));
    assert_eq!(response.status, 200, "{}", response.text());
}

#[test]
fn a_body_over_the_limit_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon(dir.path());
    let mut http = daemon.client();
    let padding = " ".repeat(2048);
    let body = format!("{SIGNAL}{padding}");
    let response = http.send("POST", "/v1/signals", Some(GAME), Some(&body));
    assert_eq!(
        (response.status, response.code().as_str()),
        (413, "frame_too_large")
    );
    // Chunked, with no length to check first: cut off at the limit while reading.
    let mut http = daemon.client();
    let chunk = "x".repeat(600);
    let request = format!(
        "POST /v1/signals HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {GAME}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len(),
        chunk.len()
    );
    http.write_raw(request.as_bytes());
    let response = http.read_response().unwrap();
    assert_eq!(
        (response.status, response.code().as_str()),
        (413, "frame_too_large")
    );
    still_serves(&daemon);
}

#[test]
fn a_body_that_is_not_json_or_not_the_right_shape_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon(dir.path());
    let mut http = daemon.client();
    let response = http.send("POST", "/v1/signals", Some(GAME), Some("{\"kind\": "));
    assert_eq!(
        (response.status, response.code().as_str()),
        (400, "malformed_frame")
    );
    let response = http.send(
        "POST",
        "/v1/signals",
        Some(GAME),
        Some(r#"{"kind": "game_started", "domain": "performance", "strength": 3}"#),
    );
    assert_eq!(
        (response.status, response.code().as_str()),
        (400, "invalid_request")
    );
    assert!(response.text().contains("strength"), "{}", response.text());
    let response = http.send(
        "POST",
        "/v1/orders",
        Some(GAME),
        Some(r#"{"resource": "watts", "side": "bid", "price": 1, "quantity": 1}"#),
    );
    assert_eq!(response.code(), "invalid_request");
    assert!(response.text().contains("resource"), "{}", response.text());
    // The same connection goes on.
    assert_eq!(http.get("/v1/telemetry", Some(GAME)).status, 200);
}

#[test]
fn a_body_of_another_content_type_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon(dir.path());
    let mut http = daemon.client();
    let request = format!(
        "POST /v1/signals HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {GAME}\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{SIGNAL}",
        SIGNAL.len()
    );
    http.write_raw(request.as_bytes());
    let response = http.read_response().unwrap();
    assert_eq!(
        (response.status, response.code().as_str()),
        (415, "invalid_request")
    );
    assert_eq!(http.get("/v1/telemetry", Some(GAME)).status, 200);
}

#[test]
fn the_third_bad_token_on_a_connection_closes_it() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon(dir.path());
    let mut http = daemon.client();
    let missing = http.get("/v1/telemetry", None);
    assert_eq!(
        (missing.status, missing.code().as_str()),
        (401, "not_authenticated")
    );
    assert!(
        missing
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    for attempt in 1..=3 {
        let response = http.get("/v1/telemetry", Some("not-a-token-at-all"));
        assert_eq!(
            (response.status, response.code().as_str()),
            (401, "unauthorized")
        );
        let closes = response.header("connection") == Some("close");
        assert_eq!(closes, attempt == 3, "attempt {attempt}");
    }
    assert!(http.closed_within(Duration::from_secs(5)));
    // A scheme other than Bearer is a bad token too.
    let mut http = daemon.client();
    let request =
        format!("GET /v1/telemetry HTTP/1.1\r\nHost: g\r\nAuthorization: Basic {GAME}\r\n\r\n");
    http.write_raw(request.as_bytes());
    assert_eq!(http.read_response().unwrap().code(), "unauthorized");
    still_serves(&daemon);
}

#[test]
fn unknown_routes_methods_and_parameters_get_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon(dir.path());
    let mut http = daemon.client();
    let response = http.get("/v2/everything", Some(GAME));
    assert_eq!(
        (response.status, response.code().as_str()),
        (404, "unknown_type")
    );
    let response = http.send("PUT", "/v1/telemetry", Some(GAME), Some("{}"));
    assert_eq!(
        (response.status, response.code().as_str()),
        (405, "unknown_type")
    );
    for path in [
        "/v1/decisions?limit=lots",
        "/v1/decisions?limit=0",
        "/v1/decisions?colour=red",
        "/v1/book/watts",
        "/v1/book/power_budget_mw?levels=1000",
        "/v1/allocations?resource=",
    ] {
        let response = http.get(path, Some(GAME));
        assert_eq!(
            (response.status, response.code().as_str()),
            (400, "invalid_request"),
            "{path}: {}",
            response.text()
        );
    }
    let response = http.send("DELETE", "/v1/orders/minus-one", Some(GAME), None);
    assert_eq!(response.code(), "invalid_request");
}

#[test]
fn a_client_that_never_finishes_its_head_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon(dir.path());
    let mut http = daemon.client();
    http.write_raw(b"GET /v1/telemetry HTTP/1.1\r\nHost: g\r\nX-Slow: ");
    // One byte now and then does not extend the head's time.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(150));
        http.write_raw(b"a");
    }
    assert!(http.closed_within(Duration::from_secs(5)));
    // A keep-alive connection left idle after a request is closed the same way.
    let mut idle = daemon.client();
    assert_eq!(idle.get("/health/live", None).status, 200);
    assert!(idle.closed_within(Duration::from_secs(5)));
    still_serves(&daemon);
}

#[test]
fn a_body_that_stalls_gets_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = daemon(dir.path());
    let mut http = daemon.client();
    let request = format!(
        "POST /v1/signals HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {GAME}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"kind\""
    );
    http.write_raw(request.as_bytes());
    let response = http.read_response().unwrap();
    assert_eq!(
        (response.status, response.code().as_str()),
        (408, "idle_timeout")
    );
    still_serves(&daemon);
}

#[test]
fn a_client_over_its_rate_is_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&write_config(dir.path(), |table| {
        set(table, "ingress", "rate_limit_per_s", 1);
        set(table, "ingress", "rate_burst", 5);
    }));
    let mut http = daemon.client();
    let responses: Vec<_> = (0..10)
        .map(|_| http.get("/v1/telemetry", Some(GAME)))
        .collect();
    let statuses: Vec<u16> = responses.iter().map(|response| response.status).collect();
    assert!(
        statuses[..5].iter().all(|status| *status == 200),
        "{statuses:?}"
    );
    // One token a second refills: a slow machine may admit one or two more.
    let limited = responses
        .iter()
        .find(|response| response.status == 429)
        .unwrap_or_else(|| panic!("none limited: {statuses:?}"));
    assert_eq!(limited.code(), "rate_limited");
    // Health and metrics need no session, so no rate.
    assert_eq!(http.get("/health/live", None).status, 200);
}
