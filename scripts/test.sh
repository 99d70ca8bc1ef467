#!/usr/bin/env bash
# The README's test command: installs what the tests need beyond cargo, then runs every
# test of the workspace (extra arguments go to `cargo test`). `.ci/run` runs the same
# two steps after fmt and clippy.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
# Tests that need hardware this machine may lack (an NVIDIA driver) are #[ignore]d and
# counted as ignored in the summary; on such a machine, run them with
# `cargo test --workspace -- --ignored`.
cargo test --workspace "$@"
