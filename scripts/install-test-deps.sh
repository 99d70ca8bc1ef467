#!/usr/bin/env bash
# Installs what the tests need that cargo does not bring: Python's msgpack, for the
# Python client's test (tests/ingress_python.rs), with pip, else Debian's package;
# Prometheus and promtool, for the /metrics tests (tests/http_prometheus.rs);
# nats-server (with JetStream), for fleet mode's tests (crates/gamesa-fleet-nats); tmux, for
# `gamesa top`'s terminal test (tests/top_tmux.rs); and for the package check
# (scripts/package-check.sh) systemd-analyze, dpkg-deb and man; all but msgpack from
# Debian's packages; and rustup's wasm32-wasip2 target with the WASM agents built for it
# (scripts/build-wasm-agents.sh), which the WASM agents' tests load. Stops with an error
# when it cannot. Used by scripts/test.sh,
# which .ci/run runs.
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

missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v dpkg-deb >/dev/null || missing+=(dpkg)
command -v man >/dev/null || missing+=(man-db)
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing+=(prometheus)
command -v tmux >/dev/null || missing+=(tmux)
command -v nats-server >/dev/null || missing+=(nats-server)
if [ ${#missing[@]} -gt 0 ]; then
    { as_root apt-get update -qq && as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        || { echo "error: cannot install ${missing[*]} (apt-get)" >&2; exit 1; }
fi

"$(dirname "$0")/build-wasm-agents.sh" >/dev/null
