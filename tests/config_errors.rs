//! `gamesa check-config`: the bundled configs are valid, and each kind of bad config
//! exits 78 with a message that names the key (and the line, where TOML gives one).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, process::Command};

fn check_config(path: &Path) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .arg("check-config")
        .arg(path)
        .env("GAMESA_LOG", "error")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn the_bundled_configs_are_valid() {
    for file in ["config/default.toml", "config/sim.toml"] {
        let (code, stdout, stderr) = check_config(&repo(file));
        assert_eq!(code, Some(0), "{file}: {stderr}");
        assert!(stdout.contains("[runtime]"), "{file}: {stdout}");
    }
}

/// `config/sim.toml` with `from` replaced by `to`, checked from a temporary file next to
/// a copy of its scenario path.
fn broken(from: &str, to: &str) -> (Option<i32>, String) {
    let text = std::fs::read_to_string(repo("config/sim.toml")).unwrap();
    assert!(
        text.contains(from),
        "fixture drifted: `{from}` not in sim.toml"
    );
    let text = text.replacen(from, to, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, text).unwrap();
    let (code, _, stderr) = check_config(&path);
    (code, stderr)
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let (code, stderr) = broken("tick_hz = 10", "tick_hz = 10\ntick_hzz = 20");
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("tick_hzz"), "{stderr}");
    assert!(stderr.contains("line"), "{stderr}");
}

#[test]
fn an_unknown_agent_kind_is_named() {
    let (code, stderr) = broken(r#"kind = "memory""#, r#"kind = "memroy""#);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("agents[2].kind"), "{stderr}");
    assert!(stderr.contains("memroy"), "{stderr}");
}

#[test]
fn an_effect_that_does_not_exist_is_named() {
    let (code, stderr) = broken(r#""signal:efficiency""#, r#""signal:loudness""#);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("signal:loudness"), "{stderr}");
}

#[test]
fn a_contract_that_does_not_parse_shows_where() {
    let (code, stderr) = broken(
        "sum(power.limit_mw) <= node.cap_mw",
        "sum(power.limit_mw) <= node.capp_mw",
    );
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("guardian.contracts[0].expr"), "{stderr}");
    assert!(stderr.contains("node.capp_mw"), "{stderr}");
    assert!(stderr.contains("column"), "{stderr}");
}

#[test]
fn a_tick_rate_out_of_range_is_named() {
    let (code, stderr) = broken("tick_hz = 10", "tick_hz = 5000");
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("runtime.tick_hz"), "{stderr}");
    assert!(stderr.contains("1..=1000"), "{stderr}");
}

#[test]
fn an_environment_override_applies_and_is_checked() {
    let output = Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .arg("check-config")
        .arg(repo("config/sim.toml"))
        .env("GAMESA__RUNTIME__TICK_HZ", "0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&output.stderr).contains("runtime.tick_hz"));
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let (code, _, stderr) = check_config(Path::new("/nonexistent/gamesa.toml"));
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("/nonexistent/gamesa.toml"), "{stderr}");
}
