//! An immutable state of the database: where every page lives at one TXID.
//!
//! A connection pins one `Version` for the length of a read transaction, so the pages it reads
//! stay consistent while the poller publishes newer versions beside it.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::index::loc::PageLoc;
use crate::index::meta::FileMeta;
use crate::index::pagemap::PageMap;

/// Pages committed by this process's writer that are not in the replica's files yet. Immutable:
/// each local commit publishes a new one, sharing structure with the last (a persistent map, so a
/// commit costs O(pages changed · log n), not a copy of everything pending).
#[derive(Clone, Debug, Default)]
pub struct Overlay {
    /// Page → (local commit sequence that wrote it last, where the page lies in `file`). The
    /// pages themselves stay on disk: memory holds 16 bytes a page, whatever the transaction.
    pub(crate) pages: imbl::OrdMap<u32, (u64, u64)>,
    /// The write buffer file the pages are in.
    pub(crate) file: Option<Arc<File>>,
    /// Database size in pages after the newest local commit.
    pub(crate) commit: u32,
    /// The smallest size the database had since the replica's state: pages above it that the
    /// overlay lacks were truncated away and regrown, so they read as zeros, not as the
    /// replica's old images.
    pub(crate) low: u32,
}

/// The database at one TXID.
#[derive(Clone, Debug)]
pub struct Version {
    txid: u64,
    page_size: u32,
    timestamp_ms: i64,
    map: PageMap,
    overlay: Option<Arc<Overlay>>,
    state_no: u32,
}

impl Version {
    /// Builds a version by applying `files` in order (a restore plan).
    pub fn build(files: &[Arc<FileMeta>]) -> Result<Version> {
        let first = files
            .first()
            .ok_or_else(|| Error::Inconsistent("a version needs at least one file".into()))?;
        Version::empty(first.header.page_size).apply(files)
    }

    /// A database with no pages yet.
    pub(crate) fn empty(page_size: u32) -> Version {
        Version {
            txid: 0,
            page_size,
            timestamp_ms: 0,
            map: PageMap::default(),
            overlay: None,
            state_no: 0,
        }
    }

    /// A new version: this one with `files` applied on top, in order. Costs O(k log n) for k
    /// pages in `files` and n in the database, and shares everything else with `self`.
    pub fn apply(&self, files: &[Arc<FileMeta>]) -> Result<Version> {
        let mut v = self.clone();
        for f in files {
            if f.header.page_size != v.page_size {
                return Err(Error::Inconsistent(format!(
                    "{}: page size {} differs from {} in earlier files",
                    f.path, f.header.page_size, v.page_size
                )));
            }
            if v.txid != 0 && f.key.min_txid > v.txid + 1 {
                return Err(Error::Inconsistent(format!(
                    "TXID gap: {} starts at {:016x} but the database is at {:016x}",
                    f.path, f.key.min_txid, v.txid
                )));
            }
            v.map.apply(f)?;
            v.txid = v.txid.max(f.key.max_txid);
            v.timestamp_ms = v.timestamp_ms.max(f.header.timestamp_ms);
        }
        v.state_no = v.txid as u32;
        Ok(v)
    }

    /// This version with `overlay` (pages committed locally, not uploaded yet) on top, known to
    /// the VFS as state `state_no`.
    pub(crate) fn with_overlay(&self, overlay: Option<Arc<Overlay>>, state_no: u32) -> Version {
        Version {
            overlay,
            state_no,
            ..self.clone()
        }
    }

    /// A number that differs between any two states a connection of this process can see one
    /// after the other: the TXID for states read from the replica, a counter of local commits in
    /// write mode. The VFS shows it to SQLite as the file change counter.
    pub fn state_no(&self) -> u32 {
        self.state_no
    }

    /// Where the page committed locally and not uploaded yet lies in the buffer file:
    /// `Some(None)` for a page that reads as zeros (truncated and regrown, or never written),
    /// `None` when the replica has it.
    fn local_page(&self, pgno: u32) -> Option<Option<u64>> {
        let o = self.overlay.as_ref()?;
        if pgno > o.commit {
            return Some(None);
        }
        match o.pages.get(&pgno) {
            Some((_, at)) => Some(Some(*at)),
            None if pgno > o.low || pgno > self.map.commit() => Some(None),
            None => None,
        }
    }

    /// Reads page `pgno` into `out` (one page) if it was committed locally and is not uploaded
    /// yet; `None` when the replica has it.
    pub(crate) fn read_local(&self, pgno: u32, out: &mut [u8]) -> Option<Result<()>> {
        let at = self.local_page(pgno)?;
        let file = self.overlay.as_ref().and_then(|o| o.file.as_ref());
        Some(match (at, file) {
            (None, _) => {
                out.fill(0);
                Ok(())
            }
            (Some(at), Some(f)) => f.read_exact_at(out, at).map_err(|e| Error::Buffer {
                path: "(write buffer)".into(),
                detail: format!("cannot read page {pgno} of a local commit: {e}"),
            }),
            (Some(_), None) => Err(Error::Inconsistent(format!(
                "page {pgno} of a local commit has no buffer file"
            ))),
        })
    }

    /// The TXID this version reflects.
    pub fn txid(&self) -> u64 {
        self.txid
    }

    /// Database size in pages.
    pub fn commit(&self) -> u32 {
        self.overlay
            .as_ref()
            .map_or(self.map.commit(), |o| o.commit)
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    /// Database size in bytes.
    pub fn db_size(&self) -> u64 {
        u64::from(self.commit()) * u64::from(self.page_size)
    }

    /// Whether pages committed locally are not in the replica yet.
    pub fn has_local_changes(&self) -> bool {
        self.overlay.is_some()
    }

    /// Creation time (ms since epoch) of the newest file in the version.
    pub fn timestamp_ms(&self) -> i64 {
        self.timestamp_ms
    }

    /// The files this version reads from, in the order applied (a page's `file` numbers them).
    pub fn files(&self) -> &imbl::Vector<Arc<FileMeta>> {
        self.map.files()
    }

    /// Bytes the page map keeps alive: the page indexes of its files and the map of the pages
    /// changed since its base. Not the overlay, nor cached pages.
    pub fn resident_bytes(&self) -> usize {
        self.map.resident_bytes()
    }

    pub(crate) fn raw_loc(&self, pgno: u32) -> Option<PageLoc> {
        self.map.loc(pgno).map(|(_, loc)| loc)
    }

    /// Where page `pgno` lies in the replica's files; `None` when it is absent there, or when
    /// the overlay holds a newer image (or truncated it away).
    pub(crate) fn loc(&self, pgno: u32) -> Option<(&Arc<FileMeta>, PageLoc)> {
        if self.local_page(pgno).is_some() {
            return None;
        }
        self.map.loc(pgno)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::testing::{file, lock_page_history};
    use proptest::prelude::*;

    /// The page map as it was: a vector of every page's location, resized to each file's size
    /// and overwritten with its pages.
    fn naive(files: &[Arc<FileMeta>]) -> Vec<Option<PageLoc>> {
        let mut pages: Vec<Option<PageLoc>> = Vec::new();
        for (file, f) in files.iter().enumerate() {
            pages.resize(f.header.commit as usize, None);
            for e in f.index.entries() {
                pages[e.pgno as usize - 1] = Some(PageLoc {
                    file: file as u32,
                    size: e.size,
                    offset: e.offset,
                });
            }
        }
        pages
    }

    fn assert_same(v: &Version, files: &[Arc<FileMeta>]) {
        let model = naive(files);
        assert_eq!(v.commit() as usize, model.len());
        assert_eq!(v.files().len(), files.len());
        for pgno in 0..=model.len() as u32 + 2 {
            let want = pgno
                .checked_sub(1)
                .and_then(|i| model.get(i as usize).copied().flatten());
            assert_eq!(v.raw_loc(pgno), want, "page {pgno}");
            if let Some((meta, loc)) = v.loc(pgno) {
                assert!(Arc::ptr_eq(meta, &files[loc.file as usize]));
            }
        }
    }

    /// How one file of a random history is made.
    #[derive(Clone, Debug)]
    enum Kind {
        /// Every page of the new size.
        Full,
        /// Some pages, plus every page the database grew by (as Litestream writes them).
        Change(Vec<u32>),
        /// Some pages only: regrown pages it lacks must read as absent.
        Bare(Vec<u32>),
    }

    fn history() -> impl Strategy<Value = Vec<(u32, Kind, bool)>> {
        let kind = prop_oneof![
            1 => Just(Kind::Full),
            4 => prop::collection::vec(1u32..=300, 0..40).prop_map(Kind::Change),
            2 => prop::collection::vec(1u32..=300, 0..40).prop_map(Kind::Bare),
        ];
        // (new size, what the file holds, whether a new apply call starts with it).
        prop::collection::vec((1u32..=300, kind, any::<bool>()), 1..24)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn every_page_lies_where_the_naive_map_puts_it(steps in history()) {
            let mut files: Vec<Arc<FileMeta>> = Vec::new();
            let mut versions: Vec<(Version, usize)> = Vec::new();
            let mut batch: Vec<Arc<FileMeta>> = Vec::new();
            let mut v = Version::empty(4096);
            let mut prev = 0;
            for (i, (commit, kind, cut)) in steps.into_iter().enumerate() {
                let mut pages: Vec<u32> = match kind {
                    Kind::Full => (1..=commit).collect(),
                    Kind::Change(p) => p.into_iter().chain(prev + 1..=commit).collect(),
                    Kind::Bare(p) => p,
                };
                pages.retain(|&p| p <= commit);
                pages.sort_unstable();
                pages.dedup();
                prev = commit;
                let f = file(i as u64 + 1, 4096, commit, &pages);
                files.push(f.clone());
                batch.push(f);
                if cut {
                    v = v.apply(&batch).unwrap();
                    batch.clear();
                    versions.push((v.clone(), files.len()));
                }
            }
            v = v.apply(&batch).unwrap();
            versions.push((v, files.len()));
            // Every version, the old ones included, still reads as it did.
            for (v, n) in &versions {
                assert_same(v, &files[..*n]);
            }
        }
    }

    #[test]
    fn versions_around_the_lock_page_read_like_the_naive_map() {
        let files = lock_page_history();
        let v = Version::build(&files).unwrap();
        assert_same(&v, &files);
        assert_eq!(v.raw_loc(ltx::lock_pgno(65536)), None);
        assert_same(&Version::build(&files[..3]).unwrap(), &files[..3]);
    }
}
