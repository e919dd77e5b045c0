//! What one upload sends: the level-0 LTX file of the pending overlay (in memory, or streamed
//! into a spool file when large), and the file checksum that tells this writer's own uploads
//! from another's.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;

use crate::error::{Error, Result};
use crate::index::meta::{self, FileMeta, Loaded};
use crate::index::plan::FileInfo;
use crate::index::version::{Overlay, Version};
use crate::read::core::Core;
use crate::store::spool::{Spool, SPOOL_ABOVE};

/// Wall-clock time in ms since the epoch, as LTX headers carry it.
pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The file checksum of the level-0 file of `txid` in the replica (its last 8 bytes), if the
/// object is at least that long: what tells this writer's own uploads from another's. One HEAD
/// for the size, then a bounded range: Azure has no suffix range, and no listing is at hand.
pub(crate) async fn remote_checksum(core: &Core, txid: u64) -> Result<Option<u64>> {
    let remote = &core.catalog.remote;
    let key = core.catalog.layout.file_key(&remote.root, 0, txid, txid);
    let size = remote.size_of(&key).await?;
    if size < 8 {
        return Ok(None);
    }
    let tail = remote.get_tail(&key, size, 8).await?;
    Ok(ltx::Trailer::file_checksum_at_end(&tail))
}

/// An encoded level-0 file: in memory when small; when large, what the writer needs of it once
/// it has gone up (its spool file lives only as long as the upload).
#[derive(Clone, Debug)]
pub(crate) enum Encoded {
    Memory(Bytes),
    Spooled {
        header: ltx::Header,
        index: Arc<[ltx::PageIndexEntry]>,
        size: u64,
        checksum: u64,
    },
}

impl Encoded {
    pub(crate) fn checksum(&self) -> u64 {
        match self {
            Encoded::Memory(b) => ltx::Trailer::file_checksum_at_end(b).unwrap_or(0),
            Encoded::Spooled { checksum, .. } => *checksum,
        }
    }

    pub(crate) fn size(&self) -> u64 {
        match self {
            Encoded::Memory(b) => b.len() as u64,
            Encoded::Spooled { size, .. } => *size,
        }
    }

    /// The file as the catalog holds it once uploaded. A small file is decoded (and so
    /// verified) again, its pages kept for the cache when `keep_pages`; a spooled one is
    /// described from what its encoder recorded, without reading it back.
    pub(crate) fn load(
        &self,
        info: &FileInfo,
        key: Path,
        id: u64,
        keep_pages: bool,
    ) -> Result<Loaded> {
        match self {
            Encoded::Memory(b) => meta::from_bytes(b, info, key, id, keep_pages),
            Encoded::Spooled { header, index, .. } => Ok(Loaded {
                meta: Arc::new(FileMeta::new(id, info, key, header.clone(), index)?),
                pages: Vec::new(),
            }),
        }
    }
}

/// Encodes the level-0 file of TXID `txid` (see [`add_pages`]): in memory, or, above
/// [`SPOOL_ABOVE`], into a spool file at `spool_path`, returned for the upload to send.
pub(crate) fn encode_upload(
    base: &Version,
    o: &Overlay,
    txid: u64,
    spool_path: &std::path::Path,
) -> Result<(Encoded, Option<Spool>)> {
    let header = ltx::Header::unchecksummed(base.page_size(), o.commit, txid, txid, now_ms());
    let raw = o.pages.len() as u64 * u64::from(base.page_size());
    if raw <= SPOOL_ABOVE {
        let mut enc = ltx::Encoder::new(header).map_err(|e| corrupt(txid, e))?;
        add_pages(base, o, txid, &mut enc)?;
        let bytes = enc.finish(0).map_err(|e| corrupt(txid, e))?;
        return Ok((Encoded::Memory(Bytes::from(bytes)), None));
    }
    let spool = Spool::create(spool_path.to_path_buf())?;
    let mut enc =
        ltx::Encoder::to_writer(header.clone(), spool.writer()).map_err(|e| corrupt(txid, e))?;
    add_pages(base, o, txid, &mut enc)?;
    let index: Arc<[ltx::PageIndexEntry]> = enc.index().into();
    enc.finish(0).map_err(|e| corrupt(txid, e))?;
    let encoded = {
        let source = spool.source()?;
        Encoded::Spooled {
            header,
            index,
            size: source.size(),
            checksum: source.file_checksum()?,
        }
    };
    Ok((encoded, Some(spool)))
}

fn corrupt(txid: u64, source: ltx::Error) -> Error {
    Error::Corrupt {
        key: format!("(upload of TXID {txid:016x})"),
        source,
    }
}

/// The pages of the level-0 file of TXID `txid`: every page of the overlay, plus zeros for
/// pages that were truncated away and regrown without being written (readers would otherwise
/// keep the old images). TXID 1 is a snapshot and carries every page.
fn add_pages<W: std::io::Write>(
    base: &Version,
    o: &Overlay,
    txid: u64,
    enc: &mut ltx::Encoder<W>,
) -> Result<()> {
    let page_size = base.page_size();
    let zeros = vec![0u8; page_size as usize];
    let lock = ltx::lock_pgno(page_size);
    let fill_from = if txid == 1 {
        0
    } else {
        o.low.min(base.commit())
    };
    let mut next_fill = fill_from + 1;
    let mut page = vec![0u8; page_size as usize];
    let file = o.file.as_ref();
    for (pgno, (_, at)) in o.pages.iter() {
        file.ok_or_else(|| Error::Inconsistent("local commits without a buffer file".into()))?
            .read_exact_at(&mut page, *at)
            .map_err(|e| Error::Buffer {
                path: "(write buffer)".into(),
                detail: format!("cannot read page {pgno} for the upload: {e}"),
            })?;
        while next_fill < *pgno && next_fill <= o.commit {
            if next_fill != lock {
                enc.add_page(next_fill, &zeros)
                    .map_err(|e| corrupt(txid, e))?;
            }
            next_fill += 1;
        }
        enc.add_page(*pgno, &page).map_err(|e| corrupt(txid, e))?;
        next_fill = next_fill.max(pgno + 1);
    }
    while next_fill <= o.commit {
        if next_fill != lock {
            enc.add_page(next_fill, &zeros)
                .map_err(|e| corrupt(txid, e))?;
        }
        next_fill += 1;
    }
    Ok(())
}
