#!/usr/bin/env bash
# Runs `gamesa run` on its defaults (this machine's real sensors, dry-run actuators) for
# SECONDS (default 600: ten minutes at 10 Hz), journaling into a fresh state directory,
# then replays the run and prints the replay's verdict, the journal's size per tick and
# a `gamesa why` of the CPU's limit. `docs/journal.md` and `docs/performance.md` quote
# its output. GAMESA_BIN picks the binary (default: a release build of this tree).
#
#   scripts/replay-check.sh [SECONDS] [extra `gamesa run` arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-600}"
shift || true
if [[ -z "${GAMESA_BIN:-}" ]]; then
    cargo build --release --bin gamesa >&2
    GAMESA_BIN=target/release/gamesa
fi
state="$(mktemp -d)"
trap 'rm -rf "$state"' EXIT
export STATE_DIRECTORY="$state" GAMESA_LOG="${GAMESA_LOG:-warn}"
export GAMESA__ACTUATORS__STATE_FILE="$state/actuator-state.json"
export GAMESA__TELEMETRY__ENABLED=false GAMESA__RUNTIME__STATUS_INTERVAL_S=0

echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cpus; gamesa run for ${seconds} s"
"$GAMESA_BIN" run --duration-s "$seconds" "$@" >/dev/null
journal="$state/journal.sqlite"
python3 - "$journal" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
ticks = c.execute("SELECT sum(last_tick - first_tick + 1) FROM batches").fetchone()[0]
pages = c.execute("PRAGMA page_count").fetchone()[0] - c.execute("PRAGMA freelist_count").fetchone()[0]
used = pages * c.execute("PRAGMA page_size").fetchone()[0]
print(f"journal: {ticks} ticks, {used} bytes in use, {used / ticks:.0f} bytes per tick, "
      f"{used / ticks * 864000 / 1e6:.0f} MB per day at 10 Hz")
for kind, count in c.execute("SELECT kind, count(*) FROM events GROUP BY kind"):
    print(f"events: {count} {kind}")
PY
"$GAMESA_BIN" replay --journal "$journal"
"$GAMESA_BIN" why --journal "$journal" --component cpu --at "$(date +'%Y-%m-%d %H:%M:%S')"
