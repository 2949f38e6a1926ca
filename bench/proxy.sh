#!/usr/bin/env bash
# Proxy throughput and CPU cost side by side with nginx (and haproxy) in the same run, through
# ../shared/bench/peers.sh: one route to the upstream, no plugins. The figure that matters is
# "proxy CPU µs/req" of turnpike against nginx's.
#   bench/proxy.sh                       # pinned, one worker each (peers.sh defaults)
#   RUNS=1 DURATION=5s bench/proxy.sh    # quicker
#   ONLY="nginx gateway" bench/proxy.sh  # skip the others
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p turnpike
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
export TURNPIKE_BIN="$target_dir/release/turnpike"
PEERS=${PEERS:-$(cd .. && pwd)/shared/bench/peers.sh}
export ONLY=${ONLY:-"direct nginx haproxy gateway"}
export GATEWAY_NAME=turnpike GATEWAY_PORT=${GATEWAY_PORT:-19100}
export GATEWAY_CMD="exec $(pwd)/bench/gateway.sh"
exec "$PEERS"
