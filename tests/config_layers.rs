//! The config as a system service reads it: a config directory's `gamesa.toml` (or the
//! built-in defaults), its `gamesa.d/*.toml` drop-ins, then `GAMESA__` variables;
//! `check-config` names where each value came from, and a bad drop-in is named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn gamesa(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gamesa"));
    command.args(args).env("GAMESA_LOG", "error");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A config directory whose `gamesa.toml` is `config/sim.toml` with an absolute
/// scenario path, and drop-ins `(name, text)`.
fn config_dir(drop_ins: &[(&str, &str)]) -> tempfile::TempDir {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sim = std::fs::read_to_string(repo.join("config/sim.toml")).unwrap();
    let scenario = repo.join("scenarios/gpu_bottleneck.toml");
    let main = sim.replace(
        "../scenarios/gpu_bottleneck.toml",
        &scenario.display().to_string(),
    );
    assert_ne!(
        main, sim,
        "fixture drifted: sim.toml names its scenario differently"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gamesa.toml"), main).unwrap();
    std::fs::create_dir(dir.path().join("gamesa.d")).unwrap();
    for (name, body) in drop_ins {
        std::fs::write(dir.path().join("gamesa.d").join(name), body).unwrap();
    }
    dir
}

fn origin_line<'a>(stdout: &'a str, key: &str) -> &'a str {
    let prefix = format!("#   {key} = ");
    stdout
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no provenance for {key}:\n{stdout}"))
}

#[test]
fn check_config_merges_drop_ins_in_name_order_and_says_where_each_value_came_from() {
    let dir = config_dir(&[
        ("20-seed.toml", "[runtime]\nseed = 7\n"),
        ("10-fast.toml", "[runtime]\ntick_hz = 20\nseed = 3\n"),
        ("99-editor-backup.toml~", "[runtime]\nseed = 99\n"),
    ]);
    let dir_arg = dir.path().to_str().unwrap();
    let output = gamesa(
        &["check-config", "--config-dir", dir_arg],
        &[("GAMESA__RUNTIME__EPOCH_TICKS", "20")],
    );
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let drop_in = |name: &str| dir.path().join("gamesa.d").join(name);
    assert!(
        origin_line(&stdout, "runtime.seed")
            .ends_with(&format!("= 7  <- {}", drop_in("20-seed.toml").display())),
        "{stdout}"
    );
    assert!(
        origin_line(&stdout, "runtime.tick_hz")
            .ends_with(&format!("= 20  <- {}", drop_in("10-fast.toml").display())),
        "{stdout}"
    );
    assert!(
        origin_line(&stdout, "runtime.epoch_ticks")
            .ends_with("= 20  <- $GAMESA__RUNTIME__EPOCH_TICKS"),
        "{stdout}"
    );
    let main = dir.path().join("gamesa.toml");
    assert!(
        origin_line(&stdout, "guardian.components").ends_with(&format!("<- {}", main.display())),
        "{stdout}"
    );
    assert!(
        origin_line(&stdout, "ingress.max_connections").ends_with("<- default"),
        "{stdout}"
    );
    assert!(
        stdout.starts_with(&format!("# {}", main.display())),
        "{stdout}"
    );
}

#[test]
fn a_bad_key_in_a_drop_in_names_the_drop_in() {
    let dir = config_dir(&[("50-typo.toml", "[runtime]\ntick_hz = 5000\n")]);
    let output = gamesa(
        &["check-config", "--config-dir", dir.path().to_str().unwrap()],
        &[],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("50-typo.toml"), "{stderr}");
    assert!(stderr.contains("runtime.tick_hz"), "{stderr}");
}

#[test]
fn without_a_main_file_the_built_in_defaults_are_the_base() {
    let dir = tempfile::tempdir().unwrap();
    let output = gamesa(
        &["check-config", "--config-dir", dir.path().to_str().unwrap()],
        &[("XDG_RUNTIME_DIR", "/run/user/4242")],
    );
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.starts_with("# built-in defaults: valid"), "{stdout}");
    // Runtime files go to the runtime directory, never the current one.
    assert!(
        origin_line(&stdout, "ingress.unix_socket")
            .contains("\"/run/user/4242/gamesa/ingress.sock\""),
        "{stdout}"
    );
}

#[test]
fn a_config_file_alone_ignores_the_config_directory_unless_both_are_given() {
    let dir = config_dir(&[("10-seed.toml", "[runtime]\nseed = 11\n")]);
    let dir_arg = dir.path().to_str().unwrap();
    let extra = dir.path().join("extra.toml");
    std::fs::write(&extra, "[runtime]\nseed = 12\n").unwrap();
    let extra_arg = extra.to_str().unwrap();
    // Over the directory's layers.
    let output = gamesa(
        &[
            "check-config",
            "--config-dir",
            dir_arg,
            "--config",
            extra_arg,
        ],
        &[],
    );
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        origin_line(&stdout, "runtime.seed").ends_with(&format!("= 12  <- {extra_arg}")),
        "{stdout}"
    );
    // Alone, the file is the whole config: this one lacks [guardian], so it is refused.
    let output = gamesa(&["check-config", extra_arg], &[]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("guardian"), "{stderr}");
}

#[test]
fn run_takes_the_drop_ins_and_a_relative_scenario_is_relative_to_its_file() {
    let dir = config_dir(&[(
        "10-slow.toml",
        "[runtime]\ntick_hz = 5\nstatus_interval_s = 1\n",
    )]);
    // The scenario named relative to a drop-in in another directory.
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let relative: PathBuf = pathdiff(&scenarios, &dir.path().join("gamesa.d"));
    std::fs::write(
        dir.path().join("gamesa.d/20-scenario.toml"),
        format!(
            "[sensors]\nscenario = \"{}\"\n",
            relative.join("gpu_bottleneck.toml").display()
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let output = gamesa(
        &[
            "run",
            "--config-dir",
            dir.path().to_str().unwrap(),
            "--duration-s",
            "1.3",
        ],
        &[
            ("STATE_DIRECTORY", state.path().to_str().unwrap()),
            ("GAMESA__TELEMETRY__ENABLED", "false"),
            ("GAMESA_LOG", "error,gamesa::status=debug"),
        ],
    );
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Off a terminal the status line is a debug record. Its first one comes after a
    // second of ticks: tick 4 at the drop-in's 5 Hz (tick 9 at sim.toml's 10 Hz).
    let status: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("status"))
        .collect();
    assert!(
        status.first().is_some_and(|line| line.contains("tick 4 ")),
        "{stderr}"
    );
}

/// `to` relative to `from` (both absolute): enough `..` to reach the common prefix.
fn pathdiff(to: &Path, from: &Path) -> PathBuf {
    let to: Vec<_> = to.components().collect();
    let from: Vec<_> = from.components().collect();
    let common = to.iter().zip(&from).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to[common..] {
        out.push(part);
    }
    out
}
