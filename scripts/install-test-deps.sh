#!/usr/bin/env bash
# Installs what the tests need that cargo does not bring: Python's msgpack, for the
# Python client's test (tests/ingress_python.rs), with pip, else Debian's package, else
# it stops with an error. Used by scripts/test.sh and .ci/run.
set -euo pipefail

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
