//! `gamesa probe` on a fake sysfs tree: the package zone is a writable
//! `power.limit:cpu` knob, in words and in JSON, and nothing is written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, process::Command};

/// A RAPL package zone under `root`: 65 W now, 10 W to 125 W.
fn fake_zone(root: &Path) -> std::path::PathBuf {
    let zone = root.join("sys/class/powercap/intel-rapl:0");
    std::fs::create_dir_all(&zone).unwrap();
    for (file, content) in [
        ("name", "package-0\n"),
        ("energy_uj", "1000000\n"),
        ("max_energy_range_uj", "262143328850\n"),
        ("constraint_0_power_limit_uw", "65000000\n"),
        ("constraint_0_min_power_uw", "10000000\n"),
        ("constraint_0_max_power_uw", "125000000\n"),
    ] {
        std::fs::write(zone.join(file), content).unwrap();
    }
    zone
}

#[test]
fn probe_lists_the_knobs_of_a_fake_machine_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let zone = fake_zone(dir.path());
    let probe = |json: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gamesa"));
        command
            .args(["probe", "--root"])
            .arg(dir.path())
            .env("GAMESA_LOG", "error");
        if json {
            command.arg("--json");
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let words = probe(false);
    assert!(
        words.contains("power.limit:cpu")
            && words.contains("constraint_0_power_limit_uw = 65000 mW")
            && words.contains("writable"),
        "{words}"
    );
    let json: serde_json::Value = serde_json::from_str(&probe(true)).unwrap();
    assert_eq!(json["knobs"][0]["target"], "power.limit:cpu");
    assert_eq!(json["knobs"][0]["current"], 65_000);
    assert_eq!(json["knobs"][0]["missing"], serde_json::Value::Null);
    assert_eq!(
        std::fs::read_to_string(zone.join("constraint_0_power_limit_uw")).unwrap(),
        "65000000\n"
    );
}

/// The starter config `gamesa probe --config` writes is one `check-config` accepts: for
/// a fake machine with a RAPL zone and for this machine as it is (read, not written).
#[test]
fn the_starter_config_passes_check_config() {
    let dir = tempfile::tempdir().unwrap();
    fake_zone(&dir.path().join("root"));
    for root in [dir.path().join("root"), std::path::PathBuf::from("/")] {
        let output = Command::new(env!("CARGO_BIN_EXE_gamesa"))
            .args(["probe", "--config", "--root"])
            .arg(&root)
            .env("GAMESA_LOG", "error")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let starter = dir.path().join("starter.toml");
        std::fs::write(&starter, &output.stdout).unwrap();
        let checked = Command::new(env!("CARGO_BIN_EXE_gamesa"))
            .arg("check-config")
            .arg(&starter)
            .env("STATE_DIRECTORY", dir.path())
            .output()
            .unwrap();
        assert!(
            checked.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
        let text = String::from_utf8(output.stdout).unwrap();
        if root != std::path::Path::new("/") {
            assert!(text.contains("cap_mw = 65000"), "{text}");
            assert!(text.contains("min = 10000\nmax = 125000"), "{text}");
            assert!(
                text.contains(r#"cpu = { via = "powercap", zone = "intel-rapl:0" }"#),
                "{text}"
            );
        }
    }
}
