-- Writes are refused; introspection works; unknown litestream pragmas are errors.
.open file:app.db?vfs=litestream
INSERT INTO items(id, sku) VALUES (99999, 'nope');
SELECT count(*) FROM items WHERE id = 99999;
PRAGMA litestream_write_enabled;
SELECT litestream_lag() BETWEEN 0 AND 60;
PRAGMA litestream_hydration_progress;
PRAGMA litestream_cache_size;
PRAGMA litestream_lag = 5;
PRAGMA litestream_bogus;
