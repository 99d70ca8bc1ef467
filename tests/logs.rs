//! `gamesa run`'s log lines carry no ANSI colour codes when stderr is not a terminal
//! (journald, a file, a pipe), so that they read as plain text there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn logs_to_a_pipe_are_plain_text() {
    let state = tempfile::tempdir().unwrap();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .current_dir(&root)
        .args(["run", "--config", "config/sim.toml", "--duration-s", "0.3"])
        .env("STATE_DIRECTORY", state.path())
        .env("GAMESA__TELEMETRY__ENABLED", "false")
        .env("GAMESA_LOG", "info")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("gamesa running"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}
