//! 50 clients × 2,000 requests on keep-alive connections to a live daemon, one in
//! five of them bad (an unknown route, no token, a body that is not JSON): every
//! request gets exactly one response, with the status its kind calls for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http_support;

use http_support::{Daemon, GAME, write_config};

const CLIENTS: usize = 50;
const REQUESTS: usize = 2_000;

#[test]
fn every_request_of_50_clients_gets_exactly_one_response() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&write_config(dir.path(), |_| {}));
    let address = daemon.http;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            std::thread::spawn(move || {
                let mut http = http_support::Http::connect(address);
                let mut answered = 0usize;
                for request in 0..REQUESTS {
                    let (response, expected) = match (client + request) % 10 {
                        0 => (http.get("/v1/nothing-here", Some(GAME)), 404),
                        1 => (http.get("/v1/telemetry", None), 401),
                        2 => (
                            http.send("POST", "/v1/signals", Some(GAME), Some("{oops")),
                            400,
                        ),
                        3 => (http.get("/metrics", None), 200),
                        _ => (http.get("/v1/telemetry", Some(GAME)), 200),
                    };
                    assert_eq!(
                        response.status,
                        expected,
                        "client {client}, request {request}: {}",
                        response.text()
                    );
                    answered += 1;
                }
                // Nothing more is waiting: the next read times out rather than
                // finding a second response to any request.
                http.stream
                    .set_read_timeout(Some(std::time::Duration::from_millis(200)))
                    .unwrap();
                let mut extra = [0u8; 1];
                let more = std::io::Read::read(&mut http.stream, &mut extra);
                assert!(
                    matches!(more, Err(ref error) if error.kind() == std::io::ErrorKind::WouldBlock
                        || error.kind() == std::io::ErrorKind::TimedOut),
                    "client {client}: unexpected bytes after the last response: {more:?}"
                );
                answered
            })
        })
        .collect();
    let answered: usize = clients
        .into_iter()
        .map(|client| client.join().unwrap())
        .sum();
    assert_eq!(answered, CLIENTS * REQUESTS);
    assert_eq!(daemon.client().get("/health/ready", None).status, 200);
}
