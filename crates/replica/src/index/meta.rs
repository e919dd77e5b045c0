//! Per-file metadata: an LTX file's header and page index, loaded once and kept, since LTX
//! objects are immutable. The index is kept compact ([`FrameIndex`]): it is the only copy of a
//! file's page locations, which versions read through.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;

use crate::error::{Error, Result};
use crate::index::frames::{FrameIndex, FrameIndexBuilder};
use crate::index::head;
use crate::index::loc::PageLoc;
use crate::stats::Stats;
use crate::store::listing::{FileInfo, FileKey};
use crate::store::remote::Remote;

/// Files up to this size are fetched whole: one request yields header, index and every page,
/// and lets us verify the file checksum. Most level-0 files are this small.
pub const WHOLE_FILE_MAX: u64 = 64 * 1024;

/// Smallest first guess of the trailer + index size (Litestream always guesses 32 KiB).
const SUFFIX_MIN: u64 = 32 * 1024;
/// Largest first guess.
const SUFFIX_MAX: u64 = 2 * 1024 * 1024;

/// An index costs about 8 bytes per page, and frames of real database pages rarely compress
/// below ~1 KiB, so `size / 128` usually holds the whole index in the first GET; a miss costs
/// one more round trip, an overshoot only bytes. (Measured on the benchmark's 104 MB snapshot:
/// `size / 64` fetched twice the bytes for the same requests; `size / 256` needed a second GET.)
fn suffix_guess(size: u64) -> u64 {
    (size / 128).clamp(SUFFIX_MIN, SUFFIX_MAX)
}

/// Header and page index of one LTX file.
#[derive(Debug)]
pub struct FileMeta {
    /// Process-unique id: the first half of page-cache keys.
    pub id: u64,
    /// Level and TXID range, from the name (and checked against the header).
    pub key: FileKey,
    /// Object key.
    pub path: Path,
    /// Object size.
    pub size: u64,
    /// The decoded header.
    pub header: ltx::Header,
    /// Page frames, ascending pgno.
    pub index: FrameIndex,
}

impl FileMeta {
    /// The metadata of the file `info` names, stored at `path`, from its decoded header and
    /// page index. Cross-checks them against the name and the listing, and compacts the index.
    pub fn new(
        id: u64,
        info: &FileInfo,
        path: Path,
        header: ltx::Header,
        entries: &[ltx::PageIndexEntry],
    ) -> Result<FileMeta> {
        let mut b = IndexBuilder::new(&path, info, &header)?;
        for e in entries {
            b.push(e)?;
        }
        let index = b.finish();
        Ok(FileMeta::with_index(id, info, path, header, index))
    }

    /// [`FileMeta::new`] with the index already checked and compacted by an [`IndexBuilder`].
    fn with_index(
        id: u64,
        info: &FileInfo,
        path: Path,
        header: ltx::Header,
        index: FrameIndex,
    ) -> FileMeta {
        FileMeta {
            id,
            key: FileKey::from(info),
            path,
            size: info.size,
            header,
            index,
        }
    }

    /// Decodes the frames of `run` (pgno, location) out of `bytes`, which hold this file's bytes
    /// from offset `base`. Each frame must decompress to exactly one page and hold the page the
    /// index says; `each` gets (pgno, frame offset, page).
    pub(crate) fn decode_run(
        &self,
        bytes: &[u8],
        base: u64,
        run: &[(u32, PageLoc)],
        page_size: u32,
        mut each: impl FnMut(u32, u64, Vec<u8>),
    ) -> Result<()> {
        for &(pgno, loc) in run {
            let start = (loc.offset - base) as usize;
            let frame =
                bytes
                    .get(start..start + loc.size as usize)
                    .ok_or_else(|| Error::Corrupt {
                        key: self.path.to_string(),
                        source: ltx::Error::Truncated {
                            what: "page frame",
                            needed: u64::from(loc.size),
                            got: bytes.len().saturating_sub(start) as u64,
                        },
                    })?;
            let mut page = vec![0u8; page_size as usize];
            let got = ltx::decode_page_frame(frame, page_size, &mut page).map_err(|source| {
                Error::Corrupt {
                    key: self.path.to_string(),
                    source,
                }
            })?;
            if got != pgno {
                return Err(Error::Inconsistent(format!(
                    "{}: the index puts page {pgno} at offset {}, but the frame there holds page {got}",
                    self.path, loc.offset
                )));
            }
            each(pgno, loc.offset, page);
        }
        Ok(())
    }
}

/// A loaded file, plus its decoded pages when the whole file was fetched anyway.
pub(crate) struct Loaded {
    pub meta: Arc<FileMeta>,
    pub pages: Vec<(u64, Bytes)>,
}

/// Fetches and validates the header and index of `info`, stored at `path`. With `verify`, a
/// file too large to keep whole is still fetched whole once, to check its file checksum; its
/// pages are then read by range like any other.
pub(crate) async fn load(
    remote: &Remote,
    info: &FileInfo,
    path: Path,
    id: u64,
    verify: bool,
) -> Result<Loaded> {
    Stats::add(&remote.stats.index_loads, 1);
    let corrupt = |source| Error::Corrupt {
        key: path.to_string(),
        source,
    };
    let small = info.size <= WHOLE_FILE_MAX;
    if small || verify {
        let bytes = remote.get_whole(&path).await?;
        // A small file's pages go to the cache; a large one is only checked.
        return from_bytes(&bytes, info, path, id, small);
    }
    let (head, tail) = futures::try_join!(
        remote.get_range(&path, head::range(info.size)),
        remote.get_tail(&path, info.size, suffix_guess(info.size)),
    )?;
    let header = ltx::Header::decode(&head).map_err(corrupt)?;
    // Entries go straight into the compact index: a snapshot's decoded index is 16 bytes a
    // page, which for a 100 GB database is 420 MB held for nothing.
    let mut b = IndexBuilder::new(&path, info, &header)?;
    let visit = |tail: &[u8], b: &mut IndexBuilder<'_>| {
        let mut bad = None;
        let need = ltx::visit_page_index(info.size, tail, |e| {
            if bad.is_none() {
                bad = b.push(&e).err();
            }
        })
        .map_err(corrupt)?;
        bad.map_or(Ok(need), Err)
    };
    if let Some(n) = visit(&tail, &mut b)? {
        drop(tail);
        let tail = remote.get_tail(&path, info.size, n).await?;
        if let Some(m) = visit(&tail, &mut b)? {
            return Err(Error::Inconsistent(format!(
                "{path}: page index still incomplete after fetching {n} bytes (wants {m})"
            )));
        }
    }
    let index = b.finish();
    let pages = head::pages(&head, index.entries(), header.page_size, &path)?;
    Ok(Loaded {
        meta: Arc::new(FileMeta::with_index(id, info, path, header, index)),
        pages,
    })
}

/// A file whose bytes are all at hand (a whole-file GET, or a file this process just
/// uploaded): checks its checksum, header and index, and with `keep_pages` decodes its pages for
/// the cache.
pub(crate) fn from_bytes(
    bytes: &[u8],
    info: &FileInfo,
    path: Path,
    id: u64,
    keep_pages: bool,
) -> Result<Loaded> {
    let mut pages = Vec::new();
    let file = ltx::decode_file_with(bytes, |_, page| {
        if keep_pages {
            pages.push(Bytes::copy_from_slice(page));
        }
    })
    .map_err(|source| Error::Corrupt {
        key: path.to_string(),
        source,
    })?;
    let pages = file.index.iter().map(|e| e.offset).zip(pages).collect();
    Ok(Loaded {
        meta: Arc::new(FileMeta::new(id, info, path, file.header, &file.index)?),
        pages,
    })
}

/// The header of the file `info` names, stored at `path`, must cover the TXIDs of its name.
pub(crate) fn check_txids(path: &Path, info: &FileInfo, header: &ltx::Header) -> Result<()> {
    if (header.min_txid, header.max_txid) != (info.min_txid, info.max_txid) {
        return Err(Error::Inconsistent(format!(
            "{path}: the header covers TXIDs {:016x}-{:016x}, which disagrees with the file name",
            header.min_txid, header.max_txid
        )));
    }
    Ok(())
}

/// Checks a file's index entry by entry against what its name, listing and header say, and
/// compacts it: one place for both, whether the entries come from a `Vec` or a parser.
pub(crate) struct IndexBuilder<'a> {
    path: &'a Path,
    size: u64,
    commit: u32,
    lock_pgno: u32,
    frames: FrameIndexBuilder,
}

impl<'a> IndexBuilder<'a> {
    pub(crate) fn new(
        path: &'a Path,
        info: &FileInfo,
        header: &ltx::Header,
    ) -> Result<IndexBuilder<'a>> {
        check_txids(path, info, header)?;
        Ok(IndexBuilder {
            path,
            size: info.size,
            commit: header.commit,
            lock_pgno: header.lock_pgno(),
            frames: FrameIndexBuilder::default(),
        })
    }

    pub(crate) fn push(&mut self, e: &ltx::PageIndexEntry) -> Result<()> {
        let path = self.path;
        if e.pgno > self.commit {
            return Err(Error::Inconsistent(format!(
                "{path}: page {} in the index is above the database size of {} pages",
                e.pgno, self.commit
            )));
        }
        // Whole-file decoding refuses the lock page; an index read alone must too.
        if e.pgno == self.lock_pgno {
            return Err(Error::Inconsistent(format!(
                "{path}: the index holds page {}, the lock page, which is never stored",
                e.pgno
            )));
        }
        if e.end() > self.size {
            return Err(Error::Inconsistent(format!(
                "{path}: page {} lies outside the object ({} bytes)",
                e.pgno, self.size
            )));
        }
        self.frames
            .push(e)
            .map_err(|why| Error::Inconsistent(format!("{path}: {why}")))
    }

    pub(crate) fn finish(self) -> FrameIndex {
        self.frames.finish()
    }
}
