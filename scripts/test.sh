#!/usr/bin/env bash
# The README's test command: installs what the tests need that cargo does not bring,
# then runs every test of the workspace. `.ci/run` calls it after fmt and clippy.
set -euo pipefail
cd "$(dirname "$0")/.."

have_msgpack() { python3 -c 'import msgpack' 2>/dev/null; }
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

# The Python ingress example's test (tests/ingress_python.rs) needs python3 with
# msgpack, and fails without it: install it with pip, else Debian's package, else stop.
if ! have_msgpack; then
    python3 -m pip install --quiet msgpack 2>/dev/null \
        || python3 -m pip install --quiet --user msgpack 2>/dev/null \
        || { as_root apt-get update -qq && as_root apt-get install -y -qq python3-msgpack; } \
        || true
fi
if ! have_msgpack; then
    echo "error: cannot install msgpack for python3 (tried pip, pip --user and apt-get python3-msgpack)" >&2
    exit 1
fi

# Tests that need hardware this machine may lack (an NVIDIA driver) are #[ignore]d and
# counted as ignored in the summary; on such a machine, run them with
# `cargo test --workspace -- --ignored`.
cargo test --workspace "$@"
