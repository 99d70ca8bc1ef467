//! `gamesa sim report`: the tables committed in `docs/evaluation.md` are what the code
//! produces (the drift test), and `--check` fails, writing nothing, when they are not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Output};

use support::*;

fn report(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .current_dir(repo_root())
        .args(["sim", "report"])
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The drift test: the public suite and the hold-out subset, every policy, against the
/// committed page. When it fails, run `cargo run -- sim report --holdout
/// scenarios/holdout` and commit `docs/evaluation.md`.
#[test]
fn the_committed_evaluation_is_what_the_code_produces() {
    let output = report(&["--check", "--holdout", "scenarios/holdout"]);
    assert!(
        output.status.success(),
        "docs/evaluation.md is stale: rewrite it with `cargo run -- sim report \
         --holdout scenarios/holdout`\n{}",
        text(&output)
    );
    assert!(text(&output).contains("docs/evaluation.md: up to date"));
}

#[test]
fn check_fails_on_a_changed_figure_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite");
    std::fs::create_dir(&suite).unwrap();
    std::fs::copy(scenario("near_idle.toml"), suite.join("near_idle.toml")).unwrap();
    let page = dir.path().join("page.md");
    std::fs::write(
        &page,
        "# Prose\n\n<!-- BEGIN GENERATED: gamesa sim report -->\n<!-- END GENERATED -->\n\nMore prose.\n",
    )
    .unwrap();
    let args = |check: bool| {
        let mut args = vec![
            "--scenario".to_owned(),
            suite.display().to_string(),
            "--out".to_owned(),
            page.display().to_string(),
        ];
        if check {
            args.push("--check".to_owned());
        }
        args
    };
    let run = |check: bool| {
        let args = args(check);
        report(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };

    // An empty section is stale; --check says so and leaves the page alone.
    let empty = std::fs::read_to_string(&page).unwrap();
    let output = run(true);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("line(s) differ"),
        "{}",
        text(&output)
    );
    assert_eq!(std::fs::read_to_string(&page).unwrap(), empty);

    // Written, it is up to date, and the prose around it is kept.
    let output = run(false);
    assert!(output.status.success(), "{}", text(&output));
    let written = std::fs::read_to_string(&page).unwrap();
    assert!(written.starts_with("# Prose\n\n") && written.ends_with("\nMore prose.\n"));
    assert!(written.contains("#### near_idle") && written.contains("all targets met"));
    assert!(run(true).status.success());

    // One figure edited by hand: --check names the line and both versions.
    let edited = written.replacen("10.91", "10.92", 1);
    assert_ne!(edited, written);
    std::fs::write(&page, &edited).unwrap();
    let output = run(true);
    assert!(!output.status.success(), "{}", text(&output));
    let shown = text(&output);
    assert!(shown.contains("1 line(s) differ"), "{shown}");
    assert!(
        shown.contains("10.92") && shown.contains("10.91"),
        "{shown}"
    );
    assert!(
        shown.contains("cargo run -- sim report --scenario "),
        "{shown}"
    );
    assert!(!shown.contains("panicked"), "{shown}");
    assert_eq!(std::fs::read_to_string(&page).unwrap(), edited);
}

#[test]
fn a_page_without_markers_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("suite");
    std::fs::create_dir(&suite).unwrap();
    std::fs::copy(scenario("near_idle.toml"), suite.join("near_idle.toml")).unwrap();
    let page = dir.path().join("page.md");
    std::fs::write(&page, "# No markers\n").unwrap();
    let output = report(&[
        "--scenario",
        suite.to_str().unwrap(),
        "--out",
        page.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let shown = text(&output);
    assert!(
        shown.contains("<!-- BEGIN GENERATED: gamesa sim report -->"),
        "{shown}"
    );
    assert!(!shown.contains("panicked"), "{shown}");
    assert_eq!(std::fs::read_to_string(&page).unwrap(), "# No markers\n");
}
