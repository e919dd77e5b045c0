//! What one upload sends: the level-0 LTX file of the pending overlay, and the file checksum
//! that tells this writer's own uploads from another's.

use std::os::unix::fs::FileExt;

use crate::error::{Error, Result};
use crate::index::version::{Overlay, Version};
use crate::read::core::Core;

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
    Ok((tail.len() == 8).then(|| trailer_checksum(&tail)))
}

pub(crate) fn trailer_checksum(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    let mut a = [0u8; 8];
    if n >= 8 {
        a.copy_from_slice(&bytes[n - 8..]);
    }
    u64::from_be_bytes(a)
}

/// The level-0 file of TXID `txid`: every page of the overlay, plus zeros for pages that were
/// truncated away and regrown without being written (readers would otherwise keep the old
/// images). TXID 1 is a snapshot and carries every page.
pub(crate) fn encode_upload(base: &Version, o: &Overlay, txid: u64) -> Result<Vec<u8>> {
    let page_size = base.page_size();
    let header = ltx::Header::unchecksummed(page_size, o.commit, txid, txid, now_ms());
    let corrupt = |source| Error::Corrupt {
        key: format!("(upload of TXID {txid:016x})"),
        source,
    };
    let mut enc = ltx::Encoder::new(header).map_err(corrupt)?;
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
                enc.add_page(next_fill, &zeros).map_err(corrupt)?;
            }
            next_fill += 1;
        }
        enc.add_page(*pgno, &page).map_err(corrupt)?;
        next_fill = next_fill.max(pgno + 1);
    }
    while next_fill <= o.commit {
        if next_fill != lock {
            enc.add_page(next_fill, &zeros).map_err(corrupt)?;
        }
        next_fill += 1;
    }
    enc.finish(0).map_err(corrupt)
}
