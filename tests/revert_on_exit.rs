//! With a real writer pointed at a fake sysfs tree, the `gamesa` binary puts every
//! original value back byte for byte: on SIGTERM and SIGINT, on the start after a
//! SIGKILL, and with `gamesa restore` after one. SIGHUP (a dropped SSH session)
//! reloads: the daemon and its writes stay until a stop restores them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

const ZONE: &str = "sys/class/powercap/intel-rapl:0";
const LIMIT_ORIGINAL: &[u8] = b"65000000\n";
const WINDOW_ORIGINAL: &[u8] = b"27983872\n";

/// A RAPL package zone whose long-term limit is 65 W.
fn fake_root(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    let zone = root.join(ZONE);
    std::fs::create_dir_all(&zone).unwrap();
    for (file, content) in [
        ("name", &b"package-0\n"[..]),
        ("energy_uj", b"1000000\n"),
        ("max_energy_range_uj", b"262143328850\n"),
        ("constraint_0_power_limit_uw", LIMIT_ORIGINAL),
        ("constraint_0_time_window_us", WINDOW_ORIGINAL),
        ("constraint_0_max_power_uw", b"125000000\n"),
    ] {
        std::fs::write(zone.join(file), content).unwrap();
    }
    root
}

fn config(dir: &Path, root: &Path, real: &str) -> PathBuf {
    let text = format!(
        r#"
[runtime]
tick_hz = 50
status_interval_s = 0

[sensors]
source = "linux"
root = "{root}"

[guardian]
cap_mw = 250_000
components = ["cpu"]

[[guardian.contracts]]
name = "node_cap"
phase = "post"
expr = "sum(power.limit_mw) <= node.cap_mw"

[guardian.limits."power.limit:cpu"]
min = 10_000
max = 125_000

[actuators]
real = [{real}]
state_file = "{state}"
power_limits = {{ cpu = {{ via = "powercap", zone = "intel-rapl:0", time_window_us = 1000000 }} }}

[[agents]]
kind = "cpu"
id = "cpu"
effects = ["power.set_limit:cpu", "order:power_budget_mw"]
params = {{ component = "cpu", baseline_mw = 20_000, max_mw = 125_000 }}
"#,
        root = root.display(),
        state = dir.join("state.json").display(),
    );
    let path = dir.join(format!("gamesa-{}.toml", real.len()));
    std::fs::write(&path, text).unwrap();
    path
}

fn gamesa(config: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .arg("run")
        .arg("--config")
        .arg(config)
        .args(extra)
        // The trace file goes into the test's directory, not ~/.local/state/gamesa.
        .env("STATE_DIRECTORY", config.parent().unwrap())
        .env("GAMESA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn limit(root: &Path) -> Vec<u8> {
    std::fs::read(root.join(ZONE).join("constraint_0_power_limit_uw")).unwrap()
}

fn window(root: &Path) -> Vec<u8> {
    std::fs::read(root.join(ZONE).join("constraint_0_time_window_us")).unwrap()
}

/// Waits until the daemon has written the limit (it lowers the idle CPU to 20 W).
fn wait_for_write(root: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    // A fake sysfs file is a plain file: a read that races the daemon's write can find
    // it truncated and still empty (a real sysfs attribute is stored at once).
    while matches!(limit(root).as_slice(), LIMIT_ORIGINAL | []) {
        assert!(child.try_wait().unwrap().is_none(), "gamesa exited early");
        assert!(Instant::now() < deadline, "gamesa never wrote the limit");
        sleep(Duration::from_millis(20));
    }
    assert_eq!(limit(root), b"20000000");
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "gamesa did not exit within {within:?}"
        );
        sleep(Duration::from_millis(10));
    }
}

/// The daemon writes the limit, gets `signal`, and exits with every original back.
fn signal_restores_every_original_byte_for_byte(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let root = fake_root(dir.path());
    let config = config(dir.path(), &root, r#""power.limit:cpu""#);
    let mut child = gamesa(&config, &[]);
    wait_for_write(&root, &mut child);
    assert_eq!(window(&root), b"1000000");

    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The runtime's own budget for a graceful stop is 2 s; 10 s leaves room for a
    // loaded CI machine without hiding a hang.
    let exit = wait_exit(&mut child, Duration::from_secs(10));
    assert!(exit.success(), "SIG{signal}: {exit:?}");
    assert_eq!(limit(&root), LIMIT_ORIGINAL, "SIG{signal}");
    assert_eq!(window(&root), WINDOW_ORIGINAL, "SIG{signal}");
}

#[test]
fn sigterm_restores_every_original_byte_for_byte() {
    signal_restores_every_original_byte_for_byte("TERM");
}

#[test]
fn sigint_restores_every_original_byte_for_byte() {
    signal_restores_every_original_byte_for_byte("INT");
}

#[test]
fn a_hang_up_reloads_and_the_stop_after_it_restores_every_original() {
    let dir = tempfile::tempdir().unwrap();
    let root = fake_root(dir.path());
    let config = config(dir.path(), &root, r#""power.limit:cpu""#);
    let mut child = gamesa(&config, &[]);
    wait_for_write(&root, &mut child);
    let pid = child.id().to_string();
    let kill = |signal: &str| {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    kill("HUP");
    sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "a hang-up reloads; it does not end the daemon"
    );
    assert_ne!(limit(&root), LIMIT_ORIGINAL, "and it restores nothing");
    kill("TERM");
    let exit = wait_exit(&mut child, Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}");
    assert_eq!(limit(&root), LIMIT_ORIGINAL);
    assert_eq!(window(&root), WINDOW_ORIGINAL);
}

#[test]
fn gamesa_restore_puts_back_what_a_killed_run_left() {
    let dir = tempfile::tempdir().unwrap();
    let root = fake_root(dir.path());
    let config = config(dir.path(), &root, r#""power.limit:cpu""#);
    let mut child = gamesa(&config, &[]);
    wait_for_write(&root, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_ne!(limit(&root), LIMIT_ORIGINAL);

    let restore = |config: &Path| {
        Command::new(env!("CARGO_BIN_EXE_gamesa"))
            .args(["restore", "--config"])
            .arg(config)
            .env("GAMESA_LOG", "error")
            .output()
            .unwrap()
    };
    let output = restore(&config);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("restored power.limit:cpu"), "{stdout}");
    assert_eq!(limit(&root), LIMIT_ORIGINAL);
    assert_eq!(window(&root), WINDOW_ORIGINAL);
    // Again: nothing is left to restore, and that is no error.
    let output = restore(&config);
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("nothing to restore"),
        "{output:?}"
    );
}

#[test]
fn the_start_after_a_sigkill_restores_every_original_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let root = fake_root(dir.path());
    let config_real = config(dir.path(), &root, r#""power.limit:cpu""#);
    let mut child = gamesa(&config_real, &[]);
    wait_for_write(&root, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_ne!(
        limit(&root),
        LIMIT_ORIGINAL,
        "the kill left the change in place"
    );
    assert!(dir.path().join("state.json").exists());

    // The next start restores the record, even with every real actuator disabled.
    let config_dry = config(dir.path(), &root, "");
    let mut child = gamesa(&config_dry, &["--duration-s", "0.2"]);
    let exit = wait_exit(&mut child, Duration::from_secs(30));
    assert!(exit.success(), "{exit:?}");
    assert_eq!(limit(&root), LIMIT_ORIGINAL);
    assert_eq!(window(&root), WINDOW_ORIGINAL);
}
