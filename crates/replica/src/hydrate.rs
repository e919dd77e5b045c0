//! Hydration: the whole database pulled to a local file in the background, after which reads
//! at the file's TXID are plain file I/O.
//!
//! - **Only what is needed.** The first build downloads, per LTX file of the current version,
//!   only the frames of pages still live in that version (adjacent frames coalesced into large
//!   ranged GETs), so the bytes fetched are about the compressed size of the database, and each
//!   page is written once.
//! - **Never split a transaction.** The file holds exactly one TXID. A read transaction uses
//!   it only when its pinned version has that TXID, and holds a shared lock on it until the
//!   transaction ends; catching up takes the lock exclusively, so pages never change under a
//!   reader. While a catch-up waits, new transactions read remotely instead of waiting.
//! - **Crash safety.** A sidecar `<path>.litestream` records the TXID; it is removed before
//!   the file is modified and rewritten (tmp + fsync + rename + fsync dir) after the file is
//!   fsynced, so a crash never leaves a file that looks complete.
//! - **Resume.** With an explicit path, file and sidecar stay after close; the next open
//!   validates them against the replica and catches up with whole-file reads, or rebuilds and
//!   logs why.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use parking_lot::lock_api::ArcRwLockReadGuard;
use parking_lot::{Mutex, RawRwLock, RwLock};

use crate::error::{Error, Result};
use crate::index::loc::{coalesce, run_span, Run};
use crate::index::meta::FileMeta;
use crate::index::plan::{cheapest_chain, FileInfo};
use crate::index::version::Version;
use crate::replica::Replica;
use crate::supervise::{self, Health, Task};

/// Frames closer than this are fetched in one range (the gap is downloaded and discarded).
const COALESCE_GAP: u64 = 64 * 1024;
/// Largest single ranged GET of the build.
const MAX_RANGE: u64 = 8 * 1024 * 1024;
/// Ranged GETs in flight during a build.
const PARALLEL_GETS: usize = 6;

/// How to hydrate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HydrationOptions {
    /// Where the file lives; `None` is a temporary file deleted when the replica closes.
    pub path: Option<PathBuf>,
}

/// Where hydration stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HydrationState {
    /// Downloading the database.
    Building,
    /// The file is complete at `txid` and serves reads at that TXID.
    Ready,
    /// Another process holds the file; this one reads remotely.
    Busy,
    /// Hydration stopped; reads stay remote.
    Failed(String),
}

/// A snapshot of the hydrator's progress, for PRAGMAs and stats.
#[derive(Clone, Debug)]
pub struct HydrationStatus {
    /// State.
    pub state: HydrationState,
    /// The local file.
    pub path: PathBuf,
    /// TXID the file holds (0 while building).
    pub txid: u64,
    /// Percent of pages written in the current build (100 when ready).
    pub progress: f64,
    /// Bytes downloaded by hydration.
    pub bytes: u64,
    /// LTX files (or ranges of them) fetched by hydration.
    pub files: u64,
    /// Pages read from the file by connections.
    pub reads: u64,
}

pub(crate) struct Hydrator {
    path: PathBuf,
    sidecar: PathBuf,
    temp: bool,
    file: Option<File>,
    lock: Arc<RwLock<()>>,
    txid: AtomicU64,
    page_size: AtomicU32,
    state: Mutex<HydrationState>,
    done: AtomicU64,
    total: AtomicU64,
    bytes: AtomicU64,
    files: AtomicU64,
    reads: AtomicU64,
    url: String,
    closed: std::sync::atomic::AtomicBool,
    close_signal: tokio::sync::Notify,
    /// The supervised download loop.
    pub(crate) health: Arc<Health>,
}

/// A read transaction's hold on the hydrated file.
pub struct LocalReader {
    _guard: ArcRwLockReadGuard<RawRwLock, ()>,
    hyd: Arc<Hydrator>,
}

impl LocalReader {
    /// Reads page `pgno` from the file into `out` (one page).
    pub fn read_page(&self, pgno: u32, out: &mut [u8]) -> Result<()> {
        let file = self
            .hyd
            .file
            .as_ref()
            .ok_or_else(|| Error::Inconsistent("hydration file is closed".into()))?;
        self.hyd.reads.fetch_add(1, Relaxed);
        let offset = u64::from(pgno - 1) * out.len() as u64;
        let mut done = 0;
        while done < out.len() {
            match file.read_at(&mut out[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(local_err(&self.hyd.path, "read", e)),
            }
        }
        out[done..].fill(0);
        Ok(())
    }
}

fn local_err(path: &FsPath, what: &str, e: std::io::Error) -> Error {
    Error::Config(format!("hydration file {}: {what}: {e}", path.display()))
}

/// Hydration files this process holds (or is closing), so a reopen in the same process waits
/// for the closing hydrator to let go instead of reporting the file busy.
static HELD: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

impl Drop for Hydrator {
    fn drop(&mut self) {
        if self.file.is_some() {
            HELD.lock().retain(|p| *p != self.path);
        }
        if self.temp {
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_file(&self.sidecar);
        }
    }
}

fn temp_path() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "litestream-hydration-{}-{}.db",
        std::process::id(),
        N.fetch_add(1, Relaxed)
    ))
}

impl Hydrator {
    fn open(opts: &HydrationOptions, url: &str) -> Hydrator {
        let (path, temp) = match &opts.path {
            Some(p) => (p.clone(), false),
            None => (temp_path(), true),
        };
        let mut sidecar = path.clone().into_os_string();
        sidecar.push(".litestream");
        let mut h = Hydrator {
            sidecar: PathBuf::from(sidecar),
            temp,
            file: None,
            lock: Arc::new(RwLock::new(())),
            txid: AtomicU64::new(0),
            page_size: AtomicU32::new(0),
            state: Mutex::new(HydrationState::Building),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            files: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            url: url.to_string(),
            closed: std::sync::atomic::AtomicBool::new(false),
            close_signal: tokio::sync::Notify::new(),
            health: Arc::new(Health::new(Task::Hydrator)),
            path,
        };
        // A hydrator of this process that is closing this path lets go within moments.
        let start = std::time::Instant::now();
        while HELD.lock().contains(&h.path) && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&h.path);
        match opened {
            Ok(f) => match f.try_lock() {
                Ok(()) => {
                    HELD.lock().push(h.path.clone());
                    h.file = Some(f);
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    tracing::warn!(path = %h.path.display(), "hydration file is locked by another process; this process reads remotely");
                    *h.state.lock() = HydrationState::Busy;
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    h.fail(format!("cannot lock {}: {e}", h.path.display()))
                }
            },
            Err(e) => h.fail(format!("cannot open {}: {e}", h.path.display())),
        }
        h
    }

    /// Stops hydrating: the background task ends and drops the file (and its lock) soon after.
    pub(crate) fn close(&self) {
        self.closed.store(true, Relaxed);
        self.close_signal.notify_waiters();
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Relaxed) {
            return Err(Error::Config("hydration closed".into()));
        }
        Ok(())
    }

    fn fail(&self, why: String) {
        tracing::warn!(path = %self.path.display(), "hydration stopped, reads stay remote: {why}");
        self.txid.store(0, Relaxed);
        *self.state.lock() = HydrationState::Failed(why);
    }

    pub(crate) fn status(&self) -> HydrationStatus {
        let state = self.state.lock().clone();
        let total = self.total.load(Relaxed);
        let progress = match state {
            HydrationState::Ready => 100.0,
            _ if total == 0 => 0.0,
            _ => (self.done.load(Relaxed) as f64 * 100.0 / total as f64).min(99.9),
        };
        HydrationStatus {
            state,
            path: self.path.clone(),
            txid: self.txid.load(Relaxed),
            progress,
            bytes: self.bytes.load(Relaxed),
            files: self.files.load(Relaxed),
            reads: self.reads.load(Relaxed),
        }
    }

    /// A read hold on the file if it holds exactly `version`'s TXID and no catch-up is pending.
    pub(crate) fn reader(self: &Arc<Self>, version: &Version) -> Option<LocalReader> {
        if self.txid.load(Relaxed) != version.txid()
            || version.page_size() != self.page_size.load(Relaxed)
            || version.has_local_changes()
        {
            return None;
        }
        let guard = self.lock.try_read_arc()?;
        // The TXID only changes under the write lock, so it is stable while we hold the guard.
        (self.txid.load(Relaxed) == version.txid()).then(|| LocalReader {
            _guard: guard,
            hyd: self.clone(),
        })
    }

    fn file(&self) -> Result<&File> {
        self.file.as_ref().ok_or_else(|| {
            Error::Config(format!(
                "hydration file {} is not open",
                self.path.display()
            ))
        })
    }

    fn write_page(&self, pgno: u32, page: &[u8]) -> Result<()> {
        let offset = u64::from(pgno - 1) * page.len() as u64;
        self.file()?
            .write_all_at(page, offset)
            .map_err(|e| local_err(&self.path, "write", e))
    }

    fn finish_file(&self, commit: u32, page_size: u32) -> Result<()> {
        let f = self.file()?;
        f.set_len(u64::from(commit) * u64::from(page_size))
            .map_err(|e| local_err(&self.path, "truncate", e))?;
        f.sync_all().map_err(|e| local_err(&self.path, "fsync", e))
    }

    fn clear_sidecar(&self) -> Result<()> {
        match std::fs::remove_file(&self.sidecar) {
            Ok(()) => sync_dir(&self.sidecar),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(local_err(&self.sidecar, "remove", e)),
        }
    }

    fn write_sidecar(&self, s: &Sidecar) -> Result<()> {
        let mut tmp = self.sidecar.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let text = format!(
            "txid={:016x}\nts={}\npage_size={}\ncommit={}\nurl={}\n",
            s.txid, s.ts, s.page_size, s.commit, s.url
        );
        let mut f = File::create(&tmp).map_err(|e| local_err(&tmp, "create", e))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| local_err(&tmp, "write", e))?;
        std::fs::rename(&tmp, &self.sidecar).map_err(|e| local_err(&self.sidecar, "rename", e))?;
        sync_dir(&self.sidecar)
    }

    fn read_sidecar(&self) -> Option<Sidecar> {
        let text = std::fs::read_to_string(&self.sidecar).ok()?;
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_string)
        };
        Some(Sidecar {
            txid: u64::from_str_radix(&field("txid")?, 16).ok()?,
            ts: field("ts")?.parse().ok()?,
            page_size: field("page_size")?.parse().ok()?,
            commit: field("commit")?.parse().ok()?,
            url: field("url")?,
        })
    }

    fn mark_ready(&self, s: &Sidecar) {
        self.page_size.store(s.page_size, Relaxed);
        self.txid.store(s.txid, Relaxed);
        *self.state.lock() = HydrationState::Ready;
    }
}

fn sync_dir(path: &FsPath) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(FsPath::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| local_err(dir, "fsync dir", e))
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Sidecar {
    txid: u64,
    /// Creation time of the LTX file that ended this state: two histories that reach the same
    /// TXID (a replaced replica) differ here, where the TXID alone would match.
    ts: i64,
    page_size: u32,
    commit: u32,
    url: String,
}

impl Replica {
    /// Stops hydrating when the last connection closes, releasing the file; a later open
    /// resumes from the sidecar.
    pub(crate) fn stop_hydration(&self) {
        if let Some(h) = self.hydrator.lock().take() {
            h.close();
        }
    }

    /// Starts hydrating (once per replica; later calls with other options only log).
    pub(crate) fn start_hydration(self: &Arc<Self>, opts: &HydrationOptions) {
        let mut slot = self.hydrator.lock();
        if let Some(h) = slot.as_ref() {
            if opts.path.as_ref().is_some_and(|p| *p != h.path) {
                tracing::warn!(requested = ?opts.path, active = %h.path.display(), "this replica already hydrates to another file; keeping it");
            }
            return;
        }
        let h = Arc::new(Hydrator::open(opts, self.display_url()));
        *slot = Some(h.clone());
        if h.file.is_none() {
            return;
        }
        let weak = Arc::downgrade(self);
        let on_give_up = h.clone();
        // An error ends hydration for good (reads stay remote, the status says why); a panic
        // is restarted by the supervisor, and the download resumes from its sidecar.
        supervise::spawn_then(
            h.health.clone(),
            self.display_url().to_string(),
            move || {
                let (weak, h) = (weak.clone(), h.clone());
                async move {
                    if let Err(e) = run(weak, h.clone()).await {
                        if !h.closed.load(Relaxed) {
                            h.fail(e.to_string());
                        }
                    }
                    Ok(())
                }
            },
            move |cause| on_give_up.fail(cause),
        );
    }

    /// Failures of the hydration loop so far.
    pub(crate) fn hydration_task_failures(&self) -> u64 {
        self.hydrator
            .lock()
            .as_ref()
            .map_or(0, |h| h.health.failures())
    }

    /// Hydration progress, if hydration was requested.
    pub fn hydration_status(&self) -> Option<HydrationStatus> {
        self.hydrator.lock().as_ref().map(|h| h.status())
    }

    /// A read hold on the hydrated file for a transaction pinned to `version`, when the file
    /// holds exactly that state.
    pub fn local_reader(&self, version: &Version) -> Option<LocalReader> {
        self.hydrator.lock().clone()?.reader(version)
    }
}

async fn run(weak: Weak<Replica>, hyd: Arc<Hydrator>) -> Result<()> {
    supervise::fault_point("hydrator", &hyd.url);
    let Some(r) = weak.upgrade() else {
        return Ok(());
    };
    let cur = r.current();
    let mut held = resume(&r, &hyd, &cur).await?;
    if held.is_none() {
        build(&r, &hyd, &cur).await?;
        held = Some(cur.txid());
    }
    let mut txid = held.unwrap_or_default();
    let notify = r.new_version.clone();
    let interval = r.poll_interval().max(Duration::from_millis(100));
    drop(r);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = notify.notified() => {}
            _ = hyd.close_signal.notified() => {}
        }
        if hyd.closed.load(Relaxed) {
            return Ok(());
        }
        let Some(r) = weak.upgrade() else {
            return Ok(());
        };
        let cur = r.current();
        if cur.txid() <= txid {
            continue;
        }
        match catch_up(&r, &hyd, txid, &cur).await {
            Ok(()) => txid = cur.txid(),
            Err(e) => {
                tracing::info!(error = %e, from = txid, to = cur.txid(), "hydration cannot catch up with whole files; rebuilding");
                build(&r, &hyd, &cur).await?;
                txid = cur.txid();
            }
        }
    }
}

/// Validates an existing file against the replica. Returns the TXID it holds after catching
/// up, or `None` (after logging why) when it must be rebuilt.
async fn resume(r: &Arc<Replica>, hyd: &Arc<Hydrator>, cur: &Version) -> Result<Option<u64>> {
    let Some(sc) = hyd.read_sidecar() else {
        return Ok(None);
    };
    let len = hyd.file()?.metadata().map(|m| m.len()).unwrap_or(0);
    let why = if sc.url != hyd.url {
        Some(format!("it was made from another replica ({})", sc.url))
    } else if sc.page_size != cur.page_size() {
        Some(format!(
            "its page size {} differs from the replica's {}",
            sc.page_size,
            cur.page_size()
        ))
    } else if len != u64::from(sc.commit) * u64::from(sc.page_size) {
        Some(format!(
            "its size {len} does not match the {} pages its sidecar records",
            sc.commit
        ))
    } else if sc.txid > cur.txid() {
        Some(format!(
            "the replica went backwards: the file holds TXID {:016x}, the replica ends at {:016x} (restored or replaced)",
            sc.txid,
            cur.txid()
        ))
    } else {
        None
    };
    let why = match why {
        Some(w) => Some(w),
        None if !same_history(r, &sc).await => Some(format!(
            "no file of the replica ends at TXID {:016x} with the time the file recorded; the replica was replaced",
            sc.txid
        )),
        None => None,
    };
    if let Some(why) = why {
        tracing::warn!(path = %hyd.path.display(), "rebuilding the hydration file: {why}");
        return Ok(None);
    }
    hyd.mark_ready(&sc);
    if sc.txid == cur.txid() {
        tracing::info!(path = %hyd.path.display(), txid = sc.txid, "hydration file is current");
        return Ok(Some(sc.txid));
    }
    match catch_up(r, hyd, sc.txid, cur).await {
        Ok(()) => {
            tracing::info!(path = %hyd.path.display(), from = sc.txid, to = cur.txid(), "hydration file resumed");
            Ok(Some(cur.txid()))
        }
        Err(e) => {
            tracing::warn!(path = %hyd.path.display(), error = %e, "rebuilding the hydration file: it cannot be brought forward from {:016x}", sc.txid);
            Ok(None)
        }
    }
}

/// The creation time of the file that ended `v`'s state (its last applied file).
fn state_ts(v: &Version) -> i64 {
    v.files().last().map_or(0, |f| f.header.timestamp_ms)
}

/// Whether the replica still holds the history the file was made from: a file ending at the
/// recorded TXID with the recorded creation time. Compaction copies the last input's time, so a
/// level-0 file deleted by retention is matched by the compacted file that replaced it.
async fn same_history(r: &Arc<Replica>, sc: &Sidecar) -> bool {
    let candidates: Vec<FileInfo> = r
        .catalog_files()
        .into_iter()
        .filter(|f| f.max_txid == sc.txid)
        .collect();
    for f in &candidates {
        if let Ok(ts) = r.header_ts(f).await {
            if ts == sc.ts {
                return true;
            }
        }
    }
    false
}

/// Writes every page of `v` into the file, downloading only live frames.
async fn build(r: &Arc<Replica>, hyd: &Arc<Hydrator>, v: &Version) -> Result<()> {
    let lock = hyd.lock.clone();
    let _w = tokio::task::spawn_blocking(move || lock.write_arc())
        .await
        .map_err(|e| Error::Inconsistent(format!("hydration task failed: {e}")))?;
    *hyd.state.lock() = HydrationState::Building;
    hyd.txid.store(0, Relaxed);
    hyd.clear_sidecar()?;
    let page_size = v.page_size();
    hyd.file()?
        .set_len(0)
        .map_err(|e| local_err(&hyd.path, "truncate", e))?;
    // Group live pages by the file holding them, in file order.
    let mut by_file: Vec<Run> = vec![Vec::new(); v.files().len()];
    for pgno in 1..=v.commit() {
        if let Some(loc) = v.raw_loc(pgno) {
            by_file[loc.file as usize].push((pgno, loc));
        }
    }
    let total: usize = by_file.iter().map(Vec::len).sum();
    hyd.total.store(total as u64, Relaxed);
    hyd.done.store(0, Relaxed);
    let mut jobs: Vec<(Arc<FileMeta>, Run)> = Vec::new();
    for (file_no, mut pages) in by_file.into_iter().enumerate() {
        pages.sort_by_key(|(_, l)| l.offset);
        let meta = &v.files()[file_no];
        jobs.extend(
            coalesce(pages, COALESCE_GAP, MAX_RANGE)
                .into_iter()
                .map(|run| (meta.clone(), run)),
        );
    }
    futures::stream::iter(jobs.into_iter().map(|(meta, run)| {
        let remote = r.remote().clone();
        let hyd = hyd.clone();
        async move {
            hyd.check_open()?;
            let span = run_span(&run);
            let base = span.start;
            let bytes = remote.get_range(&meta.path, span).await?;
            hyd.bytes.fetch_add(bytes.len() as u64, Relaxed);
            hyd.files.fetch_add(1, Relaxed);
            tokio::task::spawn_blocking(move || {
                let mut result = Ok(());
                meta.decode_run(&bytes, base, &run, page_size, |pgno, _, page| {
                    if result.is_ok() {
                        result = hyd.write_page(pgno, &page);
                        hyd.done.fetch_add(1, Relaxed);
                    }
                })?;
                result
            })
            .await
            .map_err(|e| Error::Inconsistent(format!("hydration task failed: {e}")))?
        }
    }))
    .buffer_unordered(PARALLEL_GETS)
    .try_collect::<Vec<()>>()
    .await?;
    hyd.finish_file(v.commit(), page_size)?;
    let sc = Sidecar {
        txid: v.txid(),
        ts: state_ts(v),
        page_size,
        commit: v.commit(),
        url: hyd.url.clone(),
    };
    hyd.write_sidecar(&sc)?;
    hyd.mark_ready(&sc);
    tracing::info!(path = %hyd.path.display(), txid = v.txid(), bytes = hyd.bytes.load(Relaxed), "hydration complete");
    Ok(())
}

/// Brings the file from `from` to exactly `cur` by applying whole LTX files (checksum-verified)
/// under the exclusive lock, so no read transaction sees a half-applied state.
async fn catch_up(r: &Arc<Replica>, hyd: &Arc<Hydrator>, from: u64, cur: &Version) -> Result<()> {
    let files: Vec<FileInfo> = r.catalog_files();
    let Some(chain) = cheapest_chain(&files, from, cur.txid()) else {
        return Err(Error::TargetUnavailable(format!(
            "no chain of files leads from {from:016x} to {:016x}",
            cur.txid()
        )));
    };
    let metas = r.metas_for_plan(&chain).await?;
    let decoded = futures::future::try_join_all(metas.iter().map(|m| {
        let remote = r.remote().clone();
        let hyd = hyd.clone();
        async move {
            let bytes = remote.get_whole(&m.path).await?;
            hyd.bytes.fetch_add(bytes.len() as u64, Relaxed);
            hyd.files.fetch_add(1, Relaxed);
            ltx::decode_file(&bytes).map_err(|source| Error::Corrupt {
                key: m.path.to_string(),
                source,
            })
        }
    }))
    .await?;
    let commit = metas.last().map_or(cur.commit(), |m| m.header.commit);
    let ts = metas
        .last()
        .map_or(state_ts(cur), |m| m.header.timestamp_ms);
    let page_size = cur.page_size();
    let lock = hyd.lock.clone();
    let hyd2 = hyd.clone();
    let txid = cur.txid();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let _w = lock.write_arc();
        hyd2.clear_sidecar()?;
        hyd2.txid.store(0, Relaxed);
        for file in decoded {
            for (pgno, page) in file.pages {
                if pgno <= commit {
                    hyd2.write_page(pgno, &page)?;
                }
            }
        }
        hyd2.finish_file(commit, page_size)?;
        let sc = Sidecar {
            txid,
            ts,
            page_size,
            commit,
            url: hyd2.url.clone(),
        };
        hyd2.write_sidecar(&sc)?;
        hyd2.mark_ready(&sc);
        Ok(())
    })
    .await
    .map_err(|e| Error::Inconsistent(format!("hydration task failed: {e}")))?
}
