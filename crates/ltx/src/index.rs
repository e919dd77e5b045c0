//! The page index at the end of a file: locating it from the file's tail and parsing it.
//!
//! Layout: `... ZeroPageHeader(6) | entries (uvarint pgno, offset, size)* | 0x00 | IndexLen u64 BE |
//! Trailer(16)`, where IndexLen counts the entry bytes plus the terminator.

use crate::error::{Error, Result};
use crate::header::{
    read_be_u64, HEADER_SIZE, INDEX_LEN_SIZE, MIN_FILE_SIZE, PAGE_HEADER_SIZE, TRAILER_SIZE,
};

/// Bytes at the end of a file that hold IndexLen and the trailer.
pub const INDEX_TAIL_SIZE: usize = INDEX_LEN_SIZE + TRAILER_SIZE;

/// One page index entry: where a page's frame lives in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageIndexEntry {
    /// Database page number.
    pub pgno: u32,
    /// Absolute file offset of the frame's page header.
    pub offset: u64,
    /// Whole frame length, including the 6-byte page header.
    pub size: u32,
}

impl PageIndexEntry {
    /// File offset one past the frame's last byte (saturating, so hand-made entries with
    /// absurd offsets cannot overflow).
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(u64::from(self.size))
    }
}

/// Where the index (entries + terminator) lies in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexLocation {
    /// File offset of the first index byte (just after the zero page header).
    pub index_start: u64,
    /// Index length: entry bytes plus the terminator (the IndexLen field's value).
    pub index_len: u64,
}

impl IndexLocation {
    /// File offset where the page frames end and the zero page header begins.
    pub fn page_block_end(&self) -> u64 {
        self.index_start - PAGE_HEADER_SIZE as u64
    }
}

/// Result of [`decode_page_index`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageIndexDecode {
    /// The whole index was in the tail and is valid.
    Complete(Vec<PageIndexEntry>),
    /// The tail was too short: call again with the last `n` bytes of the file.
    NeedTail(u64),
}

/// Locates the index from the IndexLen field at `file_size - 24`.
///
/// `tail` is the last `tail.len()` bytes of a file of `file_size` bytes; it needs at least 24.
pub fn page_index_location(file_size: u64, tail: &[u8]) -> Result<IndexLocation> {
    if tail.len() < INDEX_TAIL_SIZE {
        return Err(Error::Truncated {
            what: "file tail",
            needed: INDEX_TAIL_SIZE as u64,
            got: tail.len() as u64,
        });
    }
    if tail.len() as u64 > file_size {
        return Err(Error::InvalidIndex(format!(
            "tail of {} bytes is longer than the {file_size}-byte file",
            tail.len()
        )));
    }
    if file_size < MIN_FILE_SIZE as u64 {
        return Err(Error::Truncated {
            what: "file",
            needed: MIN_FILE_SIZE as u64,
            got: file_size,
        });
    }
    let index_len = read_be_u64(tail, tail.len() - INDEX_TAIL_SIZE);
    let min_start = (HEADER_SIZE + PAGE_HEADER_SIZE) as u64;
    let index_start = (file_size - INDEX_TAIL_SIZE as u64)
        .checked_sub(index_len)
        .filter(|&start| start >= min_start);
    match index_start {
        // At least the terminator byte must be there.
        Some(index_start) if index_len >= 1 => Ok(IndexLocation {
            index_start,
            index_len,
        }),
        _ => Err(Error::InvalidIndex(format!(
            "index length {index_len} is impossible for a {file_size}-byte file"
        ))),
    }
}

/// Parses and validates the page index from the end of a file.
///
/// Returns `NeedTail(n)` when `tail` does not reach back to the index start. Checks: page
/// numbers non-zero and strictly ascending; frames contiguous, starting right after the header
/// and ending right before the zero page header (so they lie inside the page block and cannot
/// overlap); every frame longer than a page header; varints well-formed (non-minimal encodings
/// accepted, as Go's reader does); the terminator is the last byte of the index area.
///
/// Contiguity is stricter than "no overlap" but every writer produces it (frames are written
/// back to back in page order), and it pins each entry to exactly one place.
pub fn decode_page_index(file_size: u64, tail: &[u8]) -> Result<PageIndexDecode> {
    let mut entries = Vec::new();
    Ok(
        match visit_page_index(file_size, tail, |e| entries.push(e))? {
            None => PageIndexDecode::Complete(entries),
            Some(n) => PageIndexDecode::NeedTail(n),
        },
    )
}

/// [`decode_page_index`] without the `Vec`: hands each entry to `each` as it is parsed, so that
/// a caller keeping a compact form never holds 16 bytes a page (a 100 GB database's snapshot
/// has 26 M entries). Returns `Some(n)` when the tail was too short, as `NeedTail(n)`, before
/// any entry is handed over. On an error, the entries handed over so far are not an index:
/// drop them.
pub fn visit_page_index(
    file_size: u64,
    tail: &[u8],
    each: impl FnMut(PageIndexEntry),
) -> Result<Option<u64>> {
    let loc = page_index_location(file_size, tail)?;
    let needed = file_size - loc.index_start;
    if (tail.len() as u64) < needed {
        return Ok(Some(needed));
    }
    // `needed <= tail.len()` so these conversions and subtractions are in range.
    let start = tail.len() - needed as usize;
    let area = &tail[start..tail.len() - INDEX_TAIL_SIZE];
    parse_entries(area, loc, each).map(|()| None)
}

fn parse_entries(
    area: &[u8],
    loc: IndexLocation,
    mut each: impl FnMut(PageIndexEntry),
) -> Result<()> {
    let bad = |msg: String| Error::InvalidIndex(msg);
    let block_end = loc.page_block_end();
    let mut pos = 0usize;
    let mut next_offset = HEADER_SIZE as u64;
    let mut prev_pgno = 0u64;
    loop {
        let at = pos;
        let pgno = read_uvarint(area, &mut pos).map_err(|e| bad(format!("pgno at {at}: {e}")))?;
        if pgno == 0 {
            break;
        }
        let offset =
            read_uvarint(area, &mut pos).map_err(|e| bad(format!("offset at {at}: {e}")))?;
        let size = read_uvarint(area, &mut pos).map_err(|e| bad(format!("size at {at}: {e}")))?;
        if pgno > u64::from(u32::MAX) {
            return Err(bad(format!("page number {pgno} does not fit in 32 bits")));
        }
        if pgno <= prev_pgno {
            return Err(bad(format!(
                "page numbers not ascending: {prev_pgno} then {pgno}"
            )));
        }
        if offset != next_offset {
            return Err(bad(format!(
                "page {pgno} frame at offset {offset}, expected {next_offset} (frames are contiguous)"
            )));
        }
        if size <= PAGE_HEADER_SIZE as u64 || size > u64::from(u32::MAX) {
            return Err(bad(format!("page {pgno} frame size {size} is impossible")));
        }
        let end = offset
            .checked_add(size)
            .filter(|&end| end <= block_end)
            .ok_or_else(|| {
                bad(format!(
                    "page {pgno} frame [{offset}, +{size}) runs past the page block end {block_end}"
                ))
            })?;
        each(PageIndexEntry {
            pgno: pgno as u32,
            offset,
            size: size as u32,
        });
        prev_pgno = pgno;
        next_offset = end;
    }
    if pos != area.len() {
        return Err(bad(format!(
            "terminator at byte {} of a {}-byte index",
            pos - 1,
            area.len()
        )));
    }
    if next_offset != block_end {
        return Err(bad(format!(
            "frames end at offset {next_offset} but the page block ends at {block_end}"
        )));
    }
    Ok(())
}

/// Reads one unsigned LEB128 varint with Go's `binary.Uvarint` rules (≤ 10 bytes, no u64
/// overflow). Non-minimal encodings are accepted.
pub(crate) fn read_uvarint(buf: &[u8], pos: &mut usize) -> std::result::Result<u64, &'static str> {
    let mut value = 0u64;
    for i in 0..10 {
        let byte = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        if byte < 0x80 {
            if i == 9 && byte > 1 {
                return Err("varint overflows 64 bits");
            }
            return Ok(value | (u64::from(byte) << (7 * i)));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
    }
    Err("varint overflows 64 bits")
}

/// Appends `value` as a minimal unsigned LEB128 varint (Go's `binary.AppendUvarint`).
pub(crate) fn write_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends the index for `entries` (entries, terminator, IndexLen) to `out`.
pub(crate) fn write_index(out: &mut Vec<u8>, entries: &[PageIndexEntry]) {
    let start = out.len();
    for e in entries {
        write_uvarint(out, u64::from(e.pgno));
        write_uvarint(out, e.offset);
        write_uvarint(out, u64::from(e.size));
    }
    out.push(0);
    let len = (out.len() - start) as u64;
    out.extend_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip_and_go_rules() {
        for v in [
            0,
            1,
            127,
            128,
            165,
            16383,
            16384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            write_uvarint(&mut buf, v);
            let mut pos = 0;
            assert_eq!(read_uvarint(&buf, &mut pos), Ok(v));
            assert_eq!(pos, buf.len());
        }
        let mut buf = Vec::new();
        write_uvarint(&mut buf, 165);
        assert_eq!(buf, [0xa5, 0x01]);
        // Non-minimal zero is still zero (Go accepts it).
        assert_eq!(read_uvarint(&[0x80, 0x00], &mut 0), Ok(0));
        // Ten bytes whose last byte carries more than the 64th bit overflow.
        let mut big = vec![0xff; 9];
        big.push(0x02);
        assert!(read_uvarint(&big, &mut 0).is_err());
        assert!(read_uvarint(&[0xff; 11], &mut 0).is_err());
        assert!(read_uvarint(&[0x80], &mut 0).is_err());
        assert!(read_uvarint(&[], &mut 0).is_err());
    }

    // Builds just the tail of a file whose page frames are `frames` (pgno, size), laid out
    // contiguously from offset 100.
    fn tail_for(frames: &[(u32, u32)]) -> (u64, Vec<u8>) {
        let mut offset = HEADER_SIZE as u64;
        let entries: Vec<_> = frames
            .iter()
            .map(|&(pgno, size)| {
                let e = PageIndexEntry { pgno, offset, size };
                offset += u64::from(size);
                e
            })
            .collect();
        let mut tail = vec![0u8; PAGE_HEADER_SIZE];
        write_index(&mut tail, &entries);
        tail.extend_from_slice(&[0u8; TRAILER_SIZE]);
        (offset + tail.len() as u64, tail)
    }

    #[test]
    fn worked_example_from_spec() {
        let (size, tail) = tail_for(&[(1, 65), (2, 65)]);
        assert_eq!(
            &tail[6..6 + 8 + 8],
            &[0x01, 0x64, 0x41, 0x02, 0xa5, 0x01, 0x41, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x08]
        );
        let got = decode_page_index(size, &tail).unwrap();
        assert_eq!(
            got,
            PageIndexDecode::Complete(vec![
                PageIndexEntry {
                    pgno: 1,
                    offset: 100,
                    size: 65
                },
                PageIndexEntry {
                    pgno: 2,
                    offset: 165,
                    size: 65
                },
            ])
        );
        // The tail without the zero page header is still enough.
        assert_eq!(decode_page_index(size, &tail[6..]).unwrap(), got);
        assert_eq!(
            decode_page_index(size, &tail[7..]).unwrap(),
            PageIndexDecode::NeedTail(tail.len() as u64 - 6)
        );
    }

    #[test]
    fn rejects_inconsistent_entries() {
        let (size, tail) = tail_for(&[(3, 20), (2, 20)]);
        assert!(decode_page_index(size, &tail).is_err());
        let (size, tail) = tail_for(&[(3, 20), (3, 20)]);
        assert!(decode_page_index(size, &tail).is_err());
        let (size, tail) = tail_for(&[(3, 6)]);
        assert!(decode_page_index(size, &tail).is_err());
        // Frames that claim more room than the page block has.
        let (size, tail) = tail_for(&[(1, 20)]);
        assert!(decode_page_index(size - 1, &tail[1..]).is_err());
        // An empty index means the page block is empty.
        let (size, tail) = tail_for(&[]);
        assert_eq!(size, MIN_FILE_SIZE as u64);
        assert_eq!(
            decode_page_index(size, &tail).unwrap(),
            PageIndexDecode::Complete(vec![])
        );
        assert!(decode_page_index(size + 1, &tail).is_err());
    }

    #[test]
    fn rejects_misplaced_terminator_and_bad_lengths() {
        let (size, mut tail) = tail_for(&[(1, 20)]);
        // Index "01 64 14 00": make the length claim one byte more (terminator too early).
        let len_at = tail.len() - INDEX_TAIL_SIZE;
        tail[len_at + 7] = 5;
        let mut longer = vec![0u8];
        longer.extend_from_slice(&tail);
        assert!(decode_page_index(size, &longer).is_err());
        // Zero and absurd lengths.
        for bad in [0u64, u64::MAX, size] {
            tail[len_at..len_at + 8].copy_from_slice(&bad.to_be_bytes());
            assert!(page_index_location(size, &tail).is_err(), "{bad}");
            assert!(decode_page_index(size, &tail).is_err(), "{bad}");
        }
        assert!(page_index_location(size, &tail[..23]).is_err());
        assert!(page_index_location(10, &tail).is_err());
    }
}
