//! The read core of one replica: its catalog (files, indexes, page cache) and its current
//! version, and the runtime its background tasks run on. What the page reader, the follower,
//! the writer and the hydrator are given; it knows none of them.

use std::sync::Arc;

use crate::error::Result;
use crate::index::version::Version;
use crate::read::catalog::Catalog;
use crate::read::current::Current;
use crate::runtime;
use crate::target::Target;

/// A replica's catalog and current version.
pub(crate) struct Core {
    pub(crate) catalog: Catalog,
    pub(crate) current: Current,
    /// Where the replica's background tasks (poller, uploader, compactor, hydrator, prefetch)
    /// run: the runtime that connected it, i.e. the engine's own ([`runtime`]), or a test's
    /// runtime with a paused clock.
    pub(crate) rt: tokio::runtime::Handle,
}

impl Core {
    /// The URL as shown in messages.
    pub(crate) fn display_url(&self) -> &str {
        &self.catalog.remote.display
    }

    /// The version at `target`, planned from a fresh listing (even for the current TXID).
    pub(crate) async fn build_at(&self, target: Target) -> Result<Version> {
        self.catalog.build_at(target, &self.current).await
    }

    /// [`Core::build_at`] for a synchronous caller.
    pub(crate) fn build_blocking(self: &Arc<Self>, target: Target) -> Result<Version> {
        let me = self.clone();
        runtime::block_on(async move { me.build_at(target).await })
    }

    /// The version at `target`: the current one for `Latest`, else built from a fresh listing.
    /// Pages already cached stay cached, since cache keys name immutable files.
    pub(crate) fn version_at(self: &Arc<Self>, target: Target) -> Result<Arc<Version>> {
        let cur = self.current.get();
        match target {
            Target::Latest => Ok(cur),
            Target::Txid(t) if t == cur.txid() && !cur.has_local_changes() => Ok(cur),
            _ => self.build_blocking(target).map(Arc::new),
        }
    }
}
