//! The telemetry settings from the environment, checked by the built binary: a
//! malformed `OTEL_*` variable stops `gamesa check-config` and `gamesa run` with exit 78
//! (`EX_CONFIG`) and a message naming the variable and its value, before anything
//! starts; a relative trace file goes under the state directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `gamesa ARGS` with `vars` set, and no `OTEL_*`, `GAMESA__*` or state directory
/// variable inherited from the test's own environment.
fn gamesa(args: &[&str], vars: &[(&str, &str)], state: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gamesa"));
    command.args(args).env("GAMESA_LOG", "error");
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("OTEL_") || text.starts_with("GAMESA__") {
            command.env_remove(&name);
        }
    }
    command
        .env_remove("XDG_STATE_HOME")
        .env("STATE_DIRECTORY", state)
        .envs(vars.iter().copied());
    command.output().unwrap()
}

/// `gamesa check-config config/sim.toml` with `variable=value`: exit 78, and stderr
/// names both.
fn rejected(variable: &str, value: &str) {
    let state = tempfile::tempdir().unwrap();
    let config = repo("config/sim.toml");
    let output = gamesa(
        &["check-config", config.to_str().unwrap()],
        &[(variable, value)],
        state.path(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(78),
        "{variable}={value}: {stderr}"
    );
    assert!(stderr.contains(variable), "{stderr}");
    assert!(stderr.contains(value), "{stderr}");
}

#[test]
fn a_flag_that_is_not_a_boolean() {
    rejected("OTEL_SDK_DISABLED", "maybe");
}

#[test]
fn an_unsupported_protocol() {
    rejected("OTEL_EXPORTER_OTLP_PROTOCOL", "bogus");
}

#[test]
fn an_endpoint_that_is_not_an_http_url() {
    rejected("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317");
}

#[test]
fn an_unknown_sampler() {
    rejected("OTEL_TRACES_SAMPLER", "sometimes");
}

#[test]
fn a_sampler_ratio_that_is_not_a_ratio() {
    rejected("OTEL_TRACES_SAMPLER_ARG", "abc");
}

#[test]
fn a_key_value_list_without_a_value() {
    rejected("OTEL_RESOURCE_ATTRIBUTES", "novalue");
}

#[test]
fn a_header_list_without_a_value() {
    rejected("OTEL_EXPORTER_OTLP_HEADERS", "api-key");
}

#[test]
fn a_timeout_that_is_not_a_positive_number() {
    rejected("OTEL_EXPORTER_OTLP_TIMEOUT", "-1");
}

/// `run` stops at the same check, before the runtime or the trace file exists.
#[test]
fn run_exits_78_before_anything_starts() {
    let state = tempfile::tempdir().unwrap();
    let config = repo("config/sim.toml");
    let output = gamesa(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--duration-s",
            "5",
        ],
        &[("OTEL_TRACES_SAMPLER_ARG", "abc")],
        state.path(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("OTEL_TRACES_SAMPLER_ARG"), "{stderr}");
    assert!(stderr.contains("abc"), "{stderr}");
    assert!(output.stdout.is_empty(), "it started: {stderr}");
    assert!(!state.path().join("gamesa-trace.jsonl").exists());
}

/// A relative `telemetry.file` with no state directory at all is a config error that
/// says what to set.
#[test]
fn a_relative_file_without_a_state_directory() {
    let config = repo("config/sim.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .args(["check-config", config.to_str().unwrap()])
        .env("GAMESA_LOG", "error")
        .env_remove("STATE_DIRECTORY")
        .env_remove("XDG_STATE_HOME")
        .env_remove("HOME")
        .env_remove("GAMESA__TELEMETRY__FILE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("STATE_DIRECTORY"), "{stderr}");
}

#[test]
fn a_rotation_size_of_zero_names_its_key() {
    let state = tempfile::tempdir().unwrap();
    let config = repo("config/sim.toml");
    let output = gamesa(
        &["check-config", config.to_str().unwrap()],
        &[("GAMESA__TELEMETRY__FILE_MAX_MB", "0")],
        state.path(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("telemetry.file_max_mb"), "{stderr}");
}

/// `gamesa run` writes its trace to `$STATE_DIRECTORY/gamesa-trace.jsonl`, not next to
/// the config file.
#[test]
fn the_trace_file_goes_under_the_state_directory() {
    let state = tempfile::tempdir().unwrap();
    let config = repo("config/sim.toml");
    let check = gamesa(
        &["check-config", config.to_str().unwrap()],
        &[],
        state.path(),
    );
    let file = state.path().join("gamesa-trace.jsonl");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(&file.display().to_string()), "{stdout}");

    let output = gamesa(
        &[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--duration-s",
            "0.5",
        ],
        &[],
        state.path(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let text = std::fs::read_to_string(&file).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "resource");
}
