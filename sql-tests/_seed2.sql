BEGIN;
UPDATE items SET price = price * 2 WHERE category = 'cat-3';
DELETE FROM items WHERE id > 1900;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
INSERT INTO items SELECT 10000 + i, printf('NEW-%05d', i), 'cat-new', 9.99, 1 FROM n;
COMMIT;
