#!/usr/bin/env bash
# Starts Turnpike as the gateway under test of ../shared/bench/peers.sh: a fresh embedded
# database in $WORK, one service pointing at $UPSTREAM and one route for every path, $WORKERS
# workers, proxy on $GATEWAY_PORT. Runs in the foreground (peers.sh stops its process group).
#   TURNPIKE_BIN=... UPSTREAM=127.0.0.1:18080 WORK=/tmp/x WORKERS=1 GATEWAY_PORT=19100 bench/gateway.sh
set -euo pipefail
: "${TURNPIKE_BIN:?}" "${UPSTREAM:?}" "${WORK:?}" "${WORKERS:=1}" "${GATEWAY_PORT:=19100}"
ADMIN_PORT=$((GATEWAY_PORT + 1))
dir="$WORK/turnpike"
rm -rf "$dir" && mkdir -p "$dir"
cat >"$dir/turnpike.conf" <<CONF
prefix = $dir
proxy_listen = 127.0.0.1:$GATEWAY_PORT reuseport backlog=4096
admin_listen = 127.0.0.1:$ADMIN_PORT
status_listen = off
nginx_worker_processes = $WORKERS
log_level = warn
${EXTRA_CONF:-}
CONF
"$TURNPIKE_BIN" start -c "$dir/turnpike.conf" &
pid=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$ADMIN_PORT/status" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs -X POST "http://127.0.0.1:$ADMIN_PORT/services" -d name=bench -d "url=http://$UPSTREAM" >/dev/null
# an optional set-up step (e.g. bench/keyauth_setup.sh: SETUP DIR ADMIN_PORT PROXY_PORT), done
# before the benchmark route exists, so that the harness cannot start measuring early
if [ -n "${SETUP:-}" ]; then "$SETUP" "$dir" "$ADMIN_PORT" "$GATEWAY_PORT"; fi
curl -fs -X POST "http://127.0.0.1:$ADMIN_PORT/services/bench/routes" -d name=bench -d 'paths[]=/' >/dev/null
wait "$pid"
