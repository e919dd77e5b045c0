#!/usr/bin/env bash
# The main job on an embedded default, with no cloud account: a database written to a local
# file:// replica (by the Go `litestream replicate`, until write mode lands), then queried and
# time-travelled through the litestream VFS in the sqlite3 shell.
set -euo pipefail
cd "$(dirname "$0")/.."
SO="$PWD/target/release/liblitestream_vfs.so"
[ -f "$SO" ] || { echo "demo: $SO is missing; run make build" >&2; exit 1; }
DEMO=${DEMO_DIR:-$(mktemp -d /tmp/litestream-demo.XXXXXX)}
mkdir -p "$DEMO"
echo "demo: working in $DEMO"

sqlite3 "$DEMO/app.db" >/dev/null <<'SQL'
PRAGMA journal_mode = wal;
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT, amount REAL, created_at TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO orders SELECT i, 'customer-' || (i % 37), round(i * 0.75, 2), datetime('now') FROM n;
SQL

cat > "$DEMO/litestream.yml" <<YAML
dbs:
  - path: $DEMO/app.db
    monitor-interval: 100ms
    replica:
      type: file
      path: $DEMO/replica
      sync-interval: 100ms
YAML
litestream replicate -config "$DEMO/litestream.yml" >"$DEMO/litestream.log" 2>&1 &
LS_PID=$!
trap 'kill $LS_PID 2>/dev/null; wait $LS_PID 2>/dev/null || true' EXIT

wait_for_files() { # until the replica holds at least $1 level-0 files
  for _ in $(seq 1 100); do
    n=$( (find "$DEMO/replica/ltx/0" -name '*.ltx' 2>/dev/null || true) | wc -l)
    [ "$n" -ge "$1" ] && return 0
    sleep 0.1
  done
  echo "demo: litestream did not replicate; see $DEMO/litestream.log" >&2; exit 1
}
wait_for_files 1
sleep 1.2
BEFORE=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 0.5
sqlite3 "$DEMO/app.db" "INSERT INTO orders(customer, amount, created_at) SELECT customer, amount * 2, datetime('now') FROM orders WHERE id <= 500;"
wait_for_files 2
sleep 0.3

echo "demo: replica files:"; (cd "$DEMO/replica" && find . -name '*.ltx' | sort | sed 's/^/  /')
echo "demo: querying through the VFS (LITESTREAM_REPLICA_URL=file://$DEMO/replica)"
LITESTREAM_REPLICA_URL="file://$DEMO/replica" sqlite3 -header -column :memory: <<SQL
.load $SO
.open file:app.db?vfs=litestream
SELECT count(*) AS orders, round(sum(amount), 2) AS total FROM orders;
PRAGMA litestream_txid;
PRAGMA litestream_time = '$BEFORE';
SELECT count(*) AS orders_before, round(sum(amount), 2) AS total_before FROM orders;
PRAGMA litestream_time = 'latest';
SELECT count(*) AS orders_latest FROM orders;
SELECT litestream_txid() AS txid, litestream_lag() AS lag_seconds;
SQL
echo "demo: done (files kept in $DEMO)"
