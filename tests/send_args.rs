//! `gamesa send`'s `--domain` and `--resource` take one of the protocol's values, which
//! the help lists and a wrong value's error names, before anything is sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn gamesa(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gamesa"))
        .args(args)
        .env_remove("GAMESA_CLIENT")
        .env_remove("GAMESA_TOKEN")
        .output()
        .unwrap()
}

#[test]
fn a_domain_or_resource_out_of_the_list_is_refused_with_the_list() {
    let wrong = gamesa(&[
        "send",
        "signal",
        "--kind",
        "x",
        "--domain",
        "loud",
        "--strength",
        "1",
    ]);
    assert_eq!(wrong.status.code(), Some(2), "{wrong:?}");
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains(
            "possible values: safety, thermal, power, performance, efficiency, background"
        ),
        "{stderr}"
    );
    let wrong = gamesa(&[
        "send",
        "order",
        "--resource",
        "watts",
        "--side",
        "bid",
        "--price",
        "1",
        "--quantity",
        "1",
    ]);
    assert_eq!(wrong.status.code(), Some(2), "{wrong:?}");
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("power_budget_mw"),
        "{wrong:?}"
    );
    let help = gamesa(&["send", "query", "--help"]);
    assert!(help.status.success());
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("gpu_memory_mb"),
        "{help:?}"
    );
}
