//! A replica opened by this process: the facade the VFS uses. It owns the read core (catalog,
//! page cache, current version), the page reader, the follower, the hydration and the write
//! mode, and hands each what it needs; none of them knows this type.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::hydrate::{Hydration, HydrationOptions, HydrationStatus, LocalReader};
use crate::index::plan::{restore_plan, PlanTarget};
use crate::index::version::Version;
use crate::options::ReplicaOptions;
use crate::read::catalog::Catalog;
use crate::read::core::Core;
use crate::read::current::Current;
use crate::read::follower::Follower;
use crate::read::pages::{PageReader, ReadAhead};
use crate::read::tree::ChildrenOf;
use crate::stats::StatsSnapshot;
use crate::store::layout::layout_for_url;
use crate::store::listing::list_all;
use crate::store::location::Location;
use crate::store::remote::Remote;
use crate::target::Target;
use crate::write::mode::WriteMode;
use crate::write::writer::{TxPages, WriteOptions, WriteStatus};

/// An open replica, shared by every connection of the process that names the same URL.
pub struct Replica {
    opts: ReplicaOptions,
    core: Arc<Core>,
    pages: Arc<PageReader>,
    follower: Arc<Follower>,
    hydration: Hydration,
    write: WriteMode,
    sessions: AtomicUsize,
    idle_since: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("url", &self.display_url())
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// Lists the replica at `loc` and builds the newest state's version; nothing runs in the
    /// background yet (see [`Replica::follow`]). Its background tasks will run on the runtime
    /// that awaits this: the engine's own for the process registry, a test's otherwise.
    pub(crate) async fn connect(opts: ReplicaOptions, loc: Location) -> Result<Arc<Replica>> {
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
        let catalog = Catalog::new(remote, layout, &listing.files, opts.cache_size, opts.verify);
        let mut first = Version::empty(4096);
        if !listing.files.is_empty() {
            let plan = restore_plan(&listing.files, PlanTarget::Latest)?;
            let metas = catalog.metas_for(&plan).await?;
            first = Version::build(&metas)?;
        }
        let core = Arc::new(Core {
            catalog,
            current: Current::new(first),
            rt: tokio::runtime::Handle::current(),
        });
        let cur = core.current.get();
        tracing::info!(url = %core.display_url(), txid = cur.txid(), files = cur.files().len(), "replica opened");
        Ok(Arc::new(Replica {
            pages: Arc::new(PageReader::new(core.clone())),
            follower: Arc::new(Follower::new(core.clone(), opts.poll_interval)),
            hydration: Hydration::default(),
            write: WriteMode::new(core.clone()),
            sessions: AtomicUsize::new(0),
            idle_since: Mutex::new(None),
            core,
            opts,
        }))
    }

    /// A replica of its own on the store `loc` names, outside the process registry: connected,
    /// followed, and hydrated or in write mode as `opts` say, with every background task on
    /// the runtime that awaits this. The deterministic fault tests hand it a
    /// [`FaultyStore`](crate::store::faults::FaultyStore) and drive it with a paused clock.
    #[cfg(any(test, feature = "fault-points"))]
    pub async fn open_on(opts: ReplicaOptions, loc: Location) -> Result<Arc<Replica>> {
        let r = Replica::connect(opts.clone(), loc).await?;
        r.follow(|| false);
        if let Some(w) = &opts.write {
            r.attach_writer(w)?;
        } else if let Some(h) = &opts.hydration {
            r.start_hydration(h);
        }
        Ok(r)
    }

    /// Starts following the replica; `stop` says when the follower should end (the replica
    /// was released).
    pub(crate) fn follow(&self, stop: impl Fn() -> bool + Send + Sync + 'static) {
        self.follower.spawn(stop);
    }

    /// The URL as given.
    pub(crate) fn url(&self) -> &str {
        &self.opts.url
    }

    /// Counts one more session.
    pub(crate) fn join_session(self: &Arc<Self>) -> Arc<Replica> {
        self.sessions.fetch_add(1, Ordering::AcqRel);
        *self.idle_since.lock() = None;
        self.clone()
    }

    /// Counts one session less; the last one stops hydration and uploads what is pending.
    pub(crate) fn leave_session(&self) {
        if self.sessions.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.idle_since.lock() = Some(Instant::now());
            self.hydration.stop();
            self.write.flush_on_close();
        }
    }

    /// Whether no session has used the replica for `timeout`.
    pub(crate) fn idle_for(&self, timeout: Duration) -> bool {
        matches!(*self.idle_since.lock(), Some(t) if t.elapsed() >= timeout)
    }

    /// Sessions now.
    pub(crate) fn sessions(&self) -> usize {
        self.sessions.load(Ordering::Acquire)
    }

    /// The URL as shown in messages.
    pub fn display_url(&self) -> &str {
        self.core.display_url()
    }

    /// The newest version known.
    pub fn current(&self) -> Arc<Version> {
        self.core.current.get()
    }

    /// Seconds since the last successful poll (or the open), if any.
    pub fn lag(&self) -> Option<Duration> {
        self.follower.lag()
    }

    /// The last poll error, if the last poll failed.
    pub fn last_error(&self) -> Option<String> {
        self.follower.last_error()
    }

    /// Request and cache counters.
    pub fn stats(&self) -> StatsSnapshot {
        let mut s = self.core.catalog.remote.stats.snapshot();
        s.task_failures = self.follower.health().failures()
            + self.write.writer().map_or(0, |w| w.task_failures())
            + self.hydration.task_failures();
        s
    }

    /// `Err` naming the cause once the poller, which keeps the latest state moving, was given
    /// up. A writer's reads do not depend on it (its commits are the latest state; its own
    /// loops are checked before each write, see [`Replica::check_writable`]), and neither do
    /// past states (time travel).
    pub fn check_health(&self) -> Result<()> {
        if self.write.writer().is_some() {
            return Ok(());
        }
        self.follower.health().check()
    }

    /// Bytes held by the page cache.
    pub fn cache_weight(&self) -> u64 {
        self.core.catalog.cache.weight()
    }

    /// The version at `target`: the current one for `Latest`, else built from a fresh listing.
    /// Pages already cached stay cached, since cache keys name immutable files.
    pub fn version_at(self: &Arc<Self>, target: Target) -> Result<Arc<Version>> {
        self.core.version_at(target)
    }

    /// Reads page `pgno` of `version` into `out` (exactly one page).
    pub fn read_page(
        self: &Arc<Self>,
        version: &Version,
        pgno: u32,
        out: &mut [u8],
        ra: &mut ReadAhead,
    ) -> Result<()> {
        self.pages.read_page(version, pgno, out, ra)
    }

    /// Starts fetching `pgnos` of `version` into the cache in the background and returns at
    /// once: the caller expects to read them soon (a scan of a B-tree level, whose pages need not
    /// be next to each other). Failures are only logged: the read that needs the page fetches it
    /// itself.
    pub fn prefetch(self: &Arc<Self>, version: &Version, pgnos: &[u32]) {
        self.pages.prefetch(version, pgnos)
    }

    /// Starts fetching, in the background, the children of `parents` (pages of `version`, whose
    /// children `children` reads), as many as the cache has room for: a scan will walk them.
    /// Children close enough together in a file share large GETs.
    pub fn prefetch_below(
        self: &Arc<Self>,
        version: &Version,
        parents: &[u32],
        children: ChildrenOf,
    ) {
        self.pages.prefetch_below(version, parents, children)
    }

    /// How many pages of `page_size` a prefetch may bring ahead of the reader now.
    pub fn prefetch_room(&self, page_size: u32) -> usize {
        crate::read::cache::prefetch_room(&self.core.catalog.cache, page_size)
    }

    /// Starts hydrating (once per replica; later calls with other options only log).
    pub(crate) fn start_hydration(&self, opts: &HydrationOptions) {
        self.hydration
            .start(&self.core, opts, self.follower.interval());
    }

    /// Hydration progress, if hydration was requested.
    pub fn hydration_status(&self) -> Option<HydrationStatus> {
        self.hydration.status()
    }

    /// A read hold on the hydrated file for a transaction pinned to `version`, when the file
    /// holds exactly that state.
    pub fn local_reader(&self, version: &Version) -> Option<LocalReader> {
        self.hydration.local_reader(version)
    }

    /// Turns on write mode for this replica (once per process; later calls join the writer):
    /// recovers the buffer and starts the sync task. The same path serves an open in write
    /// mode and `PRAGMA litestream_write_enabled = 1` on an open connection.
    pub fn attach_writer(self: &Arc<Self>, opts: &WriteOptions) -> Result<()> {
        self.write.attach(&self.opts.url, opts, || {
            if self.hydration.is_on() {
                // The hydrated file holds replica states only, not local commits: readers go
                // through the writer's overlay and cache from now on.
                tracing::info!(url = %self.display_url(), "write mode: hydration stops");
                self.hydration.stop();
            }
        })
    }

    /// Turns write mode off for this replica (`PRAGMA litestream_write_enabled = 0`): uploads
    /// what is pending, then, if nothing was committed meanwhile, retires the writer. Its
    /// buffer lock is released at once, its tasks stop, and the replica is followed by polling
    /// again. On an upload failure write mode stays on and the error is returned.
    pub fn detach_writer(self: &Arc<Self>) -> Result<()> {
        if self.write.detach()? {
            self.follower.mark_current();
            tracing::info!(url = %self.display_url(), txid = format!("{:016x}", self.current().txid()), "write mode off: following the replica again");
        }
        Ok(())
    }

    /// Records a committed transaction (write mode): `pages` changed, `commit` pages in all.
    /// With `sync`, returns once the buffer record is on disk. Every connection reads the
    /// returned state at once.
    pub fn commit(
        self: &Arc<Self>,
        pages: TxPages<'_>,
        commit: u32,
        page_size: u32,
        sync: bool,
    ) -> Result<Arc<Version>> {
        self.write.commit(pages, commit, page_size, sync)
    }

    /// Uploads every committed transaction now; returns the replica's TXID afterwards.
    pub fn sync_now(self: &Arc<Self>) -> Result<u64> {
        self.write.sync_now()
    }

    /// Whether a write transaction may start now (write mode, not fenced, uploads healthy).
    pub fn check_writable(&self) -> Result<()> {
        self.write.check_writable()
    }

    /// The writer's state, in write mode.
    pub fn write_status(&self) -> Option<WriteStatus> {
        self.write.status()
    }

    /// Whether this replica is in write mode.
    pub(crate) fn is_writing(&self) -> bool {
        self.write.writer().is_some()
    }

    /// The state number the next local commit will have (the VFS writes it into page 1).
    pub fn next_state_no(&self) -> u32 {
        self.current().state_no().wrapping_add(1)
    }
}
