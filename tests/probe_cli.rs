//! `gamesa probe` on a fake sysfs tree: the package zone is a writable
//! `power.limit:cpu` knob, in words and in JSON, and nothing is written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn probe_lists_the_knobs_of_a_fake_machine_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let zone = dir.path().join("sys/class/powercap/intel-rapl:0");
    std::fs::create_dir_all(&zone).unwrap();
    for (file, content) in [
        ("name", "package-0\n"),
        ("energy_uj", "1000000\n"),
        ("max_energy_range_uj", "262143328850\n"),
        ("constraint_0_power_limit_uw", "65000000\n"),
        ("constraint_0_max_power_uw", "125000000\n"),
    ] {
        std::fs::write(zone.join(file), content).unwrap();
    }
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
