#!/usr/bin/env bash
# The idle daemon figure: `gamesa run --config config/default.toml` (real sensors,
# dry-run actuators) at 10 Hz, measured from outside through /proc.
#
#   scripts/idle-daemon.sh              # build release, 5 s warm-up, 60 s measured
#   MEASURE_S=30 WARM_UP_S=2 scripts/idle-daemon.sh
#   NO_BUILD=1 scripts/idle-daemon.sh   # use the existing target/release/gamesa
#   PEER=0 scripts/idle-daemon.sh       # the real-sensor daemon only
#   BIN=/path/to/gamesa NO_BUILD=1 scripts/idle-daemon.sh   # another build
#
# Alongside it, over the same seconds, runs a peer: the same binary, agents and tick
# rate on the simulated twin (config/sim.toml with the 600 s `training` scenario, so the
# twin keeps advancing), i.e. the runtime without any /proc or sysfs read. The
# difference between the two is what reading the real sensors costs.
#
# CPU is utime + stime of every thread of the process (/proc/<pid>/stat, in clock
# ticks) over the measured wall-clock time, as % of one core; the same from
# /proc/<pid>/task/*/schedstat (nanoseconds, not sampled) is printed next to it. Memory is VmRSS sampled
# once a second and VmHWM (the peak RSS) at the end. Each daemon is then stopped with
# SIGINT and must exit 0 (orders cancelled, originals restored).
#
# With `[actuators] real = []` and no state file at `actuators.state_file`, the runtime
# uses a dry-run actuator: nothing on the machine is written.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

CONFIG=${CONFIG:-config/default.toml}
WARM_UP_S=${WARM_UP_S:-5}
MEASURE_S=${MEASURE_S:-60}
PEER=${PEER:-1}
BIN=${BIN:-target/release/gamesa}

if [[ -z ${NO_BUILD:-} ]]; then
    cargo build --release -p gamesa --bin gamesa
fi

clk_tck=$(getconf CLK_TCK)
logs=$(mktemp -d -t gamesa-idle.XXXXXX)
# Absolute paths: the daemons run in $logs, so whatever they write to their working
# directory lands there, not in the repository; each one's state directory (its
# JSON-lines trace file) is $logs/0 or $logs/1, not ~/.local/state/gamesa.
[[ $BIN == /* ]] || BIN=$root/$BIN
[[ $CONFIG == /* ]] || CONFIG=$root/$CONFIG

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

# Nanoseconds on CPU, summed over every thread (/proc/<pid>/task/*/schedstat, field 1):
# exact, where utime + stime are sampled at the clock tick.
cpu_ns() {
    cat /proc/"$1"/task/*/schedstat | awk '{ sum += $1 } END { printf "%d", sum }'
}

status_field() {
    awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"
}

now_ns() {
    date +%s%N
}

names=("gamesa run --config ${CONFIG#"$root"/}")
pids=()
(cd "$logs" && STATE_DIRECTORY="$logs/0" exec "$BIN" run --config "$CONFIG") >"$logs/0.log" 2>&1 &
pids+=($!)
if [[ $PEER == 1 ]]; then
    names+=("peer: gamesa run --config config/sim.toml (twin, scenario training.toml)")
    (cd "$logs" && STATE_DIRECTORY="$logs/1" GAMESA__SENSORS__SCENARIO=../scenarios/training.toml \
        exec "$BIN" run --config "$root/config/sim.toml") >"$logs/1.log" 2>&1 &
    pids+=($!)
fi
stop_all() {
    for pid in "${pids[@]}"; do
        kill -INT "$pid" 2>/dev/null || true
    done
}
trap stop_all EXIT

sleep "$WARM_UP_S"
for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[i]}" 2>/dev/null; then
        echo "${names[i]} exited during warm-up:" >&2
        cat "$logs/$i.log" >&2
        exit 1
    fi
done

declare -a start_ticks start_cpu_ns start_switches rss_max rss_sum
for i in "${!pids[@]}"; do
    start_ticks[i]=$(cpu_ticks "${pids[i]}")
    start_cpu_ns[i]=$(cpu_ns "${pids[i]}")
    start_switches[i]=$(status_field "${pids[i]}" voluntary_ctxt_switches)
    rss_max[i]=0
    rss_sum[i]=0
done
start_ns=$(now_ns)
for ((second = 0; second < MEASURE_S; second++)); do
    sleep 1
    for i in "${!pids[@]}"; do
        rss_kb=$(status_field "${pids[i]}" VmRSS)
        ((rss_kb > rss_max[i])) && rss_max[i]=$rss_kb
        rss_sum[i]=$((rss_sum[i] + rss_kb))
    done
done
end_ns=$(now_ns)
declare -a end_ticks end_cpu_ns end_switches hwm threads exit_codes
for i in "${!pids[@]}"; do
    end_ticks[i]=$(cpu_ticks "${pids[i]}")
    end_cpu_ns[i]=$(cpu_ns "${pids[i]}")
    end_switches[i]=$(status_field "${pids[i]}" voluntary_ctxt_switches)
    hwm[i]=$(status_field "${pids[i]}" VmHWM)
    threads[i]=$(status_field "${pids[i]}" Threads)
done

stop_all
trap - EXIT
for i in "${!pids[@]}"; do
    set +e
    wait "${pids[i]}"
    exit_codes[i]=$?
    set -e
done

mib() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
wall_s=$(awk -v a="$start_ns" -v b="$end_ns" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
echo "machine: $(nproc) cpus, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)," \
    "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "${WARM_UP_S} s warm-up, then ${wall_s} s measured"
failed=0
for i in "${!pids[@]}"; do
    ticks=$((end_ticks[i] - start_ticks[i]))
    cpu_s=$(awk -v t="$ticks" -v hz="$clk_tck" 'BEGIN { printf "%.2f", t / hz }')
    cpu_pct=$(awk -v c="$cpu_s" -v w="$wall_s" 'BEGIN { printf "%.3f", 100 * c / w }')
    exact_pct=$(awk -v n=$((end_cpu_ns[i] - start_cpu_ns[i])) -v w="$wall_s" \
        'BEGIN { printf "%.3f", 100 * n / 1e9 / w }')
    per_tick_us=$(awk -v n=$((end_cpu_ns[i] - start_cpu_ns[i])) -v w="$wall_s" \
        'BEGIN { printf "%.0f", n / 1e3 / (w * 10) }')
    switches=$((end_switches[i] - start_switches[i]))
    echo "${names[i]}:"
    echo "  cpu: ${cpu_s} s (utime+stime, ${clk_tck} Hz clock ticks) = ${cpu_pct} % of one core;" \
        "schedstat: ${exact_pct} % (${per_tick_us} us of CPU per 100 ms tick)"
    echo "  rss: mean $(mib $((rss_sum[i] / MEASURE_S))) MiB, max $(mib "${rss_max[i]}") MiB" \
        "(VmRSS, 1 s samples); VmHWM $(mib "${hwm[i]}") MiB"
    echo "  threads: ${threads[i]}; voluntary context switches: $switches" \
        "($(awk -v s="$switches" -v w="$wall_s" 'BEGIN { printf "%.0f", s / w }')/s)"
    echo "  exit code after SIGINT: ${exit_codes[i]}; last line: $(tail -n 1 "$logs/$i.log")"
    if ((exit_codes[i] != 0)); then
        echo "  FAILED: did not exit 0 after SIGINT; log: $logs/$i.log" >&2
        failed=1
    fi
done
echo "logs: $logs"
exit "$failed"
