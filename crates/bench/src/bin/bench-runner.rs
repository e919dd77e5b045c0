//! Runs one workload against one target in this (fresh) process and prints one line,
//! `BENCH-RESULT {json}` ([`bench::spec::RunnerOutput`]), on stdout.
//!
//! ```text
//! bench-runner '<RunSpec as JSON>'
//! bench-runner --write '<WriteSpec as JSON>'
//! bench-runner --scale '<ScaleSpec as JSON>'
//! ```
//!
//! VFS targets read their replica from `LITESTREAM_REPLICA_URL` and the credentials from
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, as set by the driver. Request counts come from
//! the S3 server's `/__stats`, read just before and just after each measured section.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use bench::spec::{
    lookup_ids, stats_delta, Answer, Measure, Metric, RunSpec, RunnerOutput, Target, Workload,
    RESULT_MARKER, SQL_CONSECUTIVE, SQL_COUNT, SQL_POINT, SQL_RANGE, SQL_SCAN_DOCS, SQL_SCHEMA,
    SQL_TAIL_DOCS, VFS_URI,
};
use bench::write::WriteOutput;
use rusqlite::{Connection, OpenFlags};
use testkit::RequestStats;

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--scale") {
        serve(
            2,
            "usage: bench-runner --scale '<ScaleSpec JSON>'",
            bench::scale::runner::run,
            |out: &mut bench::scale::ScaleOutput, error| {
                out.error = error;
                out.vmhwm_kb = vmhwm_kb();
            },
        );
    }
    if std::env::args().nth(1).as_deref() == Some("--write") {
        serve(
            2,
            "usage: bench-runner --write '<WriteSpec JSON>'",
            bench::write_runner::run,
            |out: &mut WriteOutput, error| {
                out.error = error;
                out.vmhwm_kb = vmhwm_kb();
            },
        );
    }
    serve(
        1,
        "usage: bench-runner '<RunSpec JSON>'",
        run,
        |out: &mut RunnerOutput, error| {
            out.error = error;
            out.vmhwm_kb = vmhwm_kb();
        },
    );
}

/// Runs the spec given as JSON in argument `arg`, prints the result line and exits (1 if the
/// run failed). `seal` records the error, if any, and the peak memory in the output.
fn serve<S: serde::de::DeserializeOwned, O: serde::Serialize + Default>(
    arg: usize,
    usage: &str,
    run: impl FnOnce(&S, &mut O) -> Result<()>,
    seal: impl FnOnce(&mut O, Option<String>),
) -> ! {
    let mut out = O::default();
    let result = std::env::args()
        .nth(arg)
        .context(usage.to_string())
        .and_then(|a| serde_json::from_str::<S>(&a).context("parse the spec"))
        .and_then(|spec| run(&spec, &mut out));
    let failed = result.is_err();
    seal(&mut out, result.err().map(|e| format!("{e:#}")));
    let json = serde_json::to_string(&out).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    println!("{RESULT_MARKER}{json}");
    std::process::exit(i32::from(failed));
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

/// Prepares `sql` (not measured), then measures running it with `params`.
fn measure_query<P: rusqlite::Params>(
    spec: &RunSpec,
    conn: &Connection,
    metric: Metric,
    sql: &str,
    params: P,
) -> Result<Measure> {
    let mut stmt = conn
        .prepare(sql)
        .with_context(|| format!("prepare {sql}"))?;
    measure(spec, metric, || {
        let mut answer = Answer::default();
        answer.query(&mut stmt, params)?;
        Ok(answer)
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
            let (loader, load_ms) = bench::spec::load_extension(so)?;
            out.load_ms = Some(load_ms);
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

impl Opened {
    /// Closes the database connection, then the one the extension was loaded on.
    fn close(self) {
        drop(self.conn);
        drop(self._loader);
    }
}

/// The point lookups of `ids`, one statement each.
fn point_lookups(conn: &Connection, ids: &[i64]) -> Result<Answer> {
    let mut stmt = conn.prepare(SQL_POINT)?;
    let mut answer = Answer::default();
    for id in ids {
        answer.query(&mut stmt, [id])?;
    }
    Ok(answer)
}

/// Waits until the hydration file serves reads ([`bench::spec::wait_hydrated`]).
fn wait_hydrated(spec: &RunSpec, conn: &Connection, progress: bool) -> Result<()> {
    let path = spec.hydration_path.as_ref().context("no hydration path")?;
    Ok(bench::spec::wait_hydrated(
        conn,
        spec.target,
        path,
        spec.db_bytes,
        progress,
    )?)
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

    match spec.workload {
        Workload::Open => {
            // Everything is measured: load, open, first query.
            let mut opened = None;
            let m = measure(spec, Metric::Open, || {
                let o = opened.insert(open(spec, out)?);
                query_one(&o.conn, SQL_POINT, [data.first_query_id])
            })?;
            out.measures.push(m);
            return Ok(());
        }
        Workload::Hydrate => {
            // Load, open, first query, then wait until the file serves reads.
            let mut opened = None;
            let m = measure(spec, Metric::HydrateReady, || {
                let o = opened.insert(open(spec, out)?);
                let answer = query_one(&o.conn, SQL_POINT, [data.first_query_id])?;
                wait_hydrated(spec, &o.conn, true)?;
                Ok(answer)
            })?;
            out.measures.push(m);
            let o = opened.context("not opened")?;
            let ids = lookup_ids(data.lookup_seed, data.n_items);
            let m = measure(spec, Metric::HydratedPoint, || point_lookups(&o.conn, &ids))?;
            out.measures.push(m);
            // Close before exit: the Go VFS writes its sidecar (`<path>.meta`) on close.
            o.close();
            return Ok(());
        }
        Workload::HydrateReopen => {
            // The hydration file of the previous run is there: load, open, until it serves
            // reads (ours says so; the Go VFS reports no progress on a resumed file), lookups.
            let ids = lookup_ids(data.lookup_seed, data.n_items);
            let mut opened = None;
            let m = measure(spec, Metric::HydrateReopen, || {
                let o = opened.insert(open(spec, out)?);
                wait_hydrated(spec, &o.conn, spec.target == Target::Ours)?;
                point_lookups(&o.conn, &ids)
            })?;
            out.measures.push(m);
            if let Some(o) = opened {
                o.close();
            }
            return Ok(());
        }
        _ => {}
    }

    // Unmeasured set-up: load, open, read the schema.
    let opened = open(spec, out)?;
    let conn = &opened.conn;
    query_one(conn, SQL_SCHEMA, [])?;

    match spec.workload {
        Workload::Open | Workload::Hydrate | Workload::HydrateReopen => {
            unreachable!("handled above")
        }
        Workload::Point => {
            let ids = lookup_ids(data.lookup_seed, data.n_items);
            for metric in [Metric::PointCold, Metric::PointWarm] {
                out.measures
                    .push(measure(spec, metric, || point_lookups(conn, &ids))?);
            }
        }
        Workload::Range => {
            let params = (&data.range_category, &data.range_lo, &data.range_hi);
            out.measures
                .push(measure_query(spec, conn, Metric::Range, SQL_RANGE, params)?);
        }
        Workload::Consecutive => {
            let params = [data.consecutive_start];
            let m = measure_query(spec, conn, Metric::Consecutive, SQL_CONSECUTIVE, params)?;
            out.measures.push(m);
        }
        Workload::Count => {
            out.measures
                .push(measure_query(spec, conn, Metric::Count, SQL_COUNT, [])?);
        }
        Workload::ScanDocs => {
            out.measures.push(measure_query(
                spec,
                conn,
                Metric::ScanDocs,
                SQL_SCAN_DOCS,
                [],
            )?);
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
