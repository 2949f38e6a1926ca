#!/usr/bin/env bash
# Admin API load on both backends: 10,000 services created through the API, read back by
# name, then listed. Release build; PostgreSQL from TURNPIKE_TEST_PG_URL (default: local).
#   bench/admin.sh [N] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
C=${2:-8}
export TURNPIKE_TEST_PG_URL=${TURNPIKE_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
cargo build --release --quiet -p turnpike
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
export TURNPIKE_BIN="$target_dir/release/turnpike"
echo "# admin bench: $(nproc) cores, $(awk -F: '/model name/{print $2; exit}' /proc/cpuinfo | sed 's/^ //'), $(date -u +%F)"
cargo run --release --quiet -p turnpike-test --example admin_bench -- "$N" "$C" sqlite
cargo run --release --quiet -p turnpike-test --example admin_bench -- "$N" "$C" postgres | tail -n +3
