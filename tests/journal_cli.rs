//! The journal through the binary: `gamesa run` killed with SIGKILL mid-run loses at
//! most the batch being filled, the next start opens the journal cleanly and appends a
//! run, and `gamesa replay` and `gamesa why` read what was kept. Bad input to both is a
//! clear error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use gamesa_runtime::journal::{
    JournalReader,
    replay::{self, TickRange},
};
use support::*;

/// `gamesa` with the twin's config, its scenario and the journal in `state`, and
/// batches of 5 ticks.
fn gamesa(state: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gamesa"));
    command
        .current_dir(repo_root())
        .env_remove("XDG_STATE_HOME")
        .env("STATE_DIRECTORY", state)
        .env(
            "GAMESA__SENSORS__SCENARIO",
            scenario("gpu_bottleneck.toml").display().to_string(),
        )
        .env("GAMESA__JOURNAL__BATCH_TICKS", "5")
        .env("GAMESA__TELEMETRY__ENABLED", "false")
        .env("GAMESA_LOG", "warn");
    command
}

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_killed_run_keeps_its_committed_batches_and_the_next_start_opens_the_journal() {
    let state = tempfile::tempdir().unwrap();
    let path = state.path().join("journal.sqlite");
    let mut child = gamesa(state.path())
        .args(["run", "--config", "config/sim.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until a few batches are committed, then kill it mid-run.
    let deadline = Instant::now() + Duration::from_secs(60);
    let committed = loop {
        assert!(Instant::now() < deadline, "no batches committed in 60 s");
        std::thread::sleep(Duration::from_millis(100));
        let Ok(reader) = JournalReader::open(&path) else {
            continue;
        };
        if let Ok(Some((_, last))) = reader.tick_range(1)
            && last.0 >= 20
        {
            break last.0;
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();

    let reader = JournalReader::open(&path).unwrap();
    let killed = reader.run(Some(1)).unwrap();
    assert_eq!(killed.ended_ms, None, "a killed run never says it ended");
    let (first, last) = reader.tick_range(1).unwrap().unwrap();
    assert_eq!(first.0, 0);
    assert!(last.0 >= committed);
    // Whole batches only: the last one ends on a batch boundary of 5.
    assert_eq!((last.0 + 1) % 5, 0, "a batch was committed half-way");
    let report = replay::replay(&reader, &builtin(), Some(1), TickRange::default()).unwrap();
    assert_eq!(report.divergence, None, "{report}");
    assert_eq!(report.compared, last.0 + 1);
    drop(reader);

    // The next start opens it cleanly and appends a run that ends.
    let output = run(gamesa(state.path()).args([
        "run",
        "--config",
        "config/sim.toml",
        "--duration-s",
        "1.5",
    ]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let reader = JournalReader::open(&path).unwrap();
    let integrity: String = reader
        .connection()
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let runs = reader.runs().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs[1].ended_ms.is_some());

    // `gamesa replay` and `gamesa why` on it.
    let journal = path.display().to_string();
    let output = run(gamesa(state.path()).args(["replay", "--journal", &journal, "--run", "1"]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(&format!("{} ticks, 100 % identical decisions", last.0 + 1)),
        "{stdout}"
    );
    let output = run(gamesa(state.path()).args([
        "why",
        "--component",
        "gpu0",
        "--tick",
        "15",
        "--run",
        "1",
    ]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with("gpu0 at tick 15 of run 1"), "{stdout}");
    assert!(stdout.contains("reading: drawing"), "{stdout}");
    let output = run(gamesa(state.path()).args([
        "why",
        "--component",
        "gpu0",
        "--tick",
        "15",
        "--run",
        "1",
        "--json",
    ]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["tick"], 15);
    assert_eq!(json["component"], "gpu0");
    assert!(json["reading"]["power_mw"].is_u64(), "{json}");
}

#[test]
fn bad_input_to_replay_and_why_is_a_clear_error() {
    let state = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["replay", "--journal", "/nonexistent/journal.sqlite"],
            "no such file",
        ),
        (
            &["why", "--component", "gpu0", "--at", "yesterday-ish"],
            "neither a tick nor a time",
        ),
        (
            &["why", "--component", "gpu0", "--correlation", "not-a-uuid"],
            "is not a correlation id",
        ),
        (&["why", "--component", "gpu0"], "--at"),
    ];
    for (args, expected) in cases {
        let output = run(gamesa(state.path()).args(args));
        assert!(!output.status.success(), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
