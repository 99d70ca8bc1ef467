#!/usr/bin/env bash
# The HTTP API's figures (docs/performance.md, "HTTP API"), on a release `gamesa run`
# ticking the twin at 10 Hz (config/sim.toml on the 600 s `training` scenario):
#
# 1. throughput: wrk, keep-alive over loopback, on `GET /v1/telemetry` with a bearer
#    token (authentication, the effect check and audit, the JSON of the last frame),
#    with the daemon's tick rate read from /metrics around it; and in the same run two
#    peers under the same load: `GET /health/live` on the same server (the floor:
#    hyper and axum, no session, a 17-byte body), and nginx serving the same
#    /v1/telemetry body as a static file with as many workers as the API has threads;
# 2. latency: `examples/http_rate.rs`, an open-loop 1,000 requests/s of
#    `GET /v1/telemetry` over 8 connections, p50 to max counted from each request's
#    scheduled time, and the tick rate before and under the load.
#
#   scripts/bench-http.sh                 # build release, 10 s per measurement
#   DURATION_S=30 NO_BUILD=1 scripts/bench-http.sh
#
# Needs wrk (Debian's `wrk`) and, for the nginx peer, nginx (`nginx-light`); without
# nginx that peer is skipped and says so.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
DURATION_S=${DURATION_S:-10}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-19471}
NGINX_PORT=${NGINX_PORT:-19472}
TOKEN=bench-token-0001

command -v wrk >/dev/null || { echo "error: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
if [[ -z ${NO_BUILD:-} ]]; then
    cargo build --release -p gamesa --bin gamesa --example http_rate
fi

work=$(mktemp -d -t gamesa-http-bench.XXXXXX)
daemon=""
nginx_pid=""
cleanup() {
    [[ -n $daemon ]] && kill -INT "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
    [[ -n $nginx_pid ]] && kill "$nginx_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

sed "s|^scenario = .*|scenario = \"$root/scenarios/training.toml\"|" config/sim.toml >"$work/gamesa.toml"
cat >>"$work/gamesa.toml" <<EOF

[http]
enabled = true
address = "127.0.0.1:$PORT"

[ingress]
rate_limit_per_s = 10000000
rate_burst = 10000000

[[clients]]
name = "bench"
token = "$TOKEN"
effects = ["query:*"]
EOF
sed -i 's/^status_interval_s = .*/status_interval_s = 0/' "$work/gamesa.toml"

(cd "$work" && STATE_DIRECTORY=$work RUNTIME_DIRECTORY=$work GAMESA_LOG=warn \
    exec "$root/target/release/gamesa" run --config "$work/gamesa.toml") &
daemon=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null || { echo "error: the daemon never got ready" >&2; exit 1; }

ticks() { curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^gamesa_ticks_total /{print $2}'; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)')"

run_wrk() { # name url [header]
    local name=$1 url=$2
    shift 2
    local before after started ended
    before=$(ticks); started=$(date +%s.%N)
    echo "== $name: wrk -t1 -c$CONNECTIONS -d${DURATION_S}s $url"
    local out
    out=$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION_S}s" --latency "$@" "$url")
    grep -E 'Requests/sec|Latency|99%|Non-2xx|Socket errors|requests in' <<<"$out"
    # Errors answered fast are not throughput: such a run measured nothing.
    if grep -q 'Non-2xx' <<<"$out"; then
        echo "error: $name answered errors; its figure is void" >&2
        exit 1
    fi
    after=$(ticks); ended=$(date +%s.%N)
    awk -v b="$before" -v a="$after" -v s="$started" -v e="$ended" \
        'BEGIN { printf "   daemon tick rate meanwhile: %.2f/s\n", (a - b) / (e - s) }'
}

idle_before=$(ticks); sleep "$DURATION_S"; idle_after=$(ticks)
awk -v b="$idle_before" -v a="$idle_after" -v d="$DURATION_S" \
    'BEGIN { printf "== idle: daemon tick rate %.2f/s\n", (a - b) / d }'
run_wrk "GAMESA GET /v1/telemetry" "http://127.0.0.1:$PORT/v1/telemetry" -H "Authorization: Bearer $TOKEN"
run_wrk "peer: GAMESA GET /health/live" "http://127.0.0.1:$PORT/health/live"

if command -v nginx >/dev/null; then
    mkdir -p "$work/www/v1" "$work/nginx"
    curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v1/telemetry" >"$work/www/v1/telemetry"
    # nginx's workers run as its own user: let them read the file.
    chmod -R a+rX "$work"
    cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
daemon off;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    default_type application/json;
    client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
    uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
    server { listen 127.0.0.1:$NGINX_PORT; root $work/www; }
}
EOF
    nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
    nginx_pid=$!
    sleep 0.5
    run_wrk "peer: nginx, the same body as a static file ($(stat -c %s "$work/www/v1/telemetry") bytes)" \
        "http://127.0.0.1:$NGINX_PORT/v1/telemetry"
    kill "$nginx_pid"; wait "$nginx_pid" 2>/dev/null || true; nginx_pid=""
else
    echo "== peer: nginx is not installed; skipped (apt-get install nginx-light)"
fi

echo "== open loop: 1000 requests/s of GET /v1/telemetry for ${DURATION_S} s on 8 connections"
target/release/examples/http_rate "127.0.0.1:$PORT" /v1/telemetry "$TOKEN" 1000 "$DURATION_S" 8
