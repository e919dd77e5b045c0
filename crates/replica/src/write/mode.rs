//! The write-mode side of a replica: at most one writer, attached at an open in write mode or by
//! `PRAGMA litestream_write_enabled = 1`, detached by `= 0`; commits, uploads and the state the
//! VFS asks about go through here.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::index::version::Version;
use crate::read::core::Core;
use crate::runtime;
use crate::write::compact::Compactor;
use crate::write::tasks::{self, Slot};
use crate::write::writer::{TxPages, WriteOptions, WriteStatus, Writer};

/// A replica's writer slot and what turns it on and off.
pub(crate) struct WriteMode {
    core: Arc<Core>,
    slot: Arc<Slot>,
    /// Serializes attaching and detaching a writer.
    attach: Mutex<()>,
}

impl WriteMode {
    pub(crate) fn new(core: Arc<Core>) -> WriteMode {
        WriteMode {
            core,
            slot: Arc::default(),
            attach: Mutex::new(()),
        }
    }

    /// The writer, in write mode.
    pub(crate) fn writer(&self) -> Option<Arc<Writer>> {
        self.slot.read().clone()
    }

    /// Turns on write mode for the replica at `url` (once per process; later calls join the
    /// writer): recovers the buffer and starts the sync and compaction tasks. `before` runs
    /// once the settings are checked, before anything is recovered.
    pub(crate) fn attach(
        &self,
        url: &str,
        opts: &WriteOptions,
        before: impl FnOnce(),
    ) -> Result<()> {
        let _one = self.attach.lock();
        if let Some(w) = self.writer() {
            if w.sync_interval() != opts.sync_interval {
                tracing::warn!(
                    "this replica already has a writer in this process; its settings stay in force"
                );
            }
            return Ok(());
        }
        let url = url.trim().to_string();
        let catalog = &self.core.catalog;
        let opts_compaction = opts.compaction.clone();
        // Checked before anything is recovered: a bad setting must not leave a writer running.
        Compactor::new(
            catalog.remote.clone(),
            catalog.layout,
            opts_compaction.clone(),
        )?;
        before();
        let base = Version::clone(&self.core.current.get());
        let core = self.core.clone();
        let opts = opts.clone();
        let w = runtime::block_on(async move { Writer::recover(&url, opts, base, &core).await })?;
        let w = Arc::new(w);
        self.core.current.take_over(w.view());
        *self.slot.write() = Some(w.clone());
        tasks::spawn_sync(&self.core, &self.slot, &w);
        let compactor = Compactor::new(catalog.remote.clone(), catalog.layout, opts_compaction)?
            .with_spool(w.spool_prefix());
        tasks::spawn_compaction(&self.core, &self.slot, &w, compactor);
        // Commits recovered from the buffer go up now, not one interval later.
        if w.status().pending_commits > 0 {
            w.nudge();
        }
        Ok(())
    }

    /// Uploads what is pending, then, if nothing was committed meanwhile, retires the writer:
    /// its buffer lock is released at once, its tasks stop, and the replica may be followed
    /// again. `Ok(false)` when there was no writer. On an upload failure write mode stays on
    /// and the error is returned.
    pub(crate) fn detach(&self) -> Result<bool> {
        let _one = self.attach.lock();
        let Some(w) = self.writer() else {
            return Ok(false);
        };
        let (core, up) = (self.core.clone(), w.clone());
        runtime::block_on(async move { up.upload(&core).await })?;
        w.retire()?;
        *self.slot.write() = None;
        self.core.current.release_local();
        // The sync task sleeps holding the writer: wake it so it sees there is none and ends.
        w.nudge();
        Ok(true)
    }

    /// Records a committed transaction: `pages` changed, `commit` pages in all. With `sync`,
    /// returns once the buffer record is on disk. Every connection reads the returned state at
    /// once.
    pub(crate) fn commit(
        &self,
        pages: TxPages<'_>,
        commit: u32,
        page_size: u32,
        sync: bool,
    ) -> Result<Arc<Version>> {
        let w = self.require()?;
        w.commit(&self.core, pages, commit, page_size, sync)?;
        Ok(self.core.current.get())
    }

    /// Uploads every committed transaction now; returns the replica's TXID afterwards.
    pub(crate) fn sync_now(&self) -> Result<u64> {
        let w = self.require()?;
        let core = self.core.clone();
        runtime::block_on(async move { w.upload(&core).await })?;
        Ok(self.core.current.get().txid())
    }

    /// Whether a write transaction may start now (write mode, not fenced, uploads healthy).
    pub(crate) fn check_writable(&self) -> Result<()> {
        self.require()?.check_writable()
    }

    /// The writer's state, in write mode.
    pub(crate) fn status(&self) -> Option<WriteStatus> {
        self.slot.read().as_ref().map(|w| w.status())
    }

    fn require(&self) -> Result<Arc<Writer>> {
        self.writer().ok_or_else(|| {
            Error::Config("this database was opened read-only; set LITESTREAM_WRITE_ENABLED=true (or the URI parameter write_enabled=true) to write".into())
        })
    }

    /// The last connection closed: upload what is pending. A failure is logged; the commits
    /// stay in the buffer and go up at the next open.
    pub(crate) fn flush_on_close(&self) {
        let Some(w) = self.writer() else {
            return;
        };
        if w.status().pending_commits == 0 {
            return;
        }
        let core = self.core.clone();
        let limit = Duration::from_secs(30);
        let r = runtime::block_on(async move {
            match tokio::time::timeout(limit, w.upload(&core)).await {
                Ok(uploaded) => uploaded.map(|_| ()),
                Err(_) => Err(Error::Unavailable {
                    op: "upload at close",
                    key: core.display_url().to_string(),
                    elapsed: limit,
                    detail: "timed out".into(),
                }),
            }
        });
        if let Err(e) = r {
            tracing::error!(error = %e, "upload at close failed; the committed transactions stay in the write buffer and are uploaded at the next open");
        }
    }
}
