//! Interop with the real Go `litestream` 0.5.17: it replicates a live WAL database (to a file
//! replica and to a real S3 server on 127.0.0.1) under a stream of writes, with compaction fast
//! enough that L0, L1, L2 and a snapshot exist; our VFS must then agree row for row with
//! `litestream restore`, travel in time, and follow the live primary.

use std::time::{Duration, Instant};

use anyhow::Result;
use e2e::{dump, open_vfs};
use testkit::golitestream::{restore, ReplicaTarget, ReplicateOpts, Replicator, RestoreOpts};
use testkit::{PrimaryDb, S3Server};

const ROWS: &str = "SELECT id, grp, body FROM t ORDER BY id";

fn write_batch(db: &PrimaryDb, seed: i64, n: i64) -> Result<()> {
    db.exec("BEGIN")?;
    for i in 0..n {
        let id = seed * 100_000 + i;
        db.conn().execute(
            "INSERT INTO t(id, grp, body) VALUES (?1, ?2, printf('%.*c', 150 + (?1 % 300), 'x') || hex(randomblob(32)))",
            [id, id % 17],
        )?;
    }
    db.exec(&format!(
        "UPDATE t SET grp = grp + 100 WHERE id % 7 = {} ; DELETE FROM t WHERE id % 13 = {};",
        seed % 7,
        seed % 13
    ))?;
    db.exec("COMMIT")
}

fn restored(
    target: &ReplicaTarget,
    opts: RestoreOpts,
) -> Result<(tempfile::TempDir, rusqlite::Connection)> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("restored.db");
    restore(target, &out, &opts)?;
    let conn = rusqlite::Connection::open(&out)?;
    Ok((dir, conn))
}

fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<bool>) -> Result<()> {
    let start = Instant::now();
    loop {
        if f()? {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn scenario(target: ReplicaTarget, server: Option<&S3Server>) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let primary = PrimaryDb::create(&dir.path().join("app.db"))?;
    primary.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, body TEXT); CREATE INDEX t_grp ON t(grp);")?;
    write_batch(&primary, 1, 1500)?;
    let mut rep = Replicator::start(primary.path(), target.clone(), ReplicateOpts::default())?;
    let a = rep.sync()?.txid;
    let rows_a = dump(primary.conn(), ROWS)?;
    // Timestamps are milliseconds; leave a clear step between the two states.
    std::thread::sleep(Duration::from_millis(1200));
    let time_a = testkit_now_rfc3339();
    std::thread::sleep(Duration::from_millis(300));
    for seed in 2..12 {
        write_batch(&primary, seed, 200)?;
        std::thread::sleep(Duration::from_millis(150));
    }
    let b = rep.sync()?.txid;
    assert!(b > a, "the write stream moved the TXID ({a} -> {b})");
    rep.wait_for_level(2, Duration::from_secs(60))?;
    let files = rep.wait_for_level(9, Duration::from_secs(60))?;
    let levels: std::collections::BTreeSet<u32> = files.iter().map(|f| f.level).collect();
    assert!(
        levels.contains(&0) && levels.contains(&1),
        "levels present: {levels:?}"
    );
    let b = rep.sync()?.txid;

    // Latest state: identical to `litestream restore`.
    let vfs = open_vfs("app.db", &target.url(), "&poll_interval=100ms")?;
    let (_r, latest) = restored(&target, RestoreOpts::default())?;
    let ours = dump(&vfs, ROWS)?;
    assert_eq!(ours.len(), dump(&latest, ROWS)?.len());
    assert!(
        ours == dump(&latest, ROWS)?,
        "VFS rows differ from litestream restore"
    );
    assert_eq!(
        ours,
        dump(primary.conn(), ROWS)?,
        "VFS rows differ from the primary"
    );
    let check: String = vfs.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    assert_eq!(check, "ok");
    let txid: String = vfs.query_row("PRAGMA litestream_txid", [], |r| r.get(0))?;
    assert_eq!(txid, format!("{b:016x}"));

    // Time travel by TXID: identical to `litestream restore -txid`.
    vfs.query_row(&format!("PRAGMA litestream_txid = '{a:016x}'"), [], |_| {
        Ok(())
    })?;
    let (_r, at_a) = restored(
        &target,
        RestoreOpts {
            txid: Some(a),
            timestamp: None,
        },
    )?;
    assert_eq!(dump(&vfs, ROWS)?, dump(&at_a, ROWS)?);
    assert_eq!(dump(&vfs, ROWS)?, rows_a);
    // By time, and back to latest.
    vfs.query_row(&format!("PRAGMA litestream_time = '{time_a}'"), [], |_| {
        Ok(())
    })?;
    assert_eq!(dump(&vfs, ROWS)?, rows_a, "state at {time_a}");
    let t: String = vfs.query_row("SELECT litestream_time()", [], |r| r.get(0))?;
    assert_eq!(epoch_ms(&t)?, epoch_ms(&time_a)?);
    vfs.query_row("PRAGMA litestream_time = 'latest'", [], |_| Ok(()))?;
    assert_eq!(dump(&vfs, ROWS)?, ours);
    if let Some(server) = server {
        // Unlike the Go VFS, time travel reads no object metadata: no HEAD requests at all.
        assert_eq!(server.stats().head, 0, "HEAD requests were sent");
    }

    // Following the live primary.
    write_batch(&primary, 50, 300)?;
    let c = rep.sync()?.txid;
    let want = dump(primary.conn(), ROWS)?;
    eventually(
        "the VFS to reach the primary",
        Duration::from_secs(30),
        || Ok(dump(&vfs, ROWS)? == want),
    )?;
    let txid: String = vfs.query_row("SELECT litestream_txid()", [], |r| r.get(0))?;
    assert_eq!(txid, format!("{c:016x}"));
    let lag: i64 = vfs.query_row("SELECT litestream_lag()", [], |r| r.get(0))?;
    assert!((0..30).contains(&lag), "lag {lag}");
    Ok(())
}

/// RFC 3339 "now" with milliseconds, from SQLite itself (no extra date crate in the tests).
fn testkit_now_rfc3339() -> String {
    let c = rusqlite::Connection::open_in_memory().unwrap();
    c.query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", [], |r| {
        r.get(0)
    })
    .unwrap()
}

/// Milliseconds since the epoch of an RFC 3339 time, via SQLite's date functions.
fn epoch_ms(s: &str) -> Result<i64> {
    let c = rusqlite::Connection::open_in_memory()?;
    let ms: Option<i64> = c.query_row(
        "SELECT CAST(round((julianday(?1) - 2440587.5) * 86400000) AS INTEGER)",
        [s],
        |r| r.get(0),
    )?;
    ms.ok_or_else(|| anyhow::anyhow!("not a time: {s}"))
}

#[test]
fn go_replica_on_local_files() -> Result<()> {
    let dir = tempfile::tempdir()?;
    scenario(ReplicaTarget::file(&dir.path().join("replica"))?, None)
}

#[test]
fn go_replica_on_s3() -> Result<()> {
    let root = tempfile::tempdir()?;
    let server = S3Server::start(root.path())?;
    server.create_bucket("bucket")?;
    scenario(
        ReplicaTarget::s3(&server, "bucket", "db/app"),
        Some(&server),
    )
}

/// A table whose pages are scattered among another table's (each transaction writes to both,
/// so their leaves are allocated in turn): its scan gets no help from read-ahead by page
/// number, so the VFS prefetches the children of the interior page being walked, and GETs that
/// span the gaps between them fetch the table in a few requests instead of one per leaf.
#[test]
fn scan_of_a_scattered_table_takes_few_gets() -> Result<()> {
    let root = tempfile::tempdir()?;
    let server = S3Server::start(root.path())?;
    server.create_bucket("bucket")?;
    let dir = tempfile::tempdir()?;
    let primary = PrimaryDb::create(&dir.path().join("app.db"))?;
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
    let target = ReplicaTarget::s3(&server, "bucket", "scan");
    let mut rep = Replicator::start(primary.path(), target.clone(), ReplicateOpts::default())?;
    rep.sync()?;
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
