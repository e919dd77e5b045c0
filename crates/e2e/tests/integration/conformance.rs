//! One conformance suite, run against every backend Litestream replicates to: local files, S3
//! (s3s-fs), GCS (fake-gcs-server) and Azure (Azurite), each started on 127.0.0.1 by the test.
//! The same three scenarios run on each (`conformance::<backend>::<scenario>`):
//!
//! * `go_replica`: the Go `litestream replicate` writes a live WAL database with L0, L1, L2 and
//!   a snapshot. Our VFS, through the fault proxy with faults injected, reads what `litestream
//!   restore` restores; it travels to a TXID and to a time as `restore -txid`/`-timestamp` do;
//!   it follows the live primary; hydration builds the same database; then our writer
//!   continues the replica Go made, and Go restores what it wrote.
//! * `our_writer`: a workload of schema changes, large and rolled-back transactions and a
//!   truncating VACUUM, written through our VFS with fast compaction: levels 1, 2 and a
//!   snapshot appear, `litestream restore` (and the Go VFS where its URL can reach the
//!   emulator) read exactly the reference database; a second process reopens the replica in
//!   write mode and Go restores its commits too.
//! * `race`: two writer processes race on one replica, through the proxy: no object is ever
//!   overwritten (every successful PUT made an object of its own), the loser is fenced with its
//!   commits kept, and Go restores a consistent database. This is what checks that the
//!   conditional create (`If-None-Match: *` on S3 and Azure, `x-goog-if-generation-match: 0` on
//!   GCS) is enforced by the server: on GCS it is the testkit front that enforces it, because
//!   fake-gcs-server ignores the precondition (see testkit::gcs).
//!
//! Beside the suite, `gcs_endpoint_forms` and `azure_endpoint_and_credential_forms` open one
//! replica in the `sqlite3` shell in every way the configuration reference documents.
//!
//! `LITESTREAM_RACE_ROUNDS` (default 2) sets the race rounds.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::{acked, dump_child, env_u64, go_vfs_shell, Writer, WORKLOAD};
use e2e::{
    dump, go_restore, integrity, load_extension, open_vfs, open_vfs_rw, shell, snapshot, uri_encode,
};
use rusqlite::Connection;
use testkit::backend::{Backend, Kind};
use testkit::fault::{FaultConfig, FaultProxy};
use testkit::golitestream::{
    ltx_files, restore, ReplicaTarget, ReplicateOpts, Replicator, RestoreOpts,
};
use testkit::PrimaryDb;

const ROWS: &str = "SELECT id, grp, body FROM t ORDER BY id";

macro_rules! suite {
    ($($backend:ident => $kind:expr),* $(,)?) => {$(
        mod $backend {
            use super::*;

            #[test]
            fn go_replica() -> Result<()> {
                super::go_replica($kind)
            }

            #[test]
            fn our_writer() -> Result<()> {
                super::our_writer($kind)
            }

            #[test]
            fn race() -> Result<()> {
                super::race($kind)
            }
        }
    )*};
}

suite!(file => Kind::File, s3 => Kind::S3, gcs => Kind::Gcs, azure => Kind::Azure);

/// The same replica under another URL, so that this process opens it afresh (replicas are
/// shared per URL); the engine ignores query parameters it does not know.
fn variant(url: &str, tag: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}conformance={tag}")
}

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

fn restored(target: &ReplicaTarget, opts: RestoreOpts) -> Result<(tempfile::TempDir, Connection)> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("restored.db");
    restore(target, &out, &opts)?;
    let conn = Connection::open(&out)?;
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

/// `f`, retried a few times. Under injected faults a statement may fail with `SQLITE_BUSY`
/// after the engine's own retries, and the documented answer is to retry it; an open may fail
/// as a whole (`open` true: any error is retried).
fn retried<T>(what: &str, open: bool, mut f: impl FnMut() -> rusqlite::Result<T>) -> Result<T> {
    let mut last = None;
    for _ in 0..5 {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if open || e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                println!("{what}: {e}; retrying");
                last = Some(e)
            }
            Err(e) => return Err(e).context(what.to_string()),
        }
    }
    Err(last.expect("an error")).context(format!("{what}: still failing after 5 tries"))
}

/// RFC 3339 "now" with milliseconds, from SQLite itself.
fn now_rfc3339() -> Result<String> {
    let c = Connection::open_in_memory()?;
    Ok(
        c.query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", [], |r| {
            r.get(0)
        })?,
    )
}

/// Milliseconds since the epoch of an RFC 3339 time, via SQLite's date functions.
fn epoch_ms(s: &str) -> Result<i64> {
    let c = Connection::open_in_memory()?;
    let ms: Option<i64> = c.query_row(
        "SELECT CAST(round((julianday(?1) - 2440587.5) * 86400000) AS INTEGER)",
        [s],
        |r| r.get(0),
    )?;
    ms.ok_or_else(|| anyhow::anyhow!("not a time: {s}"))
}

/// A proxy in front of the backend's server (none for local files), and the URL our engine
/// uses through it.
fn proxied(backend: &Backend, target: &ReplicaTarget) -> Result<(Option<FaultProxy>, String)> {
    match backend.addr() {
        Some(addr) => {
            let proxy = FaultProxy::start(addr)?;
            let url = backend.through(&proxy, target).url();
            Ok((Some(proxy), url))
        }
        None => Ok((None, target.url())),
    }
}

fn go_replica(kind: Kind) -> Result<()> {
    load_extension()?;
    let backend = Backend::start(kind)?;
    let target = backend.target("db/app")?;
    let dir = tempfile::tempdir()?;
    let primary = PrimaryDb::create(&dir.path().join("app.db"))?;
    primary.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, body TEXT); CREATE INDEX t_grp ON t(grp);")?;
    write_batch(&primary, 1, 1500)?;
    let mut rep = Replicator::start(primary.path(), target.clone(), ReplicateOpts::default())?;
    let a = rep.sync()?.txid;
    let rows_a = dump(primary.conn(), ROWS)?;
    // Timestamps are milliseconds; leave a clear step between the two states.
    std::thread::sleep(Duration::from_millis(1200));
    let time_a = now_rfc3339()?;
    std::thread::sleep(Duration::from_millis(300));
    for seed in 2..12 {
        write_batch(&primary, seed, 200)?;
        std::thread::sleep(Duration::from_millis(150));
    }
    let b = rep.sync()?.txid;
    assert!(b > a, "the write stream moved the TXID ({a} -> {b})");
    rep.wait_for_level(2, Duration::from_secs(60))?;
    let files = rep.wait_for_level(9, Duration::from_secs(60))?;
    let levels: BTreeSet<u32> = files.iter().map(|f| f.level).collect();
    assert!(
        levels.contains(&0) && levels.contains(&1),
        "levels present: {levels:?}"
    );
    let b = rep.sync()?.txid;

    // The latest state, read through injected faults (but no stale listings: a reader that
    // opens on a stale listing reads an older state, which is right but not this test's
    // point): identical to `litestream restore` and to the primary.
    let (proxy, url) = proxied(&backend, &target)?;
    let seed = 0x00c0_ffee + std::process::id() as u64;
    if let Some(p) = &proxy {
        p.set_faults(FaultConfig {
            stale_list: 0.0,
            ..FaultConfig::chaos(seed, 0.05)
        });
    }
    let vfs = retried("open", true, || {
        open_vfs("app.db", &url, "&poll_interval=100ms&cache_size=256KB")
    })?;
    let ours = retried("read", false, || dump(&vfs, ROWS))?;
    let check: String = retried("integrity", false, || {
        vfs.query_row("PRAGMA integrity_check", [], |r| r.get(0))
    })?;
    if let Some(p) = &proxy {
        let s = p.stats();
        println!(
            "{kind:?}: {} requests, {} faults injected",
            s.requests,
            s.injected()
        );
        assert!(s.injected() > 0, "no fault was injected: {s:?}");
        p.set_faults(FaultConfig::none());
    }
    let (_r, latest) = restored(&target, RestoreOpts::default())?;
    assert_eq!(ours.len(), dump(&latest, ROWS)?.len());
    assert!(
        ours == dump(&latest, ROWS)?,
        "VFS rows differ from litestream restore"
    );
    assert!(
        ours == dump(primary.conn(), ROWS)?,
        "VFS rows differ from the primary"
    );
    assert_eq!(check, "ok");
    let txid: String = vfs.query_row("PRAGMA litestream_txid", [], |r| r.get(0))?;
    assert_eq!(txid, format!("{b:016x}"));

    // Time travel by TXID and by time: identical to `litestream restore -txid`/`-timestamp`.
    // Unlike the Go VFS (and `restore -timestamp`), ours reads no object metadata: no HEAD.
    let heads = || backend.s3().map(|s| s.stats().head);
    let heads_before = heads();
    vfs.query_row(&format!("PRAGMA litestream_txid = '{a:016x}'"), [], |_| {
        Ok(())
    })?;
    let ours_a = dump(&vfs, ROWS)?;
    vfs.query_row(&format!("PRAGMA litestream_time = '{time_a}'"), [], |_| {
        Ok(())
    })?;
    let ours_then = dump(&vfs, ROWS)?;
    let t: String = vfs.query_row("SELECT litestream_time()", [], |r| r.get(0))?;
    vfs.query_row("PRAGMA litestream_time = 'latest'", [], |_| Ok(()))?;
    assert!(dump(&vfs, ROWS)? == ours, "back at the latest state");
    assert_eq!(heads(), heads_before, "time travel sent HEAD requests");
    let (_r, at_a) = restored(
        &target,
        RestoreOpts {
            txid: Some(a),
            timestamp: None,
        },
    )?;
    assert!(
        ours_a == dump(&at_a, ROWS)?,
        "TXID {a}: ours and restore -txid differ"
    );
    assert!(
        ours_a == rows_a,
        "TXID {a}: ours and the primary then differ"
    );
    let (_r, at_time_a) = restored(
        &target,
        RestoreOpts {
            txid: None,
            timestamp: Some(time_a.clone()),
        },
    )?;
    assert!(
        dump(&at_time_a, ROWS)? == rows_a,
        "restore -timestamp {time_a} is not the state at that time"
    );
    assert!(
        ours_then == rows_a,
        "our state at {time_a} ({} rows) is not the state at that time ({} rows)",
        ours_then.len(),
        rows_a.len()
    );
    assert_eq!(epoch_ms(&t)?, epoch_ms(&time_a)?);

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

    // Hydration builds the same database.
    let hyd = dir.path().join("hydrated.db");
    let hydrating = open_vfs(
        "app.db",
        &variant(&target.url(), "hydration"),
        &format!("&hydration_path={}", uri_encode(&hyd.display().to_string())),
    )?;
    eventually("hydration", Duration::from_secs(60), || {
        let p: String =
            hydrating.query_row("PRAGMA litestream_hydration_progress", [], |r| r.get(0))?;
        let s: String = hydrating.query_row("PRAGMA litestream_stats", [], |r| r.get(0))?;
        Ok(p == "100.0" && s.contains(&format!("\"hydration_txid\":\"{c:016x}\"")))
    })?;
    let file = Connection::open_with_flags(&hyd, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    assert_eq!(integrity(&file)?, "ok");
    assert!(
        dump(&file, ROWS)? == want,
        "the hydrated file differs from the primary"
    );
    drop((file, hydrating, vfs));

    // Our writer continues the replica Go made; Go restores what it wrote.
    rep.stop(Duration::from_secs(10))?;
    let reference = dir.path().join("reference.db");
    primary.exec(&format!("VACUUM INTO '{}'", reference.display()))?;
    let local = Connection::open(&reference)?;
    local.execute_batch("PRAGMA journal_mode = DELETE")?;
    let buffer = dir.path().join("app.buffer");
    let ours = open_vfs_rw(
        "app.db",
        &variant(&target.url(), "writer"),
        &format!("&buffer_path={}", uri_encode(&buffer.display().to_string())),
    )?;
    for sql in [
        "INSERT INTO t(id, grp, body) VALUES (-1, 0, 'ours')",
        "UPDATE t SET body = body || '!' WHERE id % 11 = 0",
        "DELETE FROM t WHERE id % 5 = 1",
        "CREATE TABLE added(x)",
        "INSERT INTO added SELECT value FROM (WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < 1000) SELECT value FROM s)",
    ] {
        ours.execute_batch(sql).with_context(|| format!("ours: {sql}"))?;
        local.execute_batch(sql)?;
    }
    let txid: String = ours.query_row("PRAGMA litestream_sync", [], |r| r.get(0))?;
    assert!(
        u64::from_str_radix(&txid, 16)? > c,
        "TXID after sync: {txid}"
    );
    drop(ours);
    let restored = go_restore(&target, dir.path(), "restored-after-ours.db")?;
    assert_eq!(integrity(&restored)?, "ok");
    assert!(
        snapshot(&restored)? == snapshot(&local)?,
        "litestream restore of our writes on Go's replica differs from the reference"
    );
    Ok(())
}

fn our_writer(kind: Kind) -> Result<()> {
    load_extension()?;
    let backend = Backend::start(kind)?;
    let target = backend.target("db/ours")?;
    let url = target.url();
    let dir = tempfile::tempdir()?;
    let buffer = dir.path().join("app.buffer");
    let extra = format!(
        "&sync_interval=100ms&compaction_levels={}&snapshot_interval=3s&l0_retention=1s&buffer_path={}",
        uri_encode("1s,2s"),
        uri_encode(&buffer.display().to_string())
    );
    let ours = open_vfs_rw("app.db", &url, &extra)?;
    let local = Connection::open(dir.path().join("reference.db"))?;
    // A reader in the same process sees each commit at once.
    let reader = open_vfs("app.db", &url, "")?;
    for sql in WORKLOAD {
        ours.execute_batch(sql)
            .with_context(|| format!("ours: {sql}"))?;
        local
            .execute_batch(sql)
            .with_context(|| format!("local: {sql}"))?;
        let want: i64 = local.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        let got: i64 = reader.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        assert_eq!(got, want, "the in-process reader after {sql}");
    }
    // Small commits for a few seconds: compaction writes levels 1 and 2 and a snapshot, and
    // retention prunes level 0 behind level 1.
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(5) {
        n += 1;
        let sql = format!("UPDATE items SET n = n + 1 WHERE id = {}", 1 + n % 3000);
        ours.execute_batch(&sql)?;
        local.execute_batch(&sql)?;
        std::thread::sleep(Duration::from_millis(10));
    }
    let want = snapshot(&local)?;
    assert!(snapshot(&reader)? == want, "the in-process reader");
    let sync: String = ours.query_row("PRAGMA litestream_sync", [], |r| r.get(0))?;
    let size_before: i64 = ours.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    drop(reader);
    drop(ours);

    // Retention runs on its own clock beside the uploads: wait for it to prune level 0 (the
    // bound only guards against a hang), then check what the replica holds.
    let txid = u64::from_str_radix(&sync, 16)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut files = ltx_files(&target)?;
    while files.iter().filter(|f| f.level == 0).count() as u64 >= txid / 2
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
        files = ltx_files(&target)?;
    }
    let levels: BTreeSet<u32> = files.iter().map(|f| f.level).collect();
    let l0 = files.iter().filter(|f| f.level == 0).count() as u64;
    println!("{kind:?}: {n} small commits, TXID {sync}, levels {levels:?}, {l0} level-0 files");
    for level in [1, 2, 9] {
        assert!(
            levels.contains(&level),
            "no file at level {level}: {levels:?}"
        );
    }
    assert!(
        l0 < txid / 2,
        "level 0 was not pruned: {l0} files for TXID {txid}"
    );

    // Go restores exactly the reference database, its size included (the VACUUM truncated it).
    let restored = go_restore(&target, dir.path(), "restored.db")?;
    assert_eq!(integrity(&restored)?, "ok");
    assert!(
        snapshot(&restored)? == want,
        "litestream restore of what we wrote differs from the reference"
    );
    let size_after: i64 = restored.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    assert_eq!(size_after, size_before, "the restored database's size");
    let fresh = open_vfs("app.db", &variant(&url, "fresh"), "")?;
    assert!(snapshot(&fresh)? == want, "a fresh reader of ours");
    if kind != Kind::Azure {
        // The Go VFS takes its replica from a URL alone, and 0.5.17's abs:// URL cannot name
        // an endpoint, so it cannot reach Azurite.
        let go: String = go_vfs_shell(&target, dir.path(), "SELECT count(*), sum(n) FROM items;")?;
        let ours: String =
            fresh.query_row("SELECT count(*) || '|' || sum(n) FROM items", [], |r| {
                r.get(0)
            })?;
        assert_eq!(go, ours, "the Go VFS reads what the writer compacted");
    }
    drop(fresh);

    // Another process reopens the replica in write mode and adds to it.
    let lines = Writer::spawn(&[
        "stream",
        &url,
        &dir.path().join("reopen.buffer").display().to_string(),
        "1",
        "50",
        "100ms",
        "reopened",
    ])?
    .finish(Duration::from_secs(60))?;
    let acks = acked(&lines);
    assert_eq!(acks.len(), 50, "the reopened writer: {lines:?}");
    let restored = go_restore(&target, dir.path(), "restored-after-reopen.db")?;
    assert_eq!(integrity(&restored)?, "ok");
    let mut after = snapshot(&restored)?;
    let ids: BTreeSet<i64> = restored
        .prepare("SELECT id FROM t WHERE tag = 'reopened'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    assert_eq!(
        ids, acks,
        "the reopened writer's commits in litestream restore"
    );
    after.remove("t");
    let mut want = want;
    want.remove("schema");
    after.remove("schema");
    assert!(after == want, "the reopen changed what was there before");
    Ok(())
}

fn race(kind: Kind) -> Result<()> {
    load_extension()?;
    let rounds = env_u64("LITESTREAM_RACE_ROUNDS", 2);
    let backend = Backend::start(kind)?;
    let target = backend.target("db/race")?;
    // Through a proxy that counts the PUTs the server accepted.
    let (proxy, url) = proxied(&backend, &target)?;
    let dir = tempfile::tempdir()?;
    let mut expected: BTreeMap<i64, String> = BTreeMap::new();
    let mut conflicts = 0;
    for round in 0..rounds as i64 {
        let buffers: Vec<PathBuf> = ["a", "b"]
            .iter()
            .map(|w| dir.path().join(format!("{w}{round}.buffer")))
            .collect();
        let writers: Vec<Writer> = (0..2)
            .map(|w| {
                let first = 1_000_000 * (round + 1) + 100_000 * w;
                Writer::spawn(&[
                    "stream",
                    &url,
                    &buffers[w as usize].display().to_string(),
                    &first.to_string(),
                    "300",
                    "50ms",
                    &format!("w{w}r{round}"),
                ])
            })
            .collect::<Result<_>>()?;
        let outputs: Vec<Vec<String>> = writers
            .into_iter()
            .map(|w| w.finish(Duration::from_secs(120)))
            .collect::<Result<_>>()?;
        // A writer that lost keeps what it could not upload: reopening its buffer fails, names
        // where the commits were set aside, and overwrites nothing.
        let mut fenced = Vec::new();
        for (w, lines) in outputs.iter().enumerate() {
            let errs: Vec<&String> = lines.iter().filter(|l| l.starts_with("err ")).collect();
            if let Some(e) = errs.iter().find(|l| !l.contains("ReadOnly")) {
                bail!("round {round} writer {w}: an error other than SQLITE_READONLY: {e}");
            }
            if let Some(e) = lines.iter().find(|l| l.starts_with("openerr")) {
                bail!("round {round} writer {w}: {e}");
            }
            match dump_child(&url, &buffers[w])? {
                Err(e) => {
                    assert!(e.contains("kept in"), "round {round} writer {w}: {e}");
                    fenced.push(w);
                }
                Ok(_) => assert!(
                    errs.is_empty(),
                    "round {round} writer {w} was refused ({errs:?}) but its buffer reopens"
                ),
            }
        }
        conflicts += fenced.len();
        // No object was ever overwritten: every successful PUT created a key of its own.
        let objects = ltx_files(&target)?.len() as u64;
        assert!(objects > 0, "round {round}: nothing reached the replica");
        if let Some(p) = &proxy {
            let s = p.stats();
            assert_eq!(
                s.put_ok, objects,
                "round {round}: {} successful PUTs for {objects} objects: something was overwritten",
                s.put_ok
            );
        }
        let restored = go_restore(&target, dir.path(), &format!("round{round}.db"))?;
        assert_eq!(integrity(&restored)?, "ok", "round {round}");
        let rows: BTreeMap<i64, String> = restored
            .prepare("SELECT id, tag FROM t")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (w, lines) in outputs.iter().enumerate() {
            let tag = format!("w{w}r{round}");
            let acks = acked(lines);
            let present: BTreeSet<i64> = rows
                .iter()
                .filter(|(_, t)| **t == tag)
                .map(|(i, _)| *i)
                .collect();
            assert!(
                present.is_subset(&acks),
                "round {round} writer {w}: rows in the replica that it never acknowledged"
            );
            if !fenced.contains(&w) {
                assert_eq!(
                    present, acks,
                    "round {round} writer {w} was never refused, closed cleanly, and must be whole in the replica"
                );
                expected.extend(acks.iter().map(|i| (*i, tag.clone())));
            }
        }
        for (id, tag) in &rows {
            if let Some(t) = expected.get(id) {
                assert_eq!(t, tag);
            }
        }
        println!(
            "{kind:?} race: round {round}: refused writers {fenced:?}, {} rows, {objects} objects, {} PUTs refused by the conditional create",
            rows.len(),
            proxy.as_ref().map_or(0, |p| p.stats().put_refused),
        );
    }
    assert!(
        conflicts > 0,
        "the writers never collided in {rounds} rounds"
    );
    if let Some(g) = backend.gcs() {
        println!(
            "{kind:?}: the front refused {} create-only PUTs",
            g.stats().put_precondition_failed
        );
    }
    Ok(())
}

/// A small replica written by our writer at `path`: table `t` of 3 rows.
fn small_replica(backend: &Backend, path: &str) -> Result<ReplicaTarget> {
    load_extension()?;
    let target = backend.target(path)?;
    let dir = tempfile::tempdir()?;
    let buffer = dir.path().join("small.buffer");
    let conn = open_vfs_rw(
        "small.db",
        &target.url(),
        &format!("&buffer_path={}", uri_encode(&buffer.display().to_string())),
    )?;
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3);")?;
    drop(conn);
    Ok(target)
}

/// `SELECT count(*) FROM t` through the VFS in the `sqlite3` shell, with `env` (an empty
/// value unsets a variable the shell would otherwise get).
fn count_in_shell(url: &str, env: &[(&str, String)]) -> Result<String> {
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("LITESTREAM_REPLICA_URL", url));
    let out = shell(
        ".open file:small.db?vfs=litestream\nSELECT count(*) FROM t;\n",
        &env,
    )?;
    Ok(out.trim().to_string())
}

#[test]
fn gcs_endpoint_forms() -> Result<()> {
    let backend = Backend::start(Kind::Gcs)?;
    let target = small_replica(&backend, "db/forms")?;
    let ReplicaTarget::Gcs { emulator_host, .. } = &target else {
        bail!("not a GCS target: {target:?}");
    };
    for (url, env) in [
        // ?endpoint= (the front, which our writer needs), anonymous.
        (target.url(), vec![]),
        // The Google SDKs' variable, as host:port and as a URL, straight to the emulator.
        (
            "gs://bucket/db/forms".to_string(),
            vec![("STORAGE_EMULATOR_HOST", emulator_host.clone())],
        ),
        (
            "gs://bucket/db/forms".to_string(),
            vec![("STORAGE_EMULATOR_HOST", format!("http://{emulator_host}"))],
        ),
    ] {
        assert_eq!(count_in_shell(&url, &env)?, "3", "{url} with {env:?}");
    }
    Ok(())
}

#[test]
fn azure_endpoint_and_credential_forms() -> Result<()> {
    let backend = Backend::start(Kind::Azure)?;
    let target = small_replica(&backend, "db/forms")?;
    let azurite = backend.azurite().context("Azurite")?;
    let ep = azurite.endpoint();
    let key = testkit::azurite::ACCOUNT_KEY.to_string();
    let unset = ("LITESTREAM_AZURE_ACCOUNT_KEY", String::new());
    let with_account = format!("abs://devstoreaccount1@bucket/db/forms?endpoint={ep}");
    let without_account = format!("abs://bucket/db/forms?endpoint={ep}");
    for (url, env) in [
        // The account in the URL, the key from the Go tools' variable.
        (target.url(), vec![]),
        // The Azure SDKs' key variable.
        (
            with_account.clone(),
            vec![unset.clone(), ("AZURE_STORAGE_ACCOUNT_KEY", key.clone())],
        ),
        // A connection string names account, key and endpoint.
        (
            "abs://bucket/db/forms".to_string(),
            vec![
                unset.clone(),
                (
                    "AZURE_STORAGE_CONNECTION_STRING",
                    format!(
                        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint={ep};"
                    ),
                ),
            ],
        ),
        // Azurite's emulator mode: its account and key.
        (
            without_account.clone(),
            vec![unset.clone(), ("AZURE_STORAGE_USE_EMULATOR", "true".into())],
        ),
        // A SAS token, and no key at all.
        (
            with_account.clone(),
            vec![
                unset.clone(),
                ("LITESTREAM_AZURE_SAS_TOKEN", azurite.account_sas()?),
            ],
        ),
    ] {
        assert_eq!(count_in_shell(&url, &env)?, "3", "{url} with {env:?}");
    }
    // Without credentials the open fails at once, naming them.
    let out = count_in_shell(&with_account, &[unset])?;
    assert!(out.contains("LITESTREAM_AZURE_ACCOUNT_KEY"), "{out}");
    Ok(())
}
