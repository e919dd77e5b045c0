//! Following a live primary: the poll loop, under the supervisor.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::index::plan::{extend_chain, restore_plan, PlanTarget};
use crate::index::version::Version;
use crate::read::core::Core;
use crate::stats::Stats;
use crate::store::listing::{file_info, FileInfo};
use crate::supervise::{self, Health, Task};

/// A full relisting (to notice compactions and retention) runs at most this often.
const REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Once a version holds this many files more than the last fresh plan needed, it is relisted,
/// and rebuilt from the new plan when that plan is this much smaller: compactions then bound its
/// memory. Measured against the plan, not absolutely, because a replica whose level 0 is never
/// compacted needs every file: rebuilding it on every poll relisted and re-applied them all
/// each second, a cost that grew with the follow (the scale suite's 10-minute follow at 1 M
/// pages spent 29.5 s of CPU, against 1.3 s for its first minute).
const MAX_EXTRA_FILES: usize = 64;

/// The poller of one replica and what it last saw.
pub(crate) struct Follower {
    core: Arc<Core>,
    /// How often to look for new files; zero disables polling.
    interval: Duration,
    last_poll_ok: Mutex<Option<Instant>>,
    last_refresh: Mutex<Instant>,
    /// Files of the plan the last full listing made (or of the version at the open).
    planned_files: AtomicUsize,
    last_error: Mutex<Option<String>>,
    poll_lock: tokio::sync::Mutex<()>,
    /// The supervised poll loop.
    health: Arc<Health>,
}

impl Follower {
    pub(crate) fn new(core: Arc<Core>, interval: Duration) -> Follower {
        let planned_files = AtomicUsize::new(core.current.get().files().len());
        Follower {
            core,
            interval,
            last_poll_ok: Mutex::new(Some(Instant::now())),
            last_refresh: Mutex::new(Instant::now()),
            planned_files,
            last_error: Mutex::new(None),
            poll_lock: tokio::sync::Mutex::new(()),
            health: Arc::new(Health::new(Task::Poller)),
        }
    }

    /// How often it polls.
    pub(crate) fn interval(&self) -> Duration {
        self.interval
    }

    /// Time since the last successful poll (or the open, or the writer's detaching).
    pub(crate) fn lag(&self) -> Option<Duration> {
        self.last_poll_ok.lock().map(|t| t.elapsed())
    }

    /// The state is known current as of now (a writer that owned it just let go).
    pub(crate) fn mark_current(&self) {
        *self.last_poll_ok.lock() = Some(Instant::now());
    }

    /// The last poll error, if the last poll failed.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }

    /// The poll loop's health.
    pub(crate) fn health(&self) -> &Health {
        &self.health
    }

    /// Starts the supervised poll loop. Before each poll it asks `stop` whether the replica is
    /// gone or was released as idle, and ends if so.
    pub(crate) fn spawn(self: &Arc<Self>, stop: impl Fn() -> bool + Send + Sync + 'static) {
        let weak = Arc::downgrade(self);
        let stop: Arc<dyn Fn() -> bool + Send + Sync> = Arc::new(stop);
        supervise::spawn(
            &self.core.rt,
            self.health.clone(),
            self.core.display_url().to_string(),
            move || Follower::poll_loop(weak.clone(), stop.clone()),
        );
    }

    /// Follows the replica; `Ok` once the replica is gone or released as idle. A failed poll
    /// is not a failure of the loop: it keeps the last consistent state and tries again.
    async fn poll_loop(
        weak: Weak<Follower>,
        stop: Arc<dyn Fn() -> bool + Send + Sync>,
    ) -> Result<()> {
        loop {
            let interval = match weak.upgrade() {
                Some(r) => r.interval,
                None => return Ok(()),
            };
            tokio::time::sleep(if interval.is_zero() {
                Duration::from_secs(1)
            } else {
                interval
            })
            .await;
            if stop() {
                return Ok(());
            }
            let Some(r) = weak.upgrade() else {
                return Ok(());
            };
            if interval.is_zero() {
                continue;
            }
            supervise::fault_point("poller", r.core.display_url());
            Stats::add(&r.core.catalog.remote.stats.polls, 1);
            match r.poll_once().await {
                Ok(()) => {
                    *r.last_poll_ok.lock() = Some(Instant::now());
                    *r.last_error.lock() = None;
                }
                Err(e) => {
                    Stats::add(&r.core.catalog.remote.stats.poll_errors, 1);
                    tracing::warn!(url = %r.core.display_url(), error = %e, "poll failed; serving the last consistent state");
                    *r.last_error.lock() = Some(e.to_string());
                }
            }
        }
    }

    /// One poll: list level 0 after the current TXID (one LIST), apply what continues the chain.
    /// A writer's replica changes only through it: nothing to poll.
    async fn poll_once(&self) -> Result<()> {
        if self.core.current.is_local() {
            return Ok(());
        }
        let _serial = self.poll_lock.lock().await;
        let cur = self.core.current.get();
        let catalog = &self.core.catalog;
        let root = &catalog.remote.root;
        let prefix = catalog.layout.level_prefix(root, 0);
        let after = catalog.layout.file_key(root, 0, cur.txid(), u64::MAX);
        let listed = catalog.remote.list(&prefix, Some(&after)).await?;
        let mut new: Vec<FileInfo> = listed
            .iter()
            .filter_map(|m| file_info(root, m, &HashMap::new()))
            .filter(|(layout, f)| {
                *layout == catalog.layout && f.level == 0 && f.min_txid > cur.txid()
            })
            .map(|(_, f)| f)
            .collect();
        new.sort_by_key(|f| f.min_txid);
        catalog.insert(&new);
        let chain = extend_chain(&new, cur.txid(), PlanTarget::Latest);
        if !chain.is_empty() {
            let metas = catalog.metas_for(&chain).await?;
            self.core.current.publish_followed(cur.apply(&metas)?);
        }
        let reached = chain.last().map_or(cur.txid(), |f| f.max_txid);
        let gap = new.iter().any(|f| f.max_txid > reached);
        let due = self.last_refresh.lock().elapsed() >= REFRESH_INTERVAL;
        let planned = self.planned_files.load(Ordering::Relaxed);
        let grown = self.core.current.get().files().len() > planned + MAX_EXTRA_FILES;
        if gap || due || grown {
            self.refresh().await?;
        }
        Ok(())
    }

    /// Relists everything: picks up compactions and snapshots, drops references to files that
    /// retention deleted, and bridges level-0 gaps through compacted levels.
    async fn refresh(&self) -> Result<()> {
        *self.last_refresh.lock() = Instant::now();
        let catalog = &self.core.catalog;
        let listing = catalog.list().await?;
        let plan = restore_plan(&listing.files, PlanTarget::Latest)?;
        let cur = self.core.current.get();
        let reached = plan.last().map_or(0, |f| f.max_txid);
        // Checked before the catalog takes the listing: a listing that lags behind (or a
        // replica that was replaced) must not drop the files of the state being served.
        if reached < cur.txid() {
            return Err(Error::Inconsistent(format!(
                "the replica went backwards: it now ends at TXID {reached:016x}, but this process already read {:016x}; it was restored or replaced. Reopen the database to read the new history",
                cur.txid()
            )));
        }
        catalog.replace(&listing.files, &self.core.current);
        self.planned_files.store(plan.len(), Ordering::Relaxed);
        let gone = catalog.lacks_any_of(&cur);
        if reached > cur.txid() || gone || cur.files().len() > plan.len() + MAX_EXTRA_FILES {
            let metas = catalog.metas_for(&plan).await?;
            self.core.current.publish_followed(Version::build(&metas)?);
        }
        Ok(())
    }
}
