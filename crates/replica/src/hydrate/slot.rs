//! The hydration of one replica, if any: started at an open that asks for it, stopped when the
//! last connection closes or write mode begins.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::hydrate::download::run;
use crate::hydrate::file::{Hydrator, LocalReader};
use crate::hydrate::options::{HydrationOptions, HydrationStatus};
use crate::index::version::Version;
use crate::read::core::Core;
use crate::supervise;

/// A replica's hydrator slot.
#[derive(Default)]
pub(crate) struct Hydration {
    hydrator: Mutex<Option<Arc<Hydrator>>>,
}

impl Hydration {
    /// Stops hydrating (the last connection closed, or write mode begins), releasing the file;
    /// a later open resumes from the sidecar.
    pub(crate) fn stop(&self) {
        if let Some(h) = self.hydrator.lock().take() {
            h.close();
        }
    }

    /// Whether a hydrator runs (or gave up and keeps its status).
    pub(crate) fn is_on(&self) -> bool {
        self.hydrator.lock().is_some()
    }

    /// Starts hydrating `core`'s replica, following new versions at least every `interval`
    /// (once per replica; later calls with other options only log).
    pub(crate) fn start(&self, core: &Arc<Core>, opts: &HydrationOptions, interval: Duration) {
        let mut slot = self.hydrator.lock();
        if let Some(h) = slot.as_ref() {
            if opts.path.as_ref().is_some_and(|p| *p != h.path) {
                tracing::warn!(requested = ?opts.path, active = %h.path.display(), "this replica already hydrates to another file; keeping it");
            }
            return;
        }
        let h = Arc::new(Hydrator::open(opts, core.display_url()));
        *slot = Some(h.clone());
        if h.file.is_none() {
            return;
        }
        let weak = Arc::downgrade(core);
        let on_give_up = h.clone();
        // Object storage failing for a moment (an error the store's own retries did not get
        // past) and a panic are restarted by the supervisor after its back-off, and the
        // download resumes from its sidecar; any other error ends hydration for good (reads
        // stay remote, the status says why), as does giving up.
        supervise::spawn_then(
            &core.rt,
            h.health.clone(),
            core.display_url().to_string(),
            move || {
                let (weak, h) = (weak.clone(), h.clone());
                async move {
                    match run(weak, h.clone(), interval).await {
                        Err(e) if h.closed.load(Relaxed) => {
                            tracing::debug!(error = %e, "hydration closed")
                        }
                        Err(e) if e.is_transient() => return Err(e),
                        Err(e) => h.fail(e.to_string()),
                        Ok(()) => {}
                    }
                    Ok(())
                }
            },
            move |cause| on_give_up.fail(cause),
        );
    }

    /// Failures of the hydration loop so far.
    pub(crate) fn task_failures(&self) -> u64 {
        self.hydrator
            .lock()
            .as_ref()
            .map_or(0, |h| h.health.failures())
    }

    /// Hydration progress, if hydration was requested.
    pub(crate) fn status(&self) -> Option<HydrationStatus> {
        self.hydrator.lock().as_ref().map(|h| h.status())
    }

    /// A read hold on the hydrated file for a transaction pinned to `version`, when the file
    /// holds exactly that state.
    pub(crate) fn local_reader(&self, version: &Version) -> Option<LocalReader> {
        self.hydrator.lock().clone()?.reader(version)
    }
}
