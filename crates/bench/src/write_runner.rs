//! The runner's side of a write run ([`WriteSpec`]): opens the database for writing, runs the
//! workload, and fills a [`WriteOutput`]. Called by `bench-runner --write '<json>'`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use rusqlite::{Connection, OpenFlags, Statement};
use testkit::RequestStats;

use crate::gen::{category, item_row, CATEGORIES};
use crate::spec::{stats_delta, Rng, Target, VFS_URI};
use crate::write::{
    WriteDb, WriteOutput, WriteSpec, WriteWorkload, BATCH_ROWS, SQL_INSERT, SQL_SCHEMA_NEW,
    VISIBLE_TIMEOUT_INTERVALS,
};

pub(crate) fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Loads the extension (VFS targets) on a connection of its own, kept open as long as the
/// database's; fills `load_ms`.
pub(crate) fn load(spec: &WriteSpec, out: &mut WriteOutput) -> Result<Option<Connection>> {
    if !spec.target.is_vfs() {
        return Ok(None);
    }
    let so = spec.extension.as_ref().context("no extension path")?;
    let (loader, load_ms) = crate::spec::load_extension(so)?;
    out.load_ms = Some(load_ms);
    Ok(Some(loader))
}

/// Opens the database read-write (created if need be), in a rollback journal for local SQLite
/// as for the VFS (which refuses WAL; the restored copy of a replica may say WAL in its header).
pub(crate) fn open(spec: &WriteSpec) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    match spec.target {
        Target::Local => {
            let db = spec.local_db.as_ref().context("no local database path")?;
            let conn = Connection::open_with_flags(db, flags)
                .with_context(|| format!("open {}", db.display()))?;
            conn.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
            Ok(conn)
        }
        _ => Connection::open_with_flags(VFS_URI, flags).with_context(|| format!("open {VFS_URI}")),
    }
}

pub(crate) fn close(conn: Connection) -> Result<()> {
    conn.close()
        .map_err(|(_, e)| e)
        .context("close the database")
}

/// Reads the S3 server's counters (None for local SQLite).
pub(crate) fn stats(spec: &WriteSpec) -> Result<Option<RequestStats>> {
    match &spec.stats_endpoint {
        Some(endpoint) if spec.target.is_vfs() => Ok(Some(
            testkit::s3::remote_stats(endpoint).context("read S3 stats")?,
        )),
        _ => Ok(None),
    }
}

/// The rows the run inserts: deterministic values, ids after the existing ones.
struct Rows {
    rng: Rng,
    next_id: i64,
}

impl Rows {
    fn insert(&mut self, stmt: &mut Statement<'_>) -> Result<()> {
        let (sku, cat, price, qty, created) = item_row(&mut self.rng, self.next_id);
        stmt.execute(rusqlite::params![sku, cat, price, qty, created])
            .context("insert")?;
        self.next_id += 1;
        Ok(())
    }
}

/// Names of the LTX objects under `dir` (every level), with their modification times.
pub(crate) fn ltx_objects(dir: &Path) -> Result<Vec<(String, SystemTime)>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        // The prefix of a new database exists once its first object does.
        return Ok(out);
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            out.extend(ltx_objects(&path)?);
        } else if path.extension().is_some_and(|e| e == "ltx") {
            // A listing races with uploads: a file renamed away meanwhile is simply skipped.
            if let Ok(m) = entry.metadata().and_then(|m| m.modified()) {
                out.push((path.display().to_string(), m));
            }
        }
    }
    Ok(out)
}

fn ltx_names(dir: &Path) -> Result<BTreeSet<String>> {
    Ok(ltx_objects(dir)?.into_iter().map(|(n, _)| n).collect())
}

/// Polls `dir` every millisecond until an object not in `seen` is there; returns how long that
/// took from `since`, or None after `timeout`. The S3 server writes an object to a temporary
/// file and renames it into place, so a file under the prefix is an object a LIST returns.
fn wait_new_object(
    dir: &Path,
    seen: &BTreeSet<String>,
    since: Instant,
    timeout: Duration,
) -> Result<Option<f64>> {
    loop {
        if ltx_names(dir)?.iter().any(|n| !seen.contains(n)) {
            return Ok(Some(ms(since)));
        }
        if since.elapsed() >= timeout {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `spec`, filling `out`.
pub fn run(spec: &WriteSpec, out: &mut WriteOutput) -> Result<()> {
    if !spec.workload.applies_to(spec.target, spec.db) {
        bail!(
            "{} does not apply to {} on a {}",
            spec.workload.name(),
            spec.target.name(),
            spec.db.label()
        );
    }
    if spec.workload == WriteWorkload::BigTx {
        return crate::bigtx::run(spec, out);
    }
    let mut rows = Rows {
        rng: Rng::new(spec.seed),
        next_id: spec.n_items + 1,
    };
    let interval = Duration::from_millis(spec.interval_ms);
    let visible_timeout = interval * VISIBLE_TIMEOUT_INTERVALS;

    if spec.workload == WriteWorkload::OpenWrite {
        // Everything is measured: load, open (the write-mode open of the replica), one
        // autocommit insert.
        let before = stats(spec)?;
        let t = Instant::now();
        let loader = load(spec, out)?;
        let o = Instant::now();
        let conn = open(spec)?;
        out.open_ms = Some(ms(o));
        rows.insert(&mut conn.prepare(SQL_INSERT)?)?;
        out.ms = ms(t);
        out.requests = before.zip(stats(spec)?).map(|(b, a)| stats_delta(&b, &a));
        out.txs = 1;
        out.rows = 1;
        return finish(conn, loader, out);
    }

    // Unmeasured set-up: load; on a new database, the schema, by a connection closed before
    // the measured one opens. The Go VFS 0.5.17 cannot go on writing with the connection
    // that created the database once that connection has uploaded (every statement then fails
    // with "database disk image is malformed"); closing uploads the schema in both VFS.
    let loader = load(spec, out)?;
    if spec.db == WriteDb::New {
        let conn = open(spec)?;
        conn.execute_batch(&format!("BEGIN; {SQL_SCHEMA_NEW} COMMIT;"))
            .context("create the schema")?;
        close(conn)?;
    }
    let store = spec.store_dir.as_deref();
    if let Some(dir) = store {
        // Nothing is pending now: each commit timed below is the only one its upload carries.
        anyhow::ensure!(
            !ltx_names(dir)?.is_empty(),
            "the store holds no LTX object before the measured writes"
        );
    }
    let t = Instant::now();
    let conn = open(spec)?;
    out.open_ms = Some(ms(t));
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {}",
        spec.workload.synchronous()
    ))?;
    if let WriteDb::Replica(_) = spec.db {
        // Unmeasured: read the pages the inserts will change, so that the figures are those of
        // writing rather than of fetching cold pages (the read suite's subject; opening
        // measures a first write on a cold replica). A new row's index entry goes after the
        // last entry of its category, on that entry's leaf or on the next one, which begins
        // with the next category; its table row goes on the table's last leaf.
        let mut ends = conn.prepare(
            "SELECT (SELECT min(created_at) FROM items WHERE category = ?1), \
                    (SELECT max(created_at) FROM items WHERE category = ?1)",
        )?;
        for c in 0..CATEGORIES {
            ends.query_row([category(c)], |_| Ok(()))?;
        }
        conn.query_row("SELECT max(id) FROM items", [], |_| Ok(()))?;
    }
    let mut stmt = conn.prepare(SQL_INSERT)?;
    let deadline = Duration::from_secs_f64(spec.secs);

    match spec.workload {
        WriteWorkload::OpenWrite | WriteWorkload::BigTx => unreachable!("handled above"),
        WriteWorkload::TxFull | WriteWorkload::TxOff => {
            let before = stats(spec)?;
            let t = Instant::now();
            while t.elapsed() < deadline {
                rows.insert(&mut stmt)?;
                out.txs += 1;
                out.rows += 1;
            }
            out.ms = ms(t);
            out.requests = before.zip(stats(spec)?).map(|(b, a)| stats_delta(&b, &a));
        }
        WriteWorkload::BatchFull | WriteWorkload::BatchOff => {
            let before = stats(spec)?;
            let t = Instant::now();
            while t.elapsed() < deadline {
                conn.execute_batch("BEGIN")?;
                for _ in 0..BATCH_ROWS {
                    rows.insert(&mut stmt)?;
                }
                conn.execute_batch("COMMIT")?;
                out.txs += 1;
                out.rows += BATCH_ROWS;
            }
            out.ms = ms(t);
            out.requests = before.zip(stats(spec)?).map(|(b, a)| stats_delta(&b, &a));
        }
        WriteWorkload::CommitVisible => {
            let dir = store.context("no store directory")?;
            let before = stats(spec)?;
            let t = Instant::now();
            for k in 0..spec.samples {
                // Spread the commits over the upload cycle: the k-th comes (k + 0.5) / samples
                // of an interval after the previous one showed (the first: after the open).
                let frac = (k as f64 + 0.5) / spec.samples.max(1) as f64;
                std::thread::sleep(interval.mul_f64(frac));
                let seen = ltx_names(dir)?;
                let c = Instant::now();
                rows.insert(&mut stmt)?;
                out.txs += 1;
                out.rows += 1;
                match wait_new_object(dir, &seen, c, visible_timeout)? {
                    Some(v) => out.visible_ms.push(v),
                    None => out.visible_timeouts += 1,
                }
            }
            out.ms = ms(t);
            out.requests = before.zip(stats(spec)?).map(|(b, a)| stats_delta(&b, &a));
        }
        WriteWorkload::UploadRate => {
            let dir = store.context("no store directory")?;
            let before = stats(spec)?;
            let start = SystemTime::now();
            let t = Instant::now();
            let load = Duration::from_secs_f64(spec.load_secs);
            // A failing commit ends the writes but not the count: the objects made until then
            // are part of the answer (the Go VFS has failed here).
            let mut failed = None;
            while t.elapsed() < load {
                if let Err(e) = rows.insert(&mut stmt) {
                    failed = Some(e);
                    break;
                }
                out.txs += 1;
                out.rows += 1;
            }
            out.ms = ms(t);
            let end = SystemTime::now();
            out.requests = before.zip(stats(spec)?).map(|(b, a)| stats_delta(&b, &a));
            // An object's modification time is when the server finished writing it, just
            // before it became visible: no polling thread competes with the writes.
            let mut at: Vec<f64> = ltx_objects(dir)?
                .into_iter()
                .filter(|(_, m)| *m >= start && *m <= end)
                .filter_map(|(_, m)| m.duration_since(start).ok())
                .map(|d| d.as_secs_f64() * 1000.0)
                .collect();
            at.sort_by(f64::total_cmp);
            out.upload_at_ms = at;
            if let Some(e) = failed {
                return Err(e.context(format!(
                    "commit {} after {:.0} ms of continuous writes",
                    out.txs + 1,
                    out.ms
                )));
            }
        }
    }
    drop(stmt);
    finish(conn, loader, out)
}

/// Counts the rows the connection sees, then closes it (timed: a VFS uploads what is pending)
/// and the connection the extension was loaded on.
fn finish(conn: Connection, loader: Option<Connection>, out: &mut WriteOutput) -> Result<()> {
    out.final_rows = Some(
        conn.query_row("SELECT count(*) FROM items", [], |r| r.get(0))
            .context("count the rows after the writes")?,
    );
    let t = Instant::now();
    close(conn)?;
    out.close_ms = ms(t);
    drop(loader);
    Ok(())
}
