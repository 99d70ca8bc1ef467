//! Many simulated fleet nodes over one NATS connection, for `scripts/bench-fleet.sh`:
//! each sends an order every epoch by request/reply on `gamesa.<cluster>.orders` and
//! listens for its grants on `gamesa.<cluster>.grants.<node>`, as `gamesa run` in fleet
//! mode does. Prints, once a second, the orders answered and grants received, and at the
//! end the NATS protocol bytes one node exchanged per second.
//!
//!     cargo run --release --example fleet_nodes -- nats://127.0.0.1:4222 rack1 999 30
//!
//! Nodes are named `sim0000`, `sim0001`, ...; the leader's config must list them in
//! `fleet.safe_shares_mw` for it to grant them anything.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use gamesa_fleet::{BidStep, Order};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, cluster, nodes, seconds] = args.as_slice() else {
        return Err("usage: fleet_nodes NATS_URL CLUSTER NODES SECONDS".into());
    };
    let (nodes, seconds): (usize, u64) = (nodes.parse()?, seconds.parse()?);
    let client = async_nats::connect(url.as_str()).await?;
    let answered = Arc::new(AtomicU64::new(0));
    let granted = Arc::new(AtomicU64::new(0));
    // Protocol bytes each way, counted from the messages as NATS frames them.
    let sent_bytes = Arc::new(AtomicU64::new(0));
    let received_bytes = Arc::new(AtomicU64::new(0));
    let mut grants = client
        .subscribe(format!("gamesa.{cluster}.grants.*"))
        .await?;
    {
        let (granted, received_bytes) = (Arc::clone(&granted), Arc::clone(&received_bytes));
        tokio::spawn(async move {
            while let Some(message) = grants.next().await {
                granted.fetch_add(1, Ordering::Relaxed);
                // MSG <subject> <sid> <len>\r\n<payload>\r\n
                let frame = 4 + message.subject.len() + 4 + 8 + 2 + message.payload.len() + 2;
                received_bytes.fetch_add(frame as u64, Ordering::Relaxed);
            }
        });
    }
    let started = Instant::now();
    let orders_subject = format!("gamesa.{cluster}.orders");
    let mut epoch = tokio::time::interval(Duration::from_secs(1));
    let mut request = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        epoch.tick().await;
        request += 1;
        for index in 0..nodes {
            let order = Order {
                node: format!("sim{index:04}"),
                request,
                draw_mw: 300_000,
                weight: 1,
                // A node that knows its job's end bids the most steps: 16 slices
                // priced by when it would finish (`gamesa_fleet::node_bid`).
                bids: (0..16u64)
                    .map(|slice| BidStep {
                        mw: 10_000,
                        price: gamesa_fleet::DEADLINE_TIER + 400_000 - slice * 5_000 + index as u64,
                    })
                    .collect(),
            };
            let payload = rmp_serde::to_vec_named(&order)?;
            // PUB <subject> <reply inbox> <len>\r\n<payload>\r\n; its ack comes back
            // as an empty MSG on the inbox.
            let frame = 4 + orders_subject.len() + 1 + 30 + 8 + 2 + payload.len() + 2;
            sent_bytes.fetch_add(frame as u64, Ordering::Relaxed);
            received_bytes.fetch_add(4 + 30 + 4 + 4 + 2 + 2, Ordering::Relaxed);
            let (client, subject, answered) = (
                client.clone(),
                orders_subject.clone(),
                Arc::clone(&answered),
            );
            tokio::spawn(async move {
                if client.request(subject, payload.into()).await.is_ok() {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        println!(
            "t={:>3} s orders answered {} grants received {}",
            started.elapsed().as_secs(),
            answered.load(Ordering::Relaxed),
            granted.load(Ordering::Relaxed)
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    let per_node =
        |bytes: &AtomicU64| bytes.load(Ordering::Relaxed) as f64 / nodes as f64 / elapsed;
    println!(
        "per node: {:.0} B/s sent, {:.0} B/s received (NATS protocol bytes); \
         {} orders answered, {} grants received in {elapsed:.1} s",
        per_node(&sent_bytes),
        per_node(&received_bytes),
        answered.load(Ordering::Relaxed),
        granted.load(Ordering::Relaxed)
    );
    Ok(())
}
