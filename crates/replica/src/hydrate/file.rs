//! The hydration file: its lock, its sidecar and the page reads and writes on it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::lock_api::ArcRwLockReadGuard;
use parking_lot::{Mutex, RawRwLock, RwLock};

use crate::error::{Error, Result};
use crate::hydrate::options::{HydrationOptions, HydrationState, HydrationStatus};
use crate::index::version::Version;
use crate::supervise::{Health, Task};

pub(crate) struct Hydrator {
    pub(super) path: PathBuf,
    sidecar: PathBuf,
    temp: bool,
    pub(super) file: Option<File>,
    pub(super) lock: Arc<RwLock<()>>,
    pub(super) txid: AtomicU64,
    pub(super) page_size: AtomicU32,
    pub(super) state: Mutex<HydrationState>,
    pub(super) done: AtomicU64,
    pub(super) total: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) files: AtomicU64,
    pub(super) reads: AtomicU64,
    pub(super) url: String,
    pub(super) closed: std::sync::atomic::AtomicBool,
    pub(super) close_signal: tokio::sync::Notify,
    /// The supervised download loop.
    pub(super) health: Arc<Health>,
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

pub(super) fn local_err(path: &FsPath, what: &str, e: std::io::Error) -> Error {
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
    pub(super) fn open(opts: &HydrationOptions, url: &str) -> Hydrator {
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
    pub(super) fn close(&self) {
        self.closed.store(true, Relaxed);
        self.close_signal.notify_waiters();
    }

    pub(super) fn check_open(&self) -> Result<()> {
        if self.closed.load(Relaxed) {
            return Err(Error::Config("hydration closed".into()));
        }
        Ok(())
    }

    pub(super) fn fail(&self, why: String) {
        tracing::warn!(path = %self.path.display(), "hydration stopped, reads stay remote: {why}");
        self.txid.store(0, Relaxed);
        *self.state.lock() = HydrationState::Failed(why);
    }

    pub(super) fn status(&self) -> HydrationStatus {
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
    pub(super) fn reader(self: &Arc<Self>, version: &Version) -> Option<LocalReader> {
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

    pub(super) fn file(&self) -> Result<&File> {
        self.file.as_ref().ok_or_else(|| {
            Error::Config(format!(
                "hydration file {} is not open",
                self.path.display()
            ))
        })
    }

    pub(super) fn write_page(&self, pgno: u32, page: &[u8]) -> Result<()> {
        let offset = u64::from(pgno - 1) * page.len() as u64;
        self.file()?
            .write_all_at(page, offset)
            .map_err(|e| local_err(&self.path, "write", e))
    }

    pub(super) fn finish_file(&self, commit: u32, page_size: u32) -> Result<()> {
        let f = self.file()?;
        f.set_len(u64::from(commit) * u64::from(page_size))
            .map_err(|e| local_err(&self.path, "truncate", e))?;
        f.sync_all().map_err(|e| local_err(&self.path, "fsync", e))
    }

    pub(super) fn clear_sidecar(&self) -> Result<()> {
        match std::fs::remove_file(&self.sidecar) {
            Ok(()) => sync_dir(&self.sidecar),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(local_err(&self.sidecar, "remove", e)),
        }
    }

    pub(super) fn write_sidecar(&self, s: &Sidecar) -> Result<()> {
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

    pub(super) fn read_sidecar(&self) -> Option<Sidecar> {
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

    pub(super) fn mark_ready(&self, s: &Sidecar) {
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
pub(super) struct Sidecar {
    pub(super) txid: u64,
    /// Creation time of the LTX file that ended this state: two histories that reach the same
    /// TXID (a replaced replica) differ here, where the TXID alone would match.
    pub(super) ts: i64,
    pub(super) page_size: u32,
    pub(super) commit: u32,
    pub(super) url: String,
}
