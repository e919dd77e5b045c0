//! Chaos: the Go `litestream replicate` writes a live database to a real S3 server while 16
//! reader threads read it through our VFS via [`FaultProxy`], which injects ~5 % faults of
//! every kind (500, 503, SlowDown, resets, stalls, truncated bodies, stale listings) plus
//! latency, jitter and a bandwidth cap.
//!
//! The primary's content is a pure function of the number of committed batches `n`, which a
//! `meta` row records in the same transaction; the writer computes the expected summary of every
//! batch on the primary right after committing it. Every reader result must then be the summary
//! of the batch its own read transaction sees, or an error (`SQLITE_BUSY`, `SQLITE_IOERR*`):
//! never wrong rows. The TXID reported inside the transaction must map to exactly one batch
//! (checked against `litestream restore -txid` for a sample), and after the faults stop every
//! reader must reach the primary's final state within a bounded wait.
//!
//! `LITESTREAM_CHAOS_SECONDS` (default 25) sets how long the faults last,
//! `LITESTREAM_CHAOS_SEED` replays a run, `LITESTREAM_CHAOS_RATE` (default 0.05) sets the
//! total fault rate. Figures are printed (run with `--nocapture` to see them on success).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use e2e::open_vfs;
use rusqlite::{Connection, ErrorCode};
use testkit::fault::{FaultConfig, FaultProxy};
use testkit::golitestream::{restore, ReplicaTarget, ReplicateOpts, Replicator, RestoreOpts};
use testkit::{PrimaryDb, S3Server};

const READERS: usize = 16;
/// Reader groups: each group shares one replica (same URL) with its own cache budget.
const GROUPS: [&str; 4] = ["64KB", "256KB", "1MB", "64MB"];

/// The summary every check compares: a function of the whole table, through the primary key
/// and through the secondary index, plus the batch counter of the same transaction.
const SUMMARY: &str = "SELECT (SELECT n FROM meta) || '|' || count(*) || '|' || total(v) || '|' \
     || total(length(pad)) || '|' || total((k * 31 + v) % 1000003) || '|' \
     || total(unicode(hex(substr(pad, 1 + k % 97, 1)))) || '|' \
     || (SELECT total(v) FROM t INDEXED BY t_v WHERE v > 600000) FROM t";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn batch_of(summary: &str) -> i64 {
    summary
        .split('|')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(-1)
}

/// One batch on the primary: inserts, updates and deletes, and the batch counter.
fn write_batch(db: &PrimaryDb, n: i64) -> Result<()> {
    db.exec("BEGIN")?;
    db.conn().execute("UPDATE meta SET n = ?1", [n])?;
    db.conn().execute(
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 10) \
         INSERT INTO t(v, pad) SELECT abs(random()) % 1000000, randomblob(120 + abs(random()) % 200) FROM s",
        [],
    )?;
    db.conn().execute(
        "UPDATE t SET v = (v + 7919) % 1000000 WHERE k % 40 = ?1 % 40",
        [n],
    )?;
    db.conn().execute(
        "DELETE FROM t WHERE k IN (SELECT k FROM t ORDER BY random() LIMIT 7)",
        [],
    )?;
    db.exec("COMMIT")
}

#[derive(Debug, Default)]
struct Tally {
    trials: AtomicU64,
    ok: AtomicU64,
    wrong: AtomicU64,
    busy: AtomicU64,
    ioerr: AtomicU64,
    unexpected: AtomicU64,
    open_errors: AtomicU64,
    travel_ok: AtomicU64,
    travel_errors: AtomicU64,
    /// `litestream_txid()` called before the transaction's first read named another TXID than
    /// the one the transaction then read.
    early_txid_mismatch: AtomicU64,
    reopens: AtomicU64,
}

fn add(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

struct World {
    expected: Mutex<HashMap<i64, String>>,
    /// TXID → batch, as observed by readers (must be a function, and monotone).
    txids: Mutex<BTreeMap<u64, i64>>,
    /// TXIDs at which some read returned wrong rows.
    wrong_txids: Mutex<BTreeSet<u64>>,
    tally: Tally,
    failures: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl World {
    fn fail(&self, what: String) {
        eprintln!("CHAOS FAILURE: {what}");
        let mut f = self.failures.lock().unwrap();
        if f.len() < 50 {
            f.push(what);
        }
    }

    /// Checks one observation: the summary matches the batch, and the TXID maps to that batch.
    fn observe(&self, txid: u64, summary: &str, how: &str) {
        add(&self.tally.trials);
        let n = batch_of(summary);
        let want = self.expected.lock().unwrap().get(&n).cloned();
        match want {
            Some(w) if w == summary => add(&self.tally.ok),
            Some(w) => {
                add(&self.tally.wrong);
                self.wrong_txids.lock().unwrap().insert(txid);
                self.fail(format!(
                    "{how}: wrong rows at txid {txid:016x} batch {n}: got {summary}, want {w}"
                ));
            }
            None => {
                add(&self.tally.wrong);
                self.fail(format!(
                    "{how}: batch {n} (txid {txid:016x}) was never committed: {summary}"
                ));
            }
        }
        let mut map = self.txids.lock().unwrap();
        if let Some(prev) = map.insert(txid, n) {
            if prev != n {
                add(&self.tally.wrong);
                self.fail(format!(
                    "{how}: txid {txid:016x} showed batch {prev} before and batch {n} now"
                ));
            }
        }
        let before = map.range(..txid).next_back().map(|(t, b)| (*t, *b));
        let after = map.range(txid + 1..).next().map(|(t, b)| (*t, *b));
        if before.is_some_and(|(_, b)| b > n) || after.is_some_and(|(_, b)| b < n) {
            add(&self.tally.wrong);
            self.fail(format!(
                "{how}: txid {txid:016x} shows batch {n}, out of order with {before:?} / {after:?}"
            ));
        }
    }
}

/// How a failed step counts: `Some(true)` busy, `Some(false)` I/O error, `None` anything else.
fn allowed(e: &rusqlite::Error) -> Option<bool> {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy) => Some(true),
        Some(ErrorCode::SystemIoFailure) => Some(false),
        _ => None,
    }
}

fn hex_txid(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap_or(0)
}

/// One read transaction: `BEGIN; <read>; txid; summary; txid; COMMIT`.
fn read_trial(conn: &Connection) -> rusqlite::Result<(String, u64, u64, String)> {
    conn.execute_batch("BEGIN")?;
    let r = (|| {
        let early: String = conn.query_row("SELECT litestream_txid()", [], |r| r.get(0))?;
        let summary: String = conn.query_row(SUMMARY, [], |r| r.get(0))?;
        let txid: String = conn.query_row("SELECT litestream_txid()", [], |r| r.get(0))?;
        let again: String = conn.query_row(SUMMARY, [], |r| r.get(0))?;
        let txid2: String = conn.query_row("SELECT litestream_txid()", [], |r| r.get(0))?;
        if again != summary || txid2 != txid {
            return Ok((
                early,
                hex_txid(&txid),
                u64::MAX,
                format!("{summary} then {again} ({txid} then {txid2})"),
            ));
        }
        Ok((early, hex_txid(&txid), hex_txid(&txid2), summary))
    })();
    match &r {
        Ok(_) => conn.execute_batch("COMMIT")?,
        Err(_) => {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    r
}

/// The replica URL and the URI parameters of reader group `group`: a distinct URL per group,
/// so each group has a replica (index, cache, poller) of its own.
fn group_open_args(url: &str, group: usize) -> (String, String) {
    (
        format!("{url}&chaos_group={group}"),
        format!(
            "&poll_interval=100ms&cache_size={}",
            GROUPS[group % GROUPS.len()]
        ),
    )
}

fn reader(world: &World, id: usize, url: &str) {
    let (group_url, extra) = group_open_args(url, id % GROUPS.len());
    let open = |u: &str, extra: &str| -> Option<Connection> {
        match open_vfs("app.db", u, extra) {
            Ok(c) => Some(c),
            Err(e) => {
                add(&world.tally.open_errors);
                if !e.to_string().contains("litestream: cannot open") {
                    add(&world.tally.unexpected);
                    world.fail(format!(
                        "reader {id}: open failed without a clear message: {e}"
                    ));
                }
                None
            }
        }
    };
    let mut conn = None;
    let mut k = 0u64;
    while !world.stop.load(Ordering::Relaxed) {
        k += 1;
        if conn.is_none() {
            conn = open(&group_url, &extra);
            if conn.is_none() {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        }
        let c = conn.as_ref().expect("opened above");
        match k % 20 {
            // A fresh replica (new URL): the whole open path under faults, no poller.
            7 => {
                add(&world.tally.reopens);
                let fresh = format!("{url}&chaos_open={id}-{k}");
                if let Some(f) = open(&fresh, "&poll_interval=0&cache_size=256KB") {
                    match read_trial(&f) {
                        Ok((_, txid, _, summary)) => world.observe(txid, &summary, "fresh open"),
                        Err(e) => count_error(world, id, &e),
                    }
                }
            }
            // Time travel to a TXID some reader saw: must show exactly that batch.
            3 | 13 => {
                let pick = {
                    let map = world.txids.lock().unwrap();
                    let n = map.len();
                    (n > 0).then(|| {
                        map.iter()
                            .nth((k as usize * 7919 + id) % n)
                            .map(|(t, _)| *t)
                    })
                };
                let Some(Some(target)) = pick else { continue };
                match c.query_row(
                    &format!("PRAGMA litestream_txid = '{target:016x}'"),
                    [],
                    |_| Ok(()),
                ) {
                    Ok(()) => {
                        add(&world.tally.travel_ok);
                        match read_trial(c) {
                            Ok((_, txid, _, summary)) => {
                                if txid != target {
                                    add(&world.tally.wrong);
                                    world.fail(format!(
                                        "reader {id}: travelled to {target:016x} but reads {txid:016x}"
                                    ));
                                }
                                world.observe(txid, &summary, "time travel")
                            }
                            Err(e) => count_error(world, id, &e),
                        }
                    }
                    // A stale or failed LIST can make the target unreachable for a moment.
                    Err(_) => add(&world.tally.travel_errors),
                }
                let _ = c.query_row("PRAGMA litestream_txid = 'latest'", [], |_| Ok(()));
            }
            _ => match read_trial(c) {
                Ok((early, txid, _, summary)) => {
                    if hex_txid(&early) != txid {
                        add(&world.tally.early_txid_mismatch);
                    }
                    world.observe(txid, &summary, "read");
                }
                Err(e) => count_error(world, id, &e),
            },
        }
    }
}

fn count_error(world: &World, id: usize, e: &rusqlite::Error) {
    add(&world.tally.trials);
    match allowed(e) {
        Some(true) => add(&world.tally.busy),
        Some(false) => add(&world.tally.ioerr),
        None => {
            add(&world.tally.unexpected);
            world.fail(format!("reader {id}: unexpected error {e:?}"));
        }
    }
}

#[test]
fn chaos_readers_never_see_wrong_rows() -> Result<()> {
    let seconds = env_u64("LITESTREAM_CHAOS_SECONDS", 25);
    let seed = env_u64(
        "LITESTREAM_CHAOS_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64,
    );
    let rate = std::env::var("LITESTREAM_CHAOS_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.05);
    println!("chaos: seed={seed} seconds={seconds} rate={rate} (LITESTREAM_CHAOS_SEED replays)");
    let started = Instant::now();

    let dir = tempfile::tempdir()?;
    let s3_root = dir.path().join("s3");
    std::fs::create_dir_all(&s3_root)?;
    let server = S3Server::start(&s3_root)?;
    server.create_bucket("bucket")?;
    let target = ReplicaTarget::s3(&server, "bucket", "db/app");

    let primary = PrimaryDb::create(&dir.path().join("app.db"))?;
    primary.exec(
        "CREATE TABLE meta(id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
         INSERT INTO meta VALUES (1, 0);
         CREATE TABLE t(k INTEGER PRIMARY KEY, v INTEGER NOT NULL, pad BLOB NOT NULL);
         CREATE INDEX t_v ON t(v);
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 1200)
         INSERT INTO t(v, pad) SELECT abs(random()) % 1000000, randomblob(120 + abs(random()) % 200) FROM s;",
    )?;
    let world = Arc::new(World {
        expected: Mutex::new(HashMap::new()),
        txids: Mutex::new(BTreeMap::new()),
        wrong_txids: Mutex::new(BTreeSet::new()),
        tally: Tally::default(),
        failures: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });
    let first = primary
        .conn()
        .query_row(SUMMARY, [], |r| r.get::<_, String>(0))?;
    world.expected.lock().unwrap().insert(0, first);

    let mut rep = Replicator::start(primary.path(), target.clone(), ReplicateOpts::default())?;
    rep.sync()?;

    // Readers go through the proxy; the replicator writes to the server directly.
    let proxy = FaultProxy::start(server.addr())?;
    let url = target.url().replace(&server.endpoint(), &proxy.endpoint());
    assert!(url.contains(&proxy.endpoint()), "{url}");
    // Open every group's replica before the faults start, so readers begin on a live replica.
    for g in 0..GROUPS.len() {
        let (group_url, extra) = group_open_args(&url, g);
        open_vfs("app.db", &group_url, &extra)?;
    }
    proxy.set_faults(FaultConfig::chaos(seed, rate));

    let readers: Vec<_> = (0..READERS)
        .map(|id| {
            let world = Arc::clone(&world);
            let url = url.clone();
            std::thread::spawn(move || reader(&world, id, &url))
        })
        .collect();

    // The writer: one batch every ~60 ms while the faults last.
    let mut n = 0i64;
    let chaos_end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < chaos_end {
        n += 1;
        write_batch(&primary, n)?;
        let s = primary
            .conn()
            .query_row(SUMMARY, [], |r| r.get::<_, String>(0))?;
        world.expected.lock().unwrap().insert(n, s);
        std::thread::sleep(Duration::from_millis(60));
    }
    let faults = proxy.stats();
    proxy.set_faults(FaultConfig::none());
    let final_txid = rep.sync()?.txid;
    let final_summary = world.expected.lock().unwrap()[&n].clone();

    // Convergence: once the faults stop, every reader reaches the final state.
    let converge_start = Instant::now();
    let converge_limit = Duration::from_secs(45);
    world.stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("reader thread panicked");
    }
    let mut slowest = Duration::ZERO;
    for g in 0..GROUPS.len() {
        let (group_url, extra) = group_open_args(&url, g);
        let conn = open_vfs("app.db", &group_url, &extra)?;
        loop {
            let got = read_trial(&conn);
            if let Ok((_, txid, _, summary)) = &got {
                world.observe(*txid, summary, "convergence");
                if *txid == final_txid && *summary == final_summary {
                    break;
                }
            }
            anyhow::ensure!(
                converge_start.elapsed() < converge_limit,
                "group {g} did not reach txid {final_txid:016x} (batch {n}) within {converge_limit:?} after the faults stopped: last {got:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        slowest = slowest.max(converge_start.elapsed());
    }

    // The TXID ↔ batch mapping against the Go oracle, for a sample of observed TXIDs.
    let observed: Vec<(u64, i64)> = world
        .txids
        .lock()
        .unwrap()
        .iter()
        .map(|(t, n)| (*t, *n))
        .collect();
    let mut restored_checks = 0;
    for i in [0, observed.len() / 3, observed.len() * 2 / 3] {
        let Some(&(txid, batch)) = observed.get(i) else {
            continue;
        };
        let (got, _) = go_restore(&target, Some(txid))?;
        let want = world.expected.lock().unwrap()[&batch].clone();
        if got != want {
            add(&world.tally.wrong);
            world.fail(format!(
                "restore -txid {txid:016x} gives {got}, readers saw batch {batch} = {want}"
            ));
        }
        restored_checks += 1;
    }

    // The replica the Go replicator wrote must itself be sound at the end...
    let (_, integrity) = go_restore(&target, None)?;
    if integrity != "ok" {
        world.fail(format!(
            "the Go replica restores to a corrupt database: {integrity}"
        ));
    }
    // ...and where a reader saw wrong rows, say whether the replica holds them too (then the
    // primary or the Go replicator is at fault, not the reader).
    let wrong: Vec<u64> = world.wrong_txids.lock().unwrap().iter().copied().collect();
    for txid in wrong.into_iter().take(3) {
        let (got, integrity) = go_restore(&target, Some(txid))?;
        world.fail(format!(
            "diagnosis: litestream restore -txid {txid:016x} gives {got} (integrity_check: {integrity})"
        ));
    }

    let t = &world.tally;
    let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "chaos: seed={seed} seconds={seconds} batches={n} final_txid={final_txid:016x} \
         trials={} ok={} wrong={} busy={} ioerr={} unexpected={} open_errors={} fresh_opens={} \
         travel_ok={} travel_errors={} early_txid_mismatch={} txids_seen={} restore_checks={restored_checks} \
         converged_in={:.1}s total={:.1}s",
        g(&t.trials),
        g(&t.ok),
        g(&t.wrong),
        g(&t.busy),
        g(&t.ioerr),
        g(&t.unexpected),
        g(&t.open_errors),
        g(&t.reopens),
        g(&t.travel_ok),
        g(&t.travel_errors),
        g(&t.early_txid_mismatch),
        observed.len(),
        slowest.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    println!(
        "chaos: proxy requests={} injected={} http_500={} http_503={} slow_down={} resets={} \
         timeouts={} truncated={} stale_lists={} delayed={} throttled_bytes={} upstream_errors={}",
        faults.requests,
        faults.injected(),
        faults.http_500,
        faults.http_503,
        faults.slow_down,
        faults.resets,
        faults.timeouts,
        faults.truncated,
        faults.stale_lists,
        faults.delayed,
        faults.throttled_bytes,
        faults.upstream_errors,
    );
    println!("chaos: s3 server {:?}", server.stats());

    let failures = world.failures.lock().unwrap().clone();
    if !failures.is_empty() {
        keep_evidence(&dir, &world, &rep, seed, &failures);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(g(&t.wrong), 0, "wrong rows");
    assert_eq!(g(&t.unexpected), 0, "unexpected errors");
    // Enough reads succeeded for the comparison to mean something (fewer at high fault rates).
    let floor = if rate <= 0.1 { 100 } else { 20 };
    assert!(g(&t.ok) >= floor, "too few successful trials: {}", g(&t.ok));
    for (name, count) in [
        ("500", faults.http_500),
        ("503", faults.http_503),
        ("SlowDown", faults.slow_down),
        ("reset", faults.resets),
        ("timeout", faults.timeouts),
        ("truncated body", faults.truncated),
        ("stale listing", faults.stale_lists),
    ] {
        assert!(count > 0, "no {name} fault was injected: {faults:?}");
    }
    Ok(())
}

/// Restores `txid` (or the newest state) with the Go `litestream restore`: the summary and the
/// result of `PRAGMA integrity_check`.
fn go_restore(target: &ReplicaTarget, txid: Option<u64>) -> Result<(String, String)> {
    let rdir = tempfile::tempdir()?;
    let out = rdir.path().join("r.db");
    restore(
        target,
        &out,
        &RestoreOpts {
            txid,
            timestamp: None,
        },
    )
    .with_context(|| format!("restore -txid {txid:016x?}"))?;
    let conn = Connection::open(&out)?;
    let summary: String = conn.query_row(SUMMARY, [], |r| r.get(0))?;
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let integrity: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok((summary, integrity.join("; ")))
}

/// Keeps a failing run's replica, primary, Go log and the expected summaries for offline
/// diagnosis in `LITESTREAM_CHAOS_KEEP` (default: the system temp dir).
fn keep_evidence(
    dir: &tempfile::TempDir,
    world: &World,
    rep: &Replicator,
    seed: u64,
    failures: &[String],
) {
    let base = std::env::var_os("LITESTREAM_CHAOS_KEEP")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let keep = base.join(format!("chaos-{seed}"));
    let _ = std::fs::create_dir_all(&keep);
    let copy = std::process::Command::new("cp")
        .arg("-a")
        .arg(dir.path())
        .arg(keep.join("run"))
        .status();
    let expected: BTreeMap<i64, String> = world
        .expected
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let mut text = String::new();
    for (n, s) in &expected {
        text.push_str(&format!("{n}\t{s}\n"));
    }
    let _ = std::fs::write(keep.join("expected.tsv"), text);
    let observed: String = world
        .txids
        .lock()
        .unwrap()
        .iter()
        .map(|(t, n)| format!("{t:016x}\t{n}\n"))
        .collect();
    let _ = std::fs::write(keep.join("observed.tsv"), observed);
    let _ = std::fs::write(keep.join("failures.txt"), failures.join("\n"));
    let _ = std::fs::write(keep.join("litestream.log"), rep.log());
    eprintln!("chaos: evidence kept in {} ({copy:?})", keep.display());
}

/// An outage of the object store: reads go on at the last consistent state (its pages are
/// cached), `litestream_lag()` grows, a transaction that needs an uncached page gets an error
/// rather than rows of another state, and once the store is back the reader catches up.
#[test]
fn outage_keeps_the_last_state_and_raises_lag() -> Result<()> {
    let history = e2e::EncodedHistory::build(5)?;
    let root = tempfile::tempdir()?;
    let server = S3Server::start(root.path())?;
    server.create_bucket("bucket")?;
    let proxy = FaultProxy::start(server.addr())?;
    let prefix = server.root().join("bucket").join("db");
    let mut first = history.clone();
    let last = first.files.pop().context("five files")?;
    first.write_to(&prefix)?;
    let url = format!(
        "s3://bucket/db?endpoint={}&region=us-east-1&force-path-style=true",
        proxy.endpoint()
    );
    let conn = open_vfs("app.db", &url, "&poll_interval=100ms&cache_size=64MB")?;
    let txid = |c: &Connection| -> Result<String> {
        Ok(c.query_row("SELECT litestream_txid()", [], |r| r.get(0))?)
    };
    let lag = |c: &Connection| -> Result<i64> {
        Ok(c.query_row("SELECT litestream_lag()", [], |r| r.get(0))?)
    };
    assert_eq!(txid(&conn)?, format!("{:016x}", 4));
    let before = e2e::dump(&conn, e2e::ROWS_SQL)?;
    assert_eq!(Some(&before), history.rows_at(4));

    // Every request fails from now on, and the primary moves on meanwhile.
    proxy.set_faults(FaultConfig {
        http_503: 1.0,
        ..FaultConfig::none()
    });
    let p = prefix.join(&last.0);
    std::fs::create_dir_all(p.parent().context("parent")?)?;
    std::fs::write(&p, &last.1)?;
    // The lag grows while every poll fails; the state stays the last consistent one. (Waited
    // for, not timed: the bound only guards against a hang.)
    let deadline = Instant::now() + Duration::from_secs(60);
    while lag(&conn)? < 2 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the lag never grew during the outage"
        );
        assert_eq!(txid(&conn)?, format!("{:016x}", 4));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(txid(&conn)?, format!("{:016x}", 4));
    assert_eq!(e2e::dump(&conn, e2e::ROWS_SQL)?, before);
    // Travelling to a state whose files are not loaded needs the store: an error, not rows.
    let travel = conn.query_row(
        "PRAGMA litestream_txid = '0000000000000002'",
        [],
        |_| Ok(()),
    );
    assert!(travel.is_err(), "time travel during an outage succeeded");
    assert_eq!(e2e::dump(&conn, e2e::ROWS_SQL)?, before);
    assert!(proxy.stats().http_503 > 0);

    // The store is back: the reader reaches TXID 5 and its lag falls.
    proxy.set_faults(FaultConfig::none());
    let deadline = Instant::now() + Duration::from_secs(20);
    while txid(&conn)? != format!("{:016x}", 5) {
        anyhow::ensure!(Instant::now() < deadline, "no catch-up after the outage");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(lag(&conn)? < 2, "lag {} after catching up", lag(&conn)?);
    assert_eq!(Some(&e2e::dump(&conn, e2e::ROWS_SQL)?), history.rows_at(5));
    Ok(())
}
