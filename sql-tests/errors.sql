-- Bad configuration fails the open with a message that says what to fix.
.open file:app.db?vfs=litestream&replica_url=sftp://host/path
.open file:app.db?vfs=litestream&replica_url=file:///nonexistent/replica
.open file:app.db?vfs=litestream&cache_size=lots
.open file:app.db?vfs=litestream&poll_interval=fast
.open file:app.db?vfs=litestream
SELECT count(*) > 0 FROM items;
