//! The writer's two background loops, each under the supervisor: uploads every
//! `sync_interval`, and compaction. A loop ends when its replica is gone or when the replica's
//! writer is no longer the one it was started for (write mode turned off, maybe on again).

use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLock;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::read::core::Core;
use crate::supervise;
use crate::target::Target;
use crate::write::compact::Compactor;
use crate::write::writer::Writer;

/// Longest pause between two failed upload attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Where a replica keeps its writer, if it has one.
pub(crate) type Slot = RwLock<Option<Arc<Writer>>>;

/// The loops' hold on their replica: weak, so that a replica nobody uses is dropped.
#[derive(Clone)]
struct Owner {
    core: Weak<Core>,
    slot: Weak<Slot>,
    mine: Weak<Writer>,
}

impl Owner {
    fn new(core: &Arc<Core>, slot: &Arc<Slot>, mine: &Arc<Writer>) -> Owner {
        Owner {
            core: Arc::downgrade(core),
            slot: Arc::downgrade(slot),
            mine: Arc::downgrade(mine),
        }
    }

    /// The replica's core and writer, if the replica is still there and its writer is still
    /// `mine`: a task of a writer that was turned off ends, even when write mode was turned on
    /// again since (with a new writer and its own tasks).
    fn current(&self) -> Option<(Arc<Core>, Arc<Writer>)> {
        let slot = self.slot.upgrade()?;
        let core = self.core.upgrade()?;
        let w = slot.read().clone()?;
        Arc::ptr_eq(&w, &self.mine.upgrade()?).then_some((core, w))
    }
}

/// Starts the task that uploads every `sync_interval`, whatever the commit rate: it never
/// waits for a quiet moment. Failures back off (up to `MAX_BACKOFF`) and are reported.
pub(crate) fn spawn_sync(core: &Arc<Core>, slot: &Arc<Slot>, mine: &Arc<Writer>) {
    let owner = Owner::new(core, slot, mine);
    supervise::spawn(
        &core.rt,
        mine.uploader(),
        core.display_url().to_string(),
        move || sync_loop(owner.clone()),
    );
}

/// The upload loop; `Ok` once its replica or this writer is gone, or the writer is fenced.
async fn sync_loop(owner: Owner) -> Result<()> {
    let mut backoff = Duration::ZERO;
    let mut last = Instant::now();
    loop {
        let (interval, wake) = {
            let Some((_, w)) = owner.current() else {
                return Ok(());
            };
            (w.sync_interval(), w)
        };
        let interval = if interval.is_zero() {
            Duration::from_secs(1)
        } else {
            interval
        };
        // Counted from the start of the last upload, not its end, so that under load
        // there is an upload in every interval rather than one per interval + upload.
        let pause = interval.saturating_sub(last.elapsed()).max(backoff);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = wake.wake().notified() => {}
        }
        let Some((core, w)) = owner.current() else {
            return Ok(());
        };
        supervise::fault_point("uploader", core.display_url());
        last = Instant::now();
        match w.upload(&core).await {
            Ok(_) => backoff = Duration::ZERO,
            Err(Error::Conflict(_)) => return Ok(()),
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(250), MAX_BACKOFF);
                tracing::warn!(error = %e, retry_in = ?backoff, "upload failed; the commits stay in the write buffer");
            }
        }
    }
}

/// Starts the compaction loop of `mine`.
pub(crate) fn spawn_compaction(
    core: &Arc<Core>,
    slot: &Arc<Slot>,
    mine: &Arc<Writer>,
    compactor: Compactor,
) {
    let owner = Owner::new(core, slot, mine);
    // Shared by every restart, so a restart keeps the schedule of what is due.
    let compactor = Arc::new(tokio::sync::Mutex::new(compactor));
    supervise::spawn(
        &core.rt,
        mine.compactor(),
        core.display_url().to_string(),
        move || compaction_loop(owner.clone(), compactor.clone()),
    );
}

/// The compaction loop; `Ok` once its replica or this writer is gone, or it is fenced.
async fn compaction_loop(
    owner: Owner,
    compactor: Arc<tokio::sync::Mutex<Compactor>>,
) -> Result<()> {
    let mut compactor = compactor.lock().await;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some((core, w)) = owner.current() else {
            return Ok(());
        };
        if w.is_fenced() {
            return Ok(());
        }
        supervise::fault_point("compactor", core.display_url());
        match compactor.run_due(std::time::Instant::now()).await {
            Ok(report) if report.written.is_empty() && report.deleted.is_empty() => {}
            Ok(report) => {
                tracing::debug!(
                    written = report.written.len(),
                    deleted = report.deleted.len(),
                    "compaction"
                );
                match core.build_at(Target::Latest).await {
                    Ok(v) => w.replace_base(&core, v),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not re-plan after compaction")
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "compaction failed; retrying later"),
        }
    }
}
