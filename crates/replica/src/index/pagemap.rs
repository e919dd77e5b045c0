//! Where every page of one version lies, at a cost that follows the changes, not the database.
//!
//! A *base* file (the first file of the plan, or the last one that held every page) answers for
//! most pages straight from its own compact index, which the catalog holds anyway: nothing is
//! stored per page beyond it. Pages that later files wrote are in `changed`, a persistent
//! (structure-sharing) map from page to file number, so applying a file of k pages costs
//! O(k log n) and the versions that readers still pin share everything else.
//!
//! Truncation: pages above the smallest size the database had since the base (`low`) no longer
//! come from the base; a later file that regrew the database carries every regrown page
//! (Litestream writes all of them), and any it lacks read as absent, as they would from a
//! restore.

use std::mem::size_of;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::index::loc::PageLoc;
use crate::index::meta::FileMeta;

/// Bytes one entry of `changed` costs on average, node overhead included, for
/// [`PageMap::resident_bytes`]: imbl's B-tree leaves hold up to 16 `(u32, u32)` pairs in 144
/// bytes plus a counted pointer, and are at least half full.
const CHANGED_ENTRY_BYTES: usize = 16;

/// The page map of one version.
#[derive(Clone, Debug, Default)]
pub(crate) struct PageMap {
    /// The files the version reads from, in the order applied; a page's file number indexes
    /// this. Persistent too: appending one does not copy the others.
    files: imbl::Vector<Arc<FileMeta>>,
    /// The file number of the base; `None` before the first file.
    base: Option<u32>,
    /// The smallest database size since the base: base pages above it were truncated away.
    low: u32,
    /// Database size in pages.
    commit: u32,
    /// Page → number of the newest file after the base that holds it. No key exceeds `commit`.
    changed: imbl::OrdMap<u32, u32>,
}

impl PageMap {
    /// Adds `f` on top: its pages replace earlier ones, and its size truncates or grows the
    /// database. A file that holds every page (a snapshot, or a full rewrite) becomes the base
    /// and empties `changed`.
    pub(crate) fn apply(&mut self, f: &Arc<FileMeta>) -> Result<()> {
        let file_no = u32::try_from(self.files.len())
            .map_err(|_| Error::Inconsistent("too many LTX files in one version".into()))?;
        self.files.push_back(f.clone());
        let commit = f.header.commit;
        if self.base.is_none() || holds_every_page(f) {
            self.base = Some(file_no);
            self.low = commit;
            self.commit = commit;
            self.changed = imbl::OrdMap::new();
            return Ok(());
        }
        if commit < self.commit {
            // Costs what those pages cost to add; a persistent map has no cheap split.
            let gone: Vec<u32> = self.changed.range(commit + 1..).map(|(p, _)| *p).collect();
            for p in gone {
                self.changed.remove(&p);
            }
        }
        self.low = self.low.min(commit);
        self.commit = commit;
        for pgno in f.index.pgnos() {
            self.changed.insert(pgno, file_no);
        }
        Ok(())
    }

    /// Database size in pages.
    pub(crate) fn commit(&self) -> u32 {
        self.commit
    }

    /// The files applied, in order.
    pub(crate) fn files(&self) -> &imbl::Vector<Arc<FileMeta>> {
        &self.files
    }

    /// The file that holds page `pgno` and where its frame lies; `None` when the page is
    /// absent (above the size, truncated and not rewritten, or never written).
    pub(crate) fn loc(&self, pgno: u32) -> Option<(&Arc<FileMeta>, PageLoc)> {
        if pgno == 0 || pgno > self.commit {
            return None;
        }
        let file = match self.changed.get(&pgno) {
            Some(&file) => file,
            None if pgno <= self.low => self.base?,
            None => return None,
        };
        let meta = self.files.get(file as usize)?;
        let (offset, size) = meta.index.find(pgno)?;
        Some((meta, PageLoc { file, size, offset }))
    }

    /// Bytes this map keeps alive: the page indexes of its files (each once, though the
    /// catalog shares them), the changed-page map (estimated per entry) and the files table.
    pub(crate) fn resident_bytes(&self) -> usize {
        let indexes: usize = self
            .files
            .iter()
            .map(|f| size_of::<FileMeta>() + f.index.resident_bytes())
            .sum();
        size_of::<Self>()
            + indexes
            + self.files.len() * size_of::<Arc<FileMeta>>()
            + self.changed.len() * CHANGED_ENTRY_BYTES
    }
}

/// Whether `f` holds every page of the database it describes. The meta checks guarantee pages
/// ascending, distinct, within `1..=commit` and never the lock page, so counting suffices.
fn holds_every_page(f: &FileMeta) -> bool {
    let commit = f.header.commit;
    let lock = ltx::lock_pgno(f.header.page_size);
    let expected = commit - u32::from(lock <= commit);
    f.index.len() == expected as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::testing::lock_page_history;
    use crate::store::listing::FileInfo;
    use ltx::lock_pgno;

    #[test]
    fn a_full_file_around_the_lock_page_becomes_the_base() {
        // 64 KiB pages put the lock page at 16385.
        let files = lock_page_history();
        let map = |files: &[Arc<FileMeta>]| {
            let mut m = PageMap::default();
            files.iter().for_each(|f| m.apply(f).unwrap());
            m
        };
        let m = map(&files);
        assert_eq!(
            (m.base, m.low, m.changed.len()),
            (Some(3), lock_pgno(65536) + 10, 2)
        );
        // The truncation dropped file 1's pages above the new size from the changed map.
        let m = map(&files[..3]);
        assert_eq!((m.base, m.low), (Some(0), lock_pgno(65536) - 5));
        assert_eq!(m.changed.keys().copied().collect::<Vec<_>>(), [3, 7]);
    }

    #[test]
    fn an_index_holding_the_lock_page_is_refused() {
        let lock = ltx::lock_pgno(65536);
        let entries = [ltx::PageIndexEntry {
            pgno: lock,
            offset: 100,
            size: 50,
        }];
        let info = FileInfo {
            level: 0,
            min_txid: 2,
            max_txid: 2,
            size: 1000,
            created_ms: 0,
        };
        let header = ltx::Header::unchecksummed(65536, lock + 1, 2, 2, 0);
        let err = FileMeta::new(1, &info, "x".into(), header, &entries).unwrap_err();
        assert!(err.to_string().contains("lock page"), "{err}");
    }
}
