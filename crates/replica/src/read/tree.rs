//! Prefetch one level below the pages a scan will walk: the caller names the parents (interior
//! pages of a B-tree) and how to read a parent's children; the children of all of them are
//! fetched at once. Knowing thousands of wanted pages at once, not the hundred children of one
//! parent, is what lets them share large GETs: in a database grown by interleaved writes the
//! leaves of one tree are spread over the whole file, a few frames apart.
//!
//! The engine knows nothing of the page format: `ChildrenOf` comes from the VFS.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use crate::index::loc::{coalesce, run_span, Run};
use crate::index::meta::FileMeta;
use crate::index::version::Version;
use crate::read::cache::prefetch_room;
use crate::read::pages::{Claims, PageReader};
use crate::runtime;

/// The children of a page, given its number and bytes; `None` when it has none.
pub type ChildrenOf = fn(u32, &[u8]) -> Option<Vec<u32>>;

/// Wanted frames closer than this share a GET whatever the density (as in `prefetch`).
const GAP: u64 = 64 * 1024;
/// Runs of wanted frames are merged into one GET while at least 1/`DENSITY` of the bytes it
/// downloads are wanted frames: one request instead of several costs more bytes but, at the
/// latency of an object store, less time. Chosen by measurement (docs/architecture.md).
const DENSITY: u64 = 8;
/// Largest GET of a merged span: several are in flight, so this bounds the memory they hold.
const MAX_SPAN: u64 = 4 * 1024 * 1024;
/// Merged spans fetched at once by one prefetch (each also takes one of the reader's slots).
const PARALLEL: usize = 8;

impl PageReader {
    /// Starts fetching, in the background, the children of `parents` (pages of `version`),
    /// as many as the cache has room for, in the order `parents` and `children` give.
    pub(crate) fn prefetch_below(
        self: &Arc<Self>,
        version: &Version,
        parents: &[u32],
        children: ChildrenOf,
    ) {
        // Prefetching is an optimisation: without a runtime, reads simply fetch on demand.
        let Ok(rt) = runtime::handle() else { return };
        let me = self.clone();
        let v = version.clone();
        let parents = parents.to_vec();
        rt.spawn(async move { me.below(&v, &parents, children).await });
    }

    async fn below(&self, v: &Version, parents: &[u32], children: ChildrenOf) {
        let pages = self.parent_pages(v, parents).await;
        let mut wanted: Vec<u32> = parents
            .iter()
            .filter_map(|p| children(*p, pages.get(p)?))
            .flatten()
            .collect();
        wanted.truncate(prefetch_room(self.cache(), v.page_size()));
        // Claim every wanted page now, so that a reader waits for the GET that brings it
        // rather than sending its own; then fetch the spans holding the earliest pages first.
        let spans = self.claim_spans(v, &wanted);
        self.fetch_spans(spans, v.page_size()).await;
    }

    /// `pgnos` of `v` not cached nor claimed yet, claimed and grouped into the GETs that will
    /// fetch them, those holding the pages earliest in `pgnos` first.
    fn claim_spans(&self, v: &Version, pgnos: &[u32]) -> Vec<Span<'_>> {
        let rank: HashMap<u32, usize> = pgnos.iter().enumerate().map(|(i, p)| (*p, i)).collect();
        let mut spans = Vec::new();
        for (file, pages) in by_file(v, pgnos) {
            for span in merge_dense(coalesce(pages, GAP, MAX_SPAN), DENSITY, MAX_SPAN) {
                let (run, claims) = self.claim(&file, span);
                if let Some(first) = run.iter().filter_map(|(p, _)| rank.get(p)).min() {
                    spans.push((*first, file.clone(), run, claims));
                }
            }
        }
        spans.sort_by_key(|s| s.0);
        spans
    }

    /// Fetches claimed spans, `PARALLEL` at a time, starting them in the order given. A failed
    /// one only drops its claims: readers of those pages then fetch them themselves.
    async fn fetch_spans(&self, spans: Vec<Span<'_>>, page_size: u32) {
        // Collected first: a closure inside the stream type trips the compiler's Send check.
        let fetches: Vec<_> = spans
            .into_iter()
            .map(|(_, file, run, claims)| self.fetch_in_slot(file, run, claims, page_size))
            .collect();
        futures::stream::iter(fetches)
            .buffer_unordered(PARALLEL)
            .collect::<Vec<()>>()
            .await;
    }

    async fn fetch_in_slot(
        &self,
        file: Arc<FileMeta>,
        run: Run,
        claims: Claims<'_>,
        page_size: u32,
    ) {
        let _slot = self.slot().await;
        if let Err(e) = self.fetch_claimed(&file, run, claims, page_size).await {
            tracing::debug!(key = %file.path, error = %e, "prefetch below failed");
        }
    }

    /// The pages `parents` of `v`: cached ones at once, the others fetched (dense spans, like
    /// their children), and those another reader is fetching awaited once ours are in. A
    /// parent that could not be had is left out.
    async fn parent_pages(&self, v: &Version, parents: &[u32]) -> HashMap<u32, Bytes> {
        let mut got = HashMap::new();
        let mut busy = Vec::new();
        for &p in parents {
            let Some((file, loc)) = v.loc(p) else {
                continue;
            };
            let key = (file.id, loc.offset);
            if let Some(b) = self.cache().get(&key) {
                got.insert(p, b);
            } else {
                busy.push((p, key));
            }
        }
        let missing: Vec<u32> = busy.iter().map(|(p, _)| *p).collect();
        let spans = self.claim_spans(v, &missing);
        self.fetch_spans(spans, v.page_size()).await;
        // No claim of ours is held now, so waiting cannot deadlock with another prefetch; the
        // pages claimed by others (a reader, another prefetch) are awaited.
        for (p, key) in busy {
            if let Ok(b) = self.cache().get_value_or_guard_async(&key).await {
                got.insert(p, b);
            }
        }
        got
    }
}

/// A GET to send: the rank of its earliest wanted page, the file, its frames and their claims.
type Span<'c> = (usize, Arc<FileMeta>, Run, Claims<'c>);

/// Where `pgnos` lie in `v`, per file, sorted by offset.
fn by_file(v: &Version, pgnos: &[u32]) -> Vec<(Arc<FileMeta>, Run)> {
    let mut files: HashMap<u64, (Arc<FileMeta>, Run)> = HashMap::new();
    for &p in pgnos {
        if let Some((file, loc)) = v.loc(p) {
            files
                .entry(file.id)
                .or_insert_with(|| (file.clone(), Vec::new()))
                .1
                .push((p, loc));
        }
    }
    let mut out: Vec<_> = files.into_values().collect();
    for (_, run) in &mut out {
        run.sort_by_key(|(_, l)| l.offset);
    }
    out
}

/// Merges neighbouring runs (sorted by offset) into one GET while the merged span is at most
/// `max_bytes` and at least 1/`density` of it are wanted frames.
fn merge_dense(runs: Vec<Run>, density: u64, max_bytes: u64) -> Vec<Run> {
    let wanted = |r: &Run| r.iter().map(|(_, l)| u64::from(l.size)).sum::<u64>();
    let mut out: Vec<(Run, u64)> = Vec::new();
    for run in runs {
        let w = wanted(&run);
        match out.last_mut() {
            Some((prev, pw)) => {
                let span = run_span(&run).end - run_span(prev).start;
                if span <= max_bytes && (*pw + w) * density >= span {
                    prev.extend(run);
                    *pw += w;
                } else {
                    out.push((run, w));
                }
            }
            None => out.push((run, w)),
        }
    }
    out.into_iter().map(|(r, _)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::loc::PageLoc;

    fn at(pgno: u32, offset: u64, size: u32) -> (u32, PageLoc) {
        (
            pgno,
            PageLoc {
                file: 0,
                size,
                offset,
            },
        )
    }

    #[test]
    fn dense_runs_merge_up_to_the_size_bound_sparse_ones_do_not() {
        // Frames of 1000 bytes every 5000: 20 % wanted, above 1/8.
        let dense: Vec<Run> = (0..10)
            .map(|i| vec![at(i, i as u64 * 5000, 1000)])
            .collect();
        let merged = merge_dense(dense.clone(), 8, 1 << 20);
        assert_eq!(merged.len(), 1);
        assert_eq!(run_span(&merged[0]), 0..46_000);
        // The same frames, but no GET over 20 000 bytes.
        let bounded = merge_dense(dense, 8, 20_000);
        assert!(bounded
            .iter()
            .all(|r| run_span(r).end - run_span(r).start <= 20_000));
        assert_eq!(bounded.iter().map(Vec::len).sum::<usize>(), 10);
        assert_eq!(bounded.len(), 3);
        // Every 20 000 bytes: 5 %, below 1/8: one GET each.
        let sparse: Vec<Run> = (0..10)
            .map(|i| vec![at(i, i as u64 * 20_000, 1000)])
            .collect();
        assert_eq!(merge_dense(sparse, 8, 1 << 20).len(), 10);
    }
}
