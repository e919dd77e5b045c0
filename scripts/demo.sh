#!/usr/bin/env bash
# The main job on an embedded default, with no cloud account: a database written through the
# litestream VFS in write mode to a local file:// replica, then queried and time-travelled
# through the VFS in the sqlite3 shell, and restored with the Go `litestream restore`.
set -euo pipefail
cd "$(dirname "$0")/.."
SO="$PWD/target/release/liblitestream_vfs.so"
[ -f "$SO" ] || { echo "demo: $SO is missing; run make build" >&2; exit 1; }
DEMO=${DEMO_DIR:-$(mktemp -d /tmp/litestream-demo.XXXXXX)}
mkdir -p "$DEMO"
echo "demo: working in $DEMO"
export LITESTREAM_REPLICA_URL="file://$DEMO/replica"
# Write mode: commits are durable in this local buffer, and uploaded as LTX files every
# LITESTREAM_SYNC_INTERVAL (default 1s) and when the last connection closes.
WRITE=(env LITESTREAM_WRITE_ENABLED=true LITESTREAM_BUFFER_PATH="$DEMO/app.buffer")

echo "demo: writing 1000 orders through the VFS (a new database on an empty replica)"
"${WRITE[@]}" sqlite3 :memory: <<SQL
.load $SO
.open file:app.db?vfs=litestream
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT, amount REAL, created_at TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO orders SELECT i, 'customer-' || (i % 37), round(i * 0.75, 2), datetime('now') FROM n;
SQL
sleep 1.2
BEFORE=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
sleep 0.5
echo "demo: writing 500 more"
"${WRITE[@]}" sqlite3 :memory: <<SQL
.load $SO
.open file:app.db?vfs=litestream
INSERT INTO orders(customer, amount, created_at) SELECT customer, amount * 2, datetime('now') FROM orders WHERE id <= 500;
SQL

echo "demo: replica files:"; (cd "$DEMO/replica" && find . -name '*.ltx' | sort | sed 's/^/  /')
echo "demo: querying through the VFS (LITESTREAM_REPLICA_URL=$LITESTREAM_REPLICA_URL)"
sqlite3 -header -column :memory: <<SQL
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
if command -v litestream >/dev/null; then
  echo "demo: the Go litestream restores what the VFS wrote:"
  rm -f "$DEMO/restored.db"
  litestream restore -o "$DEMO/restored.db" "$LITESTREAM_REPLICA_URL"
  sqlite3 "$DEMO/restored.db" "SELECT '  ' || count(*) || ' orders, integrity ' || (SELECT integrity_check FROM pragma_integrity_check) FROM orders;"
fi
echo "demo: done (files kept in $DEMO)"
