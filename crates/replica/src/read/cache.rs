//! The page cache: decoded pages keyed by (file id, frame offset), byte-budgeted (quick_cache,
//! S3-FIFO). Keys never go stale, since LTX files are immutable.

use bytes::Bytes;
use quick_cache::sync::{Cache, DefaultLifecycle, PlaceholderGuard};
use quick_cache::DefaultHashBuilder;

#[derive(Clone)]
pub(crate) struct PageWeighter;

impl quick_cache::Weighter<(u64, u64), Bytes> for PageWeighter {
    fn weight(&self, _key: &(u64, u64), val: &Bytes) -> u64 {
        // Count the allocation and the cache's own entry overhead, so the budget is honest.
        val.len() as u64 + 64
    }
}

pub(crate) type PageCache = Cache<(u64, u64), Bytes, PageWeighter>;

/// A page claimed in the cache by the fetch that will fill it: readers wait for it.
pub(crate) type Claim<'c> = PlaceholderGuard<
    'c,
    (u64, u64),
    Bytes,
    PageWeighter,
    DefaultHashBuilder,
    DefaultLifecycle<(u64, u64), Bytes>,
>;

/// How many pages of `page_size` a prefetch may bring ahead of the reader: the room left in the
/// cache, at least 1/32 of it, at most half. Pages fetched ahead into a full cache are the first
/// evicted, so more than the room would be fetched for nothing.
pub(crate) fn prefetch_room(cache: &PageCache, page_size: u32) -> usize {
    let cap = cache.capacity();
    let room = cap.saturating_sub(cache.weight()).clamp(cap / 32, cap / 2);
    (room / (u64::from(page_size) + 64)) as usize
}

/// An empty cache holding at most `bytes`.
pub(crate) fn new(bytes: u64) -> PageCache {
    let estimated_pages = (bytes / 4096).max(16) as usize;
    Cache::with_weighter(estimated_pages, bytes.max(1), PageWeighter)
}
