#!/usr/bin/env bash
# The cost of key-auth with 100,000 consumers, side by side with nginx and with Turnpike
# without plugins, in the same ../shared/bench/peers.sh run. Every target is requested at
# /?apikey=key-50000 (nginx and the plugin-less Turnpike ignore the argument). The figure that
# matters is "proxy CPU µs/req" of "turnpike key-auth" against "turnpike" (goal: at most +10%).
#   bench/plugins.sh                        # RUNS=3 by default in peers.sh
#   RUNS=1 DURATION=5s bench/plugins.sh     # quicker
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p turnpike
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
export TURNPIKE_BIN="$target_dir/release/turnpike"
PEERS=${PEERS:-$(cd .. && pwd)/shared/bench/peers.sh}
export ONLY=${ONLY:-"direct nginx"}
export REQ_PATH="/?apikey=key-50000"
extra=$(mktemp)
cat >"$extra" <<EXTRA
proxy_under_test turnpike 19100 "GATEWAY_PORT=19100 exec $(pwd)/bench/gateway.sh"
proxy_under_test "turnpike key-auth 100k" 19110 "GATEWAY_PORT=19110 SETUP=$(pwd)/bench/keyauth_setup.sh exec $(pwd)/bench/gateway.sh"
EXTRA
export EXTRA="$extra"
exec "$PEERS"
