//! A replica opened for reading: its catalog of LTX files, the current version, the shared page
//! cache, and the poller that follows new files.

use futures::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use quick_cache::sync::{Cache, GuardResult};

use crate::error::{Error, Result};
use crate::hydrate::{HydrationOptions, Hydrator};
use crate::index::loc::{coalesce, run_span, PageLoc, Run};
use crate::index::meta::{self, FileMeta};
use crate::index::plan::{extend_chain, restore_plan, FileInfo, PlanTarget};
use crate::index::version::Version;
use crate::runtime;
use crate::stats::{Stats, StatsSnapshot};
use crate::store::layout::layout_for_url;
use crate::store::layout::{Layout, SNAPSHOT_LEVEL};
use crate::store::listing::{file_info, list_all, FileKey};
use crate::store::location;
use crate::store::remote::Remote;
use crate::supervise::{self, Health, Task};
use crate::target::Target;
use crate::write::compact::Compactor;
use crate::write::writer::{WriteOptions, WriteStatus, Writer};

/// Default poll interval, as in the Go VFS.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Default page-cache budget in bytes.
pub const DEFAULT_CACHE_SIZE: u64 = 64 * 1024 * 1024;
/// A full relisting (to notice compactions and retention) runs at most this often.
const REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Past this many files, a version is rebuilt from a fresh plan so memory stays bounded.
const MAX_FILES_PER_VERSION: usize = 64;
/// A replica nobody has used for this long is dropped with its cache and poller.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Read-ahead never asks for more than this many pages, or this many bytes, in one GET.
const MAX_READAHEAD_PAGES: u32 = 256;
const MAX_READAHEAD_BYTES: u64 = 4 * 1024 * 1024;
/// Most pages one `prefetch` call takes.
const MAX_PREFETCH_PAGES: usize = 1024;
/// Wanted frames this close together in a file share one GET: the bytes between them cost less
/// than another round trip. Pages of one table in a database grown by interleaved writes sit a
/// few frames apart.
const PREFETCH_GAP: u64 = 64 * 1024;
/// Prefetch GETs in flight per replica, so a long scan cannot flood the store.
const PREFETCH_PARALLEL: usize = 8;

/// How to open a replica.
#[derive(Clone, Debug)]
pub struct ReplicaOptions {
    /// Litestream replica URL.
    pub url: String,
    /// How often to look for new LTX files; zero disables polling.
    pub poll_interval: Duration,
    /// Page-cache budget in bytes.
    pub cache_size: u64,
    /// Pull the whole database to a local file in the background.
    pub hydration: Option<HydrationOptions>,
    /// Fetch every LTX file whole once, and check its CRC-64 file checksum, before serving any
    /// page from it. Files read by range are otherwise unverifiable: the format has no per-page
    /// checksum.
    pub verify: bool,
    /// Write mode: accept commits, buffer them durably, upload them.
    pub write: Option<WriteOptions>,
}

impl ReplicaOptions {
    /// Options with the defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        ReplicaOptions {
            url: url.into(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            cache_size: DEFAULT_CACHE_SIZE,
            hydration: None,
            verify: false,
            write: None,
        }
    }
}

#[derive(Clone)]
struct PageWeighter;

impl quick_cache::Weighter<(u64, u64), Bytes> for PageWeighter {
    fn weight(&self, _key: &(u64, u64), val: &Bytes) -> u64 {
        // Count the allocation and the cache's own entry overhead, so the budget is honest.
        val.len() as u64 + 64
    }
}

type PageCache = Cache<(u64, u64), Bytes, PageWeighter>;

#[derive(Default)]
struct Catalog {
    files: BTreeMap<FileKey, FileInfo>,
    metas: HashMap<FileKey, Arc<FileMeta>>,
    header_ts: HashMap<FileKey, i64>,
}

/// Sequential-access detector of one connection: consecutive misses double the read-ahead window.
#[derive(Debug, Default)]
pub struct ReadAhead {
    next: u32,
    window: u32,
}

/// An open replica, shared by every connection of the process that names the same URL.
pub struct Replica {
    remote: Remote,
    opts: ReplicaOptions,
    layout: Layout,
    catalog: Mutex<Catalog>,
    current: RwLock<Arc<Version>>,
    cache: PageCache,
    next_id: AtomicU64,
    last_poll_ok: Mutex<Option<Instant>>,
    last_refresh: Mutex<Instant>,
    last_error: Mutex<Option<String>>,
    sessions: AtomicUsize,
    idle_since: Mutex<Option<Instant>>,
    poll_lock: tokio::sync::Mutex<()>,
    pub(crate) hydrator: Mutex<Option<Arc<Hydrator>>>,
    /// Woken whenever a newer version is published.
    pub(crate) new_version: Arc<tokio::sync::Notify>,
    prefetch_slots: Arc<tokio::sync::Semaphore>,
    /// Write mode, attached at open or switched on and off at run time.
    writer: RwLock<Option<Arc<Writer>>>,
    /// Serializes attaching and detaching a writer.
    attach: Mutex<()>,
    /// The supervised poller.
    poller: Arc<Health>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("url", &self.remote.display)
            .finish_non_exhaustive()
    }
}

static REGISTRY: Mutex<Option<HashMap<String, Arc<Replica>>>> = Mutex::new(None);

/// A connection's hold on a shared replica. Dropping it lets an idle replica be released.
#[derive(Debug)]
pub struct Session {
    replica: Arc<Replica>,
}

impl std::ops::Deref for Session {
    type Target = Arc<Replica>;
    fn deref(&self) -> &Arc<Replica> {
        &self.replica
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.replica.sessions.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.replica.idle_since.lock() = Some(Instant::now());
            self.replica.stop_hydration();
            self.replica.flush_on_close();
        }
    }
}

/// Opens the replica at `opts.url`, or joins the one this process already has open. Blocks
/// until the newest state's page index is built, or fails with a clear error.
pub fn open(opts: &ReplicaOptions) -> Result<Session> {
    let key = opts.url.trim().to_string();
    // The session is counted under the registry lock, in the same critical section that finds
    // or inserts the replica: `release_if_idle` takes that lock to drop an idle replica, so it
    // can never drop one a session is joining (which would leave it without a poller).
    let joined = {
        let mut reg = REGISTRY.lock();
        reg.get_or_insert_with(HashMap::new)
            .get(&key)
            .map(|r| r.join_session())
    };
    let replica = match joined {
        Some(r) => r,
        None => {
            let fresh = runtime::block_on(Replica::connect(opts.clone()))?;
            let mut reg = REGISTRY.lock();
            let map = reg.get_or_insert_with(HashMap::new);
            // Another thread may have opened the same URL meanwhile: keep the first one.
            match map.get(&key) {
                Some(r) => r.join_session(),
                None => {
                    map.insert(key, fresh.clone());
                    Replica::spawn_poller(&fresh);
                    fresh.join_session()
                }
            }
        }
    };
    let session = Session { replica };
    if let Some(w) = &opts.write {
        session.attach_writer(w)?;
    } else if let Some(h) = &opts.hydration {
        if session.writer().is_none() {
            session.start_hydration(h);
        }
    }
    Ok(session)
}

impl Replica {
    /// Counts one more session. Called with the registry lock held (see [`open`]).
    fn join_session(self: &Arc<Self>) -> Arc<Replica> {
        self.sessions.fetch_add(1, Ordering::AcqRel);
        *self.idle_since.lock() = None;
        self.clone()
    }

    async fn connect(opts: ReplicaOptions) -> Result<Arc<Replica>> {
        let loc = location::connect_with(&opts.url, &location::process_env, opts.write.is_some())?;
        let remote = Remote::new(loc);
        let listing = list_all(&remote, &HashMap::new()).await?;
        let layout = match listing.layout {
            Some(l) => l,
            // A writer may start a new database on an empty replica.
            None if opts.write.is_some() => layout_for_url(&opts.url),
            None => {
                return Err(Error::Empty {
                    url: remote.display.clone(),
                })
            }
        };
        let estimated_pages = (opts.cache_size / 4096).max(16) as usize;
        let r = Replica {
            layout,
            cache: Cache::with_weighter(estimated_pages, opts.cache_size.max(1), PageWeighter),
            catalog: Mutex::new(Catalog {
                files: listing
                    .files
                    .iter()
                    .map(|f| (FileKey::from(f), f.clone()))
                    .collect(),
                ..Catalog::default()
            }),
            current: RwLock::new(Arc::new(Version::empty(4096))),
            next_id: AtomicU64::new(1),
            last_poll_ok: Mutex::new(Some(Instant::now())),
            last_refresh: Mutex::new(Instant::now()),
            last_error: Mutex::new(None),
            sessions: AtomicUsize::new(0),
            idle_since: Mutex::new(None),
            poll_lock: tokio::sync::Mutex::new(()),
            hydrator: Mutex::new(None),
            new_version: Arc::new(tokio::sync::Notify::new()),
            prefetch_slots: Arc::new(tokio::sync::Semaphore::new(PREFETCH_PARALLEL)),
            writer: RwLock::new(None),
            attach: Mutex::new(()),
            poller: Arc::new(Health::new(Task::Poller)),
            remote,
            opts,
        };
        if !listing.files.is_empty() {
            let plan = restore_plan(&listing.files, PlanTarget::Latest)?;
            let metas = r.metas_for(&plan).await?;
            *r.current.write() = Arc::new(Version::build(&metas)?);
        }
        tracing::info!(url = %r.remote.display, txid = r.current().txid(), files = r.current().files().len(), "replica opened");
        Ok(Arc::new(r))
    }

    /// The URL as shown in messages.
    pub fn display_url(&self) -> &str {
        &self.remote.display
    }

    /// The newest version known.
    pub fn current(&self) -> Arc<Version> {
        self.current.read().clone()
    }

    /// Seconds since the last successful poll (or the open), if any.
    pub fn lag(&self) -> Option<Duration> {
        self.last_poll_ok.lock().map(|t| t.elapsed())
    }

    /// The last poll error, if the last poll failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }

    /// Request and cache counters.
    pub fn stats(&self) -> StatsSnapshot {
        let mut s = self.remote.stats.snapshot();
        s.task_failures = self.poller.failures()
            + self.writer().map_or(0, |w| w.task_failures())
            + self.hydration_task_failures();
        s
    }

    /// `Err` naming the cause once the poller, which keeps the latest state moving, was given
    /// up. A writer's reads do not depend on it (its commits are the latest state; its own
    /// loops are checked before each write, see [`Replica::check_writable`]), and neither do
    /// past states (time travel).
    pub fn check_health(&self) -> Result<()> {
        if self.writer().is_some() {
            return Ok(());
        }
        self.poller.check()
    }

    /// Bytes held by the page cache.
    pub fn cache_weight(&self) -> u64 {
        self.cache.weight()
    }

    /// The version at `target`: the current one for `Latest`, else built from a fresh listing.
    /// Pages already cached stay cached, since cache keys name immutable files.
    pub fn version_at(self: &Arc<Self>, target: Target) -> Result<Arc<Version>> {
        let cur = self.current();
        match target {
            Target::Latest => Ok(cur),
            Target::Txid(t) if t == cur.txid() && !cur.has_local_changes() => Ok(cur),
            _ => self.build_blocking(target).map(Arc::new),
        }
    }

    /// Reads page `pgno` of `version` into `out` (exactly one page).
    pub fn read_page(
        self: &Arc<Self>,
        version: &Version,
        pgno: u32,
        out: &mut [u8],
        ra: &mut ReadAhead,
    ) -> Result<()> {
        match self.read_page_from(version, pgno, out, ra) {
            Err(Error::NotFound { key }) => {
                // The file was deleted under us (retention after compaction). Rebuild the same
                // TXID from the files that exist now and read from there.
                tracing::info!(%key, txid = version.txid(), "file gone; re-planning this version");
                let again = self.build_blocking(Target::Txid(version.txid())).map_err(|e| match e {
                    Error::TargetUnavailable(m) => Error::TargetUnavailable(format!(
                        "the state this read transaction started on was compacted away ({m}); retry the transaction"
                    )),
                    e => e,
                })?;
                self.read_page_from(&again, pgno, out, ra)
            }
            r => r,
        }
    }

    /// Builds the version at `target` from a fresh listing, even when it is the current TXID.
    fn build_blocking(self: &Arc<Self>, target: Target) -> Result<Version> {
        let me = self.clone();
        runtime::block_on(async move { me.build_at(target).await })
    }

    fn read_page_from(
        self: &Arc<Self>,
        version: &Version,
        pgno: u32,
        out: &mut [u8],
        ra: &mut ReadAhead,
    ) -> Result<()> {
        let page_size = version.page_size() as usize;
        if out.len() != page_size {
            return Err(Error::Inconsistent(format!(
                "page read of {} bytes, page size is {page_size}",
                out.len()
            )));
        }
        if let Some(local) = version.local_page(pgno) {
            match local {
                Some(page) => out.copy_from_slice(page),
                None => out.fill(0),
            }
            return Ok(());
        }
        let Some((file, loc)) = version.loc(pgno) else {
            if pgno == ltx::lock_pgno(version.page_size()) || pgno > version.commit() {
                out.fill(0);
                return Ok(());
            }
            return Err(Error::Inconsistent(format!(
                "page {pgno} is missing from every file of the plan at TXID {:016x}",
                version.txid()
            )));
        };
        let key = (file.id, loc.offset);
        let mut guard = match self.cache.get_value_or_guard(&key, None) {
            GuardResult::Value(page) => {
                Stats::add(&self.remote.stats.cache_hits, 1);
                out.copy_from_slice(&page);
                return Ok(());
            }
            GuardResult::Guard(g) => Some(g),
            GuardResult::Timeout => unreachable!("no timeout was given"),
        };
        Stats::add(&self.remote.stats.cache_misses, 1);
        // Only misses move the detector: hits on interior pages (or on pages fetched ahead)
        // between the leaves of a scan must not reset it. A short forward jump still counts as
        // sequential: the pages skipped were hits, or a few pages of another b-tree.
        let sequential = pgno >= ra.next && pgno - ra.next <= ra.window;
        ra.window = if sequential {
            (ra.window * 2).clamp(2, MAX_READAHEAD_PAGES)
        } else {
            1
        };
        let run = self.readahead_run(version, pgno, file, loc, ra.window);
        ra.next = pgno + run.len() as u32;
        let span = run_span(&run);
        let first = span.start;
        let remote = self.remote.clone();
        let path = file.path.clone();
        let bytes = runtime::block_on(async move { remote.get_range(&path, span).await })?;
        file.decode_run(
            &bytes,
            first,
            &run,
            version.page_size(),
            |p, offset, page| {
                if p == pgno {
                    out.copy_from_slice(&page);
                    // Inserting through the guard wakes every reader waiting for this page.
                    if let Some(g) = guard.take() {
                        let _ = g.insert(Bytes::from(page));
                    }
                } else {
                    self.cache.insert((file.id, offset), Bytes::from(page));
                }
            },
        )?;
        Ok(())
    }

    /// Starts fetching `pgnos` of `version` into the cache in the background and returns at
    /// once: the caller expects to read them soon (a scan of a B-tree level, whose pages need not
    /// be next to each other). Pages cached or already being fetched are skipped; the rest are
    /// grouped per file into GETs that span gaps up to `PREFETCH_GAP`. Failures are only
    /// logged: the read that needs the page fetches it itself.
    pub fn prefetch(self: &Arc<Self>, version: &Version, pgnos: &[u32]) {
        let mut by_file: HashMap<u64, (Arc<FileMeta>, Run)> = HashMap::new();
        for &p in pgnos.iter().take(MAX_PREFETCH_PAGES) {
            if let Some((file, loc)) = version.loc(p) {
                if !self.cache.contains_key(&(file.id, loc.offset)) {
                    by_file
                        .entry(file.id)
                        .or_insert_with(|| (file.clone(), Vec::new()))
                        .1
                        .push((p, loc));
                }
            }
        }
        let page_size = version.page_size();
        // Prefetching is an optimisation: without a runtime, reads simply fetch on demand.
        let Ok(rt) = runtime::handle() else { return };
        for (file, mut pages) in by_file.into_values() {
            pages.sort_by_key(|(_, l)| l.offset);
            for span in coalesce(pages, PREFETCH_GAP, MAX_READAHEAD_BYTES) {
                let me = self.clone();
                let file = file.clone();
                rt.spawn(async move {
                    if let Err(e) = me.prefetch_span(&file, span, page_size).await {
                        tracing::debug!(key = %file.path, error = %e, "prefetch failed");
                    }
                });
            }
        }
    }

    async fn prefetch_span(&self, file: &FileMeta, span: Run, page_size: u32) -> Result<()> {
        let _slot = self.prefetch_slots.acquire().await;
        // Claim the pages no reader has cached or claimed meanwhile; a reader arriving later
        // waits on the claim instead of fetching the page again.
        let mut claims = HashMap::new();
        let mut run = Vec::new();
        for (p, l) in span {
            if let GuardResult::Guard(g) = self
                .cache
                .get_value_or_guard(&(file.id, l.offset), Some(Duration::ZERO))
            {
                claims.insert(l.offset, g);
                run.push((p, l));
            }
        }
        if run.is_empty() {
            return Ok(());
        }
        let range = run_span(&run);
        let start = range.start;
        let bytes = self.remote.get_range(&file.path, range).await?;
        Stats::add(&self.remote.stats.prefetched_pages, run.len() as u64);
        file.decode_run(&bytes, start, &run, page_size, |_, offset, page| {
            if let Some(g) = claims.remove(&offset) {
                let _ = g.insert(Bytes::from(page));
            }
        })
    }

    /// The pages to fetch with `pgno`: following pages stored right after it in the same file,
    /// not cached yet, up to `window`.
    fn readahead_run(
        &self,
        version: &Version,
        pgno: u32,
        file: &Arc<FileMeta>,
        loc: PageLoc,
        window: u32,
    ) -> Vec<(u32, PageLoc)> {
        let mut run = vec![(pgno, loc)];
        let mut end = loc.offset + u64::from(loc.size);
        for p in pgno + 1..pgno.saturating_add(window) {
            match version.loc(p) {
                Some((f, l))
                    if f.id == file.id
                        && l.offset == end
                        && end - loc.offset + u64::from(l.size) <= MAX_READAHEAD_BYTES
                        && !self.cache.contains_key(&(f.id, l.offset)) =>
                {
                    end += u64::from(l.size);
                    run.push((p, l));
                }
                _ => break,
            }
        }
        run
    }

    async fn build_at(&self, target: Target) -> Result<Version> {
        let listing = {
            let ts = self.catalog.lock().header_ts.clone();
            list_all(&self.remote, &ts).await?
        };
        let mut files = listing.files;
        self.replace_catalog(&files);
        let plan_target = match target {
            Target::Latest => PlanTarget::Latest,
            Target::Txid(t) => PlanTarget::Txid(t),
            Target::Time(t) => {
                let ms = t.as_millisecond();
                self.refine_timestamps(&mut files, ms).await?;
                PlanTarget::Time(ms)
            }
        };
        let plan = restore_plan(&files, plan_target)?;
        let metas = self.metas_for(&plan).await?;
        Version::build(&metas)
    }

    /// Listings give last-modified times, which for compacted files come later than the LTX
    /// header's timestamp. For files that could extend a time-bounded chain but were modified
    /// after the target, read the 100-byte header to learn the real time. No HEAD requests.
    async fn refine_timestamps(&self, files: &mut [FileInfo], ms: i64) -> Result<()> {
        for _ in 0..8 {
            let target = PlanTarget::Time(ms);
            let snapshot_max = files
                .iter()
                .filter(|f| f.level == SNAPSHOT_LEVEL && f.created_ms <= ms)
                .map(|f| f.max_txid)
                .max()
                .unwrap_or(0);
            let reached = extend_chain(files, snapshot_max, target)
                .last()
                .map_or(snapshot_max, |f| f.max_txid);
            let known = self.catalog.lock().header_ts.clone();
            let unknown: Vec<FileInfo> = files
                .iter()
                .filter(|f| f.created_ms > ms && !known.contains_key(&FileKey::from(*f)))
                .filter(|f| {
                    if f.level == SNAPSHOT_LEVEL {
                        f.max_txid > snapshot_max
                    } else {
                        f.min_txid <= reached + 1 && f.max_txid > reached
                    }
                })
                .cloned()
                .collect();
            if unknown.is_empty() {
                return Ok(());
            }
            let heads =
                futures::future::try_join_all(unknown.iter().map(|f| self.fetch_header(f))).await?;
            let mut cat = self.catalog.lock();
            for (f, h) in unknown.iter().zip(heads) {
                cat.header_ts.insert(FileKey::from(f), h.timestamp_ms);
            }
            for f in files.iter_mut() {
                if let Some(ts) = cat.header_ts.get(&FileKey::from(&*f)) {
                    f.created_ms = *ts;
                }
            }
        }
        Ok(())
    }

    /// The 100-byte header of `f` (one ranged GET; no HEAD request).
    async fn fetch_header(&self, f: &FileInfo) -> Result<ltx::Header> {
        let path = self
            .layout
            .file_key(&self.remote.root, f.level, f.min_txid, f.max_txid);
        let b = self
            .remote
            .get_range(&path, 0..ltx::HEADER_SIZE as u64)
            .await?;
        ltx::Header::decode(&b).map_err(|source| Error::Corrupt {
            key: path.to_string(),
            source,
        })
    }

    /// The header timestamp of `f`, from what is already known or from its header.
    pub(crate) async fn header_ts(&self, f: &FileInfo) -> Result<i64> {
        if let Some(ts) = self.catalog.lock().header_ts.get(&FileKey::from(f)) {
            return Ok(*ts);
        }
        let ts = self.fetch_header(f).await?.timestamp_ms;
        self.catalog.lock().header_ts.insert(FileKey::from(f), ts);
        Ok(ts)
    }

    /// Header and index of each file of `plan`, loading the missing ones in parallel.
    async fn metas_for(&self, plan: &[FileInfo]) -> Result<Vec<Arc<FileMeta>>> {
        let missing: Vec<&FileInfo> = {
            let cat = self.catalog.lock();
            plan.iter()
                .filter(|f| !cat.metas.contains_key(&FileKey::from(*f)))
                .collect()
        };
        // Verification holds each file in memory while it is checked: two at a time bounds that.
        let parallel = if self.opts.verify { 2 } else { 64 };
        // Collected first: a closure inside the stream type trips the compiler's Send check.
        let loads: Vec<_> = missing
            .iter()
            .map(|f| {
                let path = self
                    .layout
                    .file_key(&self.remote.root, f.level, f.min_txid, f.max_txid);
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                meta::load(&self.remote, f, path, id, self.opts.verify)
            })
            .collect();
        let loaded: Vec<meta::Loaded> = futures::stream::iter(loads)
            .buffered(parallel)
            .try_collect()
            .await?;
        let mut cat = self.catalog.lock();
        for l in loaded {
            for (offset, page) in l.pages {
                self.cache.insert((l.meta.id, offset), page);
            }
            cat.header_ts.insert(l.meta.key, l.meta.header.timestamp_ms);
            cat.metas.insert(l.meta.key, l.meta);
        }
        plan.iter()
            .map(|f| {
                cat.metas.get(&FileKey::from(f)).cloned().ok_or_else(|| {
                    Error::Inconsistent(format!(
                        "index of level {} file {:016x}-{:016x} vanished",
                        f.level, f.min_txid, f.max_txid
                    ))
                })
            })
            .collect()
    }

    fn replace_catalog(&self, files: &[FileInfo]) {
        let mut cat = self.catalog.lock();
        cat.files = files
            .iter()
            .map(|f| (FileKey::from(f), f.clone()))
            .collect();
        // Forget indexes of deleted files, except those the current version still uses.
        let in_use: Vec<FileKey> = self.current().files().iter().map(|f| f.key).collect();
        let Catalog {
            files,
            metas,
            header_ts,
        } = &mut *cat;
        metas.retain(|k, _| files.contains_key(k) || in_use.contains(k));
        header_ts.retain(|k, _| files.contains_key(k));
    }

    fn publish(&self, v: Version) {
        if self.writer.read().is_some() {
            return;
        }
        let mut cur = self.current.write();
        if v.txid() >= cur.txid() {
            tracing::debug!(txid = v.txid(), "new version");
            *cur = Arc::new(v);
            self.new_version.notify_waiters();
        }
    }

    /// Makes `v` the state every connection reads (write mode: the writer publishes each
    /// local commit and each upload, under its own lock, in order).
    pub(crate) fn publish_view(&self, v: Version) {
        *self.current.write() = Arc::new(v);
        self.new_version.notify_waiters();
    }

    pub(crate) fn writer(&self) -> Option<Arc<Writer>> {
        self.writer.read().clone()
    }

    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    pub(crate) fn next_file_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A file this process uploaded: its index joins the catalog and its pages the cache, so
    /// reading it back costs no request.
    pub(crate) fn adopt_uploaded(&self, info: &FileInfo, loaded: &meta::Loaded) {
        for (offset, page) in &loaded.pages {
            self.cache.insert((loaded.meta.id, *offset), page.clone());
        }
        let mut cat = self.catalog.lock();
        cat.files.insert(FileKey::from(info), info.clone());
        cat.header_ts
            .insert(loaded.meta.key, loaded.meta.header.timestamp_ms);
        cat.metas.insert(loaded.meta.key, loaded.meta.clone());
    }

    /// The newest state, planned from a fresh listing.
    pub(crate) async fn build_latest(&self) -> Result<Version> {
        self.build_at(Target::Latest).await
    }

    /// The newest TXID the replica's files reach now (one full listing); 0 when it is empty.
    pub(crate) async fn newest_txid(&self) -> Result<u64> {
        let listing = list_all(&self.remote, &HashMap::new()).await?;
        if listing.files.is_empty() {
            return Ok(0);
        }
        let plan = restore_plan(&listing.files, PlanTarget::Latest)?;
        Ok(plan.last().map_or(0, |f| f.max_txid))
    }

    /// Turns on write mode for this replica (once per process; later calls join the writer):
    /// recovers the buffer and starts the sync task. The same path serves an open in write
    /// mode and `PRAGMA litestream_write_enabled = 1` on an open connection.
    pub fn attach_writer(self: &Arc<Self>, opts: &WriteOptions) -> Result<()> {
        let _one = self.attach.lock();
        if let Some(w) = self.writer() {
            if w.sync_interval() != opts.sync_interval {
                tracing::warn!(
                    "this replica already has a writer in this process; its settings stay in force"
                );
            }
            return Ok(());
        }
        let url = self.opts.url.trim().to_string();
        let opts_compaction = opts.compaction.clone();
        // Checked before anything is recovered: a bad setting must not leave a writer running.
        Compactor::new(self.remote.clone(), self.layout, opts_compaction.clone())?;
        if self.hydrator.lock().is_some() {
            // The hydrated file holds replica states only, not local commits: readers go
            // through the writer's overlay and cache from now on.
            tracing::info!(url = %self.remote.display, "write mode: hydration stops");
            self.stop_hydration();
        }
        let base = Version::clone(&self.current());
        let me = self.clone();
        let opts = opts.clone();
        let w = runtime::block_on(async move { Writer::recover(&url, opts, base, &me).await })?;
        let w = Arc::new(w);
        self.publish_view(w.view());
        *self.writer.write() = Some(w.clone());
        Writer::spawn_sync(self, &w);
        let compactor = Compactor::new(self.remote.clone(), self.layout, opts_compaction)?;
        Writer::spawn_compaction(self, &w, compactor);
        // Commits recovered from the buffer go up now, not one interval later.
        if w.status().pending_commits > 0 {
            w.nudge();
        }
        Ok(())
    }

    /// Turns write mode off for this replica (`PRAGMA litestream_write_enabled = 0`): uploads
    /// what is pending, then, if nothing was committed meanwhile, retires the writer. Its
    /// buffer lock is released at once, its tasks stop, and the replica is followed by polling
    /// again. On an upload failure write mode stays on and the error is returned.
    pub fn detach_writer(self: &Arc<Self>) -> Result<()> {
        let _one = self.attach.lock();
        let Some(w) = self.writer() else {
            return Ok(());
        };
        let (me, up) = (self.clone(), w.clone());
        runtime::block_on(async move { up.upload(&me).await })?;
        w.retire()?;
        *self.writer.write() = None;
        // The sync task sleeps holding the writer: wake it so it sees there is none and ends.
        w.nudge();
        *self.last_poll_ok.lock() = Some(Instant::now());
        tracing::info!(url = %self.remote.display, txid = format!("{:016x}", self.current().txid()), "write mode off: following the replica again");
        Ok(())
    }

    /// Records a committed transaction (write mode): `pages` changed, `commit` pages in all.
    /// With `sync`, returns once the buffer record is on disk. Every connection reads the
    /// returned state at once.
    pub fn commit(
        self: &Arc<Self>,
        pages: Vec<(u32, Bytes)>,
        commit: u32,
        page_size: u32,
        sync: bool,
    ) -> Result<Arc<Version>> {
        let w = self.require_writer()?;
        w.commit(self, pages, commit, page_size, sync)?;
        Ok(self.current())
    }

    /// Uploads every committed transaction now; returns the replica's TXID afterwards.
    pub fn sync_now(self: &Arc<Self>) -> Result<u64> {
        let w = self.require_writer()?;
        let me = self.clone();
        runtime::block_on(async move { w.upload(&me).await })?;
        Ok(self.current().txid())
    }

    /// Whether a write transaction may start now (write mode, not fenced, uploads healthy).
    pub fn check_writable(&self) -> Result<()> {
        self.require_writer()?.check_writable()
    }

    /// The writer's state, in write mode.
    pub fn write_status(&self) -> Option<WriteStatus> {
        self.writer.read().as_ref().map(|w| w.status())
    }

    /// The state number the next local commit will have (the VFS writes it into page 1).
    pub fn next_state_no(&self) -> u32 {
        self.current().state_no().wrapping_add(1)
    }

    fn require_writer(&self) -> Result<Arc<Writer>> {
        self.writer().ok_or_else(|| {
            Error::Config("this database was opened read-only; set LITESTREAM_WRITE_ENABLED=true (or the URI parameter write_enabled=true) to write".into())
        })
    }

    /// The last connection closed: upload what is pending. A failure is logged; the commits
    /// stay in the buffer and go up at the next open.
    fn flush_on_close(self: &Arc<Self>) {
        let Some(w) = self.writer() else {
            return;
        };
        if w.status().pending_commits == 0 {
            return;
        }
        let me = self.clone();
        let limit = Duration::from_secs(30);
        let r = runtime::block_on(async move {
            match tokio::time::timeout(limit, w.upload(&me)).await {
                Ok(uploaded) => uploaded.map(|_| ()),
                Err(_) => Err(Error::Unavailable {
                    op: "upload at close",
                    key: me.remote.display.clone(),
                    elapsed: limit,
                    detail: "timed out".into(),
                }),
            }
        });
        if let Err(e) = r {
            tracing::error!(error = %e, "upload at close failed; the committed transactions stay in the write buffer and are uploaded at the next open");
        }
    }

    pub(crate) fn poll_interval(&self) -> Duration {
        self.opts.poll_interval
    }

    pub(crate) fn remote(&self) -> &Remote {
        &self.remote
    }

    /// Every file the catalog knows.
    pub(crate) fn catalog_files(&self) -> Vec<FileInfo> {
        self.catalog.lock().files.values().cloned().collect()
    }

    pub(crate) async fn metas_for_plan(&self, plan: &[FileInfo]) -> Result<Vec<Arc<FileMeta>>> {
        self.metas_for(plan).await
    }

    /// One poll: list level 0 after the current TXID (one LIST), apply what continues the chain.
    /// A writer's replica changes only through it: nothing to poll.
    async fn poll_once(&self) -> Result<()> {
        if self.writer.read().is_some() {
            return Ok(());
        }
        let _serial = self.poll_lock.lock().await;
        let cur = self.current();
        let root = &self.remote.root;
        let prefix = self.layout.level_prefix(root, 0);
        let after = self.layout.file_key(root, 0, cur.txid(), u64::MAX);
        let listed = self.remote.list(&prefix, Some(&after)).await?;
        let mut new: Vec<FileInfo> = listed
            .iter()
            .filter_map(|m| file_info(root, m, &HashMap::new()))
            .filter(|(layout, f)| *layout == self.layout && f.level == 0 && f.min_txid > cur.txid())
            .map(|(_, f)| f)
            .collect();
        new.sort_by_key(|f| f.min_txid);
        {
            let mut cat = self.catalog.lock();
            for f in &new {
                cat.files.insert(FileKey::from(f), f.clone());
            }
        }
        let chain = extend_chain(&new, cur.txid(), PlanTarget::Latest);
        if !chain.is_empty() {
            let metas = self.metas_for(&chain).await?;
            self.publish(cur.apply(&metas)?);
        }
        let reached = chain.last().map_or(cur.txid(), |f| f.max_txid);
        let gap = new.iter().any(|f| f.max_txid > reached);
        let due = self.last_refresh.lock().elapsed() >= REFRESH_INTERVAL;
        if gap || due || self.current().files().len() > MAX_FILES_PER_VERSION {
            self.refresh().await?;
        }
        Ok(())
    }

    /// Relists everything: picks up compactions and snapshots, drops references to files that
    /// retention deleted, and bridges level-0 gaps through compacted levels.
    async fn refresh(&self) -> Result<()> {
        *self.last_refresh.lock() = Instant::now();
        let ts = self.catalog.lock().header_ts.clone();
        let listing = list_all(&self.remote, &ts).await?;
        self.replace_catalog(&listing.files);
        let plan = restore_plan(&listing.files, PlanTarget::Latest)?;
        let cur = self.current();
        let reached = plan.last().map_or(0, |f| f.max_txid);
        if reached < cur.txid() {
            return Err(Error::Inconsistent(format!(
                "the replica went backwards: it now ends at TXID {reached:016x}, but this process already read {:016x}; it was restored or replaced. Reopen the database to read the new history",
                cur.txid()
            )));
        }
        let gone = {
            let cat = self.catalog.lock();
            cur.files().iter().any(|f| !cat.files.contains_key(&f.key))
        };
        if reached > cur.txid() || gone || cur.files().len() > MAX_FILES_PER_VERSION {
            let metas = self.metas_for(&plan).await?;
            self.publish(Version::build(&metas)?);
        }
        Ok(())
    }

    fn spawn_poller(r: &Arc<Replica>) {
        let weak = Arc::downgrade(r);
        supervise::spawn(r.poller.clone(), r.remote.display.clone(), move || {
            Replica::poll_loop(weak.clone())
        });
    }

    /// Follows the replica; `Ok` once the replica is gone or released as idle. A failed poll
    /// is not a failure of the loop: it keeps the last consistent state and tries again.
    async fn poll_loop(weak: Weak<Replica>) -> Result<()> {
        loop {
            let interval = match weak.upgrade() {
                Some(r) => r.opts.poll_interval,
                None => return Ok(()),
            };
            tokio::time::sleep(if interval.is_zero() {
                Duration::from_secs(1)
            } else {
                interval
            })
            .await;
            let Some(r) = weak.upgrade() else {
                return Ok(());
            };
            if r.release_if_idle() {
                return Ok(());
            }
            if interval.is_zero() {
                continue;
            }
            supervise::fault_point("poller", &r.remote.display);
            Stats::add(&r.remote.stats.polls, 1);
            match r.poll_once().await {
                Ok(()) => {
                    *r.last_poll_ok.lock() = Some(Instant::now());
                    *r.last_error.lock() = None;
                }
                Err(e) => {
                    Stats::add(&r.remote.stats.poll_errors, 1);
                    tracing::warn!(url = %r.remote.display, error = %e, "poll failed; serving the last consistent state");
                    *r.last_error.lock() = Some(e.to_string());
                }
            }
        }
    }

    /// Whether this replica is the one the process registry hands to new sessions (a
    /// released one is not, and its poller has stopped).
    pub fn is_registered(self: &Arc<Self>) -> bool {
        REGISTRY
            .lock()
            .as_ref()
            .and_then(|m| m.get(self.opts.url.trim()))
            .is_some_and(|r| Arc::ptr_eq(r, self))
    }

    /// Drops the registry's hold when no connection has used the replica for a while.
    fn release_if_idle(self: &Arc<Self>) -> bool {
        let timeout = supervise::idle_timeout().unwrap_or(IDLE_TIMEOUT);
        let idle = matches!(*self.idle_since.lock(), Some(t) if t.elapsed() >= timeout);
        if !idle || self.sessions.load(Ordering::Acquire) != 0 {
            return false;
        }
        let mut reg = REGISTRY.lock();
        let map = reg.get_or_insert_with(HashMap::new);
        if self.sessions.load(Ordering::Acquire) == 0 {
            map.retain(|_, r| !Arc::ptr_eq(r, self));
            tracing::debug!(url = %self.remote.display, "idle replica released");
            return true;
        }
        false
    }
}
