#!/usr/bin/env bash
# Set-up step for bench/gateway.sh (SETUP=bench/keyauth_setup.sh): 100,000 consumers with a
# key-auth credential each (key-N), then a global key-auth plugin. The consumers and keys are
# bulk-inserted straight into the embedded SQLite database in one transaction (the Admin API
# write path is measured by bench/admin.sh; 200,000 POSTs would only slow this set-up down),
# then the configuration version is bumped so that the node reloads. Returns once a probe route
# authenticates key-50000 (gateway.sh creates the benchmark route after this step).
#   bench/keyauth_setup.sh DIR ADMIN_PORT PROXY_PORT     (CONSUMERS=100000 by default)
set -euo pipefail
dir=$1 admin=$2 proxy=$3
python3 - "$dir/turnpike.db" "${CONSUMERS:-100000}" <<'PY'
import json, sqlite3, sys, time, uuid
db, n = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db, timeout=30)
ws = c.execute("select id from workspaces limit 1").fetchone()[0]
now = int(time.time())
ns = uuid.UUID("6f0c1a3e-4d0b-4e0a-9a7e-6b1f2a3c4d5e")
consumers, keys = [], []
for i in range(n):
    cid = str(uuid.uuid5(ns, f"consumer-{i}"))
    kid = str(uuid.uuid5(ns, f"key-{i}"))
    consumers.append((cid, ws, f"user{i}", None, json.dumps({
        "id": cid, "username": f"user{i}", "custom_id": None, "created_at": now,
        "updated_at": now, "tags": None})))
    keys.append((kid, ws, f"key-{i}", cid, json.dumps({
        "id": kid, "key": f"key-{i}", "consumer": {"id": cid}, "created_at": now, "tags": None})))
with c:
    c.executemany("insert into consumers (id, ws_id, username, custom_id, entity) values (?,?,?,?,?)", consumers)
    c.executemany("insert into keyauth_credentials (id, ws_id, key, consumer_id, entity) values (?,?,?,?,?)", keys)
    c.execute("update config_version set version = version + 1")
PY
curl -fs -X POST "http://127.0.0.1:$admin/plugins" -d name=key-auth -d config.key_names=apikey >/dev/null
curl -fs -X POST "http://127.0.0.1:$admin/services/bench/routes" -d name=probe -d 'paths[]=/__probe' >/dev/null
for _ in $(seq 1200); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$proxy/__probe?apikey=key-50000" || true)
  [ "$code" = 200 ] && exit 0
  sleep 0.1
done
echo "key-auth set-up did not become live" >&2
exit 1
