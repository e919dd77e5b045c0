//! The write suite (issue #4): write mode of our VFS against the Go VFS, and local SQLite where
//! a local file makes sense, on a new database and on a cached replica.
//!
//! Every run writes to its own store: an empty bucket for a new database, or a copy of the
//! cached replica made of hard links (the S3 server writes each object to a temporary file and
//! renames it into place, and writers only add objects, so no run can change a file the cache
//! or another run shares). Each run also has its own write buffer, so no run recovers another's.
//! After every run on a new database, and the first single-row and batched runs on a replica,
//! the replica is restored with `litestream restore` and its rows compared with what the run
//! committed.

mod describe;
mod sync_floor;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use testkit::golitestream::{restore, run_bounded, sanitize_env, ReplicaTarget, RestoreOpts};
use testkit::{RequestStats, S3Server};

use crate::config::Config;
use crate::gen::{Dataset, BUCKET, REPLICA_PATH};
use crate::spec::{runner_result, RunnerResult, Target};
use describe::describe;

/// The upload interval of both VFS in every write run. It is their default; it is still set
/// explicitly (`LITESTREAM_SYNC_INTERVAL`) so that the runs, the runner's sample spacing and the
/// report's limits all use the same value.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Rows per transaction of the batched workloads.
pub const BATCH_ROWS: u64 = 1000;

/// How long the runner waits for a commit to show in the store before giving up on it, in
/// sync intervals: far beyond any healthy upload, short enough to keep a stuck run cheap.
pub const VISIBLE_TIMEOUT_INTERVALS: u32 = 10;

/// The write statement of every workload: one new `items` row, its index entry included.
pub const SQL_INSERT: &str = "INSERT INTO items(sku, category, price, qty, created_at) \
     VALUES (?1, ?2, ?3, ?4, datetime(?5, 'unixepoch'))";

/// The schema of a new database: the cached datasets' `items` table and index, so that a row
/// costs the same b-tree work on a new database as on the replica.
pub const SQL_SCHEMA_NEW: &str = "CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, \
     sku TEXT NOT NULL, category TEXT NOT NULL, price REAL NOT NULL, qty INTEGER NOT NULL, \
     created_at TEXT NOT NULL); \
     CREATE INDEX IF NOT EXISTS items_category_created ON items(category, created_at);";

/// What a write run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteWorkload {
    /// Single-row autocommit transactions for the run's duration, `synchronous=FULL`.
    TxFull,
    /// The same with `synchronous=OFF`.
    TxOff,
    /// Transactions of [`BATCH_ROWS`] rows, `synchronous=FULL`.
    BatchFull,
    /// The same with `synchronous=OFF`.
    BatchOff,
    /// Single commits on a quiet database, each timed until its object is in the store.
    CommitVisible,
    /// Single-row autocommit transactions without pause; the objects created meanwhile.
    UploadRate,
    /// Load extension + open in write mode + the first write, all measured.
    OpenWrite,
    /// One transaction of `BENCH_BIGTX_MB` MB of incompressible rows on a new database, its
    /// upload and the close (issue #14; [`crate::bigtx`]). Not in [`WriteWorkload::ALL`]: it
    /// runs per size after the others and has its own part of the report.
    BigTx,
}

impl WriteWorkload {
    /// Every write workload, in run and report order.
    pub const ALL: [WriteWorkload; 7] = [
        WriteWorkload::TxFull,
        WriteWorkload::TxOff,
        WriteWorkload::BatchFull,
        WriteWorkload::BatchOff,
        WriteWorkload::CommitVisible,
        WriteWorkload::UploadRate,
        WriteWorkload::OpenWrite,
    ];

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            WriteWorkload::TxFull => "tx_full",
            WriteWorkload::TxOff => "tx_off",
            WriteWorkload::BatchFull => "batch_full",
            WriteWorkload::BatchOff => "batch_off",
            WriteWorkload::CommitVisible => "commit_visible",
            WriteWorkload::UploadRate => "upload_rate",
            WriteWorkload::OpenWrite => "open_write",
            WriteWorkload::BigTx => "bigtx",
        }
    }

    /// Row label in the report.
    pub fn label(self) -> &'static str {
        match self {
            WriteWorkload::TxFull => "single-row transactions, synchronous=FULL",
            WriteWorkload::TxOff => "single-row transactions, synchronous=OFF",
            WriteWorkload::BatchFull => "1000-row transactions, synchronous=FULL",
            WriteWorkload::BatchOff => "1000-row transactions, synchronous=OFF",
            WriteWorkload::CommitVisible => "COMMIT → object in the store",
            WriteWorkload::UploadRate => "uploads under continuous writes",
            WriteWorkload::OpenWrite => "load + open in write mode + first write",
            WriteWorkload::BigTx => "one big transaction",
        }
    }

    /// The `PRAGMA synchronous` the workload sets (SQLite's default, FULL, unless it says OFF).
    pub fn synchronous(self) -> &'static str {
        match self {
            WriteWorkload::TxOff | WriteWorkload::BatchOff => "OFF",
            _ => "FULL",
        }
    }

    /// Whether `target` runs this workload on `db`. The store-side workloads need a replica
    /// (not local SQLite); they are run on a new database only, where an upload carries just
    /// the commit. Opening is measured on the replica, where its cost lies.
    pub fn applies_to(self, target: Target, db: WriteDb) -> bool {
        match self {
            WriteWorkload::CommitVisible | WriteWorkload::UploadRate => {
                target.is_vfs() && db == WriteDb::New
            }
            WriteWorkload::OpenWrite => db != WriteDb::New,
            WriteWorkload::BigTx => db == WriteDb::New,
            _ => true,
        }
    }
}

/// The database a write run writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteDb {
    /// Created by the run on an empty replica (local SQLite: a new file).
    New,
    /// The cached replica of this size (local SQLite: a copy of its restored file).
    Replica(u32),
}

impl WriteDb {
    /// `new database` or `200 MB replica`.
    pub fn label(self) -> String {
        match self {
            WriteDb::New => "new database".to_string(),
            WriteDb::Replica(mb) => format!("{mb} MB replica"),
        }
    }

    fn dir_name(self) -> String {
        match self {
            WriteDb::New => "new".to_string(),
            WriteDb::Replica(mb) => format!("{mb}mb"),
        }
    }
}

/// What the runner is asked to do in a write run (`bench-runner --write '<json>'`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteSpec {
    /// Where to write.
    pub target: Target,
    /// What to do.
    pub workload: WriteWorkload,
    /// On what.
    pub db: WriteDb,
    /// The extension to load (VFS targets).
    pub extension: Option<PathBuf>,
    /// The database file (local target): absent for a new database, a copy otherwise.
    pub local_db: Option<PathBuf>,
    /// The directory holding the replica's objects on the S3 server's disk, watched for new
    /// LTX files (VFS targets).
    pub store_dir: Option<PathBuf>,
    /// `http://127.0.0.1:PORT` of the S3 server, to read its counters around measured parts.
    pub stats_endpoint: Option<String>,
    /// Length of the throughput workloads, seconds.
    pub secs: f64,
    /// Length of the continuous writes of [`WriteWorkload::UploadRate`], seconds.
    pub load_secs: f64,
    /// Commits timed by [`WriteWorkload::CommitVisible`].
    pub samples: usize,
    /// The VFS's upload interval, milliseconds ([`SYNC_INTERVAL`]).
    pub interval_ms: u64,
    /// Rows of `items` before the run (0 for a new database): new rows continue the ids.
    pub n_items: i64,
    /// Seed of the rows' values.
    pub seed: u64,
    /// [`WriteWorkload::BigTx`]: MB of row data in the transaction.
    #[serde(default)]
    pub bigtx_mb: u32,
    /// [`WriteWorkload::BigTx`]: seconds before the driver kills the runner, so that it gives
    /// up waiting for the upload in time to report what it measured.
    #[serde(default)]
    pub deadline_secs: u64,
}

/// The runner's answer to a [`WriteSpec`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteOutput {
    /// `load_extension` alone, milliseconds (VFS targets).
    pub load_ms: Option<f64>,
    /// Opening the database connection, milliseconds.
    pub open_ms: Option<f64>,
    /// The measured section, milliseconds.
    pub ms: f64,
    /// Transactions committed in it.
    pub txs: u64,
    /// Rows committed in it (a run that fails says how many before the failure).
    pub rows: u64,
    /// [`WriteWorkload::CommitVisible`]: COMMIT to new object, per commit, milliseconds.
    pub visible_ms: Vec<f64>,
    /// Commits that did not show within [`VISIBLE_TIMEOUT_INTERVALS`].
    pub visible_timeouts: u64,
    /// [`WriteWorkload::UploadRate`]: when each object created while writing appeared (its
    /// modification time), milliseconds after the first commit, in order.
    pub upload_at_ms: Vec<f64>,
    /// S3 requests during the measured section (VFS targets).
    pub requests: Option<RequestStats>,
    /// `count(*)` of `items` once the run's writes are done, as the connection sees it.
    pub final_rows: Option<i64>,
    /// Closing the connection, milliseconds (a VFS uploads what is pending).
    pub close_ms: f64,
    /// Peak resident set size (`VmHWM`), KiB.
    pub vmhwm_kb: u64,
    /// [`WriteWorkload::BigTx`]: `BEGIN` and the `INSERT` of every row, milliseconds.
    #[serde(default)]
    pub insert_ms: Option<f64>,
    /// [`WriteWorkload::BigTx`]: the `COMMIT` statement, milliseconds.
    #[serde(default)]
    pub commit_ms: Option<f64>,
    /// [`WriteWorkload::BigTx`]: from the end of `COMMIT` until the transaction's object is in
    /// the store, milliseconds (None: not seen in time).
    #[serde(default)]
    pub upload_ms: Option<f64>,
    /// The error, if the run failed.
    pub error: Option<String>,
}

/// One write run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteRecord {
    /// Database.
    pub db: WriteDb,
    /// Target.
    pub target: Target,
    /// Workload.
    pub workload: WriteWorkload,
    /// Run number (0-based).
    pub run: usize,
    /// [`WriteWorkload::BigTx`]: MB of row data in the transaction.
    #[serde(default)]
    pub mb: Option<u32>,
    /// What the runner printed (None if it was killed or printed nothing).
    pub output: Option<WriteOutput>,
    /// Set when the runner was killed after this many seconds.
    pub timed_out_secs: Option<u64>,
    /// Wall time of the whole process, milliseconds.
    pub process_ms: f64,
    /// Server counters over the whole process.
    pub process_requests: RequestStats,
    /// `litestream restore` of the replica after the run: `count(*)` of `items` (to compare
    /// with the rows before the run plus those it committed), or why the restore or its
    /// integrity check failed. None when not checked.
    pub restored: Option<std::result::Result<i64, String>>,
    /// A failure (runner error, no result line).
    pub error: Option<String>,
}

/// Everything the write suite produced, with its own settings and date, so that a report can
/// combine it with read figures of another run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteResults {
    /// Runs per (database, workload, target).
    pub runs: usize,
    /// Length of the throughput workloads, seconds.
    pub secs: f64,
    /// Length of the continuous writes of the upload workload, seconds.
    pub load_secs: f64,
    /// Commits timed per commit-to-visible run.
    pub samples: usize,
    /// Replica sizes written to.
    pub sizes: Vec<u32>,
    /// Timeout per process, seconds.
    pub timeout_secs: u64,
    /// The workloads run, when `BENCH_WRITE_WORKLOADS` named some (empty: all).
    #[serde(default)]
    pub workloads: Vec<WriteWorkload>,
    /// Sizes of the big transaction, MB (empty: not run).
    #[serde(default)]
    pub bigtx_mb: Vec<u32>,
    /// Runs per size and target of the big transaction.
    #[serde(default)]
    pub bigtx_runs: usize,
    /// Timeout per big-transaction process, seconds.
    #[serde(default)]
    pub bigtx_timeout_secs: u64,
    /// Upload interval of both VFS, milliseconds.
    pub interval_ms: u64,
    /// Rows of `items` in each replica before a run: (size, rows).
    pub base_rows: Vec<(u32, i64)>,
    /// When the suite ran (UTC).
    pub date: String,
    /// The engine's code measured.
    pub code: String,
    /// Wall time of the suite, seconds.
    pub secs_taken: f64,
    /// Every run.
    pub records: Vec<WriteRecord>,
    /// This machine's 4 KiB `pwrite` + `fdatasync` (median µs), measured before each run.
    #[serde(default)]
    pub sync_floor_us: Vec<f64>,
}

/// Runs the write suite on a new database and on `datasets` (the replicas of the sizes in
/// `config.write_sizes`).
pub fn run_suite(
    config: &Config,
    datasets: &[(u32, Dataset)],
    logs: &Path,
    code: String,
    date: String,
) -> Result<WriteResults> {
    let started = Instant::now();
    let scratch = config.bench_dir.join("write");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .with_context(|| format!("remove {}", scratch.display()))?;
    }
    std::fs::create_dir_all(&scratch)?;
    let dbs: Vec<WriteDb> = std::iter::once(WriteDb::New)
        .chain(datasets.iter().map(|(mb, _)| WriteDb::Replica(*mb)))
        .collect();
    eprintln!(
        "bench: write suite on {}: {} runs, {} s per throughput run, {} s of continuous writes",
        dbs.iter().map(|d| d.label()).collect::<Vec<_>>().join(", "),
        config.write_runs,
        config.write_secs,
        config.write_load_secs
    );
    let mut records = Vec::new();
    // A (database, target, workload) killed once is not run again.
    let mut killed = std::collections::BTreeSet::new();
    let mut sync_floor_us = Vec::new();
    for run in 0..config.write_runs {
        let floor = sync_floor::measure(&scratch)?;
        eprintln!(
            "bench:   write run {}/{} this disk's 4 KiB pwrite + fdatasync: {floor:.0} µs (median)",
            run + 1,
            config.write_runs
        );
        sync_floor_us.push(floor);
        for &db in &dbs {
            let dataset = match db {
                WriteDb::New => None,
                WriteDb::Replica(mb) => datasets.iter().find(|(m, _)| *m == mb).map(|(_, d)| d),
            };
            for workload in WriteWorkload::ALL {
                for k in 0..Target::ALL.len() {
                    // Rotate the order of the targets from run to run, as the read passes do.
                    let target = Target::ALL[(k + run) % Target::ALL.len()];
                    if !workload.applies_to(target, db)
                        || !config.runs_write_workload(workload)
                        || killed.contains(&(db, target, workload))
                    {
                        continue;
                    }
                    let dir = scratch.join(format!(
                        "{}-{}-{}-{run}",
                        db.dir_name(),
                        workload.name(),
                        target.name()
                    ));
                    let record =
                        one_run(config, db, dataset, workload, target, run, &dir, logs, None)?;
                    eprintln!(
                        "bench:   write run {}/{} {:<12} {}",
                        run + 1,
                        config.write_runs,
                        db.label(),
                        describe(&record)
                    );
                    if record.timed_out_secs.is_some() {
                        killed.insert((db, target, workload));
                    }
                    records.push(record);
                    // Local copies of a replica's database are as large as the database.
                    std::fs::remove_dir_all(&dir)
                        .with_context(|| format!("remove {}", dir.display()))?;
                }
            }
        }
    }
    crate::bigtx::run_all(config, &scratch, logs, &mut records)?;
    let _ = std::fs::remove_dir_all(&scratch);
    let bigtx = config.runs_write_workload(WriteWorkload::BigTx);
    Ok(WriteResults {
        runs: config.write_runs,
        secs: config.write_secs,
        load_secs: config.write_load_secs,
        samples: config.write_samples,
        sizes: datasets.iter().map(|(mb, _)| *mb).collect(),
        timeout_secs: config.write_timeout_secs,
        workloads: if WriteWorkload::ALL
            .iter()
            .all(|&w| config.runs_write_workload(w))
        {
            Vec::new()
        } else {
            config.write_workloads.clone()
        },
        bigtx_mb: if bigtx {
            config.bigtx_mb.clone()
        } else {
            Vec::new()
        },
        bigtx_runs: config.bigtx_runs,
        bigtx_timeout_secs: config.bigtx_timeout_secs,
        interval_ms: SYNC_INTERVAL.as_millis() as u64,
        base_rows: datasets
            .iter()
            .map(|(mb, d)| (*mb, d.meta.data.n_items))
            .collect(),
        date,
        code,
        secs_taken: started.elapsed().as_secs_f64(),
        records,
        sync_floor_us,
    })
}

/// One run in a fresh process; `mb`: the size of [`WriteWorkload::BigTx`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn one_run(
    config: &Config,
    db: WriteDb,
    dataset: Option<&Dataset>,
    workload: WriteWorkload,
    target: Target,
    run: usize,
    dir: &Path,
    logs: &Path,
    mb: Option<u32>,
) -> Result<WriteRecord> {
    std::fs::create_dir_all(dir)?;
    let timeout = match workload {
        WriteWorkload::BigTx => config.bigtx_timeout_secs,
        _ => config.write_timeout_secs,
    };
    let n_items = dataset.map_or(0, |d| d.meta.data.n_items);
    let mut spec = WriteSpec {
        target,
        workload,
        db,
        extension: match target {
            Target::Ours => Some(config.ours_so.clone()),
            Target::Go => Some(config.go_so.clone()),
            Target::Local => None,
        },
        local_db: None,
        store_dir: None,
        stats_endpoint: None,
        secs: config.write_secs,
        load_secs: config.write_load_secs,
        samples: config.write_samples,
        interval_ms: SYNC_INTERVAL.as_millis() as u64,
        n_items,
        // The same rows for every target of a run, other rows in the next run.
        seed: 0x0077_7269_7465 ^ run as u64,
        bigtx_mb: mb.unwrap_or(0),
        deadline_secs: timeout,
    };
    let mut cmd = Command::new(&config.runner);
    sanitize_env(&mut cmd);
    let mut server = None;
    if target.is_vfs() {
        let root = dir.join("s3");
        match dataset {
            None => {
                std::fs::create_dir_all(root.join(BUCKET))?;
            }
            Some(d) => link_tree(&d.s3_root, &root)?,
        }
        let s = S3Server::start(&root)?;
        let replica = ReplicaTarget::s3(&s, BUCKET, REPLICA_PATH);
        spec.store_dir = Some(s.root().join(BUCKET).join(REPLICA_PATH));
        spec.stats_endpoint = Some(s.endpoint());
        cmd.envs(replica.go_vfs_env());
        cmd.env("LITESTREAM_WRITE_ENABLED", "true");
        cmd.env(
            "LITESTREAM_SYNC_INTERVAL",
            format!("{}ms", SYNC_INTERVAL.as_millis()),
        );
        cmd.env("LITESTREAM_BUFFER_PATH", dir.join("write-buffer"));
        cmd.env(
            "LITESTREAM_LOG_FILE",
            logs.join(format!("{}-write.log", target.name())),
        );
        server = Some((s, replica));
    } else {
        let path = dir.join("app.db");
        if let Some(d) = dataset {
            std::fs::copy(&d.restored, &path)
                .with_context(|| format!("copy {}", d.restored.display()))?;
        }
        spec.local_db = Some(path);
    }
    cmd.arg("--write").arg(serde_json::to_string(&spec)?);

    let t = Instant::now();
    let out = run_bounded(&mut cmd, Duration::from_secs(timeout))?;
    let process_ms = t.elapsed().as_secs_f64() * 1000.0;
    let RunnerResult {
        output,
        timed_out_secs,
        error,
    } = runner_result(&out, timeout, |o: &WriteOutput| o.error.clone())?;
    let mut record = WriteRecord {
        db,
        target,
        workload,
        run,
        mb,
        output,
        timed_out_secs,
        process_ms,
        process_requests: RequestStats::default(),
        restored: None,
        error,
    };
    if let Some((s, replica)) = &server {
        record.process_requests = s.stats();
        // Restoring a large replica takes seconds: there, the first run of the single-row and
        // of the batched workload is checked (synchronous=OFF changes only the fsyncs). A run
        // that failed is checked too: what it committed before failing must be there.
        let check = record.output.is_some()
            && record.timed_out_secs.is_none()
            && (db == WriteDb::New
                || (run == 0
                    && matches!(workload, WriteWorkload::TxFull | WriteWorkload::BatchFull)));
        if check {
            let table = match workload {
                WriteWorkload::BigTx => "t",
                _ => "items",
            };
            record.restored =
                Some(restored_rows(replica, dir, table).map_err(|e| format!("{e:#}")));
        }
    }
    drop(server);
    Ok(record)
}

/// `litestream restore` of the replica, its integrity, and its `count(*)` of `table`.
fn restored_rows(replica: &ReplicaTarget, dir: &Path, table: &str) -> Result<i64> {
    let out = dir.join("restored.db");
    restore(replica, &out, &RestoreOpts::default())?;
    let check = testkit::primary::integrity_check(&out)?;
    anyhow::ensure!(check == "ok", "integrity_check: {check}");
    testkit::primary::count_rows(&out, table)
}

/// Recreates the tree `from` at `to` with hard links to its files (a copy where linking is not
/// possible, e.g. across file systems).
fn link_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            link_tree(&src, &dst)?;
        } else if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).with_context(|| format!("copy {}", src.display()))?;
        }
    }
    Ok(())
}
