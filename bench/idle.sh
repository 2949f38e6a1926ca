#!/usr/bin/env bash
# Memory of the gateway when idle and with N idle keep-alive connections (default 10,000):
# Turnpike with one route to an nginx upstream, N clients that each sent one request and
# stay connected. Prints VmRSS before and after, and the cost per connection.
#   bench/idle.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
ulimit -n $((N + 1024)) 2>/dev/null || true
cargo build --release --quiet -p turnpike
cargo build --release --quiet -p turnpike-test --example idle_conns
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
export TURNPIKE_BIN="$target_dir/release/turnpike"
WORK=$(mktemp -d -t idle.XXXXXX); export WORK
export UPSTREAM=127.0.0.1:18181 WORKERS=${WORKERS:-1} GATEWAY_PORT=19200
cat >"$WORK/up.conf" <<CONF
worker_processes 1; daemon off; master_process off; pid $WORK/up.pid; error_log $WORK/up.err warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $WORK/t1; proxy_temp_path $WORK/t2; fastcgi_temp_path $WORK/t3;
  uwsgi_temp_path $WORK/t4; scgi_temp_path $WORK/t5; keepalive_requests 100000;
  server { listen $UPSTREAM; location / { return 200 "ok\n"; } } }
CONF
nginx -p "$WORK" -c "$WORK/up.conf" & up=$!
setsid bench/gateway.sh >"$WORK/gw.log" 2>&1 & gw=$!
trap 'kill $up 2>/dev/null; kill -- -$gw 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$GATEWAY_PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
pid=$(pgrep -f "turnpike start -c $WORK" | head -1)
rss() { awk '/VmRSS/{print $2}' "/proc/$pid/status"; }
before=$(rss)
fifo="$WORK/hold"; mkfifo "$fifo"
"$target_dir/release/examples/idle_conns" "127.0.0.1:$GATEWAY_PORT" "$N" <"$fifo" >"$WORK/idle.out" & clients=$!
exec 3>"$fifo"
until grep -q ready "$WORK/idle.out" 2>/dev/null; do sleep 0.2; done
sleep 1
after=$(rss)
exec 3>&-; wait $clients 2>/dev/null || true
echo "idle: ${before} KB RSS; with $N idle keep-alive connections: ${after} KB; $(( (after - before) * 1024 / N )) bytes per connection"
