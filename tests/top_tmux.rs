//! `gamesa top` in a real terminal (tmux, 160×50) against a real `gamesa run` on the
//! twin: it shows the components and a price, a signal a client raises, the paused
//! marker on `p`, "disconnected, retrying" when the daemon is killed, the new daemon's
//! data once one is back on the same socket, and it exits 0 on `q`, leaving the
//! alternate screen. And it ends when its terminal goes away, even with SIGHUP ignored.
//!
//! tmux is required: without it this test fails and says how to install it
//! (`scripts/install-test-deps.sh` does).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use gamesa_proto::{Domain, SignalKind, Strength};
use gamesa_wire::{Request, SignalRequest, SignalResult};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How long the screen may take to show what is waited for; only a failing run waits
/// this long.
const PATIENCE: Duration = Duration::from_secs(60);
/// The tick the first daemon must pass before it is killed: far more than the ticks a
/// new daemon runs before top is back, so a lower tick on screen is the new daemon's.
const TICKS_BEFORE_KILL: u64 = 100;

/// A tmux server of this test's own (`tmux -L`), killed when dropped, pass or fail.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start() -> Tmux {
        match Command::new("tmux").arg("-V").output() {
            Ok(output) if output.status.success() => {}
            Ok(output) => panic!(
                "`tmux -V` failed ({}): this test drives `gamesa top` in tmux; \
                 install it (apt-get install tmux, or scripts/install-test-deps.sh)",
                output.status
            ),
            Err(error) => panic!(
                "tmux is not installed ({error}): this test drives `gamesa top` in tmux; \
                 install it (apt-get install tmux, or scripts/install-test-deps.sh)"
            ),
        }
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Tmux {
            socket: format!("gamesa-top-{}-{unique}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            // The server takes its environment from here, and so does top.
            .env_remove("GAMESA_TCP")
            .env_remove("GAMESA_SOCKET")
            .env_remove("GAMESA_CLIENT")
            .env_remove("GAMESA_TOKEN")
            .env_remove("TMUX")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "tmux {args:?}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.ok(&["capture-pane", "-p", "-t", "top"])
    }

    fn keys(&self, keys: &str) {
        self.ok(&["send-keys", "-t", "top", keys]);
    }

    /// The screen once `check` holds of it; fails with the screen after [`PATIENCE`].
    fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen did not show {what} in {PATIENCE:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// A `gamesa run`, killed when dropped.
struct Daemon(Child);

impl Daemon {
    /// Starts the daemon and returns once it says its socket listens.
    fn start(config: &Path) -> Daemon {
        let dir = config.parent().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_gamesa"))
            .current_dir(dir)
            .env("STATE_DIRECTORY", dir)
            .args(["run", "--config"])
            .arg(config)
            // It stops by itself should the test leak it.
            .args(["--duration-s", "300"])
            .env("GAMESA_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let daemon = Daemon(child);
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
        daemon
    }

    /// Kills it at once, as a crash would: its socket file stays behind.
    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_config(dir: &Path) -> PathBuf {
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
        name = "top"
        token = "top-token-000001"
        effects = ["query:*", "subscribe:*"]

        [[clients]]
        name = "game"
        token = "game-token-0001"
        effects = ["signal:performance"]
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

/// The tick in the header (the screen's first line), once there is one.
fn header_tick(screen: &str) -> Option<u64> {
    let header = screen.lines().next()?;
    let after = &header[header.find(" tick ")? + " tick ".len()..];
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Whether the market panel shows a last price.
fn shows_a_price(screen: &str) -> bool {
    screen.lines().any(|line| {
        line.split_once("│last    ")
            .is_some_and(|(_, rest)| rest.starts_with(|c: char| c.is_ascii_digit()))
    })
}

fn shows_components(screen: &str) -> bool {
    screen.contains("│cpu ") && screen.contains("│gpu0 ")
}

fn raise_signal(socket: &Path) {
    let mut client = gamesa_wire::Client::connect_unix(socket).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.hello("game", "game-token-0001").unwrap();
    let _: SignalResult = client
        .call_as(&Request::Signal(SignalRequest {
            kind: SignalKind::new("game_started").unwrap(),
            domain: Domain::Performance,
            strength: Strength::MAX,
            ttl_ticks: Some(600),
            hold: false,
        }))
        .unwrap();
}

#[test]
fn gamesa_top_watches_pauses_survives_a_restart_and_quits() {
    let tmux = Tmux::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let socket = dir.path().join("gamesa.sock");
    let daemon = Daemon::start(&config);

    // top's exit status, written by the shell that runs it: tmux 3.3 can leave a pane's
    // process unreaped (and its status unknown) when another tmux server runs beside it.
    let exit_file = dir.path().join("top.exit");
    let command = format!(
        "'{}' top --unix '{}' --client top --token top-token-000001; echo $? > '{}'",
        env!("CARGO_BIN_EXE_gamesa"),
        socket.display(),
        exit_file.display()
    );
    tmux.ok(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "160",
        "-y",
        "50",
        &command,
        ";",
        "set-option",
        "-w",
        "-t",
        "top",
        "remain-on-exit",
        "on",
    ]);

    tmux.wait_for("the components and a price", |screen| {
        shows_components(screen) && shows_a_price(screen) && screen.contains("connected to")
    });

    raise_signal(&socket);
    tmux.wait_for("the signal raised", |screen| {
        screen.contains("game_started performance 1.00 from game")
    });

    tmux.keys("p");
    tmux.wait_for("the paused marker", |screen| screen.contains("PAUSED"));
    tmux.keys("p");
    tmux.wait_for("the paused marker gone", |screen| {
        !screen.contains("PAUSED")
    });

    tmux.keys("Tab");
    tmux.wait_for("the next resource's market", |screen| {
        screen.contains("market: thermal_headroom_mc")
    });

    let before = tmux.wait_for(&format!("tick {TICKS_BEFORE_KILL} or later"), |screen| {
        header_tick(screen).is_some_and(|tick| tick >= TICKS_BEFORE_KILL)
    });
    let tick_before = header_tick(&before).unwrap();
    daemon.kill();
    tmux.wait_for("disconnected, retrying", |screen| {
        screen.contains("disconnected, retrying")
    });
    assert!(!exit_file.exists(), "top exited when the daemon died");

    let _daemon = Daemon::start(&config);
    let after = tmux.wait_for("the new daemon's data", |screen| {
        !screen.contains("disconnected")
            && screen.contains("connected to")
            && header_tick(screen).is_some_and(|tick| tick < tick_before)
            && shows_components(screen)
    });
    assert!(!after.contains("PAUSED"), "{after}");

    tmux.keys("q");
    tmux.wait_for("top's exit", |_| exit_file.exists());
    // The shell writes the status after creating the file: wait for the newline.
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        let status = std::fs::read_to_string(&exit_file).unwrap();
        if status.ends_with('\n') || Instant::now() >= deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.trim(), "0", "top exits 0 on q");
    let screen = tmux.screen();
    assert!(
        !screen.contains(" components "),
        "top left its alternate screen:\n{screen}"
    );
}

/// Whether process `pid` has ended (gone, or a zombie no one has reaped yet).
fn ended(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

#[test]
fn gamesa_top_ends_when_its_terminal_goes_away_even_with_sighup_ignored() {
    let tmux = Tmux::start();
    let dir = tempfile::tempdir().unwrap();
    // No daemon: top shows that it retries, and the terminal is all there is to lose.
    let command = format!(
        "trap '' HUP; exec '{}' top --unix '{}'",
        env!("CARGO_BIN_EXE_gamesa"),
        dir.path().join("nobody.sock").display()
    );
    tmux.ok(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "100",
        "-y",
        "30",
        &command,
    ]);
    tmux.wait_for("disconnected, retrying", |screen| {
        screen.contains("disconnected, retrying")
    });
    let pid = tmux.ok(&["display-message", "-p", "-t", "top", "#{pane_pid}"]);
    let pid = pid.trim();
    tmux.ok(&["kill-server"]);
    let deadline = Instant::now() + PATIENCE;
    while !ended(pid) {
        assert!(
            Instant::now() < deadline,
            "gamesa top (pid {pid}) still runs {PATIENCE:?} after its terminal went away"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
