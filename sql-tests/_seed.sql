CREATE TABLE items(id INTEGER PRIMARY KEY, sku TEXT NOT NULL, category TEXT, price REAL, qty INTEGER);
CREATE INDEX items_category ON items(category, price);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
INSERT INTO items SELECT i, printf('SKU-%05d', i), 'cat-' || (i % 7), round(i * 1.25, 2), i % 50 FROM n;
CREATE TABLE docs(id INTEGER PRIMARY KEY, item_id INTEGER, body TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
INSERT INTO docs SELECT i, i * 3, printf('%.*c', 600, char(65 + i % 26)) FROM n;
