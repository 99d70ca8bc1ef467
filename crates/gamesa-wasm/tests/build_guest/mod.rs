//! Builds a WASM guest of this workspace for `wasm32-wasip2`, as
//! `scripts/build-wasm-agents.sh` does, and says where its component is. Cargo makes
//! this a no-op when the script (or an earlier test) already built it. A missing target
//! fails with how to add it: the tests need the real module, not a stand-in.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
};

pub const EXAMPLE: &str = "gamesa-example-wasm-agent";
pub const HOSTILE: &str = "gamesa-wasm-hostile";

/// One build at a time from this process: cargo would wait on its lock anyway.
static BUILDING: Mutex<()> = Mutex::new(());

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .expect("a Cargo.lock above the manifest")
        .to_owned()
}

/// The component `package` builds to, built first.
pub fn module(package: &str) -> PathBuf {
    let _one = BUILDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
        .args(["--package", package])
        .output()
        .expect("running cargo");
    assert!(
        output.status.success(),
        "building {package} for wasm32-wasip2 failed ({}); if the target is missing, \
         run `rustup target add wasm32-wasip2` (scripts/build-wasm-agents.sh does):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let path = target
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}
