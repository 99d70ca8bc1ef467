//! Four `gamesa run` processes on the twin share one power budget through a real
//! `nats-server` that requires credentials (the nodes' password comes from the
//! environment; a connection without it is refused). They elect a leader and lease the
//! pool; the leader is killed with SIGKILL and another takes over; a node runs in fits
//! (a slow node); a node is cut off (SIGSTOP) for two leases and rejoins; NATS is
//! stopped (every node at its safe share a lease later) and restarted (leases again);
//! the nodes left stop cleanly. Read back from each node's own journal (its granted cap
//! is an input of every tick): at every instant the caps in force add up to no more
//! than the budget, leases were held, and each node's frame shows the granted cap as
//! its `node.cap_mw`. `gamesa send query fleet` on the new leader names it, its later
//! term, and the nodes that order from it; its `/metrics` says it leads and has taken
//! grants, and every node's order is priced by when its job would end (the twin's
//! workload says how much is left); and the leaders' `fleet.clear` spans are linked
//! from the ticks of the nodes that ran under their grants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../crates/gamesa-fleet-nats/tests/nats_server/mod.rs"]
mod nats_server;

use std::{
    ops::ControlFlow,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use gamesa_runtime::journal::JournalReader;
use nats_server::{NatsServer, free_port};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

const BUDGET_MW: u64 = 1_200_000;
const SAFE_MW: u64 = 250_000;
const NODES: [&str; 4] = ["rack1-a", "rack1-b", "rack1-c", "rack1-d"];
/// The server requires a user and password; the nodes read the password from the
/// environment, as `fleet.password_env` says.
const NATS_AUTH: [&str; 4] = ["--user", "gamesa", "--pass", "fleet-secret-0001"];
/// `config/sim.toml` ticks at 10 Hz: a node holds the cap it read for one tick.
const TICK_MS: u64 = 100;
/// `fleet.lease_ms` in the nodes' config.
const LEASE_MS: u64 = 1_200;

/// The daemons still running, killed if the test fails half-way (a stopped one is
/// continued first), so that no `gamesa run` outlives it.
struct Daemons(Vec<(&'static str, Child)>);

impl std::ops::Deref for Daemons {
    type Target = Vec<(&'static str, Child)>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Daemons {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            if child.try_wait().ok().flatten().is_none() {
                let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn pid_of(children: &[(&str, Child)], name: &str) -> Pid {
    let (_, child) = children.iter().find(|(node, _)| *node == name).unwrap();
    Pid::from_raw(child.id() as i32)
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `config/sim.toml` for node `name`, with its journal and log in `dir`. Its twin runs
/// `gpu_bottleneck` with a job too long to finish within the test, so the node always
/// knows when its job would end.
fn write_config(dir: &Path, name: &str, port: u16) -> PathBuf {
    let root = repo_root();
    let scenario = std::fs::read_to_string(root.join("scenarios/gpu_bottleneck.toml")).unwrap();
    let long_job = dir.join("long_job.toml");
    let job = "[job]\ngpu0 = 50.0";
    assert!(scenario.contains(job), "gpu_bottleneck's job changed");
    std::fs::write(&long_job, scenario.replace(job, "[job]\ngpu0 = 100000.0")).unwrap();
    let mut text = std::fs::read_to_string(root.join("config/sim.toml")).unwrap();
    let named = "\"../scenarios/gpu_bottleneck.toml\"";
    assert!(text.contains(named), "config/sim.toml's scenario changed");
    text = text.replace(named, &format!("{:?}", long_job.display().to_string()));
    let shares: String = NODES
        .iter()
        .map(|node| format!("{node} = {SAFE_MW}\n"))
        .collect();
    text.push_str(&format!(
        r#"
[journal]
file = "{journal}"
batch_ticks = 1

[ingress]
unix_enabled = true
unix_socket = "{socket}"

[telemetry]
file = "{trace}"
export_interval_ms = 200

[http]
enabled = true
address = "127.0.0.1:{http_port}"

[[clients]]
name = "ops"
token = "ops-token-000001"
effects = ["query:fleet"]

[fleet]
enabled = true
nats_url = "nats://127.0.0.1:{port}"
cluster = "rack1"
node = "{name}"
budget_mw = {BUDGET_MW}
user = "gamesa"
password_env = "GAMESA_TEST_NATS_PASSWORD"
epoch_ms = 300
lease_ms = {LEASE_MS}

[fleet.safe_shares_mw]
{shares}"#,
        journal = dir.join(format!("{name}.sqlite")).display(),
        socket = dir.join(format!("{name}.sock")).display(),
        http_port = http_port(name),
        trace = dir.join(format!("{name}-trace.jsonl")).display(),
    ));
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn spawn(dir: &Path, name: &str, port: u16) -> Child {
    let config = write_config(dir, name, port);
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .args(["run", "--config"])
        .arg(config)
        .env("GAMESA_LOG", "info")
        .env("GAMESA_TEST_NATS_PASSWORD", NATS_AUTH[3])
        .env("STATE_DIRECTORY", dir)
        .env("RUNTIME_DIRECTORY", dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Node `name`'s HTTP port: fixed per node, picked free at the first call.
fn http_port(name: &str) -> u16 {
    static PORTS: std::sync::OnceLock<Vec<u16>> = std::sync::OnceLock::new();
    let ports = PORTS.get_or_init(|| NODES.iter().map(|_| free_port()).collect());
    ports[NODES.iter().position(|node| *node == name).unwrap()]
}

/// A GET of `path` on node `name`'s HTTP API: the whole response, head and body.
fn http_get(name: &str, path: &str, token: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", http_port(name))).unwrap();
    let auth = token.map_or(String::new(), |token| {
        format!("Authorization: Bearer {token}\r\n")
    });
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

/// The Prometheus scrape of node `name`.
fn scrape(name: &str) -> String {
    http_get(name, "/metrics", None)
}

/// The value of the sample whose line starts with `series` (name and labels).
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

/// `gamesa send query fleet --json` on node `name`'s socket; what it printed to stderr
/// when it got no answer (the node not started yet, or stopped).
fn query_fleet(dir: &Path, name: &str) -> Result<serde_json::Value, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .arg("send")
        .arg("--unix")
        .arg(dir.join(format!("{name}.sock")))
        .args(["--client", "ops", "--token", "ops-token-000001", "--json"])
        .args(["query", "fleet"])
        .output()
        .unwrap();
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&output.stdout).unwrap())
}

/// The node among `names` that says it leads now, with what it reports. Asked of the
/// nodes, not read from their logs: a node that was elected once may have lost the
/// mandate since, on a loaded machine.
fn leading(dir: &Path, names: &[&'static str]) -> Option<(&'static str, serde_json::Value)> {
    names.iter().find_map(|name| {
        let fleet = query_fleet(dir, name).ok()?;
        (fleet["is_leader"] == true).then_some((*name, fleet))
    })
}

/// How many times node `name` has been elected leader, by its log.
fn elections(dir: &Path, name: &str) -> usize {
    log(dir, name).matches("fleet: elected leader").count()
}

fn log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many journaled ticks of `nodes` ran under a lease so far (a running node's
/// journal is read as it is written).
fn leased_ticks(dir: &Path, nodes: &[&str]) -> usize {
    nodes
        .iter()
        .filter(|name| dir.join(format!("{name}.sqlite")).exists())
        .map(|name| {
            let Ok(reader) = JournalReader::open(&dir.join(format!("{name}.sqlite"))) else {
                return 0;
            };
            let mut leased = 0;
            let _ = reader.for_each_tick(1, gamesa_proto::Tick(0), None, |tick| {
                leased += usize::from(tick.inputs.intake.fleet_cap_mw > Some(SAFE_MW));
                Ok(ControlFlow::Continue(()))
            });
            leased
        })
        .sum()
}

/// Each journaled tick of `name`: when it ran (ms since the Unix epoch), the cap the
/// fleet granted, and the frame's `node.cap_mw`.
fn caps(dir: &Path, name: &str) -> Vec<(u64, u64, Option<u64>)> {
    let reader = JournalReader::open(&dir.join(format!("{name}.sqlite"))).unwrap();
    let mut ticks = Vec::new();
    reader
        .for_each_tick(1, gamesa_proto::Tick(0), None, |tick| {
            let granted = tick
                .inputs
                .intake
                .fleet_cap_mw
                .expect("every tick of a fleet node carries its granted cap");
            ticks.push((tick.inputs.at_ms, granted, tick.inputs.frame.node.cap_mw));
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
    ticks
}

#[test]
fn four_daemons_share_a_budget_through_nats_through_failures() {
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start_with(&dir.path().join("nats"), free_port(), &NATS_AUTH);
    let mut children = Daemons(
        NODES
            .iter()
            .map(|name| (*name, spawn(dir.path(), name, server.port)))
            .collect(),
    );

    // Let leases flow for a while (the journals show them), then kill the leader.
    wait_for("ten ticks under a lease", Duration::from_secs(30), || {
        leased_ticks(dir.path(), &NODES) >= 10
    });
    let mut first = None;
    wait_for("a node that leads", Duration::from_secs(10), || {
        first = leading(dir.path(), &NODES).map(|(name, _)| name);
        first.is_some()
    });
    let first = first.unwrap();
    let survivors: Vec<&str> = NODES
        .iter()
        .copied()
        .filter(|name| *name != first)
        .collect();
    // A survivor may have been elected before (a mandate lost on a loaded machine): the
    // new leader is the one elected once more.
    let elected: Vec<usize> = survivors
        .iter()
        .map(|name| elections(dir.path(), name))
        .collect();
    let at = children
        .iter()
        .position(|(name, _)| *name == first)
        .unwrap();
    let (_, mut victim) = children.remove(at);
    victim.kill().unwrap();
    victim.wait().unwrap();
    let killed_at = Instant::now();
    wait_for("a new leader", Duration::from_secs(10), || {
        survivors
            .iter()
            .zip(&elected)
            .any(|(name, before)| elections(dir.path(), name) > *before)
    });
    let failover = killed_at.elapsed();
    let before = leased_ticks(dir.path(), &survivors);
    wait_for(
        "ten more ticks under the new leader's leases",
        Duration::from_secs(30),
        || leased_ticks(dir.path(), &survivors) >= before + 10,
    );
    // `query fleet` on the survivor that leads now: it leads a later term, and sees
    // every survivor. The node table is the last epoch's orders; one may be late on a
    // loaded machine, so ask until every survivor is in it.
    let ordering = |fleet: &serde_json::Value| {
        let mut nodes: Vec<String> = fleet["nodes"]
            .as_array()
            .map(|nodes| {
                nodes
                    .iter()
                    .filter_map(|node| node["node"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        nodes.sort();
        nodes
    };
    let asked = Instant::now();
    let (second, fleet) = loop {
        let heard = leading(dir.path(), &survivors);
        match heard {
            Some((name, fleet)) if ordering(&fleet) == survivors => break (name, fleet),
            _ => assert!(
                asked.elapsed() < Duration::from_secs(15),
                "no survivor leads and hears every survivor within 15 s; the last \
                 leader seen: {heard:?}; survivors: {:?}",
                survivors
                    .iter()
                    .map(|name| query_fleet(dir.path(), name))
                    .collect::<Vec<_>>()
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(fleet["leader"], second, "{fleet}");
    // Each node's workload says how much of its job is left, so each prices its order
    // by when it would finish, below the keep steps of nodes that cannot tell.
    let deadline = gamesa_fleet::DEADLINE_TIER..gamesa_fleet::KEEP_TIER;
    for node in fleet["nodes"].as_array().unwrap() {
        let top = node["top_price"].as_u64().unwrap();
        assert!(deadline.contains(&top), "not a deadline bid: {node}");
    }
    assert!(fleet["term"].as_u64().unwrap() > 1, "{fleet}");
    // The same over HTTP.
    let over_http = http_get(second, "/v1/fleet", Some("ops-token-000001"));
    let body = over_http.split("\r\n\r\n").nth(1).unwrap_or_default();
    let over_http: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(over_http["leader"], second, "{over_http}");
    // And as Prometheus sees it.
    let metrics = scrape(second);
    assert_eq!(
        sample(&metrics, "gamesa_fleet_leader"),
        Some(1.0),
        "{metrics}"
    );
    let cap = sample(&metrics, "gamesa_fleet_cap_watts").unwrap();
    assert!(cap >= SAFE_MW as f64 / 1000.0, "{metrics}");
    let taken = sample(
        &metrics,
        "gamesa_fleet_grants_total{gamesa_outcome=\"taken\"}",
    );
    assert!(taken.unwrap() > 0.0, "{metrics}");

    // Nobody without the fleet's credentials gets a word in: the server refuses a
    // connection that does not authenticate.
    {
        use std::io::{Read, Write};
        let mut rogue = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        rogue
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        rogue
            .write_all(
                b"CONNECT {\"verbose\":false}\r\nPUB gamesa.rack1.orders 2\r\nhi\r\nPING\r\n",
            )
            .unwrap();
        let mut answer = vec![0u8; 4096];
        let mut text = String::new();
        while !text.contains("-ERR") {
            let read = rogue.read(&mut answer).unwrap_or(0);
            if read == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&answer[..read]));
        }
        assert!(text.contains("Authorization Violation"), "{text}");
    }

    // A slow node: one survivor runs in fits (stopped 150 ms of every 300 ms) for three
    // seconds; the sum of caps, checked below over the whole run, holds through it.
    let slow = survivors[survivors.len() - 1];
    for _ in 0..10 {
        kill(pid_of(&children, slow), Signal::SIGSTOP).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        kill(pid_of(&children, slow), Signal::SIGCONT).unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }

    // A node cut off: a survivor is stopped (SIGSTOP) for two leases, so its lease
    // runs out on its own clock and grants that reach it meanwhile come too late to be
    // taken; when it runs again it orders and rejoins. (Its fallback cannot be seen
    // while it is stopped: the NATS stop below shows every node's.)
    let third = *survivors.iter().find(|name| **name != second).unwrap();
    kill(pid_of(&children, third), Signal::SIGSTOP).unwrap();
    std::thread::sleep(Duration::from_millis(2 * LEASE_MS));
    kill(pid_of(&children, third), Signal::SIGCONT).unwrap();
    let before = leased_ticks(dir.path(), &[third]);
    wait_for(
        "the cut-off node back under a lease",
        Duration::from_secs(20),
        || leased_ticks(dir.path(), &[third]) >= before + 5,
    );

    // NATS stops: a lease later every node is at its safe share, by its own journal;
    // NATS comes back on the same store, and leases flow again.
    let port = server.stop();
    let stopped_ms = wall_ms();
    std::thread::sleep(Duration::from_millis(2 * LEASE_MS + 500));
    let settled_ms = stopped_ms + LEASE_MS + TICK_MS;
    for name in &survivors {
        let late: Vec<u64> = caps(dir.path(), name)
            .iter()
            .filter(|(at_ms, _, _)| *at_ms >= settled_ms && *at_ms <= settled_ms + LEASE_MS)
            .map(|(_, granted, _)| *granted)
            .collect();
        assert!(!late.is_empty(), "{name} did not tick while NATS was down");
        assert!(
            late.iter().all(|granted| *granted == SAFE_MW),
            "{name} held more than its safe share a lease after NATS stopped: {late:?}"
        );
    }
    let server = NatsServer::start_with(&dir.path().join("nats"), port, &NATS_AUTH);
    let before = leased_ticks(dir.path(), &survivors);
    wait_for(
        "leases after NATS came back",
        Duration::from_secs(30),
        || leased_ticks(dir.path(), &survivors) >= before + 10,
    );
    for (name, child) in children.iter_mut() {
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "{name}: {status}\n{}",
            log(dir.path(), name)
        );
    }
    drop(server);

    // From the nodes' own journals: the cap each held from one tick to the next.
    let mut edges: Vec<(u64, usize, u64)> = Vec::new();
    let mut leased_ticks = 0;
    for (index, name) in NODES.iter().enumerate() {
        let ticks = caps(dir.path(), name);
        assert!(ticks.len() >= 5, "{name}: {} ticks", ticks.len());
        for (at_ms, granted, frame_cap) in &ticks {
            assert_eq!(*frame_cap, Some((*granted).min(400_000)), "{name}");
            assert!(*granted >= SAFE_MW);
            if *granted > SAFE_MW {
                leased_ticks += 1;
            }
            edges.push((*at_ms, index, *granted));
        }
        // After its last tick a node holds that cap one tick more, then nothing.
        let (last, _, _) = ticks[ticks.len() - 1];
        edges.push((last + TICK_MS, index, 0));
    }
    edges.sort();
    let mut held = [0u64; NODES.len()];
    for (at_ms, index, cap) in edges {
        held[index] = cap;
        let sum: u64 = held.iter().sum();
        assert!(
            sum <= BUDGET_MW,
            "at {at_ms} ms the caps add up to {sum} mW: {held:?}"
        );
    }
    assert!(leased_ticks >= 20, "only {leased_ticks} ticks held a lease");

    // Cluster spans: every leader's `fleet.clear`, and the nodes' ticks that link to
    // them (the first tick under each new grant), read from their trace files.
    let spans = |name: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.path().join(format!("{name}-trace.jsonl")))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    let clearings: std::collections::BTreeSet<String> = NODES
        .iter()
        .flat_map(|name| spans(name))
        .filter(|span| span["name"] == "fleet.clear")
        .map(|span| span["span_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!clearings.is_empty(), "no fleet.clear span was exported");
    for name in &survivors {
        let linked = spans(name)
            .iter()
            .filter(|span| span["name"] == "gamesa.tick")
            .flat_map(|span| span["links"].as_array().cloned().unwrap_or_default())
            .filter(|link| clearings.contains(link["span_id"].as_str().unwrap_or("")))
            .count();
        assert!(linked > 0, "no tick of {name} links to a leader's clearing");
    }
    println!("failover after the leader's SIGKILL: {failover:?}");
}
