//! Interop with the real Go `litestream` 0.5.17 beyond what every backend must do (that is the
//! conformance suite, conformance.rs): on S3, where the test server counts requests, a
//! scan of a table whose pages are scattered takes few GETs, and the first query after an open
//! fetches only the pages below the roots.

use anyhow::Result;
use e2e::open_vfs;
use testkit::golitestream::{ReplicaTarget, ReplicateOpts, Replicator};
use testkit::{PrimaryDb, S3Server};

/// An S3 server with a bucket, and a primary database to fill then replicate there.
struct Setup {
    server: S3Server,
    primary: PrimaryDb,
    /// Dropped last, after the server and the database that use them.
    _dirs: [tempfile::TempDir; 2],
}

impl Setup {
    fn new() -> Result<Setup> {
        let root = tempfile::tempdir()?;
        let server = S3Server::start(root.path())?;
        server.create_bucket("bucket")?;
        let dir = tempfile::tempdir()?;
        let primary = PrimaryDb::create(&dir.path().join("app.db"))?;
        Ok(Setup {
            server,
            primary,
            _dirs: [root, dir],
        })
    }

    /// The Go `litestream replicate` uploads the primary as it is now, under `name`.
    fn replicate(&self, name: &str) -> Result<(ReplicaTarget, Replicator)> {
        let target = ReplicaTarget::s3(&self.server, "bucket", name);
        let mut rep = Replicator::start(
            self.primary.path(),
            target.clone(),
            ReplicateOpts::default(),
        )?;
        rep.sync()?;
        Ok((target, rep))
    }
}

/// A table whose pages are scattered among another table's (each transaction writes to both,
/// so their leaves are allocated in turn): its scan gets no help from read-ahead by page
/// number, so the VFS prefetches the children of the interior page being walked, and GETs that
/// span the gaps between them fetch the table in a few requests instead of one per leaf.
#[test]
fn scan_of_a_scattered_table_takes_few_gets() -> Result<()> {
    let t = Setup::new()?;
    let (server, primary) = (&t.server, &t.primary);
    primary.exec(
        "CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE b(id INTEGER PRIMARY KEY, body TEXT);",
    )?;
    for i in 0..300 {
        primary.exec(&format!(
            "BEGIN; \
             INSERT INTO a(v) WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 25) \
               SELECT printf('%.*c', 80 + n % 40, 'a') FROM s; \
             INSERT INTO b(body) WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 25) \
               SELECT printf('%.*c', 250 + n % 90, 'b') || {i} FROM s; \
             COMMIT;"
        ))?;
    }
    let pages: i64 = primary
        .conn()
        .query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let want: (i64, i64) =
        primary
            .conn()
            .query_row("SELECT count(*), sum(length(v)) FROM a", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
    let (target, _rep) = t.replicate("scan")?;
    let vfs = open_vfs("app.db", &target.url(), "&poll_interval=0")?;
    let before = server.stats();
    let got: (i64, i64) = vfs.query_row("SELECT count(*), sum(length(v)) FROM a", [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    let after = server.stats();
    assert_eq!(got, want);
    let gets = (after.get + after.get_range) - (before.get + before.get_range);
    println!(
        "scan: {gets} GETs for {} rows in a {pages}-page database",
        want.0
    );
    // Table `a` holds about a quarter of the pages; one GET per leaf would be ~pages / 4.
    assert!(
        gets * 20 <= pages as u64,
        "{gets} GETs to scan a table in a {pages}-page database"
    );
    assert!(e2e::stat(&vfs, "prefetched_pages")? > 0.0);
    Ok(())
}

/// Page 1 and the root pages lie right after the snapshot's header, so the GET that reads the
/// header for the index load brings them too: the first point query after the open fetches
/// only its leaf. Round trips: LIST, the index (header and tail GETs in parallel), the leaf.
#[test]
fn first_query_after_open_fetches_only_its_leaf() -> Result<()> {
    let t = Setup::new()?;
    let (server, primary) = (&t.server, &t.primary);
    // ~130 leaves of incompressible rows under one root (page 2): a snapshot far larger than
    // what is fetched whole, and a root that lies in its first frames.
    primary.exec(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); \
         INSERT INTO t(v) WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 400) \
           SELECT randomblob(1000) FROM s;",
    )?;
    let want: i64 =
        primary
            .conn()
            .query_row("SELECT length(v) + id FROM t WHERE id = 300", [], |r| {
                r.get(0)
            })?;
    let (target, _rep) = t.replicate("first")?;
    let before = server.stats();
    let vfs = open_vfs("app.db", &target.url(), "&poll_interval=0")?;
    let got: i64 = vfs.query_row("SELECT length(v) + id FROM t WHERE id = 300", [], |r| {
        r.get(0)
    })?;
    let after = server.stats();
    assert_eq!(got, want);
    // Before the stats query reads anything itself.
    let misses = e2e::stat(&vfs, "cache_misses")?;
    let loads = e2e::stat(&vfs, "index_loads")?;
    let gets = (after.get + after.get_range) - (before.get + before.get_range);
    println!("open + first query: {gets} GETs, {loads} index loads, {misses} page misses");
    assert_eq!(
        misses, 1.0,
        "page 1 and the root come with the header; only the leaf is fetched"
    );
    assert_eq!(after.list - before.list, 1);
    assert!(
        gets as f64 <= 2.0 * loads + 1.0,
        "{gets} GETs for {loads} index loads and one leaf"
    );
    Ok(())
}

/// An index whose key starts with a category: each interior page covers one category's keys,
/// whose leaves were written over the whole history, so one interior's children lie far
/// apart in the file while all leaves of the index together are dense. Once the count walks
/// into its second subtree, the children of the next subtrees are fetched at once, in a few
/// large GETs instead of one per leaf.
#[test]
fn cold_count_over_a_dense_index_takes_few_gets() -> Result<()> {
    let t = Setup::new()?;
    let (server, primary) = (&t.server, &t.primary);
    primary.exec(
        "CREATE TABLE a(id INTEGER PRIMARY KEY, cat INT, k TEXT, pad BLOB); \
         CREATE INDEX a_cat ON a(cat, k); CREATE TABLE b(body BLOB);",
    )?;
    for i in 0..300 {
        primary.exec(&format!(
            "BEGIN; \
             INSERT INTO a(cat, k, pad) WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 15) \
               SELECT n, printf('%06d', {i}) || printf('%.*c', 140, 'k'), zeroblob(600) FROM s; \
             INSERT INTO b(body) VALUES (randomblob(6000)); \
             COMMIT;"
        ))?;
    }
    let conn = primary.conn();
    let want: i64 = conn.query_row("SELECT count(*) FROM a", [], |r| r.get(0))?;
    let plan: String = conn.query_row("EXPLAIN QUERY PLAN SELECT count(*) FROM a", [], |r| {
        r.get(3)
    })?;
    assert!(plan.contains("a_cat"), "the count walks the index: {plan}");
    let leaves: i64 = conn.query_row(
        "SELECT count(*) FROM dbstat WHERE name = 'a_cat' AND pagetype = 'leaf'",
        [],
        |r| r.get(0),
    )?;
    let (target, _rep) = t.replicate("count")?;
    let vfs = open_vfs("app.db", &target.url(), "&poll_interval=0")?;
    vfs.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })?;
    let before = server.stats();
    let got: i64 = vfs.query_row("SELECT count(*) FROM a", [], |r| r.get(0))?;
    let after = server.stats();
    assert_eq!(got, want);
    let gets = (after.get + after.get_range) - (before.get + before.get_range);
    let mb = (after.bytes_out - before.bytes_out) as f64 / 1e6;
    println!("count: {gets} GETs ({mb:.2} MB) for an index of {leaves} leaves");
    // One GET per leaf of the first subtree, then a few for all the others.
    assert!(
        gets * 5 <= leaves as u64,
        "{gets} GETs to count an index of {leaves} leaves"
    );
    Ok(())
}
