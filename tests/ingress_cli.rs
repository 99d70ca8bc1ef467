//! `gamesa run` starts the ingress listeners its config enables, and `gamesa send`
//! talks to it: a health query, a signal, a progress report, a book, JSON output, a
//! watch, and a refusal with its error code and exit status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ingress_support;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Output, Stdio},
};

use ingress_support::repo_root;

fn write_config(dir: &Path) -> std::path::PathBuf {
    let mut table: toml::Table = std::fs::read_to_string(repo_root().join("config/sim.toml"))
        .unwrap()
        .parse()
        .unwrap();
    table["sensors"]["scenario"] = toml::Value::String(
        repo_root()
            .join("scenarios/gpu_bottleneck.toml")
            .display()
            .to_string(),
    );
    table["runtime"]["status_interval_s"] = 0.into();
    let extra: toml::Table = format!(
        r#"
        [ingress]
        unix_enabled = true
        unix_socket = "{}"

        [[clients]]
        name = "game"
        token = "game-token-0001"
        effects = ["signal:performance", "query:*", "subscribe:*", "progress:gpu0"]

        [[clients]]
        name = "reader"
        token = "reader-token-0001"
        effects = ["query:health"]
        "#,
        dir.join("gamesa.sock").display()
    )
    .parse()
    .unwrap();
    table.extend(extra);
    let path = dir.join("gamesa.toml");
    std::fs::write(&path, toml::to_string(&table).unwrap()).unwrap();
    path
}

/// Starts the daemon and returns once it says its socket listens.
fn start_daemon(config: &Path) -> Child {
    // Run in the config's directory, which is also its state directory: anything the
    // daemon writes (its trace file included) stays in the test's temporary directory.
    let mut child = Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .current_dir(config.parent().unwrap())
        .env("STATE_DIRECTORY", config.parent().unwrap())
        .args(["run", "--config"])
        .arg(config)
        .args(["--duration-s", "60"])
        .env("GAMESA_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines
            .next()
            .expect("the daemon exited before listening")
            .unwrap();
        if line.contains("ingress listening on a unix socket") {
            break;
        }
    }
    // Keep draining stderr so the daemon never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

/// The `game` client, said hello, with a 10 s read timeout.
fn game_client(socket: &Path) -> gamesa_wire::Client<std::os::unix::net::UnixStream> {
    let mut client = gamesa_wire::Client::connect_unix(socket).unwrap();
    client.hello("game", "game-token-0001").unwrap();
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    client
}

/// The `game` client, subscribed to `topic`.
fn subscribed(
    socket: &Path,
    topic: gamesa_wire::Topic,
) -> gamesa_wire::Client<std::os::unix::net::UnixStream> {
    let mut client = game_client(socket);
    client
        .call(&gamesa_wire::Request::Subscribe(
            gamesa_wire::TopicRequest { topic },
        ))
        .unwrap()
        .outcome
        .unwrap();
    client
}

fn send(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .arg("send")
        .arg("--unix")
        .arg(socket)
        .args(args)
        .env_remove("GAMESA_TCP")
        .env_remove("GAMESA_CLIENT")
        .env_remove("GAMESA_TOKEN")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn gamesa_send_talks_to_gamesa_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let socket = dir.path().join("gamesa.sock");
    let mut daemon = start_daemon(&config);
    let game = ["--client", "game", "--token", "game-token-0001"];

    let health = stdout(&send(&socket, &["query", "health"]));
    assert!(health.starts_with("ok: gamesa/"), "{health}");

    let mut args = game.to_vec();
    args.extend([
        "signal",
        "--kind",
        "game_started",
        "--domain",
        "performance",
        "--strength",
        "0.9",
    ]);
    let signal = stdout(&send(&socket, &args));
    assert!(signal.contains("queued for tick"), "{signal}");

    let mut args = game.to_vec();
    args.extend(["progress", "--component", "gpu0", "--amount", "12.5"]);
    let progress = stdout(&send(&socket, &args));
    assert!(
        progress.contains("12.5 of gpu0 queued for tick") && progress.contains("12500000"),
        "{progress}"
    );
    for bad in [
        ["--amount=-1", "--left=1"],
        ["--amount=nan", "--left=1"],
        ["--amount=inf", "--left=1"],
        ["--amount=1", "--left=-1"],
        ["--amount=1", "--left=nan"],
    ] {
        let mut args = game.to_vec();
        args.extend(["progress", "--component", "gpu0"]);
        args.extend(bad);
        let amount = if bad[0] == "--amount=1" {
            bad[1]
        } else {
            bad[0]
        };
        let bad = send(&socket, &args);
        assert_eq!(bad.status.code(), Some(2), "{amount} is a usage error");
        let message = String::from_utf8_lossy(&bad.stderr);
        let flag = amount.split('=').next().unwrap();
        assert!(message.contains(flag), "{message}");
    }
    let mut args = game.to_vec();
    args.extend(["progress", "--component", "cpu", "--amount", "1"]);
    let refused = send(&socket, &args);
    assert_eq!(refused.status.code(), Some(1));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("error forbidden"), "{message}");

    let mut args = game.to_vec();
    args.extend(["query", "book", "--resource", "power_budget_mw"]);
    let book = stdout(&send(&socket, &args));
    assert!(book.starts_with("power_budget_mw at tick"), "{book}");

    let mut args = game.to_vec();
    args.extend(["--json", "query", "agents"]);
    let agents: serde_json::Value = serde_json::from_str(&stdout(&send(&socket, &args))).unwrap();
    assert_eq!(agents["agents"].as_array().unwrap().len(), 7);

    let mut args = game.to_vec();
    args.extend(["--json", "query", "decisions", "--limit", "5"]);
    let decisions: serde_json::Value =
        serde_json::from_str(&stdout(&send(&socket, &args))).unwrap();
    assert!(decisions["decisions"].as_array().unwrap().len() <= 5);
    assert!(decisions["newest_tick"].as_u64().is_some(), "{decisions}");

    let mut args = game.to_vec();
    args.extend(["query", "decisions", "--correlation", "not-a-uuid"]);
    let bad = send(&socket, &args);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a bad argument is a usage error"
    );
    let message = String::from_utf8_lossy(&bad.stderr);
    assert!(message.contains("--correlation not-a-uuid"), "{message}");

    let mut args = game.to_vec();
    args.extend(["watch", "prices", "--count", "2"]);
    let watched = stdout(&send(&socket, &args));
    assert_eq!(
        watched
            .lines()
            .filter(|line| line.contains("prices:"))
            .count(),
        2
    );

    let refused = send(
        &socket,
        &[
            "--client",
            "reader",
            "--token",
            "reader-token-0001",
            "query",
            "telemetry",
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("error forbidden"), "{message}");

    let status = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(daemon.wait().unwrap().success());
    assert!(!socket.exists(), "the socket file is removed on stop");
}

/// SIGINT to `gamesa run` with 16 subscribed connections, each with more replies owed
/// than the socket holds: every one is told `shutting_down` before it is closed, and
/// the daemon exits 0.
#[test]
fn sigint_tells_every_one_of_sixteen_subscribers_shutting_down() {
    use std::io::Write;

    use gamesa_wire::{ClientError, ErrorCode, QueryName, Request, ServerFrame, Topic};

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let socket = dir.path().join("gamesa.sock");
    let mut daemon = start_daemon(&config);
    let mut backlog = Vec::new();
    for id in 1_000..4_000 {
        Request::query(QueryName::Telemetry)
            .encode(id, &mut backlog)
            .unwrap();
    }
    let mut writers = Vec::new();
    let mut subscribers: Vec<_> = (0..16)
        .map(|_| subscribed(&socket, Topic::Prices))
        .collect();
    for client in &mut subscribers {
        // Live: it has had an event. Then it asks for more than it reads.
        client.next_event().unwrap();
        let mut writer = client.stream().try_clone().unwrap();
        let backlog = backlog.clone();
        writers.push(std::thread::spawn(move || {
            let _ = writer.write_all(&backlog);
        }));
    }
    let status = Command::new("kill")
        .args(["-INT", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let readers: Vec<_> = subscribers
        .into_iter()
        .map(|mut client| {
            std::thread::spawn(move || {
                loop {
                    match client.next_frame() {
                        Ok(ServerFrame::Event(_)) => {}
                        Ok(ServerFrame::Reply(reply)) if reply.id.is_some() => {}
                        Ok(ServerFrame::Reply(reply)) => {
                            let code = reply.outcome.unwrap_err().code;
                            let end = client.next_frame();
                            return (code == ErrorCode::ShuttingDown
                                && matches!(end, Err(ClientError::Closed)))
                            .then_some(())
                            .ok_or(format!("{code}, then {end:?}"));
                        }
                        Err(error) => return Err(format!("no notice: {error}")),
                    }
                }
            })
        })
        .collect();
    for (index, reader) in readers.into_iter().enumerate() {
        let told = reader.join().unwrap();
        assert!(told.is_ok(), "subscriber {index}: {told:?}");
    }
    for writer in writers {
        writer.join().unwrap();
    }
    assert!(daemon.wait().unwrap().success());
}

/// `gamesa exec` holds its signal on one connection for exactly the command's life: the
/// signal is taken in with no expiry when the command starts, released (a ttl of one
/// tick) when it ends, and the command's exit code comes back.
#[test]
fn gamesa_exec_holds_a_signal_for_the_commands_lifetime() {
    use gamesa_wire::{SignalEvent, Topic};

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let socket = dir.path().join("gamesa.sock");
    let mut daemon = start_daemon(&config);
    let mut watcher = subscribed(&socket, Topic::Signals);
    let started = std::time::Instant::now();
    let exec = Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .args(["exec", "--unix"])
        .arg(&socket)
        .args(["--client", "game", "--token", "game-token-0001"])
        .args(["--profile", "render", "--", "sh", "-c", "sleep 1; exit 3"])
        .env_remove("GAMESA_TCP")
        .output()
        .unwrap();
    let ran_for = started.elapsed();
    assert_eq!(
        exec.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&exec.stderr)
    );
    let mut render = Vec::new();
    while render.len() < 2 {
        let event = watcher.next_event().unwrap();
        assert_eq!(event.topic, Topic::Signals);
        let signal: SignalEvent = event.data_as().unwrap();
        if signal.kind.as_str() == "render_started" {
            render.push((signal.ttl_ticks, started.elapsed()));
        }
    }
    assert_eq!(render[0].0, u32::MAX, "held: live until released");
    assert_eq!(render[1].0, 1, "released: gone after the next tick");
    assert!(
        render[1].1 >= std::time::Duration::from_secs(1),
        "released only after the command ran: {render:?}, exec took {ran_for:?}"
    );
    daemon.kill().unwrap();
    daemon.wait().unwrap();
}

/// Without a daemon, `gamesa exec` says so once and runs the command all the same.
#[test]
fn gamesa_exec_without_a_daemon_warns_and_runs_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let exec = Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .args(["exec", "--unix"])
        .arg(dir.path().join("nobody-listens.sock"))
        .args(["--", "sh", "-c", "echo ran; exit 5"])
        .output()
        .unwrap();
    assert_eq!(exec.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&exec.stdout), "ran\n");
    let stderr = String::from_utf8_lossy(&exec.stderr);
    assert_eq!(stderr.matches("no signal held").count(), 1, "{stderr}");
}

/// `gamesa exec --cores 2` buys two cores on the market and keeps its command in a
/// cgroup (here under a fake cgroup v2 directory) whose `cpuset.cpus` is the cores its
/// leases hold, then removes the cgroup when the command ends.
#[test]
fn gamesa_exec_cores_pins_the_command_to_the_cores_it_leased() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    // The twin reports no per-core load, so the cpu agent is told how many it sells.
    let mut table: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
    for agent in table["agents"].as_array_mut().unwrap() {
        if agent["id"].as_str() == Some("cpu") {
            let params = agent
                .as_table_mut()
                .unwrap()
                .entry("params")
                .or_insert_with(|| toml::Table::new().into());
            params
                .as_table_mut()
                .unwrap()
                .insert("cores".into(), 4.into());
        }
    }
    for client in table["clients"].as_array_mut().unwrap() {
        if client["name"].as_str() == Some("game") {
            client["effects"]
                .as_array_mut()
                .unwrap()
                .push("order:cpu_cores".into());
        }
    }
    std::fs::write(&config, toml::to_string(&table).unwrap()).unwrap();
    let socket = dir.path().join("gamesa.sock");
    let cgroups = dir.path().join("cgroup");
    std::fs::create_dir(&cgroups).unwrap();
    std::fs::write(cgroups.join("cgroup.subtree_control"), "").unwrap();
    let seen = dir.path().join("seen");
    let mut daemon = start_daemon(&config);
    // The command waits until its cpuset is written, then reports what it saw.
    let script = format!(
        "for i in $(seq 100); do c=$(cat \"$CG\"/gamesa-exec-*/cpuset.cpus 2>/dev/null); \
         [ -n \"$c\" ] && break; sleep 0.05; done; \
         echo \"$c\" > {seen}; cat \"$CG\"/gamesa-exec-*/cgroup.procs >> {seen}; \
         echo $$ >> {seen}; exit 4",
        seen = seen.display()
    );
    let exec = Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .args(["exec", "--unix"])
        .arg(&socket)
        .args([
            "--client",
            "game",
            "--token",
            "game-token-0001",
            "--cores",
            "2",
        ])
        .arg("--cgroup-root")
        .arg(&cgroups)
        .args(["--", "sh", "-c", &script])
        .env("CG", &cgroups)
        .env_remove("GAMESA_TCP")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&exec.stderr);
    assert_eq!(exec.status.code(), Some(4), "{stderr}");
    let seen = std::fs::read_to_string(&seen).unwrap();
    let mut lines = seen.lines();
    let cpus = lines.next().unwrap();
    assert!(
        !cpus.is_empty(),
        "the command ran without its cores: {stderr}"
    );
    let cores: u32 = cpus
        .split(',')
        .map(|part| match part.split_once('-') {
            Some((first, last)) => last.parse::<u32>().unwrap() - first.parse::<u32>().unwrap() + 1,
            None => {
                part.parse::<u32>().unwrap();
                1
            }
        })
        .sum();
    assert_eq!(cores, 2, "the cpuset is the two leased cores: {cpus}");
    let member: u32 = lines.next().unwrap().trim().parse().unwrap();
    let itself: u32 = lines.next().unwrap().trim().parse().unwrap();
    assert_eq!(
        member, itself,
        "the command itself is in the cgroup, from its start"
    );
    assert!(stderr.contains("cpuset.cpus"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&cgroups)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().starts_with("gamesa-exec-"))
        .collect();
    assert!(left.is_empty(), "the command's cgroup stays: {left:?}");
    daemon.kill().unwrap();
    daemon.wait().unwrap();
}

/// `gamesa send watch --plot` records a live run's ticks over the socket and draws
/// them as `gamesa sim --plot` draws a simulated one.
#[test]
fn gamesa_send_watch_plot_draws_the_live_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let socket = dir.path().join("gamesa.sock");
    let mut daemon = start_daemon(&config);
    let out = dir.path().join("live.svg");
    let output = send(
        &socket,
        &[
            "--client",
            "game",
            "--token",
            "game-token-0001",
            "watch",
            "--plot",
            out.to_str().unwrap(),
            "--seconds",
            "1.5",
        ],
    );
    let printed = stdout(&output);
    let ticks: usize = printed
        .trim()
        .rsplit(": ")
        .next()
        .and_then(|tail| tail.strip_suffix(" ticks"))
        .unwrap()
        .parse()
        .unwrap();
    // 1.5 s at 10 Hz, give or take the poll.
    assert!((10..=17).contains(&ticks), "{printed}");
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    for label in [
        "cpu draw",
        "gpu0 limit",
        "gpu0 temperature",
        "gpu0 t_max",
        "cap",
    ] {
        assert!(svg.contains(label), "no `{label}` in the plot");
    }
    // Without the query effects, a clear refusal.
    let refused = send(
        &socket,
        &[
            "--client",
            "reader",
            "--token",
            "reader-token-0001",
            "watch",
            "--plot",
            out.to_str().unwrap(),
            "--seconds",
            "1",
        ],
    );
    assert!(!refused.status.success());
    daemon.kill().unwrap();
    daemon.wait().unwrap();
}

/// Two connections of one client holding the same kind (two `gamesa exec` runs of a
/// game launcher): the signal is released only when the last of them closes.
#[test]
fn a_held_signal_is_released_when_its_last_holder_closes() {
    use gamesa_proto::{Domain, SignalKind, Strength};
    use gamesa_wire::{Request, SignalEvent, SignalRequest, Topic};

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let socket = dir.path().join("gamesa.sock");
    let mut daemon = start_daemon(&config);
    let mut watcher = subscribed(&socket, Topic::Signals);
    let hold = Request::Signal(SignalRequest {
        kind: SignalKind::new("game_started").unwrap(),
        domain: Domain::Performance,
        strength: Strength::try_from(0.8).unwrap(),
        ttl_ticks: None,
        hold: true,
    });
    let mut first = game_client(&socket);
    let mut second = game_client(&socket);
    first.call(&hold).unwrap().outcome.unwrap();
    second.call(&hold).unwrap().outcome.unwrap();
    let mut next_game_signal = || loop {
        let event = watcher.next_event().unwrap();
        let signal: SignalEvent = event.data_as().unwrap();
        if signal.kind.as_str() == "game_started" {
            return (signal.ttl_ticks, event.tick);
        }
    };
    // Both holds may land in one tick, where the queue keeps one of them.
    assert_eq!(next_game_signal().0, u32::MAX);
    drop(first);
    // Ten ticks later the second still holds it: no release came.
    std::thread::sleep(std::time::Duration::from_millis(1_000));
    drop(second);
    let (ttl, released_at) = loop {
        let (ttl, tick) = next_game_signal();
        if ttl != u32::MAX {
            break (ttl, tick);
        }
    };
    assert_eq!(ttl, 1, "the release comes when the last holder closes");
    let health = send(&socket, &["query", "health"]);
    let tick_now: u64 = stdout(&health)
        .split("tick ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        tick_now.saturating_sub(released_at.0) < 5,
        "released at tick {released_at:?}, now {tick_now}: it waited for the second"
    );
    daemon.kill().unwrap();
    daemon.wait().unwrap();
}
