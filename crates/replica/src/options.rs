//! How to open a replica.

use std::time::Duration;

use crate::hydrate::HydrationOptions;
use crate::write::writer::WriteOptions;

/// Default poll interval, as in the Go VFS.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Default page-cache budget in bytes.
pub const DEFAULT_CACHE_SIZE: u64 = 64 * 1024 * 1024;
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
