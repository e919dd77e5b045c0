//! The writer's state under its lock: the buffer, the replica's state as the writer last made
//! it, and the overlay of local commits not uploaded yet.

use std::sync::Arc;
use tokio::time::Instant;

use crate::error::Result;
use crate::index::meta;
use crate::index::version::{Overlay, Version};
use crate::write::buffer::{Buffer, Commit, Intent};
use crate::write::upload::Encoded;

/// What the writer holds under its lock.
pub(crate) struct State {
    pub(crate) buffer: Buffer,
    /// The replica's state as this writer last made it (no overlay).
    pub(crate) base: Arc<Version>,
    pub(crate) overlay: Option<Arc<Overlay>>,
    pub(crate) state_no: u32,
    pub(crate) next_seq: u64,
    /// Commits not uploaded yet: (seq, where its record ends in the buffer, size, when).
    pub(crate) pending: Vec<(u64, u64, u32, Instant)>,
    /// Upload attempts for `base.txid() + 1`, whose responses may have been lost.
    pub(crate) attempts: Vec<(Intent, Encoded)>,
    pub(crate) fenced: Option<String>,
    /// Write mode was turned off: no more commits.
    pub(crate) retired: bool,
    pub(crate) last_error: Option<String>,
    pub(crate) failing_since: Option<Instant>,
    pub(crate) uploads: u64,
    pub(crate) upload_errors: u64,
    pub(crate) verified: Instant,
}

impl State {
    /// The version connections read: the base plus the overlay.
    pub(crate) fn view(&self) -> Version {
        self.base.with_overlay(self.overlay.clone(), self.state_no)
    }

    /// Adds a recorded commit to the overlay.
    pub(crate) fn apply(&mut self, c: &Commit, end: u64) {
        let mut o = self.overlay.as_deref().cloned().unwrap_or_else(|| Overlay {
            pages: imbl::OrdMap::new(),
            file: None,
            commit: self.base.commit(),
            low: self.base.commit(),
        });
        o.file = Some(self.buffer.file());
        if c.commit < o.commit {
            let cut: Vec<u32> = o.pages.range(c.commit + 1..).map(|(p, _)| *p).collect();
            for p in cut {
                o.pages.remove(&p);
            }
        }
        for (pgno, at) in &c.pages {
            if *pgno <= c.commit {
                o.pages.insert(*pgno, (c.seq, *at));
            }
        }
        o.commit = c.commit;
        o.low = o.low.min(c.commit);
        self.overlay = Some(Arc::new(o));
        self.state_no = self.state_no.wrapping_add(1);
        self.pending.push((c.seq, end, c.commit, Instant::now()));
    }

    /// After the file holding commits up to `last_seq` is in the replica: it becomes the base,
    /// the overlay keeps only later commits, and the buffer drops what was uploaded.
    pub(crate) fn rebase_after_upload(
        &mut self,
        last_seq: u64,
        file: &Arc<meta::FileMeta>,
    ) -> Result<()> {
        let base = self.base.apply(std::slice::from_ref(file))?;
        let keep: Vec<_> = self
            .pending
            .iter()
            .filter(|p| p.0 > last_seq)
            .copied()
            .collect();
        let uploaded_end = self
            .pending
            .iter()
            .filter(|p| p.0 <= last_seq)
            .map(|p| p.1)
            .max();
        // The buffer first: if it fails, nothing changed. Kept pages move with their records.
        let delta = match uploaded_end {
            Some(end) => self.buffer.rebase(base.txid(), end)?,
            None => 0,
        };
        self.overlay = match (&self.overlay, keep.is_empty()) {
            (Some(o), false) => {
                let pages = o
                    .pages
                    .iter()
                    .filter(|(_, (seq, _))| *seq > last_seq)
                    .map(|(p, (seq, at))| (*p, (*seq, (*at as i64 - delta) as u64)))
                    .collect();
                let low = keep.iter().map(|p| p.2).fold(base.commit(), u32::min);
                Some(Arc::new(Overlay {
                    pages,
                    file: Some(self.buffer.file()),
                    commit: o.commit,
                    low,
                }))
            }
            _ => None,
        };
        self.pending = keep
            .into_iter()
            .map(|(s, e, c, t)| (s, (e as i64 - delta) as u64, c, t))
            .collect();
        self.base = Arc::new(base.with_overlay(None, 0));
        self.attempts.clear();
        Ok(())
    }
}
