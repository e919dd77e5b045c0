//! The deterministic database generator and the cached replicas.
//!
//! A dataset of `size_mb` lives in `<bench dir>/gen-v<GEN_VERSION>-<size_mb>mb/`:
//!
//! * `s3/bench/app/...`: the replica, written by the real Go `litestream replicate` to a
//!   testkit S3 server whose root is `s3/` (bucket `bench`, path `app`);
//! * `restored.db`: what `litestream restore` makes of it (the local SQLite target);
//! * `meta.json`: [`Meta`], written last; its presence marks the dataset complete.
//!
//! How a dataset is made: the primary is bulk-loaded (items and docs interleaved, as in a
//! database that grew over time, index maintained while inserting), switched to WAL, and
//! handed to `litestream replicate` with short compaction levels. Then a write stream of small
//! transactions runs for [`STREAM_SECS`] seconds, with a quiet point a few seconds in whose time
//! is the time-travel target. The run ends when level 3 holds the last transaction.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use testkit::golitestream::{
    litestream_command, ltx_files, wait_for_ltx, ReplicaTarget, ReplicateOpts, Replicator,
    SyncResult,
};
use testkit::{PrimaryDb, S3Server};

use crate::spec::{Answer, DataParams, Rng, SQL_TAIL_DOCS};

mod words;
use words::words;

/// Bump when the data, the schema or the replication set-up changes: the cache key.
pub const GEN_VERSION: u32 = 2;
/// Bucket and path of the replica.
pub const BUCKET: &str = "bench";
/// Key prefix of the replica in the bucket.
pub const REPLICA_PATH: &str = "app";

/// `items` rows per MB of database (with `DOCS_PER_MB` this gives ~1 MB per MB asked).
const ITEMS_PER_MB: i64 = 4_000;
/// `docs` rows per MB of database.
const DOCS_PER_MB: i64 = 790;
/// Categories of items.
pub const CATEGORIES: i64 = 100;
/// 2024-01-01T00:00:00Z; item `id` is created around `EPOCH + id * STEP_SECS`.
const EPOCH: i64 = 1_704_067_200;
const STEP_SECS: i64 = 30;
/// Length of the write stream.
const STREAM_SECS: u64 = 24;
/// When, into the stream, the quiet point (the time-travel target) is.
const QUIET_AFTER_SECS: u64 = 4;

/// What is known about a generated dataset.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// [`GEN_VERSION`] that made it.
    pub version: u32,
    /// Requested size.
    pub size_mb: u32,
    /// Vacuumed before replication.
    #[serde(default)]
    pub vacuumed: bool,
    /// Parameters of the workloads.
    pub data: DataParams,
    /// Rows of docs at the end.
    pub n_docs: i64,
    /// Size of the restored database file.
    pub db_bytes: u64,
    /// Page size.
    pub page_size: i64,
    /// LTX files by level: (count, bytes).
    pub levels: BTreeMap<u32, (u64, u64)>,
    /// Bytes under the replica prefix.
    pub replica_bytes: u64,
    /// Last TXID, 16 hex digits.
    pub final_txid: String,
    /// Transactions of the write stream.
    pub stream_txs: u64,
    /// Checksum of the time-travel workload's answer: the tail of docs at `tt_time`, then at
    /// the latest state.
    pub tt_expected: String,
    /// Seconds the generation took.
    pub gen_secs: f64,
    /// When it was generated (UTC).
    pub generated_at: String,
}

/// How the pages of one b-tree lie in the database file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BtreeLayout {
    /// Table or index.
    pub name: String,
    /// Pages (interior and leaf).
    pub pages: u64,
    /// Leaf pages.
    pub leaves: u64,
    /// Runs of consecutive page numbers among the leaves, in key order: a scan that only
    /// reads ahead over consecutive pages needs at least this many requests.
    pub leaf_runs: u64,
    /// Median distance, in pages, from one leaf to the next in key order.
    pub median_gap: i64,
}

/// The layout of the user tables and indexes of `db` (via the `dbstat` virtual table).
pub fn layout(db: &Path) -> Result<Vec<BtreeLayout>> {
    let conn = testkit::primary::open_readonly(db)?;
    let mut names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type IN ('table', 'index') \
             AND name NOT LIKE 'sqlite%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    names.retain(|n| !n.starts_with("_litestream"));
    let mut out = Vec::new();
    for name in names {
        let mut stmt = conn.prepare(
            "SELECT pageno, pagetype = 'leaf' FROM dbstat WHERE name = ?1 ORDER BY path",
        )?;
        let rows: Vec<(i64, bool)> = stmt
            .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let leaves: Vec<i64> = rows.iter().filter(|r| r.1).map(|r| r.0).collect();
        let mut gaps: Vec<i64> = leaves.windows(2).map(|w| w[1] - w[0]).collect();
        let runs = if leaves.is_empty() {
            0
        } else {
            1 + gaps.iter().filter(|g| **g != 1).count() as u64
        };
        gaps.sort_unstable();
        out.push(BtreeLayout {
            name,
            pages: rows.len() as u64,
            leaves: leaves.len() as u64,
            leaf_runs: runs,
            median_gap: gaps.get(gaps.len() / 2).copied().unwrap_or(0),
        });
    }
    Ok(out)
}

/// Which dataset: a size, and whether its file was vacuumed before replication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DatasetId {
    /// Requested size.
    pub size_mb: u32,
    /// `VACUUM` after the bulk load: every table and index in one contiguous run of pages,
    /// instead of the interleaved pages of a database that grew over time.
    pub vacuumed: bool,
}

impl DatasetId {
    /// `200 MB` or `200 MB, vacuumed`.
    pub fn label(&self) -> String {
        if self.vacuumed {
            format!("{} MB, vacuumed", self.size_mb)
        } else {
            format!("{} MB", self.size_mb)
        }
    }

    /// The dataset's directory name under the bench directory.
    pub fn dir_name(&self) -> String {
        let suffix = if self.vacuumed { "-vacuumed" } else { "" };
        format!("gen-v{GEN_VERSION}-{}mb{suffix}", self.size_mb)
    }
}

/// A dataset ready for the benchmark.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Its directory.
    pub dir: PathBuf,
    /// Root of the S3 server (holds the bucket directory).
    pub s3_root: PathBuf,
    /// The restored database.
    pub restored: PathBuf,
    /// What is known about it.
    pub meta: Meta,
    /// Whether it was generated by this run (false: taken from the cache).
    pub generated_now: bool,
}

/// The dataset `id` under `bench_dir`, generated unless cached.
pub fn ensure(bench_dir: &Path, id: DatasetId) -> Result<Dataset> {
    let dir = bench_dir.join(id.dir_name());
    let label = id.label();
    let s3_root = dir.join("s3");
    let restored = dir.join("restored.db");
    let meta_path = dir.join("meta.json");
    if let Ok(text) = std::fs::read_to_string(&meta_path) {
        if let Ok(meta) = serde_json::from_str::<Meta>(&text) {
            if meta.version == GEN_VERSION && restored.is_file() && s3_root.is_dir() {
                eprintln!("bench: {label} dataset cached in {}", dir.display());
                return Ok(Dataset {
                    dir,
                    s3_root,
                    restored,
                    meta,
                    generated_now: false,
                });
            }
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    std::fs::create_dir_all(&s3_root).with_context(|| format!("create {}", s3_root.display()))?;
    eprintln!(
        "bench: generating the {label} dataset in {} (one-off; cached afterwards)",
        dir.display()
    );
    let meta = generate(&dir, &s3_root, &restored, id)?;
    std::fs::write(&meta_path, serde_json::to_string_pretty(&meta)?)
        .with_context(|| format!("write {}", meta_path.display()))?;
    Ok(Dataset {
        dir,
        s3_root,
        restored,
        meta,
        generated_now: true,
    })
}

/// The name of category `c` (`cat-042`).
pub fn category(c: i64) -> String {
    format!("cat-{c:03}")
}

fn sql_now(conn: &Connection) -> Result<String> {
    conn.query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", [], |r| {
        r.get(0)
    })
    .context("read the time from SQLite")
}

fn datetime(conn: &Connection, epoch: i64) -> Result<String> {
    conn.query_row("SELECT datetime(?1, 'unixepoch')", [epoch], |r| r.get(0))
        .context("format a datetime")
}

/// The values of `items` row `id`, the id aside: sku, category, price, qty and `created_at` as
/// Unix time (around `EPOCH + id * STEP_SECS`, so later ids are later). The bulk load and the
/// write benchmark's inserts draw them the same way; the order of the draws is part of the
/// cached datasets ([`GEN_VERSION`]).
pub fn item_row(rng: &mut Rng, id: i64) -> (String, String, f64, i64, i64) {
    let sku = format!("SKU-{:08X}", rng.next_u64() as u32);
    let cat = category(rng.range(0, CATEGORIES));
    let price = rng.range(100, 100_000) as f64 / 100.0;
    let qty = rng.range(0, 1000);
    let created = EPOCH + id * STEP_SECS + rng.range(0, STEP_SECS);
    (sku, cat, price, qty, created)
}

/// Bulk load: `n_items` items and `n_docs` docs, interleaved in chunks.
fn bulk_load(path: &Path, n_items: i64, n_docs: i64) -> Result<()> {
    let mut conn = Connection::open(path).with_context(|| format!("create {}", path.display()))?;
    conn.execute_batch(
        "PRAGMA page_size = 4096;
         PRAGMA journal_mode = OFF;
         PRAGMA synchronous = OFF;
         PRAGMA cache_size = -131072;
         CREATE TABLE items(id INTEGER PRIMARY KEY, sku TEXT NOT NULL, category TEXT NOT NULL,
                            price REAL NOT NULL, qty INTEGER NOT NULL, created_at TEXT NOT NULL);
         CREATE INDEX items_category_created ON items(category, created_at);
         CREATE TABLE docs(id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL, title TEXT NOT NULL,
                           body TEXT NOT NULL);",
    )
    .context("create the schema")?;
    let mut rng = Rng::new(0x6265_6e63_6831);
    const CHUNK: i64 = 500;
    let mut item = 0i64;
    let mut doc = 0i64;
    while item < n_items {
        let tx = conn.transaction()?;
        {
            let mut ins_item = tx.prepare_cached(
                "INSERT INTO items VALUES (?1, ?2, ?3, ?4, ?5, datetime(?6, 'unixepoch'))",
            )?;
            let mut ins_doc = tx.prepare_cached("INSERT INTO docs VALUES (?1, ?2, ?3, ?4)")?;
            // 200 chunks of 500 items per transaction.
            for _ in 0..200 {
                let end = (item + CHUNK).min(n_items);
                for id in item + 1..=end {
                    let (sku, cat, price, qty, created) = item_row(&mut rng, id);
                    ins_item.execute(rusqlite::params![id, sku, cat, price, qty, created])?;
                }
                item = end;
                // Docs keep pace with items so the two tables' pages interleave.
                let doc_end = (n_docs * item / n_items.max(1)).min(n_docs);
                for id in doc + 1..=doc_end {
                    let item_id = rng.range(1, item + 1);
                    let title = words(&mut rng, 24, 64);
                    let body = words(&mut rng, 400, 800);
                    ins_doc.execute(rusqlite::params![id, item_id, title, body])?;
                }
                doc = doc_end;
                if item >= n_items {
                    break;
                }
            }
        }
        tx.commit()?;
    }
    Ok(())
}

/// One transaction of the write stream: bump 5 random items, append one doc.
fn stream_tx(db: &PrimaryDb, rng: &mut Rng, n_items: i64) -> Result<()> {
    let conn = db.conn();
    conn.execute_batch("BEGIN")?;
    for _ in 0..5 {
        conn.execute(
            "UPDATE items SET qty = qty + 1, price = round(price * 1.01, 2) WHERE id = ?1",
            [rng.range(1, n_items + 1)],
        )?;
    }
    conn.execute(
        "INSERT INTO docs(item_id, title, body) VALUES (?1, ?2, ?3)",
        rusqlite::params![
            rng.range(1, n_items + 1),
            words(rng, 24, 64),
            words(rng, 400, 800)
        ],
    )?;
    conn.execute_batch("COMMIT")?;
    Ok(())
}

fn tail_docs(conn: &Connection, base_docs: i64, answer: &mut Answer) -> Result<()> {
    let mut stmt = conn.prepare(SQL_TAIL_DOCS)?;
    answer.query(&mut stmt, [base_docs])?;
    Ok(())
}

/// Runs a `litestream` command (sanitised environment, S3 credentials) without testkit's
/// 60 s limit, which a 1 GB restore or first upload can exceed.
fn litestream(target: &ReplicaTarget, args: &[&str]) -> Result<Vec<u8>> {
    let mut cmd = litestream_command(Some(target))?;
    cmd.args(args);
    let out = cmd
        .output()
        .with_context(|| format!("run litestream {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "`litestream {}` failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

/// `litestream sync -wait` with a long timeout: returns once the replica holds the primary's
/// current TXID.
fn sync(rep: &Replicator, timeout_secs: u64) -> Result<SyncResult> {
    let timeout = timeout_secs.to_string();
    let socket = rep.socket_path().display().to_string();
    let db = rep.db_path().display().to_string();
    let out = litestream(
        rep.target(),
        &[
            "sync", "-wait", "-json", "-timeout", &timeout, "-socket", &socket, &db,
        ],
    )?;
    let result: SyncResult = serde_json::from_slice(&out)
        .with_context(|| format!("parse sync output {}", String::from_utf8_lossy(&out)))?;
    ensure!(
        result.replica_txid == Some(result.txid),
        "sync returned before the replica caught up: {result:?}"
    );
    Ok(result)
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

fn generate(dir: &Path, s3_root: &Path, restored: &Path, id: DatasetId) -> Result<Meta> {
    let started = Instant::now();
    let size_mb = id.size_mb;
    let n_items = ITEMS_PER_MB * i64::from(size_mb);
    let base_docs = DOCS_PER_MB * i64::from(size_mb);
    let primary_dir = dir.join("primary");
    std::fs::create_dir_all(&primary_dir)?;
    let primary_path = primary_dir.join("app.db");

    eprintln!("bench:   bulk load: {n_items} items, {base_docs} docs");
    bulk_load(&primary_path, n_items, base_docs)?;
    if id.vacuumed {
        Connection::open(&primary_path)?
            .execute_batch("VACUUM")
            .context("VACUUM the primary")?;
    }
    eprintln!("bench:   bulk load done after {:.0?}", started.elapsed());

    // PrimaryDb leaves checkpoints to Litestream: with SQLite's default autocheckpoint in the
    // writer, 0.5.17 lost whole transactions at ~1000-page intervals here.
    let db = PrimaryDb::create(&primary_path)?;
    let server = S3Server::start(s3_root)?;
    server.create_bucket(BUCKET)?;
    let target = ReplicaTarget::s3(&server, BUCKET, REPLICA_PATH);
    let opts = ReplicateOpts {
        levels: vec![
            Duration::from_secs(4),
            Duration::from_secs(8),
            Duration::from_secs(16),
        ],
        // The start-up snapshot only: a periodic full copy of the database would only slow the
        // generation down.
        snapshot_interval: Duration::from_secs(24 * 3600),
        snapshot_retention: Duration::from_secs(7 * 24 * 3600),
        monitor_interval: Duration::from_millis(100),
        sync_interval: Duration::from_millis(500),
        log_level: "info".to_string(),
        log_file: Some(dir.join("litestream-replicate.log")),
        ..ReplicateOpts::default()
    };
    let mut rep = Replicator::start(&primary_path, target.clone(), opts)?;
    let first = sync(&rep, 1800)?;
    eprintln!(
        "bench:   initial upload done (txid {:x}) after {:.0?}",
        first.txid,
        started.elapsed()
    );

    // The write stream, ~20 transactions a second, with a quiet point a few seconds in.
    let mut rng = Rng::new(0x7374_7265_616d);
    let stream_start = Instant::now();
    let mut tt: Option<(String, Answer)> = None;
    let mut txs = 0u64;
    while stream_start.elapsed() < Duration::from_secs(STREAM_SECS) {
        if tt.is_none() && stream_start.elapsed() >= Duration::from_secs(QUIET_AFTER_SECS) {
            sync(&rep, 600)?;
            std::thread::sleep(Duration::from_millis(1500));
            let at = sql_now(db.conn())?;
            let mut answer = Answer::default();
            tail_docs(db.conn(), base_docs, &mut answer)?;
            tt = Some((at, answer));
            std::thread::sleep(Duration::from_millis(1500));
        }
        stream_tx(&db, &mut rng, n_items)?;
        txs += 1;
        std::thread::sleep(Duration::from_millis(50));
        rep.check_alive()?;
    }
    let (tt_time, mut tt_answer) = tt.context("the write stream ended before the quiet point")?;
    tail_docs(db.conn(), base_docs, &mut tt_answer)?;
    let last = sync(&rep, 600)?;
    eprintln!(
        "bench:   write stream done: {txs} transactions, txid {:x}; waiting for L1-L3",
        last.txid
    );
    let files = wait_for_ltx(&target, Duration::from_secs(300), |files| {
        (1..=3).all(|level| {
            files
                .iter()
                .any(|f| f.level == level && f.max_txid >= last.txid)
        }) && files.iter().any(|f| f.level == 9)
    })?;
    rep.stop(Duration::from_secs(30))?;
    drop(rep);

    // The local target: `litestream restore` of the latest state, checked against the primary.
    eprintln!("bench:   restoring");
    let restored_s = restored.display().to_string();
    let url = target.url();
    litestream(&target, &["restore", "-o", &restored_s, &url])?;
    let check = testkit::primary::integrity_check(restored)?;
    ensure!(check == "ok", "restored database: {check}");
    let fingerprint = "SELECT count(*), sum(qty), sum(price), (SELECT count(*) FROM docs), \
                       (SELECT sum(length(body)) FROM docs) FROM items";
    let restored_conn = testkit::primary::open_readonly(restored)?;
    let want: (i64, i64, f64, i64, i64) = db.conn().query_row(fingerprint, [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })?;
    let got: (i64, i64, f64, i64, i64) = restored_conn.query_row(fingerprint, [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })?;
    ensure!(want == got, "restored {got:?} but the primary has {want:?}");

    // The time-travel target must be what `litestream restore -timestamp` gives.
    let at_time = dir.join("restored-at-time.db");
    let at_time_s = at_time.display().to_string();
    litestream(
        &target,
        &["restore", "-o", &at_time_s, "-timestamp", &tt_time, &url],
    )?;
    {
        let conn = testkit::primary::open_readonly(&at_time)?;
        let mut answer = Answer::default();
        tail_docs(&conn, base_docs, &mut answer)?;
        tail_docs(&restored_conn, base_docs, &mut answer)?;
        ensure!(
            answer == tt_answer,
            "litestream restore -timestamp {tt_time} disagrees with the primary at that time"
        );
    }
    std::fs::remove_file(&at_time)?;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("restored-at-time.db{suffix}")));
    }

    let page_size: i64 = restored_conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let n_docs: i64 = restored_conn.query_row("SELECT count(*) FROM docs", [], |r| r.get(0))?;
    let mid = n_items / 2;
    let window = 250 * CATEGORIES; // ids spanned by ~250 rows of one category
    let lo_id = (mid - window / 2).max(1);
    let range_lo = datetime(&restored_conn, EPOCH + lo_id * STEP_SECS)?;
    let range_hi = datetime(&restored_conn, EPOCH + (lo_id + window) * STEP_SECS)?;
    let generated_at = sql_now(&restored_conn)?;
    drop(restored_conn);

    let mut levels: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for f in &files {
        let e = levels.entry(f.level).or_default();
        e.0 += 1;
        e.1 += f.size;
    }
    // The listing above may be older than the last compactions: list again.
    if let Ok(files) = ltx_files(&target) {
        levels.clear();
        for f in &files {
            let e = levels.entry(f.level).or_default();
            e.0 += 1;
            e.1 += f.size;
        }
    }
    drop(server);
    drop(db);
    std::fs::remove_dir_all(&primary_dir)?;

    Ok(Meta {
        version: GEN_VERSION,
        size_mb,
        vacuumed: id.vacuumed,
        data: DataParams {
            n_items,
            base_docs,
            lookup_seed: 0x6c6f_6f6b_7570 ^ u64::from(size_mb),
            first_query_id: mid,
            range_category: category(42),
            range_lo,
            range_hi,
            consecutive_start: n_items / 3,
            tt_time,
        },
        n_docs,
        db_bytes: std::fs::metadata(restored)?.len(),
        page_size,
        levels,
        replica_bytes: dir_bytes(&s3_root.join(BUCKET).join(REPLICA_PATH)),
        final_txid: format!("{:016x}", last.txid),
        stream_txs: txs,
        tt_expected: tt_answer.checksum(),
        gen_secs: started.elapsed().as_secs_f64(),
        generated_at,
    })
}
