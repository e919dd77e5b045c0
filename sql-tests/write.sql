-- Write mode on the replica the Go litestream made (runs last: it moves the replica on).
.open file:app.db?vfs=litestream&write_enabled=true
PRAGMA litestream_write_enabled;
PRAGMA litestream_sync_mode;
SELECT count(*) FROM items;
INSERT INTO items(id, sku) VALUES (99999, 'written');
BEGIN; DELETE FROM items; ROLLBACK;
SELECT count(*), max(id) FROM items;
CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);
INSERT INTO notes(body) VALUES ('hello'), ('world');
PRAGMA litestream_sync;
PRAGMA litestream_txid;
SELECT body FROM notes ORDER BY id;
PRAGMA journal_mode = WAL;
PRAGMA journal_mode;
PRAGMA litestream_write_enabled = 0;
PRAGMA litestream_sync_mode = sometimes;
PRAGMA litestream_sync_mode = durable;
INSERT INTO notes(body) VALUES ('durable');
PRAGMA litestream_txid;
