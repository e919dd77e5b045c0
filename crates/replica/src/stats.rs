//! Counters for `PRAGMA litestream_stats`: what the engine asked of object storage, and how the
//! cache did.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters, shared by every connection to one replica.
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) list: AtomicU64,
    pub(crate) get_range: AtomicU64,
    pub(crate) get_whole: AtomicU64,
    pub(crate) head: AtomicU64,
    pub(crate) put: AtomicU64,
    pub(crate) uploads: AtomicU64,
    pub(crate) delete: AtomicU64,
    pub(crate) bytes_read: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) cache_misses: AtomicU64,
    pub(crate) polls: AtomicU64,
    pub(crate) poll_errors: AtomicU64,
    pub(crate) index_loads: AtomicU64,
    pub(crate) prefetched_pages: AtomicU64,
    pub(crate) errors: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// LIST requests.
    pub list: u64,
    /// Ranged GETs (page frames, index suffixes, headers).
    pub get_range: u64,
    /// Whole-object GETs.
    pub get_whole: u64,
    /// HEAD requests.
    pub head: u64,
    /// PUT requests.
    pub put: u64,
    /// Level-0 files uploaded by this process's writer.
    pub uploads: u64,
    /// DELETE requests.
    pub delete: u64,
    /// Body bytes received.
    pub bytes_read: u64,
    /// Body bytes uploaded.
    pub bytes_written: u64,
    /// Page reads served from the shared cache.
    pub cache_hits: u64,
    /// Page reads that had to fetch.
    pub cache_misses: u64,
    /// Completed polls.
    pub polls: u64,
    /// Failed polls.
    pub poll_errors: u64,
    /// LTX page indexes loaded.
    pub index_loads: u64,
    /// Pages fetched ahead of their read by `prefetch` (B-tree scans).
    pub prefetched_pages: u64,
    /// Requests that failed after retries.
    pub errors: u64,
    /// Failures (panics, errors) of background loops, each followed by a restart or, after
    /// too many in a row, by giving the loop up.
    pub task_failures: u64,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Reads all counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            list: self.list.load(Relaxed),
            get_range: self.get_range.load(Relaxed),
            get_whole: self.get_whole.load(Relaxed),
            head: self.head.load(Relaxed),
            put: self.put.load(Relaxed),
            uploads: self.uploads.load(Relaxed),
            delete: self.delete.load(Relaxed),
            bytes_read: self.bytes_read.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            cache_hits: self.cache_hits.load(Relaxed),
            cache_misses: self.cache_misses.load(Relaxed),
            polls: self.polls.load(Relaxed),
            poll_errors: self.poll_errors.load(Relaxed),
            index_loads: self.index_loads.load(Relaxed),
            prefetched_pages: self.prefetched_pages.load(Relaxed),
            errors: self.errors.load(Relaxed),
            task_failures: 0,
        }
    }
}

impl StatsSnapshot {
    /// The counters as `(name, value)` pairs, in a stable order.
    pub fn fields(&self) -> [(&'static str, u64); 17] {
        [
            ("list", self.list),
            ("get_range", self.get_range),
            ("get_whole", self.get_whole),
            ("head", self.head),
            ("put", self.put),
            ("uploads", self.uploads),
            ("delete", self.delete),
            ("bytes_read", self.bytes_read),
            ("bytes_written", self.bytes_written),
            ("cache_hits", self.cache_hits),
            ("cache_misses", self.cache_misses),
            ("polls", self.polls),
            ("poll_errors", self.poll_errors),
            ("index_loads", self.index_loads),
            ("prefetched_pages", self.prefetched_pages),
            ("errors", self.errors),
            ("task_failures", self.task_failures),
        ]
    }
}
