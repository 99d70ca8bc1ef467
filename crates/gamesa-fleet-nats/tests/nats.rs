//! Fleet mode against a real `nats-server` with JetStream (Debian's package, which
//! `scripts/install-test-deps.sh` installs): three nodes elect a leader and lease the
//! pool; the leader is killed and another takes over within two leases; the server is
//! stopped and every node is back at its safe share within a lease; the server comes
//! back and leases flow again; garbage on the subjects is dropped and counted. All the
//! while, a watcher adds up the caps the nodes compute every 10 ms and checks the sum
//! never exceeds the budget.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod nats_server;

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use gamesa_fleet::{BidStep, Split};
use gamesa_fleet_nats::{Auth, FleetLink, LinkSettings};
use nats_server::{NatsServer, free_port};

const BUDGET_MW: u64 = 900_000;
const SAFE_MW: u64 = 200_000;
const LEASE_MS: u64 = 1_000;
const MARGIN_MS: u64 = 100;
const NODES: [&str; 3] = ["n1", "n2", "n3"];

fn link(node: &str, port: u16) -> FleetLink {
    let link = FleetLink::start(LinkSettings {
        nats_url: format!("nats://127.0.0.1:{port}"),
        cluster: "rack1".into(),
        node: node.into(),
        weight: 1,
        budget_mw: BUDGET_MW,
        safe_shares_mw: NODES
            .iter()
            .map(|name| (name.to_string(), SAFE_MW))
            .collect(),
        epoch_ms: 200,
        lease_ms: LEASE_MS,
        margin_ms: MARGIN_MS,
        split: Split::Market,
        auth: Auth::None,
    });
    // Every node is held back by its cap and wants 250 W more, at its own price.
    let price = 1_000 + node.as_bytes()[1] as u64;
    link.report(SAFE_MW, vec![BidStep { mw: 250_000, price }]);
    link
}

type Links = Arc<Mutex<BTreeMap<&'static str, FleetLink>>>;

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

fn leader(links: &Links) -> Option<&'static str> {
    let links = links.lock().unwrap();
    let leaders: Vec<_> = links
        .iter()
        .filter(|(_, link)| link.status().is_leader)
        .map(|(name, _)| *name)
        .collect();
    assert!(leaders.len() <= 1, "two leaders at once: {leaders:?}");
    leaders.first().copied()
}

fn leased(links: &Links) -> u64 {
    links
        .lock()
        .unwrap()
        .values()
        .map(|link| link.status().leased_mw)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_elects_leases_fails_over_and_never_exceeds_its_budget() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let store = tempfile::tempdir().unwrap();
    let server = NatsServer::start(store.path(), free_port());
    let links: Links = Arc::new(Mutex::new(
        NODES
            .iter()
            .map(|node| (*node, link(node, server.port)))
            .collect(),
    ));

    // The watcher: the sum of the caps the nodes compute, every 10 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (links, stop) = (Arc::clone(&links), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut samples = 0u64;
            let mut highest = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let sum: u64 = links.lock().unwrap().values().map(FleetLink::cap_mw).sum();
                assert!(
                    sum <= BUDGET_MW,
                    "the caps add up to {sum} mW, over {BUDGET_MW}"
                );
                highest = highest.max(sum);
                samples += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (samples, highest)
        })
    };

    // A leader, and the pool leased out: the market gives it to the highest bidder.
    wait_for("a leader", Duration::from_secs(10), || {
        leader(&links).is_some()
    })
    .await;
    wait_for("the pool leased", Duration::from_secs(10), || {
        leased(&links) == BUDGET_MW - 3 * SAFE_MW
    })
    .await;
    assert_eq!(links.lock().unwrap()["n3"].status().leased_mw, 250_000);

    // Garbage on the subjects is dropped and counted.
    let client = async_nats::connect(format!("nats://127.0.0.1:{}", server.port))
        .await
        .unwrap();
    client
        .publish("gamesa.rack1.grants.n1", "not a grant".into())
        .await
        .unwrap();
    client
        .publish("gamesa.rack1.orders", vec![0xc1, 0x00].into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    wait_for("the garbage counted", Duration::from_secs(5), || {
        links
            .lock()
            .unwrap()
            .values()
            .map(|l| l.status().malformed)
            .sum::<u64>()
            >= 2
    })
    .await;

    // The leader dies; another takes over within two leases, and the dead one rejoins.
    let dead = leader(&links).unwrap();
    drop(links.lock().unwrap().remove(dead));
    let failover = wait_for("a new leader", Duration::from_secs(10), || {
        leader(&links).is_some_and(|name| name != dead)
    })
    .await;
    assert!(
        failover <= Duration::from_millis(2 * LEASE_MS),
        "failover took {failover:?}"
    );
    links.lock().unwrap().insert(dead, link(dead, server.port));
    wait_for(
        "leases again after the failover",
        Duration::from_secs(10),
        || leased(&links) == BUDGET_MW - 3 * SAFE_MW,
    )
    .await;

    // NATS stops: every node is back at its safe share within a lease.
    let port = server.stop();
    let fallback = wait_for(
        "every node at its safe share",
        Duration::from_secs(5),
        || leased(&links) == 0,
    )
    .await;
    assert!(
        fallback <= Duration::from_millis(LEASE_MS),
        "fallback took {fallback:?}"
    );

    // NATS comes back on the same store: a leader again, and leases.
    let server = NatsServer::start(store.path(), port);
    wait_for(
        "leases after NATS came back",
        Duration::from_secs(20),
        || leased(&links) == BUDGET_MW - 3 * SAFE_MW,
    )
    .await;

    stop.store(true, Ordering::Relaxed);
    let (samples, highest) = watcher.await.unwrap();
    assert!(samples > 100, "{samples} samples");
    assert_eq!(
        highest, BUDGET_MW,
        "the pool was used in full at some point"
    );
    drop(server);
}
