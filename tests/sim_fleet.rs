//! `gamesa sim --fleet`: a small imbalanced fleet runs the same bytes twice, no split
//! ever lets the nodes' caps add up past the budget, every node finishes, and the
//! market (its nodes knowing their jobs' ends) closes most of the gap from the static
//! split to the bound (every node alone, with no fleet cap); bad fleet files are refused
//! with a message that names what is wrong; and every shipped fleet loads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn sim(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .arg("sim")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_small_fleet_is_deterministic_within_budget_and_the_market_comes_near_the_bound() {
    let args = ["--fleet", "tests/fleets/small_imbalanced.toml", "--json"];
    let (code, first, stderr) = sim(&args);
    assert_eq!(code, Some(0), "{stderr}");
    let (_, again, _) = sim(&args);
    assert_eq!(first, again, "the same fleet gave different bytes");
    let runs: serde_json::Value = serde_json::from_str(&first).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 4, "three splits and the bound");
    for run in runs {
        assert_eq!(run["caps_over_budget_steps"], 0, "{run}");
        assert_eq!(run["unfinished"], 0, "{run}");
        assert_eq!(run["nodes"].as_array().unwrap().len(), 3);
    }
    // The bound's run has no split: every node alone, with no fleet cap.
    let tts = |split: serde_json::Value| {
        runs.iter().find(|run| run["split"] == split).unwrap()["time_to_solution_s"]
            .as_f64()
            .unwrap()
    };
    let (market, statik) = (tts("market".into()), tts("static".into()));
    let bound = tts(serde_json::Value::Null);
    assert!(
        runs[3]["budget_mw"].as_u64().unwrap() > runs[0]["budget_mw"].as_u64().unwrap(),
        "the bound runs with more than the fleet's budget"
    );
    // Sensor noise and the agents' own choices may put a constrained run a hair under
    // the bound, never more.
    for split in ["market", "static", "proportional"] {
        assert!(tts(split.into()) >= bound * 0.99, "{split} beat the bound");
    }
    // Static leaves the fast nodes' power idle once they are done; the market moves it
    // to the node that finishes last from the first epochs.
    let closed = (statik - market) / (statik - bound);
    assert!(
        closed >= 0.75,
        "market {market} s, static {statik} s, bound {bound} s: {:.0} % of the gap closed",
        closed * 100.0
    );
}

#[test]
fn bad_fleet_files_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let node = format!("[[nodes]]\nname = \"a\"\nscenario = \"{root}/scenarios/training.toml\"\n");
    for (text, says) in [
        (format!("name = \"f\"\nbudget_w = -5\n{node}"), "budget_w"),
        (
            "name = \"f\"\nbudget_w = 500\nnodes = []\n".to_owned(),
            "names no nodes",
        ),
        (
            format!("name = \"f\"\nbudget_w = 50\n{node}"),
            "safe shares add up",
        ),
        (
            format!("name = \"f\"\nbudget_w = 500\nepoch_ms = 150\n{node}"),
            "multiple of the step",
        ),
        (
            format!("name = \"f\"\nbudget_w = 500\nbogus = 1\n{node}"),
            "bogus",
        ),
        (
            "name = \"f\"\nbudget_w = 500\n[[nodes]]\nname = \"a\"\nscenario = \"missing.toml\"\n"
                .to_owned(),
            "cannot read",
        ),
    ] {
        let path = dir.path().join("fleet.toml");
        std::fs::write(&path, &text).unwrap();
        let (code, _, stderr) = sim(&["--fleet", path.to_str().unwrap()]);
        assert_eq!(code, Some(1), "{text}");
        assert!(
            stderr.contains(says),
            "{text}: expected `{says}` in {stderr}"
        );
    }
}

#[test]
fn every_shipped_fleet_loads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut loaded = Vec::new();
    for dir in ["scenarios/fleet", "scenarios/holdout/fleet"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let fleet = gamesa_sim::fleet::load(&path).unwrap_or_else(|error| panic!("{error}"));
            assert!(!fleet.nodes.is_empty());
            loaded.push((fleet.name, fleet.nodes.len()));
        }
    }
    loaded.sort();
    assert_eq!(
        loaded,
        vec![
            ("holdout_mixed_2028".to_owned(), 7),
            ("holdout_mixed_2029".to_owned(), 8),
            ("holdout_mixed_2030".to_owned(), 8),
            ("holdout_servers".to_owned(), 4),
            ("holdout_workstations".to_owned(), 6),
            ("hundred_mixed".to_owned(), 100),
            ("imbalanced_training".to_owned(), 8),
            ("rack_failing_node".to_owned(), 6),
        ]
    );
}
