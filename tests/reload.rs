//! SIGHUP reloads the config without a restart: under a client sending 1,000 requests a
//! second, every request gets its one reply, every live lease survives, the new gate
//! limits and agent parameters apply, agents (WASM ones included) come, go and are
//! replaced, an invalid config leaves the running one in place, and the journaled run
//! (reloads included) replays identically.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use gamesa_wire::{AllocationsResult, Client, QueryName, Request, ServerFrame};

#[path = "../crates/gamesa-wasm/tests/build_guest/mod.rs"]
mod build_guest;

const TOKEN: &str = "game-token-0001";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `config/sim.toml` on its scenario, with a socket, a fast client and no status line.
fn base_config(dir: &Path) -> toml::Table {
    let mut table: toml::Table = std::fs::read_to_string(repo_root().join("config/sim.toml"))
        .unwrap()
        .parse()
        .unwrap();
    table["sensors"]["scenario"] = repo_root()
        .join("scenarios/gpu_bottleneck.toml")
        .display()
        .to_string()
        .into();
    table["runtime"]["status_interval_s"] = 0.into();
    let extra: toml::Table = format!(
        r#"
        [ingress]
        unix_enabled = true
        unix_socket = "{}"
        rate_limit_per_s = 5000
        rate_burst = 5000

        [telemetry]
        enabled = false

        [[clients]]
        name = "game"
        token = "{TOKEN}"
        effects = ["query:*", "signal:performance"]
        "#,
        dir.join("gamesa.sock").display()
    )
    .parse()
    .unwrap();
    table.extend(extra);
    table
}

/// Lines of the daemon's log, shared with the test as they come.
type Log = Arc<Mutex<Vec<String>>>;

fn start(dir: &Path) -> (Child, Log) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .args(["run", "--config-dir"])
        .arg(dir)
        .env("STATE_DIRECTORY", dir)
        .env("RUNTIME_DIRECTORY", dir)
        .env("GAMESA_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log: Log = Arc::default();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let shared = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            shared.lock().unwrap().push(line);
        }
    });
    wait_for(&log, "ingress listening");
    (child, log)
}

fn wait_for(log: &Log, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(line) = log.lock().unwrap().iter().find(|line| line.contains(text)) {
            return line.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no `{text}` in the log:\n{}",
            log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn count(log: &Log, text: &str) -> usize {
    log.lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains(text))
        .count()
}

fn hang_up(child: &Child) {
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn leases(socket: &Path) -> AllocationsResult {
    let mut client = Client::connect_unix(socket).unwrap();
    client.hello("game", TOKEN).unwrap();
    client
        .call_as(&Request::query(QueryName::Allocations))
        .unwrap()
}

/// A config directory whose `gamesa.toml` is [`base_config`], with an empty `gamesa.d`.
fn config_dir() -> (tempfile::TempDir, toml::Table) {
    let dir = tempfile::tempdir().unwrap();
    let base = base_config(dir.path());
    std::fs::write(
        dir.path().join("gamesa.toml"),
        toml::to_string(&base).unwrap(),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("gamesa.d")).unwrap();
    (dir, base)
}

/// SIGTERM, and a clean exit.
fn stop(daemon: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(daemon.wait().unwrap().success());
}

/// `gamesa replay` of the journal in `dir`: every decision identical.
fn assert_replays(dir: &Path) {
    let replay = Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .args(["replay", "--journal"])
        .arg(dir.join("journal.sqlite"))
        .output()
        .unwrap();
    let replayed = String::from_utf8_lossy(&replay.stdout);
    assert!(
        replay.status.success(),
        "{replayed}{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    assert!(replayed.contains("100 % identical"), "{replayed}");
}

#[test]
fn a_reload_under_load_loses_no_request_and_no_lease_and_replays() {
    let (dir, base) = config_dir();
    let socket = dir.path().join("gamesa.sock");
    let (mut daemon, log) = start(dir.path());

    // 3,000 `query telemetry` requests, one a millisecond, on one connection.
    const REQUESTS: u64 = 3_000;
    let mut client = Client::connect_unix(&socket).unwrap();
    client.hello("game", TOKEN).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = client.stream().try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let start = Instant::now();
        for id in 0..REQUESTS {
            let mut frame = Vec::new();
            Request::query(QueryName::Telemetry)
                .encode(1_000 + id, &mut frame)
                .unwrap();
            writer.write_all(&frame).unwrap();
            let due = start + Duration::from_millis(id + 1);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    });
    let reader = std::thread::spawn(move || {
        let mut answered = BTreeSet::new();
        let mut refused = Vec::new();
        while (answered.len() as u64) < REQUESTS {
            match client.next_frame().unwrap() {
                ServerFrame::Reply(reply) => {
                    let id = reply.id.expect("every reply answers a request");
                    assert!(answered.insert(id), "request {id} answered twice");
                    if let Err(error) = reply.outcome {
                        refused.push((id, error));
                    }
                }
                ServerFrame::Event(_) => {}
            }
        }
        (answered, refused)
    });

    // Mid-load, a valid reload: a tighter gate step, and new parameters for gpu0.
    std::thread::sleep(Duration::from_millis(1_500));
    let mut agents = base["agents"].as_array().unwrap().clone();
    let gpu = agents
        .iter_mut()
        .find(|agent| agent["id"].as_str() == Some("gpu0"))
        .unwrap();
    gpu.as_table_mut()
        .unwrap()
        .entry("params")
        .or_insert_with(|| toml::Table::new().into())
        .as_table_mut()
        .unwrap()
        .insert("step_mw".into(), 2_000.into());
    let mut drop_in = toml::Table::new();
    drop_in.insert("agents".into(), agents.into());
    let drop_in_text = format!(
        "{}\n[guardian.limits.\"power.limit:gpu0\"]\nmax_step = 1_000\n",
        toml::to_string(&drop_in).unwrap()
    );
    std::fs::write(dir.path().join("gamesa.d/50-reload.toml"), drop_in_text).unwrap();
    let before = leases(&socket);
    assert!(
        !before.leases.is_empty(),
        "no lease to keep: the check would be empty"
    );
    hang_up(&daemon);
    let reloaded = wait_for(&log, "config reloaded");
    let after = leases(&socket);
    assert!(reloaded.contains("guardian"), "{reloaded}");
    assert!(reloaded.contains("params"), "{reloaded}");
    // Every lease live before the reload and not yet expired after it is still there.
    let still: BTreeSet<_> = after.leases.iter().map(|lease| lease.lease).collect();
    let after_tick = after.tick.unwrap();
    let lost: Vec<_> = before
        .leases
        .iter()
        .filter(|lease| lease.expires_at > after_tick && !still.contains(&lease.lease))
        .collect();
    assert!(lost.is_empty(), "leases lost across the reload: {lost:?}");

    // Then an invalid one: refused, logged, and the daemon runs on.
    std::fs::write(
        dir.path().join("gamesa.d/60-bad.toml"),
        "[runtime]\ntick_hz = 5000\n",
    )
    .unwrap();
    hang_up(&daemon);
    wait_for(&log, "the running config stays");
    // And one that needs a restart: refused the same way.
    std::fs::write(
        dir.path().join("gamesa.d/60-bad.toml"),
        "[runtime]\ntick_hz = 20\n",
    )
    .unwrap();
    hang_up(&daemon);
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(&log, "the running config stays") < 2 {
        assert!(
            Instant::now() < deadline,
            "{}",
            log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    sender.join().unwrap();
    let (answered, refused) = reader.join().unwrap();
    assert_eq!(answered.len() as u64, REQUESTS);
    assert!(refused.is_empty(), "refused: {refused:?}");
    assert_eq!(count(&log, "config reloaded"), 1);

    stop(&mut daemon);

    // The journal marks the one reload that applied.
    let journal = rusqlite::Connection::open(dir.path().join("journal.sqlite")).unwrap();
    let reloads: i64 = journal
        .query_row(
            "SELECT count(*) FROM events WHERE kind = 'reload'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(reloads, 1);
    drop(journal);

    assert_replays(dir.path());
}

/// `gamesa reload` finds the daemon by the pid file in its runtime directory; a file
/// left by a killed daemon signals nothing.
#[test]
fn gamesa_reload_signals_the_daemon_named_by_its_pid_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gamesa.toml"),
        toml::to_string(&base_config(dir.path())).unwrap(),
    )
    .unwrap();
    let (mut daemon, log) = start(dir.path());
    let reload = || {
        Command::new(env!("CARGO_BIN_EXE_gamesa"))
            .arg("reload")
            .env("RUNTIME_DIRECTORY", dir.path())
            .output()
            .unwrap()
    };
    let output = reload();
    assert!(output.status.success(), "{output:?}");
    wait_for(&log, "config reloaded: nothing changed");
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    // SIGKILL left the pid file, but no process holds its lock: nothing is signalled.
    assert!(dir.path().join("gamesa.pid").exists());
    let output = reload();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is gone"), "{stderr}");
}

/// A reload adds an agent and removes another: the new one trades under an id never
/// used before, the removed one's leases are revoked and it is never asked again, the
/// others keep theirs, and the run replays identically.
#[test]
fn a_reload_adds_and_removes_agents_and_replays() {
    use gamesa_wire::AgentsResult;

    let (dir, base) = config_dir();
    let socket = dir.path().join("gamesa.sock");
    let (mut daemon, log) = start(dir.path());
    let ask_agents = || -> AgentsResult {
        let mut client = Client::connect_unix(&socket).unwrap();
        client.hello("game", TOKEN).unwrap();
        client.call_as(&Request::query(QueryName::Agents)).unwrap()
    };
    let before = ask_agents();
    let id_of = |agents: &AgentsResult, name: &str| {
        agents
            .agents
            .iter()
            .find(|entry| entry.name == name)
            .map(|entry| entry.id)
    };
    let highest = before.agents.iter().map(|entry| entry.id.0).max().unwrap();
    // Wait until the thermal agent sells headroom, so that its removal has leases to
    // revoke.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !leases(&socket)
        .leases
        .iter()
        .any(|lease| lease.seller_name == "thermal")
    {
        assert!(Instant::now() < deadline, "thermal never sold headroom");
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut agents: Vec<toml::Value> = base["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|agent| agent["id"].as_str() != Some("thermal"))
        .cloned()
        .collect();
    let mut memory2 = agents
        .iter()
        .find(|agent| agent["kind"].as_str() == Some("memory"))
        .unwrap()
        .clone();
    memory2["id"] = "memory2".into();
    agents.push(memory2);
    let mut drop_in = toml::Table::new();
    drop_in.insert("agents".into(), agents.into());
    std::fs::write(
        dir.path().join("gamesa.d/50-agents.toml"),
        toml::to_string(&drop_in).unwrap(),
    )
    .unwrap();
    hang_up(&daemon);
    let reloaded = wait_for(&log, "config reloaded");
    assert!(reloaded.contains("agent added: memory2"), "{reloaded}");
    assert!(reloaded.contains("agent removed: thermal"), "{reloaded}");

    let after = ask_agents();
    assert_eq!(id_of(&after, "thermal"), None);
    let memory2 = id_of(&after, "memory2").expect("memory2 is a participant");
    assert!(memory2.0 > highest, "{memory2} reuses an id");
    for kept in ["cpu", "gpu0", "memory", "power", "game"] {
        assert_eq!(
            id_of(&after, kept),
            id_of(&before, kept),
            "{kept} kept its id"
        );
    }
    // The headroom thermal sold stays with its buyers until it expires (no limit
    // jumps), and thermal sells no more: after an epoch (10 ticks) none is left.
    let sold_until = leases(&socket)
        .leases
        .iter()
        .filter(|lease| lease.seller_name == "thermal")
        .map(|lease| lease.expires_at)
        .max();
    std::thread::sleep(Duration::from_millis(1_300));
    let now = leases(&socket);
    let left: Vec<_> = now
        .leases
        .iter()
        .filter(|lease| lease.seller_name == "thermal" || lease.holder_name == "thermal")
        .collect();
    assert!(
        left.is_empty(),
        "{left:?} (sold until {sold_until:?}, now {:?})",
        now.tick
    );
    // Gone, not isolated: the daemon is healthy.
    let mut client = Client::connect_unix(&socket).unwrap();
    let health: gamesa_wire::HealthResult =
        client.call_as(&Request::query(QueryName::Health)).unwrap();
    assert_eq!(health.status, "ok", "{health:?}");
    assert!(health.isolated.is_empty(), "{health:?}");

    std::thread::sleep(Duration::from_millis(500));
    stop(&mut daemon);
    // The journal names the newcomer (in its rows, snapshots and `why`).
    let journal = rusqlite::Connection::open(dir.path().join("journal.sqlite")).unwrap();
    let participants: String = journal
        .query_row("SELECT participants FROM runs", [], |row| row.get(0))
        .unwrap();
    assert!(participants.contains("\"memory2\""), "{participants}");
    drop(journal);
    assert_replays(dir.path());
}

#[test]
fn a_reload_adds_and_replaces_a_wasm_agent_without_restarting_the_others() {
    use gamesa_wire::AgentsResult;

    let (dir, base) = config_dir();
    let socket = dir.path().join("gamesa.sock");
    let first = dir.path().join("cores-1.wasm");
    let second = dir.path().join("cores-2.wasm");
    std::fs::copy(build_guest::module(build_guest::EXAMPLE), &first).unwrap();
    std::fs::copy(&first, &second).unwrap();
    let (mut daemon, log) = start(dir.path());
    let agents = || -> AgentsResult {
        let mut client = Client::connect_unix(&socket).unwrap();
        client.hello("game", TOKEN).unwrap();
        client.call_as(&Request::query(QueryName::Agents)).unwrap()
    };
    let before = agents();
    let with_wasm = |module: &Path| {
        let mut listed: Vec<toml::Value> = base["agents"].as_array().unwrap().clone();
        let wasm: toml::Table = format!(
            r#"kind = "wasm"
               id = "cores0"
               module = "{}"
               effects = ["order:cpu_cores"]
               params = {{ cores = 2, price = 500 }}"#,
            module.display()
        )
        .parse()
        .unwrap();
        listed.push(wasm.into());
        let mut drop_in = toml::Table::new();
        drop_in.insert("agents".into(), listed.into());
        std::fs::write(
            dir.path().join("gamesa.d/50-agents.toml"),
            toml::to_string(&drop_in).unwrap(),
        )
        .unwrap();
    };

    with_wasm(&first);
    hang_up(&daemon);
    let added = wait_for(&log, "config reloaded");
    assert!(added.contains("agent added: cores0"), "{added}");
    // Its asks rest in the cpu_cores book, under its own id.
    let after = agents();
    let cores0 = after
        .agents
        .iter()
        .find(|entry| entry.name == "cores0")
        .expect("cores0 is a participant")
        .id;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut client = Client::connect_unix(&socket).unwrap();
        client.hello("game", TOKEN).unwrap();
        let mut query = gamesa_wire::QueryRequest::new(QueryName::Book);
        query.resource = Some(gamesa_proto::Resource::CpuCores);
        let book: gamesa_wire::BookResult = client.call_as(&Request::Query(query)).unwrap();
        if book.asks.iter().any(|level| level.price.0 == 500) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cores0 ({cores0}) never offered at 500: {book:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    with_wasm(&second);
    hang_up(&daemon);
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&log, "config reloaded") < 2 {
        assert!(Instant::now() < deadline, "no second reload in the log");
        std::thread::sleep(Duration::from_millis(20));
    }
    let replaced = log
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains("config reloaded"))
        .nth(1)
        .cloned()
        .unwrap();
    assert!(replaced.contains(".module"), "{replaced}");
    for kept in &before.agents {
        assert!(
            agents()
                .agents
                .iter()
                .any(|entry| entry.name == kept.name && entry.id == kept.id),
            "{} kept its id",
            kept.name
        );
    }
    assert_eq!(count(&log, "agent failed"), 0, "an agent failed");
    let mut client = Client::connect_unix(&socket).unwrap();
    let health: gamesa_wire::HealthResult =
        client.call_as(&Request::query(QueryName::Health)).unwrap();
    assert!(health.isolated.is_empty(), "{health:?}");

    std::thread::sleep(Duration::from_millis(500));
    stop(&mut daemon);
    assert_replays(dir.path());
    // The journal kept the module that ran: replay runs it after the file was rebuilt
    // in place (here, to another guest altogether) and after it was removed.
    std::fs::copy(build_guest::module(build_guest::HOSTILE), &first).unwrap();
    std::fs::remove_file(&second).unwrap();
    assert_replays(dir.path());
}
