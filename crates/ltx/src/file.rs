//! Whole-file decoding and verification.

use crate::checksum::{checksum_page, DatabaseChecksum, FileHasher};
use crate::error::{Error, Result};
use crate::frame::decode_frame_at;
use crate::header::{Header, Trailer, HEADER_SIZE, PAGE_HEADER_SIZE, TRAILER_SIZE};
use crate::index::{decode_page_index, page_index_location, PageIndexDecode, PageIndexEntry};

/// Everything in a file except the page contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSummary {
    /// The validated header.
    pub header: Header,
    /// The page index, checked against the frames actually present.
    pub index: Vec<PageIndexEntry>,
    /// The trailer, with its file checksum verified.
    pub trailer: Trailer,
}

/// A fully decoded and verified file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedFile {
    /// The validated header.
    pub header: Header,
    /// `(pgno, uncompressed page)` in file order (ascending pgno).
    pub pages: Vec<(u32, Vec<u8>)>,
    /// The page index, checked against the frames actually present.
    pub index: Vec<PageIndexEntry>,
    /// The trailer, with its file checksum verified.
    pub trailer: Trailer,
}

/// Decodes and verifies a whole file held in memory, returning every page.
pub fn decode_file(bytes: &[u8]) -> Result<DecodedFile> {
    let mut pages = Vec::new();
    let summary = decode_file_with(bytes, |pgno, page| pages.push((pgno, page.to_vec())))?;
    Ok(DecodedFile {
        header: summary.header,
        pages,
        index: summary.index,
        trailer: summary.trailer,
    })
}

/// Verifies a whole file without keeping the pages.
pub fn verify_file(bytes: &[u8]) -> Result<FileSummary> {
    decode_file_with(bytes, |_, _| {})
}

/// Decodes and verifies a whole file, handing each page to `visit` as it is decoded.
///
/// `visit` sees pages **before** the file checksum has been checked (it covers the whole
/// file), so a caller must discard what it collected if this returns an error.
///
/// Verified: the header; every frame decodes to exactly `page_size` bytes; page numbers are
/// ascending, ≤ commit and never the lock page; a snapshot holds pages 1..=commit (minus the
/// lock page) in sequence; the frames end with the zero page header exactly where IndexLen puts
/// the index; the index lists exactly the frames present (pgno, offset, size); the file
/// checksum; the trailer rules; and for checksum-tracking snapshots that the post-apply
/// checksum equals the checksum of the pages. Nothing may follow the trailer: the trailer and
/// IndexLen are read from the end, so extra bytes would break the layout or the checksum.
pub fn decode_file_with<F: FnMut(u32, &[u8])>(bytes: &[u8], mut visit: F) -> Result<FileSummary> {
    let header = Header::decode(bytes)?;
    let file_size = bytes.len() as u64;
    let index = match decode_page_index(file_size, bytes)? {
        PageIndexDecode::Complete(index) => index,
        // The tail is the whole file, so it always reaches the index.
        PageIndexDecode::NeedTail(n) => {
            return Err(Error::InvalidIndex(format!(
                "index needs {n} bytes but the file has {file_size}"
            )))
        }
    };
    let location = page_index_location(file_size, bytes)?;
    // Both are ≤ file_size, which fits in usize because `bytes` exists.
    let block_end = location.page_block_end() as usize;
    // Everything but the trailer's final 8 bytes (the file checksum itself) is hashed.
    let checksum_end = bytes.len() - 8;

    let mut hasher = FileHasher::new();
    hasher.update(&bytes[..HEADER_SIZE]);
    let track_db = header.is_snapshot() && !header.no_checksum();
    let mut db = DatabaseChecksum::new();
    let mut page = vec![0u8; header.page_size as usize];
    let mut pos = HEADER_SIZE;
    let mut prev = 0u32;
    let mut frames = 0usize;
    while pos < block_end {
        let rest = &bytes[pos..block_end];
        if rest.len() >= PAGE_HEADER_SIZE && rest[..PAGE_HEADER_SIZE] == [0; PAGE_HEADER_SIZE] {
            return Err(Error::InvalidIndex(format!(
                "page block ends at offset {pos} but the index places its end at {block_end}"
            )));
        }
        let frame = decode_frame_at(rest, header.page_size, &mut page)?;
        let seen = PageIndexEntry {
            pgno: frame.pgno,
            offset: pos as u64,
            size: frame.len as u32,
        };
        match index.get(frames) {
            Some(entry) if *entry == seen => {}
            Some(entry) => {
                return Err(Error::InvalidIndex(format!(
                    "entry {frames} is {entry:?} but the frame there is {seen:?}"
                )))
            }
            None => {
                return Err(Error::InvalidIndex(format!(
                    "index has {} entries but the page block holds more frames",
                    index.len()
                )))
            }
        }
        header.check_next_page(prev, frame.pgno)?;
        hasher.update(&bytes[pos..pos + frame.hashed_prefix]);
        hasher.update(&page);
        if track_db {
            db.xor_page(checksum_page(frame.pgno, &page));
        }
        visit(frame.pgno, &page);
        prev = frame.pgno;
        pos += frame.len;
        frames += 1;
    }
    // The index check guarantees contiguity, so reaching here means pos == block_end.
    if frames != index.len() {
        return Err(Error::InvalidIndex(format!(
            "index has {} entries but the page block holds {frames} frames",
            index.len()
        )));
    }
    if bytes[block_end..block_end + PAGE_HEADER_SIZE] != [0; PAGE_HEADER_SIZE] {
        return Err(Error::InvalidIndex(format!(
            "no zero page header at offset {block_end}"
        )));
    }
    header.check_complete(prev)?;

    // Zero page header, index, IndexLen and the post-apply checksum are contiguous.
    hasher.update(&bytes[block_end..checksum_end]);
    let trailer = Trailer::decode(&bytes[bytes.len() - TRAILER_SIZE..])?;
    let actual = hasher.finish();
    if actual != trailer.file_checksum {
        return Err(Error::ChecksumMismatch {
            expected: trailer.file_checksum,
            actual,
        });
    }
    trailer.validate(&header)?;
    if track_db && trailer.post_apply_checksum != db.value() {
        return Err(Error::PostApplyChecksumMismatch {
            expected: trailer.post_apply_checksum,
            actual: db.value(),
        });
    }
    Ok(FileSummary {
        header,
        index,
        trailer,
    })
}
