//! Reading pages: the cache, ranged GETs of frames, read-ahead over frames stored next to each
//! other, and background prefetch of pages a reader announced.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quick_cache::sync::GuardResult;

use crate::error::{Error, Result};
use crate::index::loc::{coalesce, run_span, PageLoc, Run};
use crate::index::meta::FileMeta;
use crate::index::version::Version;
use crate::read::cache::{Claim, PageCache};
use crate::read::core::Core;
use crate::runtime;
use crate::stats::Stats;
use crate::target::Target;

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

/// Pages claimed in the cache (placeholders) by a fetch, by frame offset: readers of those
/// pages wait for the fetch instead of sending their own GET.
pub(super) type Claims<'c> = HashMap<u64, Claim<'c>>;

/// Sequential-access detector of one connection: consecutive misses double the read-ahead window.
#[derive(Debug, Default)]
pub struct ReadAhead {
    next: u32,
    window: u32,
}

/// The page reader of one replica.
pub(crate) struct PageReader {
    core: Arc<Core>,
    prefetch_slots: Arc<tokio::sync::Semaphore>,
}

impl PageReader {
    pub(crate) fn new(core: Arc<Core>) -> PageReader {
        PageReader {
            core,
            prefetch_slots: Arc::new(tokio::sync::Semaphore::new(PREFETCH_PARALLEL)),
        }
    }

    /// Reads page `pgno` of `version` into `out` (exactly one page).
    pub(crate) fn read_page(
        &self,
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
                let again = self.core.build_blocking(Target::Txid(version.txid())).map_err(|e| match e {
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

    fn read_page_from(
        &self,
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
        if let Some(local) = version.read_local(pgno, out) {
            return local;
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
        let mut guard = match self.core.catalog.cache.get_value_or_guard(&key, None) {
            GuardResult::Value(page) => {
                Stats::add(&self.core.catalog.remote.stats.cache_hits, 1);
                out.copy_from_slice(&page);
                return Ok(());
            }
            GuardResult::Guard(g) => Some(g),
            GuardResult::Timeout => unreachable!("no timeout was given"),
        };
        Stats::add(&self.core.catalog.remote.stats.cache_misses, 1);
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
        let remote = self.core.catalog.remote.clone();
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
                    self.core
                        .catalog
                        .cache
                        .insert((file.id, offset), Bytes::from(page));
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
    pub(crate) fn prefetch(self: &Arc<Self>, version: &Version, pgnos: &[u32]) {
        let mut by_file: HashMap<u64, (Arc<FileMeta>, Run)> = HashMap::new();
        for &p in pgnos.iter().take(MAX_PREFETCH_PAGES) {
            if let Some((file, loc)) = version.loc(p) {
                if !self.core.catalog.cache.contains_key(&(file.id, loc.offset)) {
                    by_file
                        .entry(file.id)
                        .or_insert_with(|| (file.clone(), Vec::new()))
                        .1
                        .push((p, loc));
                }
            }
        }
        let page_size = version.page_size();
        let rt = &self.core.rt;
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

    /// The page cache.
    pub(super) fn cache(&self) -> &PageCache {
        &self.core.catalog.cache
    }

    /// One of the replica's prefetch slots, held while a prefetch GET is in flight.
    pub(super) async fn slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.prefetch_slots.acquire().await.ok()
    }

    async fn prefetch_span(&self, file: &FileMeta, span: Run, page_size: u32) -> Result<()> {
        let _slot = self.slot().await;
        let (run, claims) = self.claim(file, span);
        self.fetch_claimed(file, run, claims, page_size).await
    }

    /// Claims the pages of `span` no reader has cached or claimed meanwhile; a reader arriving
    /// later waits on the claim instead of fetching the page again. Returns the pages claimed.
    pub(super) fn claim<'c>(&'c self, file: &FileMeta, span: Run) -> (Run, Claims<'c>) {
        let mut claims = HashMap::new();
        let mut run = Vec::new();
        for (p, l) in span {
            if let GuardResult::Guard(g) = self
                .core
                .catalog
                .cache
                .get_value_or_guard(&(file.id, l.offset), Some(Duration::ZERO))
            {
                claims.insert(l.offset, g);
                run.push((p, l));
            }
        }
        (run, claims)
    }

    /// Fetches the claimed pages `run` of `file` in one GET and fills their claims, which wakes
    /// the readers waiting on them.
    pub(super) async fn fetch_claimed(
        &self,
        file: &FileMeta,
        run: Run,
        mut claims: Claims<'_>,
        page_size: u32,
    ) -> Result<()> {
        if run.is_empty() {
            return Ok(());
        }
        let range = run_span(&run);
        let start = range.start;
        let bytes = self
            .core
            .catalog
            .remote
            .get_range(&file.path, range)
            .await?;
        Stats::add(
            &self.core.catalog.remote.stats.prefetched_pages,
            run.len() as u64,
        );
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
                        && !self.core.catalog.cache.contains_key(&(f.id, l.offset)) =>
                {
                    end += u64::from(l.size);
                    run.push((p, l));
                }
                _ => break,
            }
        }
        run
    }
}
