-- Reads through the VFS: the latest state, SQLite's view of the file, and integrity.
.open file:app.db?vfs=litestream
SELECT count(*), round(sum(price), 2), max(id) FROM items;
SELECT category, count(*) FROM items GROUP BY category ORDER BY category;
SELECT id, sku, price FROM items WHERE id IN (1, 700, 1900, 10001) ORDER BY id;
SELECT count(*), sum(length(body)) FROM docs;
SELECT sku FROM items WHERE category = 'cat-3' ORDER BY price DESC LIMIT 3;
PRAGMA integrity_check;
PRAGMA journal_mode;
PRAGMA page_size;
SELECT length(litestream_txid()), litestream_txid() = '0000000000000002';
