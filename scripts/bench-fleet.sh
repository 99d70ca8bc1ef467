#!/usr/bin/env bash
# The fleet leader's figure: `gamesa run` on the twin (config/sim.toml, 10 Hz) in fleet
# mode, alone on a local nats-server, so it is the leader; first idle (the peer: a
# leader with no other node), then serving NODES simulated nodes (examples/fleet_nodes.rs)
# that each order once a second and receive a grant. The daemon's CPU is read from
# outside through /proc over each phase; the load generator prints one node's NATS
# traffic.
#
#   scripts/bench-fleet.sh                   # 999 nodes, 5 s warm-up, 30 s measured
#   NODES=499 MEASURE_S=20 scripts/bench-fleet.sh
#   NO_BUILD=1 scripts/bench-fleet.sh        # use the existing release builds
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
NODES=${NODES:-999}
WARM_UP_S=${WARM_UP_S:-5}
MEASURE_S=${MEASURE_S:-30}

command -v nats-server >/dev/null || {
    echo "error: nats-server is needed (apt-get install nats-server, or scripts/install-test-deps.sh)" >&2
    exit 1
}
if [[ -z ${NO_BUILD:-} ]]; then
    cargo build --release -p gamesa --bin gamesa --example fleet_nodes
fi
clk_tck=$(getconf CLK_TCK)
work=$(mktemp -d -t gamesa-fleet.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

nats-server -js -a 127.0.0.1 -p "$port" -sd "$work/nats" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
    sleep 0.1
done

cp "$root/config/sim.toml" "$work/gamesa.toml"
{
    echo
    echo "[fleet]"
    echo "enabled = true"
    echo "nats_url = \"nats://127.0.0.1:$port\""
    echo "cluster = \"bench\""
    echo "node = \"leader\""
    echo "budget_mw = $(( (NODES + 1) * 400000 ))"
    echo
    echo "[fleet.safe_shares_mw]"
    echo "leader = 250000"
    for i in $(seq 0 $(( NODES - 1 ))); do printf 'sim%04d = 250000\n' "$i"; done
} >>"$work/gamesa.toml"

GAMESA__SENSORS__SCENARIO=$root/scenarios/training.toml GAMESA_LOG=warn OTEL_SDK_DISABLED=true \
    STATE_DIRECTORY=$work RUNTIME_DIRECTORY=$work \
    "$root/target/release/gamesa" run --config "$work/gamesa.toml" >"$work/daemon.log" 2>&1 &
daemon=$!
pids+=("$daemon")

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
measure() { # $1: seconds; prints % of one core the daemon used
    local before after
    before=$(cpu_ticks "$daemon")
    sleep "$1"
    after=$(cpu_ticks "$daemon")
    python3 -c "print(f'{($after - $before) / $clk_tck / $1 * 100:.2f}')"
}

sleep "$WARM_UP_S"
idle=$(measure "$MEASURE_S")
"$root/target/release/examples/fleet_nodes" "nats://127.0.0.1:$port" bench "$NODES" \
    $(( WARM_UP_S + MEASURE_S + 2 )) >"$work/nodes.log" &
nodes_pid=$!
pids+=("$nodes_pid")
sleep "$WARM_UP_S"
loaded=$(measure "$MEASURE_S")
wait "$nodes_pid" || true

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "leader alone (peer):           ${idle} % of one core over ${MEASURE_S} s"
echo "leader serving ${NODES} nodes at 1 Hz: ${loaded} % of one core over ${MEASURE_S} s"
tail -2 "$work/nodes.log"
