#!/usr/bin/env bash
# The `gamesa top` figure: `gamesa top` in a 160x50 tmux pane, idle-watching
# `gamesa run` on the twin at 10 Hz (config/sim.toml with the 600 s `training`
# scenario, so the twin keeps advancing; ingress on a Unix socket), measured from
# outside through /proc. Nobody types: top only reads and redraws.
#
#   scripts/bench-top.sh                  # build release, 5 s warm-up, 20 s measured
#   MEASURE_S=60 WARM_UP_S=2 scripts/bench-top.sh
#   NO_BUILD=1 scripts/bench-top.sh       # use the existing target/release/gamesa
#   BIN=/path/to/gamesa NO_BUILD=1 scripts/bench-top.sh   # another build
#
# CPU is utime + stime of every thread of top's process (/proc/<pid>/stat, in clock
# ticks) over the measured wall-clock time, as % of one core; the same from
# /proc/<pid>/task/*/schedstat (nanoseconds, not sampled) is printed next to it. The
# daemon's figure over the same seconds is printed too, for scale.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

WARM_UP_S=${WARM_UP_S:-5}
MEASURE_S=${MEASURE_S:-20}
BIN=${BIN:-target/release/gamesa}

if ! command -v tmux >/dev/null; then
    echo "error: tmux is needed (apt-get install tmux, or scripts/install-test-deps.sh)" >&2
    exit 1
fi
if [[ -z ${NO_BUILD:-} ]]; then
    cargo build --release -p gamesa --bin gamesa
fi
[[ $BIN == /* ]] || BIN=$root/$BIN

clk_tck=$(getconf CLK_TCK)
work=$(mktemp -d -t gamesa-top.XXXXXX)
socket=$work/gamesa.sock
tmux_socket=gamesa-bench-top-$$

# config/sim.toml as it is, plus a listener and a client for top. The scenario comes
# from GAMESA__SENSORS__SCENARIO, as an absolute path, since the file now lives in $work.
cp "$root/config/sim.toml" "$work/gamesa.toml"
cat >>"$work/gamesa.toml" <<EOF

[ingress]
unix_enabled = true
unix_socket = "$socket"

[[clients]]
name = "top"
token = "top-bench-token-1"
effects = ["query:*", "subscribe:*"]
EOF

# utime + stime (fields 14 and 15) in clock ticks. The command name (field 2) may hold
# spaces, so split after its closing parenthesis.
cpu_ticks() {
    local stat rest
    stat=$(<"/proc/$1/stat")
    rest=${stat##*) }
    # shellcheck disable=SC2206
    local fields=($rest)
    # `rest` starts at field 3 (state): utime is field 14 -> index 11, stime -> 12.
    echo $((fields[11] + fields[12]))
}

# Nanoseconds on CPU, summed over every thread (/proc/<pid>/task/*/schedstat, field 1).
cpu_ns() {
    cat /proc/"$1"/task/*/schedstat | awk '{ sum += $1 } END { printf "%d", sum }'
}

status_field() {
    awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"
}

# Voluntary context switches (wake-ups after a wait), summed over every thread.
switches() {
    cat /proc/"$1"/task/*/status | awk '$1 == "voluntary_ctxt_switches:" { sum += $2 } END { printf "%d", sum }'
}

(cd "$work" && STATE_DIRECTORY=$work GAMESA__SENSORS__SCENARIO=$root/scenarios/training.toml \
    GAMESA__RUNTIME__STATUS_INTERVAL_S=0 exec "$BIN" run --config "$work/gamesa.toml") \
    >"$work/daemon.log" 2>&1 &
daemon=$!
cleanup() {
    tmux -L "$tmux_socket" kill-server 2>/dev/null || true
    kill -INT "$daemon" 2>/dev/null || true
}
trap cleanup EXIT

for ((i = 0; i < 300; i++)); do
    [[ -S $socket ]] && break
    kill -0 "$daemon" 2>/dev/null || { cat "$work/daemon.log" >&2; exit 1; }
    sleep 0.1
done
[[ -S $socket ]] || { echo "the daemon did not listen in 30 s" >&2; exit 1; }

env -u GAMESA_TCP -u GAMESA_SOCKET -u GAMESA_CLIENT -u GAMESA_TOKEN \
    tmux -L "$tmux_socket" -f /dev/null new-session -d -s top -x 160 -y 50 \
    "exec '$BIN' top --unix '$socket' --client top --token top-bench-token-1"
top=$(tmux -L "$tmux_socket" display-message -p -t top '#{pane_pid}')

sleep "$WARM_UP_S"
screen=$(tmux -L "$tmux_socket" capture-pane -p -t top)
if ! grep -q "connected to" <<<"$screen" || grep -q "disconnected" <<<"$screen"; then
    echo "top is not connected after the warm-up:" >&2
    echo "$screen" >&2
    exit 1
fi

start_top_ticks=$(cpu_ticks "$top")
start_top_ns=$(cpu_ns "$top")
start_switches=$(switches "$top")
start_daemon_ns=$(cpu_ns "$daemon")
start_ns=$(date +%s%N)
sleep "$MEASURE_S"
end_ns=$(date +%s%N)
end_top_ticks=$(cpu_ticks "$top")
end_top_ns=$(cpu_ns "$top")
end_switches=$(switches "$top")
end_daemon_ns=$(cpu_ns "$daemon")
rss_kb=$(status_field "$top" VmRSS)
threads=$(status_field "$top" Threads)
screen=$(tmux -L "$tmux_socket" capture-pane -p -t top)

wall_s=$(awk -v a="$start_ns" -v b="$end_ns" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
ticks=$((end_top_ticks - start_top_ticks))
cpu_s=$(awk -v t="$ticks" -v hz="$clk_tck" 'BEGIN { printf "%.2f", t / hz }')
pct() { awk -v n="$1" -v w="$wall_s" 'BEGIN { printf "%.3f", 100 * n / 1e9 / w }'; }
echo "machine: $(nproc) cpus, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)," \
    "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "${WARM_UP_S} s warm-up, then ${wall_s} s measured; top's header: $(head -n 1 <<<"$screen" | sed 's/ *$//')"
echo "gamesa top (160x50, tmux):"
echo "  cpu: ${cpu_s} s (utime+stime, ${clk_tck} Hz clock ticks) =" \
    "$(awk -v c="$cpu_s" -v w="$wall_s" 'BEGIN { printf "%.3f", 100 * c / w }') % of one core;" \
    "schedstat: $(pct $((end_top_ns - start_top_ns))) %"
echo "  rss: $(awk -v kb="$rss_kb" 'BEGIN { printf "%.1f", kb / 1024 }') MiB; threads: $threads;" \
    "voluntary context switches, all threads: $((end_switches - start_switches))" \
    "($(awk -v s=$((end_switches - start_switches)) -v w="$wall_s" 'BEGIN { printf "%.0f", s / w }')/s)"
echo "the daemon it watched (gamesa run, twin, 10 Hz): schedstat $(pct $((end_daemon_ns - start_daemon_ns))) % of one core"
