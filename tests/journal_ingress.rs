//! Replay of a run in which ingress clients sent signals and orders over TCP and the
//! Unix socket while the daemon ticked: which tick took each request in depends on
//! thread timing, which only the journal saw. Replayed, every decision is identical.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ingress_support;

use std::{ops::ControlFlow, time::Duration};

use gamesa_proto::{Domain, Price, Quantity, Resource, Side, SignalKind, Strength};
use gamesa_runtime::journal::{
    JournalReader, JournalWriter, RunInfo, WriterSettings,
    replay::{self, TickRange},
};
use gamesa_wire::{
    ErrorCode, ExperiencesResult, OrderKind, OrderRequestBody, QueryName, QueryRequest, Request,
    SignalRequest,
};
use ingress_support::*;

#[actix::test]
async fn a_run_with_ingress_clients_sending_signals_and_orders_replays_identically() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |_| {});
    let mut daemon = Daemon::start(&config);
    let path = dir.path().join("journal.sqlite");
    let settings = WriterSettings {
        queue_ticks: 1 << 20,
        ..WriterSettings::from(&config.journal)
    };
    daemon.runtime.attach_journal(
        JournalWriter::open(
            &path,
            settings,
            &RunInfo::of(&config, &registry(), 0).unwrap(),
        )
        .unwrap(),
    );
    let mut game = daemon.tcp_as(GAME);
    let mut workload = daemon.unix_as(WORKLOAD);
    let clients = std::thread::spawn(move || {
        for round in 0..100u64 {
            game.send(&Request::Signal(SignalRequest {
                kind: SignalKind::new("game_started").unwrap(),
                domain: Domain::Performance,
                strength: Strength::try_from(0.8).unwrap(),
                ttl_ticks: Some(3),
                hold: false,
            }))
            .unwrap();
            workload
                .send(&Request::Order(OrderRequestBody {
                    resource: Resource::GpuMemoryMb,
                    side: Side::Bid,
                    price: Price(1 + round % 5),
                    quantity: Quantity(1),
                    time_in_force: OrderKind::Limit,
                    expires_after_ticks: Some(5),
                }))
                .unwrap();
            std::thread::sleep(Duration::from_millis(3));
        }
        (game, workload)
    });
    let mut ticks = 0u64;
    while !clients.is_finished() {
        daemon.runtime.tick().await.unwrap();
        ticks += 1;
    }
    let (mut game, _workload) = clients.join().unwrap();
    daemon.ticks(20).await;
    ticks += 20;

    // The experience store over ingress: once the journal holds some epochs, the
    // newest of gpu0's, newest first.
    let journal = daemon.runtime.conductor().journal().unwrap();
    while journal.stats().committed < 100 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let found: ExperiencesResult = game
        .call_as(&Request::Query(QueryRequest {
            agent: Some("gpu0".into()),
            limit: Some(3),
            ..QueryRequest::new(QueryName::Experiences)
        }))
        .unwrap();
    assert_eq!(found.experiences.len(), 3, "{found:?}");
    assert!(
        found
            .experiences
            .iter()
            .all(|epoch| epoch.agent == "gpu0" && epoch.experience.ticks == 10)
    );
    assert!(
        found.experiences[0].experience.first_tick > found.experiences[1].experience.first_tick
    );
    let Daemon {
        runtime, ingress, ..
    } = daemon;
    let shutdown = runtime.shutdown().await;
    drop(ingress);
    let journal = shutdown.journal.unwrap();
    assert_eq!((journal.committed, journal.dropped), (ticks, 0));

    let reader = JournalReader::open(&path).unwrap();
    let (mut signals, mut orders) = (0, 0);
    reader
        .for_each_tick(1, gamesa_proto::Tick(0), None, |tick| {
            signals += tick.inputs.intake.signals.len();
            orders += tick.inputs.intake.intents.len();
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
    assert_eq!(
        (signals, orders),
        (100, 100),
        "every request reached a tick"
    );

    let report = replay::replay(&reader, &registry(), None, TickRange::default()).unwrap();
    assert_eq!(report.divergence, None, "{report}");
    assert_eq!(report.compared, ticks);
}

#[actix::test]
async fn experiences_are_unavailable_without_a_journal() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |_| {});
    let mut daemon = Daemon::start(&config);
    daemon.ticks(2).await;
    let mut game = daemon.tcp_as(GAME);
    let reply = game
        .call(&Request::Query(QueryRequest::new(QueryName::Experiences)))
        .unwrap();
    assert_eq!(reply.outcome.unwrap_err().code, ErrorCode::Unavailable);
    let reply = game
        .call(&Request::Query(QueryRequest {
            limit: Some(0),
            ..QueryRequest::new(QueryName::Experiences)
        }))
        .unwrap();
    assert_eq!(reply.outcome.unwrap_err().code, ErrorCode::InvalidRequest);
}
