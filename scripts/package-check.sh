#!/usr/bin/env bash
# Builds the Debian package, checks what it holds, installs it, verifies its unit with
# systemd-analyze, then starts the installed daemon the way its unit does (Type=notify:
# READY=1 on the notify socket, the socket in RUNTIME_DIRECTORY, state in
# STATE_DIRECTORY) and asks it `query health` over the socket. Stops it with SIGTERM
# (STOPPING=1, exit 0), runs the unit's ExecStopPost (`gamesa restore`), and purges the
# package again.
#
# Without systemd as PID 1 (a container, CI) the unit is not started by systemd itself;
# this script plays systemd's part for the start and the stop. Needs root (dpkg -i).
#
#   scripts/package-check.sh [--profile dev]    # default: dev, reusing the test build
set -euo pipefail
cd "$(dirname "$0")/.."

profile=dev
if [[ ${1:-} == --profile ]]; then
    profile=${2:?--profile needs a name}
fi

deb=$(packaging/build-deb.sh --profile "$profile" | tail -n 1)
echo "== built $deb"

echo "== contents"
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for wanted in \
    ./usr/bin/gamesa \
    ./etc/gamesa/gamesa.toml \
    ./etc/gamesa/gamesa.d/README \
    ./usr/lib/systemd/system/gamesa.service \
    ./usr/share/man/man1/gamesa.1.gz \
    ./usr/share/bash-completion/completions/gamesa \
    ./usr/share/zsh/vendor-completions/_gamesa \
    ./usr/share/fish/vendor_completions.d/gamesa.fish \
    ./usr/share/doc/gamesa/copyright; do
    if ! grep -qx -- "$wanted" <<<"$contents"; then
        echo "missing from the package: $wanted" >&2
        exit 1
    fi
done
dpkg-deb -f "$deb" Depends | grep -q adduser
dpkg-deb --info "$deb" conffiles | grep -qx /etc/gamesa/gamesa.toml
echo "all there; /etc/gamesa/gamesa.toml is a conffile"

if dpkg -s gamesa >/dev/null 2>&1; then
    echo "gamesa is already installed here; not touching it" >&2
    exit 1
fi
work=$(mktemp -d)
daemon=
listener=
cleanup() {
    [[ -n $daemon ]] && kill "$daemon" 2>/dev/null || true
    [[ -n $listener ]] && kill "$listener" 2>/dev/null || true
    dpkg --purge gamesa >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== install"
dpkg -i "$deb" >/dev/null
getent group gamesa >/dev/null
unit=/usr/lib/systemd/system/gamesa.service
[[ -f $unit ]] || unit=/lib/systemd/system/gamesa.service
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$unit"
    echo "systemd-analyze verify: clean"
else
    echo "systemd-analyze is not installed: unit not verified" >&2
    exit 1
fi
/usr/bin/gamesa check-config >/dev/null
man -w gamesa >/dev/null

echo "== start as the unit does"
mkdir -p "$work/run" "$work/state"
python3 - "$work/notify.sock" >"$work/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    message = s.recv(4096).decode()
    print(message, flush=True)
    if "STOPPING=1" in message:
        break
PY
listener=$!
for _ in $(seq 50); do [[ -S $work/notify.sock ]] && break; sleep 0.1; done
export NOTIFY_SOCKET=$work/notify.sock RUNTIME_DIRECTORY=$work/run STATE_DIRECTORY=$work/state
GAMESA__INGRESS__UNIX_ENABLED=true GAMESA_LOG=warn /usr/bin/gamesa run >"$work/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do grep -q READY=1 "$work/notify.log" && break; sleep 0.1; done
grep -q READY=1 "$work/notify.log" || { cat "$work/daemon.log" >&2; echo "no READY=1" >&2; exit 1; }
echo "READY=1 received"
health=$(/usr/bin/gamesa send query health)
echo "query health: $health"
grep -q "^ok: gamesa/" <<<"$health" || { echo "unexpected health: $health" >&2; exit 1; }

echo "== stop as the unit does"
kill -TERM "$daemon"
wait "$daemon"
daemon=
wait "$listener"
listener=
grep -q STOPPING=1 "$work/notify.log"
echo "STOPPING=1 received, exit 0"
/usr/bin/gamesa restore
echo "== package check passed"
