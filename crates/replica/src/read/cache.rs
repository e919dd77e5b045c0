//! The page cache: decoded pages keyed by (file id, frame offset), byte-budgeted (quick_cache,
//! S3-FIFO). Keys never go stale, since LTX files are immutable.

use bytes::Bytes;
use quick_cache::sync::Cache;

#[derive(Clone)]
pub(crate) struct PageWeighter;

impl quick_cache::Weighter<(u64, u64), Bytes> for PageWeighter {
    fn weight(&self, _key: &(u64, u64), val: &Bytes) -> u64 {
        // Count the allocation and the cache's own entry overhead, so the budget is honest.
        val.len() as u64 + 64
    }
}

pub(crate) type PageCache = Cache<(u64, u64), Bytes, PageWeighter>;

/// An empty cache holding at most `bytes`.
pub(crate) fn new(bytes: u64) -> PageCache {
    let estimated_pages = (bytes / 4096).max(16) as usize;
    Cache::with_weighter(estimated_pages, bytes.max(1), PageWeighter)
}
