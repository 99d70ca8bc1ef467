//! Load: 50 concurrent clients, half over TCP and half over the Unix socket, each
//! pipelining 2 000 requests (queries, signals and orders) while the runtime ticks.
//! Every request gets exactly one reply, and the runtime keeps ticking throughout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ingress_support;

use std::{
    collections::BTreeMap,
    io::BufReader,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use gamesa_proto::{Domain, Price, Quantity, Resource, Side, SignalKind, Strength};
use gamesa_wire::{
    OrderKind, OrderRequestBody, QueryName, QueryRequest, Request, ServerFrame, SignalRequest,
    client::Duplex, decode_server_frame, frame::read_frame,
};
use ingress_support::*;

const CLIENTS: usize = 50;
const REQUESTS: u64 = 2_000;

/// The request with id `id`: mostly queries, some signals and orders.
fn request(id: u64, workload: bool) -> Request {
    match id % 20 {
        0 if workload => Request::Order(OrderRequestBody {
            resource: Resource::GpuMemoryMb,
            side: Side::Bid,
            price: Price(1),
            quantity: Quantity(1),
            time_in_force: OrderKind::Ioc,
            expires_after_ticks: None,
        }),
        0 => Request::Signal(SignalRequest {
            kind: SignalKind::new("load_test").unwrap(),
            domain: Domain::Performance,
            strength: Strength::try_from(0.5).unwrap(),
            ttl_ticks: Some(2),
            hold: false,
        }),
        1..=5 => Request::Query(QueryRequest {
            resource: Some(Resource::PowerBudgetMw),
            levels: Some(5),
            ..QueryRequest::new(QueryName::Book)
        }),
        6 | 7 => Request::query(QueryName::Account),
        _ => Request::query(QueryName::Health),
    }
}

/// Says hello, then writes every request from one thread while reading the replies on
/// this one; returns how many replies each id got and how many were errors.
fn pipeline<S: Duplex + Send + 'static>(stream: S, who: (&str, &str)) -> (BTreeMap<u64, u32>, u64) {
    let mut writer = stream.try_clone_stream().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut bytes = Vec::new();
    Request::Hello(gamesa_wire::Hello {
        protocol_version: gamesa_wire::PROTOCOL_VERSION,
        client: who.0.into(),
        token: who.1.into(),
    })
    .encode(0, &mut bytes)
    .unwrap();
    let workload = who.0 == WORKLOAD.0;
    let sender = std::thread::spawn(move || {
        writer.write_all(&bytes).unwrap();
        let mut batch = Vec::with_capacity(64 * 1024);
        for id in 1..=REQUESTS {
            request(id, workload).encode(id, &mut batch).unwrap();
            if batch.len() > 32 * 1024 {
                writer.write_all(&batch).unwrap();
                batch.clear();
            }
        }
        writer.write_all(&batch).unwrap();
    });
    let mut replies: BTreeMap<u64, u32> = BTreeMap::new();
    let mut errors = 0;
    let mut body = Vec::new();
    while replies.len() < REQUESTS as usize + 1 {
        assert!(
            read_frame(&mut reader, 1 << 20, &mut body).unwrap(),
            "closed early"
        );
        match decode_server_frame(&body).unwrap() {
            ServerFrame::Reply(reply) => {
                if reply.outcome.is_err() {
                    errors += 1;
                }
                *replies.entry(reply.id.unwrap()).or_default() += 1;
            }
            ServerFrame::Event(event) => panic!("no subscription, yet {event:?}"),
        }
    }
    sender.join().unwrap();
    (replies, errors)
}

#[actix::test]
async fn fifty_clients_pipelining_two_thousand_requests_each_get_every_reply() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |table| {
        let ingress = table["ingress"].as_table_mut().unwrap();
        ingress.insert("max_connections".into(), 64.into());
        ingress.insert("threads".into(), 2.into());
        table["runtime"]
            .as_table_mut()
            .unwrap()
            .insert("tick_hz".into(), 100.into());
    });
    let mut daemon = Daemon::start(&config);
    let tcp = daemon.ingress.tcp_address().unwrap();
    let unix = daemon.ingress.unix_socket().unwrap().to_owned();

    let done = Arc::new(AtomicBool::new(false));
    let (finished, finished_rx) = tokio::sync::oneshot::channel();
    let load = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let clients: Vec<_> = (0..CLIENTS)
                .map(|index| {
                    let who = if index % 5 == 0 { WORKLOAD } else { GAME };
                    let unix = unix.clone();
                    std::thread::spawn(move || {
                        if index % 2 == 0 {
                            let stream = std::net::TcpStream::connect(tcp).unwrap();
                            stream.set_nodelay(true).unwrap();
                            pipeline(stream, who)
                        } else {
                            pipeline(std::os::unix::net::UnixStream::connect(unix).unwrap(), who)
                        }
                    })
                })
                .collect();
            let results: Vec<_> = clients
                .into_iter()
                .map(|client| client.join().unwrap())
                .collect();
            done.store(true, Ordering::SeqCst);
            let _ = finished.send(());
            results
        })
    };

    let mut ticks_during_load = 0u64;
    daemon
        .runtime
        .run_until(
            async {
                let _ = finished_rx.await;
            },
            |_| ticks_during_load += 1,
        )
        .await
        .unwrap();
    let results = load.join().unwrap();
    assert!(done.load(Ordering::SeqCst));

    for (client, (replies, errors)) in results.iter().enumerate() {
        assert_eq!(replies.len(), REQUESTS as usize + 1, "client {client}");
        assert!(
            replies.values().all(|count| *count == 1),
            "client {client}: a request got more than one reply"
        );
        assert_eq!(*errors, 0, "client {client} got error replies");
    }
    assert!(
        ticks_during_load >= 2,
        "the runtime kept ticking: {ticks_during_load} ticks"
    );
    let report = daemon.runtime.tick().await.unwrap();
    assert!(report.tick.0 >= ticks_during_load);
    let mut after = daemon.tcp_as(GAME);
    barrier(&mut after);
}
