//! Runs one workload against one target in this (fresh) process and prints one line,
//! `BENCH-RESULT {json}` ([`bench::spec::RunnerOutput`]), on stdout.
//!
//! ```text
//! bench-runner '<RunSpec as JSON>'
//! ```
//!
//! VFS targets read their replica from `LITESTREAM_REPLICA_URL` and the credentials from
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, as set by the driver. Request counts come from
//! the S3 server's `/__stats`, read just before and just after each measured section.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use bench::spec::{
    lookup_ids, stats_delta, Answer, Measure, Metric, RunSpec, RunnerOutput, Target, Workload,
    ENTRY_POINT, RESULT_MARKER, SQL_CONSECUTIVE, SQL_COUNT, SQL_POINT, SQL_RANGE, SQL_SCAN_DOCS,
    SQL_SCHEMA, SQL_TAIL_DOCS, VFS_URI,
};
use rusqlite::{Connection, OpenFlags};
use testkit::RequestStats;

fn main() {
    let mut out = RunnerOutput::default();
    let result = std::env::args()
        .nth(1)
        .context("usage: bench-runner '<RunSpec JSON>'")
        .and_then(|arg| serde_json::from_str::<RunSpec>(&arg).context("parse the run spec"))
        .and_then(|spec| run(&spec, &mut out));
    if let Err(e) = result {
        out.error = Some(format!("{e:#}"));
    }
    out.vmhwm_kb = vmhwm_kb();
    let json = serde_json::to_string(&out).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    println!("{RESULT_MARKER}{json}");
    std::process::exit(if out.error.is_some() { 1 } else { 0 });
}

/// Peak resident set size of this process, KiB (`VmHWM` of /proc/self/status).
fn vmhwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Reads the S3 server's counters (None for the local target).
fn stats(spec: &RunSpec) -> Result<Option<RequestStats>> {
    match &spec.stats_endpoint {
        Some(endpoint) if spec.target.is_vfs() => Ok(Some(
            testkit::s3::remote_stats(endpoint).context("read S3 stats")?,
        )),
        _ => Ok(None),
    }
}

/// Times `f` and returns a [`Measure`] with the S3 requests it caused.
fn measure(spec: &RunSpec, metric: Metric, f: impl FnOnce() -> Result<Answer>) -> Result<Measure> {
    let before = stats(spec)?;
    let t = Instant::now();
    let answer = f().with_context(|| format!("{} on {}", metric.name(), spec.target.name()))?;
    let elapsed = ms(t);
    let after = stats(spec)?;
    Ok(Measure {
        metric,
        ms: elapsed,
        rows: answer.rows,
        checksum: answer.checksum(),
        requests: before.zip(after).map(|(b, a)| stats_delta(&b, &a)),
    })
}

/// The connection the extension was loaded on, kept open for the life of the process.
struct Opened {
    _loader: Option<Connection>,
    conn: Connection,
}

/// Loads the extension (VFS targets) and opens the database; fills `load_ms`/`open_ms`.
fn open(spec: &RunSpec, out: &mut RunnerOutput) -> Result<Opened> {
    match spec.target {
        Target::Ours | Target::Go => {
            let so = spec.extension.as_ref().context("no extension path")?;
            let t = Instant::now();
            let loader = Connection::open_in_memory().context("open :memory:")?;
            // SAFETY: the two extensions under test; nothing else runs while loading is on.
            unsafe {
                let _guard = rusqlite::LoadExtensionGuard::new(&loader)?;
                loader
                    .load_extension(so, Some(ENTRY_POINT))
                    .with_context(|| format!("load {}", so.display()))?;
            }
            out.load_ms = Some(ms(t));
            let t = Instant::now();
            let conn = Connection::open_with_flags(
                VFS_URI,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .with_context(|| format!("open {VFS_URI}"))?;
            out.open_ms = Some(ms(t));
            Ok(Opened {
                _loader: Some(loader),
                conn,
            })
        }
        Target::Local => {
            let db = spec.local_db.as_ref().context("no local database path")?;
            let t = Instant::now();
            let conn = Connection::open_with_flags(
                db,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .with_context(|| format!("open {}", db.display()))?;
            out.open_ms = Some(ms(t));
            Ok(Opened {
                _loader: None,
                conn,
            })
        }
    }
}

/// Runs a statement that may or may not return rows (the PRAGMA setters), ignoring them.
fn exec(conn: &Connection, sql: &str) -> Result<()> {
    let mut stmt = conn
        .prepare(sql)
        .with_context(|| format!("prepare {sql}"))?;
    let mut rows = stmt.raw_query();
    while rows.next().with_context(|| format!("run {sql}"))?.is_some() {}
    Ok(())
}

fn query_one<P: rusqlite::Params>(conn: &Connection, sql: &str, params: P) -> Result<Answer> {
    let mut answer = Answer::default();
    let mut stmt = conn
        .prepare(sql)
        .with_context(|| format!("prepare {sql}"))?;
    answer
        .query(&mut stmt, params)
        .with_context(|| format!("run {sql}"))?;
    Ok(answer)
}

fn run(spec: &RunSpec, out: &mut RunnerOutput) -> Result<()> {
    let data = &spec.data;
    if !spec.workload.applies_to(spec.target) {
        bail!(
            "{} does not apply to {}",
            spec.workload.name(),
            spec.target.name()
        );
    }

    if spec.workload == Workload::Open {
        // Everything from here on is measured: load, open, first query.
        let before = stats(spec)?;
        let t = Instant::now();
        let opened = open(spec, out)?;
        let answer = query_one(&opened.conn, SQL_POINT, [data.first_query_id])?;
        let elapsed = ms(t);
        let after = stats(spec)?;
        out.measures.push(Measure {
            metric: Metric::Open,
            ms: elapsed,
            rows: answer.rows,
            checksum: answer.checksum(),
            requests: before.zip(after).map(|(b, a)| stats_delta(&b, &a)),
        });
        return Ok(());
    }

    // Unmeasured set-up: load, open, read the schema.
    let opened = open(spec, out)?;
    let conn = &opened.conn;
    query_one(conn, SQL_SCHEMA, [])?;

    match spec.workload {
        Workload::Open => unreachable!("handled above"),
        Workload::Point => {
            let ids = lookup_ids(data.lookup_seed, data.n_items);
            let mut stmt = conn.prepare(SQL_POINT)?;
            let mut pass = || -> Result<Answer> {
                let mut answer = Answer::default();
                for id in &ids {
                    answer.query(&mut stmt, [id])?;
                }
                Ok(answer)
            };
            out.measures
                .push(measure(spec, Metric::PointCold, &mut pass)?);
            out.measures
                .push(measure(spec, Metric::PointWarm, &mut pass)?);
        }
        Workload::Range => {
            let mut stmt = conn.prepare(SQL_RANGE)?;
            out.measures.push(measure(spec, Metric::Range, || {
                let mut answer = Answer::default();
                answer.query(
                    &mut stmt,
                    (&data.range_category, &data.range_lo, &data.range_hi),
                )?;
                Ok(answer)
            })?);
        }
        Workload::Consecutive => {
            let mut stmt = conn.prepare(SQL_CONSECUTIVE)?;
            out.measures.push(measure(spec, Metric::Consecutive, || {
                let mut answer = Answer::default();
                answer.query(&mut stmt, [data.consecutive_start])?;
                Ok(answer)
            })?);
        }
        Workload::Count => {
            let mut stmt = conn.prepare(SQL_COUNT)?;
            out.measures.push(measure(spec, Metric::Count, || {
                let mut answer = Answer::default();
                answer.query(&mut stmt, [])?;
                Ok(answer)
            })?);
        }
        Workload::ScanDocs => {
            let mut stmt = conn.prepare(SQL_SCAN_DOCS)?;
            out.measures.push(measure(spec, Metric::ScanDocs, || {
                let mut answer = Answer::default();
                answer.query(&mut stmt, [])?;
                Ok(answer)
            })?);
        }
        Workload::TimeTravel => {
            // The latest state is open and read before the clock starts.
            query_one(conn, SQL_TAIL_DOCS, [data.base_docs])?;
            let travel = format!("PRAGMA litestream_time = '{}'", data.tt_time);
            out.measures.push(measure(spec, Metric::TimeTravel, || {
                let mut answer = Answer::default();
                let mut stmt = conn.prepare(SQL_TAIL_DOCS)?;
                exec(conn, &travel)?;
                answer.query(&mut stmt, [data.base_docs])?;
                exec(conn, "PRAGMA litestream_time = 'latest'")?;
                answer.query(&mut stmt, [data.base_docs])?;
                Ok(answer)
            })?);
        }
    }
    Ok(())
}
