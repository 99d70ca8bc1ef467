//! A request refused for a missing effect leaves a `gamesa::audit` record that names the
//! client by its configured name (what an operator searches for), not by its
//! participant number.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ingress_support;

use std::sync::{Arc, Mutex};

use gamesa_proto::{Domain, SignalKind, Strength};
use gamesa_wire::{ErrorCode, QueryName, Request, SignalRequest};
use ingress_support::*;

/// Every log line of this test binary, from any thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[actix::test]
async fn audit_records_name_the_client_by_its_configured_name() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("gamesa::audit=warn")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |_| {});
    let daemon = Daemon::start(&config);
    let mut game = daemon.tcp_as(GAME);
    let reply = game
        .call(&Request::Signal(SignalRequest {
            kind: SignalKind::new("game_started").unwrap(),
            domain: Domain::Safety,
            strength: Strength::MAX,
            ttl_ticks: None,
            hold: false,
        }))
        .unwrap();
    assert_eq!(reply.outcome.unwrap_err().code, ErrorCode::Forbidden);
    let mut reader = daemon.unix_as(READER);
    let reply = reader.call(&Request::query(QueryName::Telemetry)).unwrap();
    assert_eq!(reply.outcome.unwrap_err().code, ErrorCode::Forbidden);

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let records: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("gamesa::audit"))
        .collect();
    assert_eq!(records.len(), 2, "{log}");
    assert!(
        records[0].contains("client=game") && records[0].contains("signal:safety"),
        "{}",
        records[0]
    );
    assert!(
        records[1].contains("client=reader") && records[1].contains("query:telemetry"),
        "{}",
        records[1]
    );
    assert!(
        records.iter().all(|record| !record.contains("agent#")),
        "a record names a participant number: {records:#?}"
    );
}
