//! `gamesa sim` on the command line: tables, plots, and clear errors (never a panic)
//! for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Output};

use support::*;

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .current_dir(repo_root())
        .arg("sim")
        .args(args)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_clean_failure(output: &Output, needle: &str) {
    assert!(!output.status.success());
    let text = stderr(output);
    assert!(text.contains(needle), "expected `{needle}` in: {text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn an_unknown_policy_lists_the_known_ones() {
    let output = sim(&[
        "--scenario",
        "scenarios/near_idle.toml",
        "--policy",
        "greedy",
    ]);
    assert_clean_failure(&output, "unknown policy `greedy`");
    assert!(stderr(&output).contains("static-equal"));
}

#[test]
fn a_missing_or_broken_scenario_names_the_file_and_field() {
    let output = sim(&["--scenario", "scenarios/nope.toml"]);
    assert_clean_failure(&output, "scenarios/nope.toml");

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    let text = std::fs::read_to_string(scenario("near_idle.toml"))
        .unwrap()
        .replace("min_w = 100", "min_w = 400");
    std::fs::write(&broken, text).unwrap();
    let output = sim(&["--scenario", broken.to_str().unwrap()]);
    assert_clean_failure(&output, "components.gpu0.min_w");
}

#[test]
fn a_plot_needs_one_scenario_and_a_bad_config_is_named() {
    let output = sim(&["--scenario", "scenarios", "--plot", "/tmp/x.svg"]);
    assert_clean_failure(&output, "--plot draws one run");
    let output = sim(&[
        "--scenario",
        "scenarios/near_idle.toml",
        "--config",
        "config/missing.toml",
    ]);
    assert_clean_failure(&output, "config/missing.toml");
    let output = sim(&["--scenario", "scenarios/near_idle.toml", "--seed", "lots"]);
    assert_clean_failure(&output, "--seed");
}

#[test]
fn a_run_prints_its_table_and_writes_its_plot() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("run.svg");
    let output = sim(&[
        "--scenario",
        "scenarios/near_idle.toml",
        "--policy",
        "proportional",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.contains("proportional"), "{table}");
    assert!(table.contains("over cap s"), "{table}");
    let drawing = std::fs::read_to_string(&svg).unwrap();
    assert!(
        drawing.starts_with("<svg"),
        "{}",
        &drawing[..100.min(drawing.len())]
    );
    for label in [
        "cpu limit",
        "gpu0 draw",
        "gpu0 t_max",
        "cap",
        "power_budget_mw",
    ] {
        assert!(drawing.contains(label), "no `{label}` in the plot");
    }
}

#[test]
fn generate_writes_scenarios_that_run_and_the_same_seed_writes_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name);
    for target in ["a", "b"] {
        let output = sim(&[
            "generate",
            "--seed",
            "5",
            "--count",
            "3",
            "--out",
            out(target).to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        let listed = String::from_utf8_lossy(&output.stdout).lines().count();
        assert_eq!(listed, 3);
    }
    for name in ["gen-5-000.toml", "gen-5-001.toml", "gen-5-002.toml"] {
        let first = std::fs::read(out("a").join(name)).unwrap();
        assert_eq!(first, std::fs::read(out("b").join(name)).unwrap(), "{name}");
    }
    let run = sim(&[
        "--scenario",
        out("a").join("gen-5-000.toml").to_str().unwrap(),
        "--policy",
        "static-equal",
        "--json",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
}

#[test]
fn generate_refuses_a_zero_count_and_mixed_flags() {
    let output = sim(&["generate", "--seed", "1", "--count", "0", "--out", "/tmp/x"]);
    assert_clean_failure(&output, "--count");
    let output = sim(&[
        "--scenario",
        "scenarios/near_idle.toml",
        "generate",
        "--seed",
        "1",
        "--out",
        "/tmp/x",
    ]);
    assert!(!output.status.success());
}
