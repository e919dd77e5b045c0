//! The version every new read transaction starts from, and who may replace it.
//!
//! An `RwLock<Arc<Version>>` and a `Notify`, not a `tokio::sync::watch`: taking the current
//! version is what every read transaction does first, from SQLite's threads, and a parking_lot
//! read lock plus an `Arc` clone is as cheap as it gets there; the follower's "replace only
//! with a newer TXID" and the writer's "replace always" are both one critical section; and the
//! hydrator only needs waking when it is waiting (`notify_waiters`), as before.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::index::version::Version;

struct Head {
    version: Arc<Version>,
    /// A writer of this process owns the state: only its publications count, the follower's
    /// are ignored (the replica changes only through the writer).
    local: bool,
}

/// The current version of one replica.
pub(crate) struct Current {
    head: RwLock<Head>,
    /// Woken whenever a newer version is published.
    changed: Arc<tokio::sync::Notify>,
}

impl Current {
    pub(crate) fn new(version: Version) -> Current {
        Current {
            head: RwLock::new(Head {
                version: Arc::new(version),
                local: false,
            }),
            changed: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// The newest version known.
    pub(crate) fn get(&self) -> Arc<Version> {
        self.head.read().version.clone()
    }

    /// Whether a writer of this process owns the state.
    pub(crate) fn is_local(&self) -> bool {
        self.head.read().local
    }

    /// Woken whenever a newer version is published.
    pub(crate) fn changed(&self) -> Arc<tokio::sync::Notify> {
        self.changed.clone()
    }

    /// A state read from the replica: it replaces the current one unless a writer owns the
    /// state or it is older.
    pub(crate) fn publish_followed(&self, v: Version) {
        let mut head = self.head.write();
        if head.local {
            return;
        }
        if v.txid() >= head.version.txid() {
            tracing::debug!(txid = v.txid(), "new version");
            head.version = Arc::new(v);
            self.changed.notify_waiters();
        }
    }

    /// A writer takes the state over, starting from `v`: from now on the follower's
    /// publications are ignored.
    pub(crate) fn take_over(&self, v: Version) {
        let mut head = self.head.write();
        head.version = Arc::new(v);
        head.local = true;
        self.changed.notify_waiters();
    }

    /// Makes `v` the state every connection reads (write mode: the writer publishes each local
    /// commit and each upload, under its own lock, in order).
    pub(crate) fn publish_local(&self, v: Version) {
        self.head.write().version = Arc::new(v);
        self.changed.notify_waiters();
    }

    /// The writer let go: the follower's publications count again.
    pub(crate) fn release_local(&self) {
        self.head.write().local = false;
    }
}
