-- Time travel by TXID and back, and the errors for values that cannot work.
.open file:app.db?vfs=litestream
PRAGMA litestream_txid;
PRAGMA litestream_txid = '0000000000000001';
SELECT count(*), round(sum(price), 2) FROM items;
SELECT litestream_txid();
SELECT litestream_set_time('latest') IS NULL;
SELECT count(*), round(sum(price), 2) FROM items;
PRAGMA litestream_time = 'the day after never';
PRAGMA litestream_txid = '00000000000000ff';
PRAGMA litestream_time = '1999-01-01T00:00:00Z';
SELECT litestream_set_time('latest') IS NULL, litestream_txid();
SELECT count(*) FROM items;
