//! Test fixtures for the index: synthetic LTX file metadata, without a store.

use std::sync::Arc;

use crate::index::meta::FileMeta;
use crate::store::listing::FileInfo;

/// A file of TXID `txid` leaving the database at `commit` pages, holding `pages` (ascending)
/// with frames of `size(pgno)` bytes.
pub(crate) fn file(txid: u64, page_size: u32, commit: u32, pages: &[u32]) -> Arc<FileMeta> {
    let mut offset = ltx::HEADER_SIZE as u64;
    let entries: Vec<ltx::PageIndexEntry> = pages
        .iter()
        .map(|&pgno| {
            let size = 20 + (pgno.wrapping_mul(2_654_435_761) ^ txid as u32) % 4000;
            let e = ltx::PageIndexEntry { pgno, offset, size };
            offset += u64::from(size);
            e
        })
        .collect();
    let min = if txid == 1 { 1 } else { txid };
    let info = FileInfo {
        level: 0,
        min_txid: min,
        max_txid: txid,
        size: offset + 1000,
        created_ms: txid as i64,
    };
    let header = ltx::Header::unchecksummed(page_size, commit, min, txid, txid as i64);
    let path = format!("ltx/0/{txid:016x}.ltx").into();
    Arc::new(FileMeta::new(txid, &info, path, header, &entries).unwrap())
}

/// Five files of 64 KiB pages around the lock page: two full ones (the later one becomes the
/// base), changes above and below the lock page, and a truncation below it.
pub(crate) fn lock_page_history() -> Vec<Arc<FileMeta>> {
    let lock = ltx::lock_pgno(65536);
    let full = |txid, commit: u32| {
        let pages: Vec<u32> = (1..=commit).filter(|&p| p != lock).collect();
        file(txid, 65536, commit, &pages)
    };
    vec![
        full(1, lock + 40),
        file(2, 65536, lock + 60, &[3, lock - 1, lock + 41, lock + 60]),
        file(3, 65536, lock - 5, &[7]),
        full(4, lock + 10),
        file(5, 65536, lock + 20, &[2, lock + 11]),
    ]
}
