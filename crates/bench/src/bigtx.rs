//! The write suite's one big transaction (issue #14: "a 500 MB transaction, and a 2 GB one,
//! commit and upload with peak RSS ≤ 256 MB"): on a new database, one transaction inserts
//! `BENCH_BIGTX_MB` MB of incompressible rows, commits, waits until its object is in the store,
//! and closes; the runner's peak RSS is the figure judged. The driver's side runs it per size
//! and target after the other write workloads; the runner's side is [`run`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::config::Config;
use crate::spec::{stats_delta, Target};
use crate::write::{WriteDb, WriteOutput, WriteRecord, WriteSpec, WriteWorkload};
use crate::write_runner::{close, load, ltx_objects, ms, open, stats};

/// Bytes of each row's blob: one row per 4 KiB page, as large a row as fits on its leaf.
pub const ROW_BYTES: u32 = 4000;

/// The table of the big transaction.
pub const SQL_SCHEMA_BIGTX: &str = "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB NOT NULL)";

/// The whole transaction's rows in one statement: ?1 rows of ?2 random bytes (incompressible).
pub const SQL_INSERT_BIGTX: &str = "INSERT INTO t(b) WITH RECURSIVE s(i) AS \
     (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?1) SELECT randomblob(?2) FROM s";

/// The share of the driver's timeout after which the runner stops waiting for the upload, so
/// that it still closes and reports what it measured before it is killed.
pub const DEADLINE_SHARE: f64 = 0.85;

/// Issue #14: peak RSS of the process, the cache budget included, MB.
pub const RSS_LIMIT_MB: f64 = 256.0;

/// Rows of [`ROW_BYTES`] in `mb` MB (10^6 bytes) of row data.
pub fn rows(mb: u32) -> u64 {
    u64::from(mb) * 1_000_000 / u64::from(ROW_BYTES)
}

/// Disk a run of `mb` MB may need at once: the write buffer, the object in the store, the
/// restored copy and the SQLite file, with room to spare.
fn disk_needed(mb: u32) -> u64 {
    u64::from(mb) * 1_000_000 * 4 + 2_000_000_000
}

// ---------------------------------------------------------------------------------------------
// The driver's side
// ---------------------------------------------------------------------------------------------

/// Runs the big transaction of every size in `config.bigtx_mb`, `config.bigtx_runs` times per
/// target, each in a fresh process on its own store under `scratch`; appends the records. A
/// target killed at one size is not run again at that size or a larger one; a run the disk
/// could not hold is recorded as skipped.
pub(crate) fn run_all(
    config: &Config,
    scratch: &Path,
    logs: &Path,
    records: &mut Vec<WriteRecord>,
) -> Result<()> {
    let wl = WriteWorkload::BigTx;
    if !config.runs_write_workload(wl) {
        return Ok(());
    }
    eprintln!(
        "bench: write suite, one big transaction on a new database: {} MB, {} run(s), timeout \
         {} s",
        config
            .bigtx_mb
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        config.bigtx_runs,
        config.bigtx_timeout_secs
    );
    let mut killed_at: BTreeMap<Target, u32> = BTreeMap::new();
    for &mb in &config.bigtx_mb {
        for run in 0..config.bigtx_runs {
            for k in 0..Target::ALL.len() {
                let target = Target::ALL[(k + run) % Target::ALL.len()];
                if !wl.applies_to(target, WriteDb::New)
                    || killed_at.get(&target).is_some_and(|&at| mb >= at)
                {
                    continue;
                }
                let dir = scratch.join(format!("new-bigtx{mb}-{}-{run}", target.name()));
                let free = crate::scale::suite::free_disk(scratch);
                let record = if free < disk_needed(mb) {
                    skipped(target, run, mb, free)
                } else {
                    crate::write::one_run(
                        config,
                        WriteDb::New,
                        None,
                        wl,
                        target,
                        run,
                        &dir,
                        logs,
                        Some(mb),
                    )?
                };
                eprintln!(
                    "bench:   big transaction {mb} MB, run {}/{} {}",
                    run + 1,
                    config.bigtx_runs,
                    describe(&record)
                );
                if record.timed_out_secs.is_some() {
                    killed_at.insert(target, mb);
                }
                records.push(record);
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .with_context(|| format!("remove {}", dir.display()))?;
                }
            }
        }
    }
    Ok(())
}

/// The record of a run not made for want of disk.
fn skipped(target: Target, run: usize, mb: u32, free: u64) -> WriteRecord {
    WriteRecord {
        db: WriteDb::New,
        target,
        workload: WriteWorkload::BigTx,
        run,
        mb: Some(mb),
        output: None,
        timed_out_secs: None,
        process_ms: 0.0,
        process_requests: Default::default(),
        restored: None,
        error: Some(format!(
            "skipped: needs {:.1} GB of free disk, {:.1} GB free",
            disk_needed(mb) as f64 / 1e9,
            free as f64 / 1e9
        )),
    }
}

/// One line of the driver's log about a big-transaction run.
pub(crate) fn describe(r: &WriteRecord) -> String {
    let mut s = format!("{:<5}", r.target.name());
    if let Some(secs) = r.timed_out_secs {
        s.push_str(&format!(" killed after {secs} s"));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!(" ERROR {e}"));
    }
    if let Some(o) = &r.output {
        let secs = |v: Option<f64>| v.map_or("—".to_string(), |m| format!("{:.2} s", m / 1000.0));
        s.push_str(&format!(
            " insert {} commit {} upload {} close {} rss={}MB",
            secs(o.insert_ms),
            secs(o.commit_ms),
            secs(o.upload_ms),
            secs(Some(o.close_ms)),
            o.vmhwm_kb / 1024
        ));
        if let Some(req) = &o.requests {
            s.push_str(&format!(" [{}P {}G {}L]", req.put, req.gets(), req.list));
        }
    }
    match &r.restored {
        Some(Ok(n)) => s.push_str(&format!(" restored {n} rows")),
        Some(Err(e)) => s.push_str(&format!(" RESTORE FAILED {e}")),
        None => {}
    }
    s
}

// ---------------------------------------------------------------------------------------------
// The runner's side
// ---------------------------------------------------------------------------------------------

/// The TXIDs an LTX object's name says it covers (`<min>-<max>.ltx`, 16 hex digits each).
pub(crate) fn name_txids(path: &str) -> Option<(u64, u64)> {
    let stem = Path::new(path).file_stem()?.to_str()?;
    let (min, max) = stem.split_once('-')?;
    Some((
        u64::from_str_radix(min, 16).ok()?,
        u64::from_str_radix(max, 16).ok()?,
    ))
}

/// The largest TXID of the objects under `dir` (0 when there are none).
fn max_txid(dir: &Path) -> Result<u64> {
    Ok(ltx_objects(dir)?
        .iter()
        .filter_map(|(n, _)| name_txids(n).map(|(_, max)| max))
        .max()
        .unwrap_or(0))
}

/// Polls `dir` every millisecond until an object starting after TXID `after` is there (not a
/// compaction of earlier ones); how long that took from `since`, or None after `timeout`.
fn wait_txid_after(
    dir: &Path,
    after: u64,
    since: Instant,
    timeout: Duration,
) -> Result<Option<f64>> {
    loop {
        let there = ltx_objects(dir)?
            .iter()
            .any(|(n, _)| name_txids(n).is_some_and(|(min, _)| min > after));
        if there {
            return Ok(Some(ms(since)));
        }
        if since.elapsed() >= timeout {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs the big transaction of `spec`, filling `out`: the table created (and uploaded) by a
/// connection closed before the measured one opens, as the other workloads on a new database
/// do; then `BEGIN`, the `INSERT` of every row, `COMMIT`, the wait for the object, the close.
pub(crate) fn run(spec: &WriteSpec, out: &mut WriteOutput) -> Result<()> {
    let started = Instant::now();
    let n = rows(spec.bigtx_mb);
    anyhow::ensure!(
        n > 0,
        "{} MB holds no row of {ROW_BYTES} bytes",
        spec.bigtx_mb
    );
    let loader = load(spec, out)?;
    let conn = open(spec)?;
    conn.execute_batch(&format!("BEGIN; {SQL_SCHEMA_BIGTX}; COMMIT;"))
        .context("create the table")?;
    close(conn)?;
    let store = spec.store_dir.as_deref();
    let before_txid = match store {
        Some(dir) => {
            let txid = max_txid(dir)?;
            anyhow::ensure!(txid > 0, "the store holds no LTX object after the schema");
            txid
        }
        None => 0,
    };
    let t = Instant::now();
    let conn = open(spec)?;
    out.open_ms = Some(ms(t));
    let before = stats(spec)?;
    let t = Instant::now();
    conn.execute_batch("BEGIN")?;
    let inserted = conn
        .execute(SQL_INSERT_BIGTX, rusqlite::params![n as i64, ROW_BYTES])
        .context("insert the rows")?;
    out.insert_ms = Some(ms(t));
    let c = Instant::now();
    conn.execute_batch("COMMIT").context("commit")?;
    out.commit_ms = Some(ms(c));
    out.ms = ms(t);
    out.txs = 1;
    out.rows = inserted as u64;
    let mut budget = 0.0;
    if let Some(dir) = store {
        let committed = Instant::now();
        budget =
            (spec.deadline_secs as f64 * DEADLINE_SHARE - started.elapsed().as_secs_f64()).max(1.0);
        out.upload_ms =
            wait_txid_after(dir, before_txid, committed, Duration::from_secs_f64(budget))?;
    }
    out.requests = before.zip(stats(spec)?).map(|(b, a)| stats_delta(&b, &a));
    // The last row's id, not count(*): counting would read every page back.
    out.final_rows = Some(
        conn.query_row("SELECT coalesce(max(id), 0) FROM t", [], |r| r.get(0))
            .context("read the last id")?,
    );
    let t = Instant::now();
    close(conn)?;
    out.close_ms = ms(t);
    drop(loader);
    if store.is_some() && out.upload_ms.is_none() {
        bail!("the transaction's object was not in the store {budget:.0} s after COMMIT");
    }
    Ok(())
}
