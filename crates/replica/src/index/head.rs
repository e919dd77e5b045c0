//! The head of an LTX file: its 100-byte header and the frames stored right after it.
//!
//! A file's frames lie in page order, so the head of a snapshot or of a compacted file holds
//! page 1 and the lowest pages: the database header, the schema and the roots of the first
//! tables, which every first query reads one after the other. Asking for them with the header,
//! in the GET an index load sends anyway, saves those round trips.

use std::ops::Range;

use bytes::Bytes;
use object_store::path::Path;

use crate::error::{Error, Result};

/// Bytes fetched after the header. Frames of real pages are 1-3 KiB, so this holds page 1 and
/// about the next 20 pages: at loopback speed it costs ~0.1 ms more than the bare header, and
/// nothing extra at +20 ms per request, where each page it brings saves a round trip.
const HEAD_PAGES_BYTES: u64 = 64 * 1024;

/// The range to fetch for the header of a file of `size` bytes, with the frames after it.
pub(crate) fn range(size: u64) -> Range<u64> {
    0..size.min(ltx::HEADER_SIZE as u64 + HEAD_PAGES_BYTES)
}

/// The pages whose frames lie wholly inside `head` (the file's first bytes), as
/// `(frame offset, page)` for the page cache. Each frame must decode to exactly one page and
/// hold the page the index says.
pub(crate) fn pages(
    head: &[u8],
    index: impl IntoIterator<Item = ltx::PageIndexEntry>,
    page_size: u32,
    path: &Path,
) -> Result<Vec<(u64, Bytes)>> {
    let mut out = Vec::new();
    for e in index {
        // Frames are in file order: the first that does not fit ends the head's.
        let Some(frame) = usize::try_from(e.offset)
            .ok()
            .and_then(|start| head.get(start..start.checked_add(e.size as usize)?))
        else {
            break;
        };
        let mut page = vec![0u8; page_size as usize];
        let got = ltx::decode_page_frame(frame, page_size, &mut page).map_err(|source| {
            Error::Corrupt {
                key: path.to_string(),
                source,
            }
        })?;
        if got != e.pgno {
            return Err(Error::Inconsistent(format!(
                "{path}: the index puts page {} at offset {}, but the frame there holds page {got}",
                e.pgno, e.offset
            )));
        }
        out.push((e.offset, Bytes::from(page)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_holds_the_first_frames_only_whole() {
        // Incompressible pages (xorshift), so that 40 of them overflow the head.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let images: Vec<(u32, Vec<u8>)> = (1..=40u32)
            .map(|p| {
                let page: Vec<u8> = (0..4096)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                (p, page)
            })
            .collect();
        let mut enc = ltx::Encoder::new(ltx::Header::unchecksummed(4096, 40, 1, 1, 0)).unwrap();
        for (p, page) in &images {
            enc.add_page(*p, page).unwrap();
        }
        let file = enc.finish(0).unwrap();
        let decoded = ltx::decode_file(&file).unwrap();
        let r = range(file.len() as u64);
        assert_eq!(r.start, 0);
        assert!(
            r.end < file.len() as u64,
            "a 40-page file is larger than its head"
        );
        let head = &file[..r.end as usize];
        let path = Path::from("x.ltx");
        let got = pages(head, decoded.index.iter().copied(), 4096, &path).unwrap();
        let whole: Vec<_> = decoded
            .index
            .iter()
            .filter(|e| e.offset + u64::from(e.size) <= r.end)
            .collect();
        assert!(!whole.is_empty() && whole.len() < 40);
        assert_eq!(got.len(), whole.len());
        for ((offset, page), e) in got.iter().zip(&whole) {
            assert_eq!(*offset, e.offset);
            assert_eq!(&page[..], &images[e.pgno as usize - 1].1[..]);
        }
        // An index that lies about a frame in the head is refused.
        let mut lying = decoded.index.clone();
        lying[0].pgno = 7;
        let err = pages(head, lying.iter().copied(), 4096, &path).unwrap_err();
        assert!(err.to_string().contains("holds page 1"), "{err}");
        // A file smaller than the head is fetched to its end, never beyond.
        assert_eq!(range(300), 0..300);
    }
}
