//! What the driver and the runner agree on: targets, workloads, the run spec passed to the
//! runner, the JSON it prints back, the SQL of every workload and the answer checksum.

use std::path::PathBuf;

use rusqlite::types::ValueRef;
use serde::{Deserialize, Serialize};
use testkit::RequestStats;

/// Prefix of the one stdout line carrying the runner's JSON (the Go VFS may log to stdout).
pub const RESULT_MARKER: &str = "BENCH-RESULT ";

/// Entry point of both extensions.
pub const ENTRY_POINT: &str = "sqlite3_litestreamvfs_init";

/// Loads the extension at `so` on a connection of its own (keep it open as long as the
/// databases that use it) and returns it with the time the load took, in milliseconds.
pub fn load_extension(so: &std::path::Path) -> anyhow::Result<(rusqlite::Connection, f64)> {
    use anyhow::Context;
    let t = std::time::Instant::now();
    let loader = rusqlite::Connection::open_in_memory().context("open :memory:")?;
    // SAFETY: the two extensions under test; nothing else runs while loading is on.
    unsafe {
        let _guard = rusqlite::LoadExtensionGuard::new(&loader)?;
        loader
            .load_extension(so, Some(ENTRY_POINT))
            .with_context(|| format!("load {}", so.display()))?;
    }
    Ok((loader, t.elapsed().as_secs_f64() * 1000.0))
}

/// The database name opened through the VFS (the replica comes from the environment).
pub const VFS_URI: &str = "file:app.db?vfs=litestream";

/// Where a workload runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Our extension, `target/release/liblitestream_vfs.so`.
    Ours,
    /// Litestream's Go VFS, `litestream-vfs.so` from PyPI `litestream-vfs==0.5.17`.
    Go,
    /// Plain SQLite on the file written by `litestream restore` (the limit).
    Local,
}

impl Target {
    /// Every target, in report order.
    pub const ALL: [Target; 3] = [Target::Ours, Target::Go, Target::Local];

    /// Short name used in JSON, logs and file names.
    pub fn name(self) -> &'static str {
        match self {
            Target::Ours => "ours",
            Target::Go => "go",
            Target::Local => "local",
        }
    }

    /// Human label for the report.
    pub fn label(self) -> &'static str {
        match self {
            Target::Ours => "our VFS",
            Target::Go => "Go VFS",
            Target::Local => "local SQLite",
        }
    }

    /// Whether the target reads the replica through a loadable VFS.
    pub fn is_vfs(self) -> bool {
        self != Target::Local
    }
}

/// One process run: what the runner does after start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// Load extension + open + first query, all measured.
    Open,
    /// 1000 random point lookups cold, then the same 1000 warm in the same process.
    Point,
    /// Indexed range on (category, created_at) with rowid lookups, ~250 rows.
    Range,
    /// 10 000 consecutive ids.
    Consecutive,
    /// `count(*)` on items.
    Count,
    /// Full scan of docs.
    ScanDocs,
    /// `litestream_time` to the past state, query, back to latest, query.
    TimeTravel,
    /// Hydration from scratch: load + open + wait for 100 %, then 1000 point lookups.
    Hydrate,
    /// A fresh process on the hydration file the previous [`Workload::Hydrate`] run left.
    HydrateReopen,
}

impl Workload {
    /// Every workload, in run order.
    pub const ALL: [Workload; 9] = [
        Workload::Open,
        Workload::Point,
        Workload::Range,
        Workload::Consecutive,
        Workload::Count,
        Workload::ScanDocs,
        Workload::TimeTravel,
        Workload::Hydrate,
        Workload::HydrateReopen,
    ];

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Open => "open",
            Workload::Point => "point",
            Workload::Range => "range",
            Workload::Consecutive => "consecutive",
            Workload::Count => "count",
            Workload::ScanDocs => "scan_docs",
            Workload::TimeTravel => "time_travel",
            Workload::Hydrate => "hydrate",
            Workload::HydrateReopen => "hydrate_reopen",
        }
    }

    /// Whether `target` can run this workload (local SQLite has no time travel or hydration).
    pub fn applies_to(self, target: Target) -> bool {
        target.is_vfs() || !self.is_vfs_only()
    }

    fn is_vfs_only(self) -> bool {
        matches!(
            self,
            Workload::TimeTravel | Workload::Hydrate | Workload::HydrateReopen
        )
    }

    /// Whether the workload reads through a hydration file.
    pub fn hydrates(self) -> bool {
        matches!(self, Workload::Hydrate | Workload::HydrateReopen)
    }
}

/// A measured section, as reported. A workload yields one, or two for [`Workload::Point`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Load extension + open + first query.
    Open,
    /// 1000 random point lookups, fresh process.
    PointCold,
    /// The same 1000 lookups again, same process.
    PointWarm,
    /// Indexed range query with rowid lookups.
    Range,
    /// 10 000 consecutive ids.
    Consecutive,
    /// `count(*)` on items.
    Count,
    /// `sum(length(body))` over docs.
    ScanDocs,
    /// Time-travel switch and back.
    TimeTravel,
    /// Load + open + first query + wait until hydration reports 100 %.
    HydrateReady,
    /// 1000 point lookups once hydrated (same process).
    HydratedPoint,
    /// A fresh process on a valid hydration file: load + open + ready + 1000 point lookups.
    HydrateReopen,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; 11] = [
        Metric::Open,
        Metric::PointCold,
        Metric::PointWarm,
        Metric::Range,
        Metric::Consecutive,
        Metric::Count,
        Metric::ScanDocs,
        Metric::TimeTravel,
        Metric::HydrateReady,
        Metric::HydratedPoint,
        Metric::HydrateReopen,
    ];

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Open => "open",
            Metric::PointCold => "point_cold",
            Metric::PointWarm => "point_warm",
            Metric::Range => "range",
            Metric::Consecutive => "consecutive",
            Metric::Count => "count",
            Metric::ScanDocs => "scan_docs",
            Metric::TimeTravel => "time_travel",
            Metric::HydrateReady => "hydrate_ready",
            Metric::HydratedPoint => "hydrated_point",
            Metric::HydrateReopen => "hydrate_reopen",
        }
    }

    /// Row label in the report.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Open => "load + open + first query",
            Metric::PointCold => "1000 point lookups, cold",
            Metric::PointWarm => "1000 point lookups, warm",
            Metric::Range => "indexed range (~250 rows)",
            Metric::Consecutive => "10 000 consecutive ids",
            Metric::Count => "count(*) items, cold",
            Metric::ScanDocs => "full scan of docs, cold",
            Metric::TimeTravel => "time travel: past, then latest",
            Metric::HydrateReady => "hydration: open to 100 %",
            Metric::HydratedPoint => "hydration: 1000 point lookups after",
            Metric::HydrateReopen => "hydration: reopen + 1000 lookups",
        }
    }

    /// The process run that produces this metric.
    pub fn workload(self) -> Workload {
        match self {
            Metric::Open => Workload::Open,
            Metric::PointCold | Metric::PointWarm => Workload::Point,
            Metric::Range => Workload::Range,
            Metric::Consecutive => Workload::Consecutive,
            Metric::Count => Workload::Count,
            Metric::ScanDocs => Workload::ScanDocs,
            Metric::TimeTravel => Workload::TimeTravel,
            Metric::HydrateReady | Metric::HydratedPoint => Workload::Hydrate,
            Metric::HydrateReopen => Workload::HydrateReopen,
        }
    }

    /// What local SQLite's figure for this metric is: the same metric, or for reads of a
    /// hydrated file the cold point lookups (a fresh process reading the local file).
    pub fn local_equivalent(self) -> Option<Metric> {
        match self {
            Metric::HydratedPoint | Metric::HydrateReopen => Some(Metric::PointCold),
            Metric::TimeTravel | Metric::HydrateReady => None,
            m => Some(m),
        }
    }
}

/// Parameters of a generated dataset that the workloads need. Stored in the dataset's
/// `meta.json` and passed to every runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataParams {
    /// Rows in `items` (ids `1..=n_items`).
    pub n_items: i64,
    /// Rows of `docs` before the write stream (ids `1..=base_docs`).
    pub base_docs: i64,
    /// Seed of the random ids of the point lookups.
    pub lookup_seed: u64,
    /// The id of the first query.
    pub first_query_id: i64,
    /// Category of the range query.
    pub range_category: String,
    /// `created_at >= range_lo`.
    pub range_lo: String,
    /// `created_at < range_hi`.
    pub range_hi: String,
    /// First id of the 10 000 consecutive ids.
    pub consecutive_start: i64,
    /// RFC 3339 time a few seconds into the write stream, for time travel.
    pub tt_time: String,
}

/// What the runner is asked to do (one JSON argument).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSpec {
    /// Where to run.
    pub target: Target,
    /// What to run.
    pub workload: Workload,
    /// The extension to load (VFS targets).
    pub extension: Option<PathBuf>,
    /// The restored database (local target).
    pub local_db: Option<PathBuf>,
    /// The hydration file (hydration workloads).
    pub hydration_path: Option<PathBuf>,
    /// Size of the database file, bytes: the Go VFS's hydration is complete once its file has
    /// reached it.
    pub db_bytes: u64,
    /// `http://127.0.0.1:PORT` of the S3 server, to read its counters around measured parts.
    pub stats_endpoint: Option<String>,
    /// Dataset parameters.
    pub data: DataParams,
}

/// One measured section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    /// Which metric.
    pub metric: Metric,
    /// Wall time of the section, milliseconds.
    pub ms: f64,
    /// Rows returned.
    pub rows: u64,
    /// Checksum of every value returned (hex).
    pub checksum: String,
    /// S3 requests during the section (VFS targets).
    pub requests: Option<RequestStats>,
}

/// The runner's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunnerOutput {
    /// `load_extension` alone, milliseconds (VFS targets).
    pub load_ms: Option<f64>,
    /// Opening the database connection, milliseconds.
    pub open_ms: Option<f64>,
    /// Measured sections.
    pub measures: Vec<Measure>,
    /// Peak resident set size (`VmHWM`), KiB.
    pub vmhwm_kb: u64,
    /// The error, if the workload failed.
    pub error: Option<String>,
}

/// What a runner process left: its result line (parsed), the timeout if it was killed, and the
/// failure to report (the runner's own error, or no result line at all, with its stderr).
pub struct RunnerResult<O> {
    /// The result line.
    pub output: Option<O>,
    /// Seconds after which it was killed.
    pub timed_out_secs: Option<u64>,
    /// The failure, if any (none for a killed runner: its timeout says it).
    pub error: Option<String>,
}

/// Parses what a runner printed; `error_of` reads the error its output carries.
pub fn runner_result<O: serde::de::DeserializeOwned>(
    out: &testkit::golitestream::Output,
    timeout_secs: u64,
    error_of: impl Fn(&O) -> Option<String>,
) -> anyhow::Result<RunnerResult<O>> {
    use anyhow::Context;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let output = stdout
        .lines()
        .find_map(|l| l.strip_prefix(RESULT_MARKER))
        .map(serde_json::from_str::<O>)
        .transpose()
        .context("parse the runner's result line")?;
    let timed_out_secs = out.timed_out.then_some(timeout_secs);
    let error = match (&output, timed_out_secs) {
        (_, Some(_)) => None,
        (Some(o), None) => error_of(o),
        (None, None) => Some(format!(
            "no result line; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .chars()
                .take(2000)
                .collect::<String>()
        )),
    };
    Ok(RunnerResult {
        output,
        timed_out_secs,
        error,
    })
}

/// `PRAGMA litestream_hydration_progress` as a number (our VFS and the Go VFS both return it
/// as text with one decimal).
pub fn hydration_progress(conn: &rusqlite::Connection) -> rusqlite::Result<f64> {
    conn.query_row("PRAGMA litestream_hydration_progress", [], |r| {
        Ok(match r.get_ref(0)? {
            ValueRef::Integer(i) => i as f64,
            ValueRef::Real(f) => f,
            ValueRef::Text(t) => String::from_utf8_lossy(t).trim().parse().unwrap_or(-1.0),
            _ => -1.0,
        })
    })
}

/// Waits until the hydration file at `path` serves reads. Our VFS reports 100.0 only then. The
/// Go VFS reports the progress of its restore (pages compacted ÷ pages), 100.0 just before it
/// writes the last page, and marks itself complete after; so for it, also wait until the file
/// has the database's size, `db_bytes`. `progress` false: do not wait on the progress at all.
pub fn wait_hydrated(
    conn: &rusqlite::Connection,
    target: Target,
    path: &std::path::Path,
    db_bytes: u64,
    progress: bool,
) -> rusqlite::Result<()> {
    loop {
        let done = !progress || hydration_progress(conn)? >= 100.0;
        let sized = target == Target::Ours
            || std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) >= db_bytes;
        if done && sized {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Difference of two counter snapshots (the latency setting is taken from `after`).
pub fn stats_delta(before: &RequestStats, after: &RequestStats) -> RequestStats {
    RequestStats {
        get: after.get.saturating_sub(before.get),
        get_range: after.get_range.saturating_sub(before.get_range),
        head: after.head.saturating_sub(before.head),
        list: after.list.saturating_sub(before.list),
        put: after.put.saturating_sub(before.put),
        put_ok: after.put_ok.saturating_sub(before.put_ok),
        put_precondition_failed: after
            .put_precondition_failed
            .saturating_sub(before.put_precondition_failed),
        delete: after.delete.saturating_sub(before.delete),
        other: after.other.saturating_sub(before.other),
        bytes_out: after.bytes_out.saturating_sub(before.bytes_out),
        bytes_in: after.bytes_in.saturating_sub(before.bytes_in),
        latency_us: after.latency_us,
    }
}

// ---------------------------------------------------------------------------------------------
// The workloads' SQL
// ---------------------------------------------------------------------------------------------

/// First query and point lookups.
pub const SQL_POINT: &str =
    "SELECT id, sku, category, price, qty, created_at FROM items WHERE id = ?1";
/// Indexed range: the (category, created_at) index, then a rowid lookup per row.
pub const SQL_RANGE: &str = "SELECT id, sku, price, qty, created_at FROM items \
     WHERE category = ?1 AND created_at >= ?2 AND created_at < ?3";
/// 10 000 consecutive ids.
pub const SQL_CONSECUTIVE: &str = "SELECT id, sku, category, price, qty, created_at FROM items \
     WHERE id >= ?1 AND id < ?1 + 10000";
/// count(*).
pub const SQL_COUNT: &str = "SELECT count(*) FROM items";
/// Full scan of docs.
pub const SQL_SCAN_DOCS: &str = "SELECT count(*), sum(length(body)) FROM docs";
/// What time travel looks at: the docs written by the write stream.
pub const SQL_TAIL_DOCS: &str =
    "SELECT count(*), coalesce(sum(length(body)), 0), coalesce(max(id), 0) FROM docs WHERE id > ?1";
/// Reads the schema (the unmeasured set-up of every workload but `open`).
pub const SQL_SCHEMA: &str = "SELECT count(*) FROM sqlite_schema";

/// Number of point lookups.
pub const POINT_LOOKUPS: usize = 1000;

/// The ids of the point lookups: uniform in `1..=n_items`, deterministic.
pub fn lookup_ids(seed: u64, n_items: i64) -> Vec<i64> {
    let mut rng = Rng::new(seed);
    let n = u64::try_from(n_items.max(1)).unwrap_or(1);
    (0..POINT_LOOKUPS)
        .map(|_| i64::try_from(rng.below(n) + 1).unwrap_or(1))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------

/// Row count and FNV-1a checksum of every value returned, typed, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// Rows seen.
    pub rows: u64,
    hash: u64,
}

impl Default for Answer {
    fn default() -> Self {
        Answer {
            rows: 0,
            hash: 0xcbf2_9ce4_8422_2325,
        }
    }
}

impl Answer {
    fn bytes(&mut self, data: &[u8]) {
        for b in data {
            self.hash ^= u64::from(*b);
            self.hash = self.hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Adds one value.
    pub fn value(&mut self, v: ValueRef<'_>) {
        match v {
            ValueRef::Null => self.bytes(b"n"),
            ValueRef::Integer(i) => {
                self.bytes(b"i");
                self.bytes(&i.to_le_bytes());
            }
            ValueRef::Real(f) => {
                self.bytes(b"r");
                self.bytes(&f.to_bits().to_le_bytes());
            }
            ValueRef::Text(t) => {
                self.bytes(b"t");
                self.bytes(&(t.len() as u64).to_le_bytes());
                self.bytes(t);
            }
            ValueRef::Blob(b) => {
                self.bytes(b"b");
                self.bytes(&(b.len() as u64).to_le_bytes());
                self.bytes(b);
            }
        }
    }

    /// Runs `stmt` with `params` and adds every row.
    pub fn query<P: rusqlite::Params>(
        &mut self,
        stmt: &mut rusqlite::Statement<'_>,
        params: P,
    ) -> rusqlite::Result<()> {
        let n = stmt.column_count();
        let mut rows = stmt.query(params)?;
        while let Some(row) = rows.next()? {
            self.rows += 1;
            for i in 0..n {
                self.value(row.get_ref(i)?);
            }
        }
        Ok(())
    }

    /// The checksum, 16 hex digits.
    pub fn checksum(&self) -> String {
        format!("{:016x}", self.hash)
    }
}

// ---------------------------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------------------------

/// SplitMix64: small, fast, and the same sequence everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift: unbiased enough for a benchmark, and branch-free.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..hi` (lo < hi).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = u64::try_from(hi - lo).unwrap_or(1).max(1);
        lo + i64::try_from(self.below(span)).unwrap_or(0)
    }
}
