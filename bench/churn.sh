#!/usr/bin/env bash
# Proxy latency while the configuration changes: wrk through Turnpike (one route to an nginx
# upstream, plus ROUTES other routes, default 10,000) first with a still configuration, then
# while a client updates a route through the Admin API as fast as it can (every update
# rebuilds and republishes the whole configuration). Prints both wrk summaries and the number
# of configurations published during the second run.
#   bench/churn.sh [ROUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUTES=${1:-10000}
cargo build --release --quiet -p turnpike
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
export TURNPIKE_BIN="$target_dir/release/turnpike"
WORK=$(mktemp -d -t churn.XXXXXX); export WORK
export UPSTREAM=127.0.0.1:18182 WORKERS=${WORKERS:-1} GATEWAY_PORT=19300 EXTRA_CONF="log_level = info"
ADMIN=http://127.0.0.1:$((GATEWAY_PORT + 1))
cat >"$WORK/up.conf" <<CONF
worker_processes 1; daemon off; master_process off; pid $WORK/up.pid; error_log $WORK/up.err warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $WORK/t1; proxy_temp_path $WORK/t2; fastcgi_temp_path $WORK/t3;
  uwsgi_temp_path $WORK/t4; scgi_temp_path $WORK/t5; keepalive_requests 10000000;
  server { listen $UPSTREAM; location / { return 200 "ok\n"; } } }
CONF
taskset -c 0 nginx -p "$WORK" -c "$WORK/up.conf" & up=$!
setsid taskset -c 1 bench/gateway.sh >"$WORK/gw.log" 2>&1 & gw=$!
trap 'kill $up 2>/dev/null; kill -- -$gw 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$GATEWAY_PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
echo "# loading $ROUTES routes"
python3 - "$ADMIN" "$ROUTES" <<'PY'
import json, sys, urllib.request, concurrent.futures
admin, n = sys.argv[1], int(sys.argv[2])
def post(path, body):
    req = urllib.request.Request(admin + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req).read()
post("/services", {"name": "churn", "url": "http://127.0.0.1:1"})
def mk(i):
    post("/services/churn/routes", {"name": f"r{i}", "hosts": [f"h{i}.example.com"], "paths": [f"/p{i}"]})
with concurrent.futures.ThreadPoolExecutor(8) as ex:
    list(ex.map(mk, range(n)))
PY
sleep 3
grep "configuration updated" "$WORK/gw.log" | tail -1
echo "# still configuration"
taskset -c 0 wrk -t1 -c50 -d10s --latency "http://127.0.0.1:$GATEWAY_PORT/" | sed -n '/Latency Distribution/,/requests in/p'
before=$(grep -c "configuration updated" "$WORK/gw.log")
echo "# while a route is updated continuously"
( i=0; while :; do i=$((i+1)); curl -fs -X PATCH "$ADMIN/routes/r0" -d "paths[]=/p0-$i" >/dev/null; done ) & churn=$!
taskset -c 0 wrk -t1 -c50 -d10s --latency "http://127.0.0.1:$GATEWAY_PORT/" | sed -n '/Latency Distribution/,/requests in/p'
kill $churn
after=$(grep -c "configuration updated" "$WORK/gw.log")
echo "configurations published during the run: $((after - before))"
grep "configuration updated" "$WORK/gw.log" | tail -3
