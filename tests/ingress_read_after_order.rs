//! Read-after-order: a query sent right after an `order` reply reads the state of that
//! order's tick or later (`docs/protocol.md`: the reply comes after the tick, a query
//! reads the end of the last tick). Checked 200 times while two threads keep both cores
//! busy, so that the tick thread is preempted at every point it can be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ingress_support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use gamesa_proto::{Price, Quantity, Resource, Side};
use gamesa_wire::{
    AccountResult, BookResult, HealthResult, OrderKind, OrderRequestBody, OrderResult, QueryName,
    QueryRequest, Request,
};
use ingress_support::*;

const ROUNDS: usize = 200;

/// Keeps a core busy until `stop` is set.
fn spin(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut turns = 0u64;
        while !stop.load(Ordering::Relaxed) {
            turns = std::hint::black_box(turns.wrapping_add(1));
        }
        turns
    })
}

/// What a round found stale, if anything.
fn round(client: &mut gamesa_wire::Client<std::net::TcpStream>, price: u64) -> Vec<String> {
    let order: OrderResult = client
        .call_as(&Request::Order(OrderRequestBody {
            resource: Resource::GpuMemoryMb,
            side: Side::Bid,
            price: Price(price),
            quantity: Quantity(1),
            time_in_force: OrderKind::Limit,
            expires_after_ticks: Some(1),
        }))
        .unwrap();
    let mut stale = Vec::new();
    let account: AccountResult = client.call_as(&Request::query(QueryName::Account)).unwrap();
    if account.tick < Some(order.tick) {
        stale.push(format!(
            "account of tick {:?} after the order of tick {}",
            account.tick, order.tick
        ));
    } else if account.tick == Some(order.tick) && order.resting > 0 {
        // Still that tick: the resting bid's escrow must show.
        if account.escrowed.0 < price {
            stale.push(format!(
                "escrow {} without the resting bid of {price}",
                account.escrowed
            ));
        }
    }
    let book: BookResult = client
        .call_as(&Request::Query(QueryRequest {
            resource: Some(Resource::GpuMemoryMb),
            ..QueryRequest::new(QueryName::Book)
        }))
        .unwrap();
    if book.tick < Some(order.tick) {
        stale.push(format!(
            "book of tick {:?} after the order of tick {}",
            book.tick, order.tick
        ));
    }
    let health: HealthResult = client.call_as(&Request::query(QueryName::Health)).unwrap();
    if health.tick < Some(order.tick) {
        stale.push(format!(
            "health of tick {:?} after the order of tick {}",
            health.tick, order.tick
        ));
    }
    stale
}

#[actix::test]
async fn a_query_after_an_order_reply_sees_that_order_under_cpu_load() {
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |table| {
        table["runtime"]
            .as_table_mut()
            .unwrap()
            .insert("tick_hz".into(), 200.into());
    });
    let mut daemon = Daemon::start(&config);
    let address = daemon.ingress.tcp_address().unwrap();

    let stop_spinning = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..2).map(|_| spin(Arc::clone(&stop_spinning))).collect();
    let (finished, finished_rx) = tokio::sync::oneshot::channel();
    let client = std::thread::spawn(move || {
        let mut client = gamesa_wire::Client::connect_tcp(address).unwrap();
        client.stream().set_nodelay(true).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        client.hello(WORKLOAD.0, WORKLOAD.1).unwrap();
        let stale: Vec<String> = (0..ROUNDS)
            .flat_map(|index| round(&mut client, 1 + (index as u64 % 7)))
            .collect();
        let _ = finished.send(());
        stale
    });
    daemon
        .runtime
        .run_until(
            async {
                let _ = finished_rx.await;
            },
            |_| {},
        )
        .await
        .unwrap();
    stop_spinning.store(true, Ordering::Relaxed);
    for spinner in spinners {
        spinner.join().unwrap();
    }
    let stale = client.join().unwrap();
    assert!(
        stale.is_empty(),
        "{} of {ROUNDS} rounds read state older than the order's tick: {:#?}",
        stale.len(),
        &stale[..stale.len().min(10)]
    );
}
