//! Whole-file decoding and verification.

use crate::checksum::{checksum_page, DatabaseChecksum, FileHasher};
use crate::error::{Error, Result};
use crate::frame::decode_frame_at;
use crate::header::{Header, Trailer, HEADER_SIZE, PAGE_HEADER_SIZE, TRAILER_SIZE};
use crate::index::{decode_page_index, page_index_location, PageIndexDecode, PageIndexEntry};
use crate::source::FileSource;

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
/// What is verified is listed on [`PageReader`], which this drives to the end.
pub fn decode_file_with<F: FnMut(u32, &[u8])>(bytes: &[u8], mut visit: F) -> Result<FileSummary> {
    let mut reader = PageReader::new(bytes)?;
    let mut page = vec![0u8; reader.header().page_size as usize];
    while let Some(pgno) = reader.next_page(&mut page)? {
        visit(pgno, &page);
    }
    reader.finish()
}

/// Reads a whole file one page at a time, verifying as it goes: memory stays at one page (and
/// one frame) plus the page index however large the file, which is what lets
/// [`compact`](crate::compact) merge many files without decoding them up front. The file is any
/// [`FileSource`]: bytes in memory, or a file the caller reads by range.
///
/// Verified: the header; every frame decodes to exactly `page_size` bytes; page numbers are
/// ascending, ≤ commit and never the lock page; a snapshot holds pages 1..=commit (minus the
/// lock page) in sequence; the frames end with the zero page header exactly where IndexLen puts
/// the index; the index lists exactly the frames present (pgno, offset, size); the file
/// checksum; the trailer rules; and for checksum-tracking snapshots that the post-apply
/// checksum equals the checksum of the pages. Nothing may follow the trailer: the trailer and
/// IndexLen are read from the end, so extra bytes would break the layout or the checksum.
///
/// The checks that need the whole file (checksum, trailer, completeness) happen in
/// [`PageReader::finish`]; pages handed out before it are unverified by the file checksum.
pub struct PageReader<S> {
    source: S,
    /// Where bytes read from a source that is not in memory land.
    buf: Vec<u8>,
    header: Header,
    index: Vec<PageIndexEntry>,
    block_end: u64,
    pos: u64,
    frames: usize,
    prev: u32,
    hasher: FileHasher,
    track_db: bool,
    db: DatabaseChecksum,
}

// Not derived: that would print the whole file.
impl<S: FileSource> std::fmt::Debug for PageReader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageReader")
            .field("header", &self.header)
            .field("len", &self.source.size())
            .field("pos", &self.pos)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

/// Bytes of the file's end read first: enough for the index of a file of thousands of pages.
const TAIL_GUESS: u64 = 64 << 10;

impl<S: FileSource> PageReader<S> {
    /// Validates the header and decodes the page index; no page is decoded yet.
    pub fn new(source: S) -> Result<PageReader<S>> {
        let file_size = source.size();
        let mut buf = Vec::new();
        let head = source.bytes(0, file_size.min(HEADER_SIZE as u64) as usize, &mut buf)?;
        let header = Header::decode(head)?;
        let mut hasher = FileHasher::new();
        hasher.update(&head[..HEADER_SIZE]);
        let guess = file_size.min(TAIL_GUESS);
        let mut tail = source.bytes(file_size - guess, guess as usize, &mut buf)?;
        let index = match decode_page_index(file_size, tail)? {
            PageIndexDecode::Complete(index) => index,
            PageIndexDecode::NeedTail(n) if n <= file_size => {
                tail = source.bytes(file_size - n, n as usize, &mut buf)?;
                match decode_page_index(file_size, tail)? {
                    PageIndexDecode::Complete(index) => index,
                    PageIndexDecode::NeedTail(n) => return Err(short_index(n, file_size)),
                }
            }
            PageIndexDecode::NeedTail(n) => return Err(short_index(n, file_size)),
        };
        let location = page_index_location(file_size, tail)?;
        let track_db = header.is_snapshot() && !header.no_checksum();
        Ok(PageReader {
            source,
            buf,
            block_end: location.page_block_end(),
            header,
            index,
            pos: HEADER_SIZE as u64,
            frames: 0,
            prev: 0,
            hasher,
            track_db,
            db: DatabaseChecksum::new(),
        })
    }

    /// The validated header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The page number the next [`PageReader::next_page`] will return, as the index says
    /// (`next_page` checks the frame against it). `None` once the index is exhausted.
    pub fn peek_pgno(&self) -> Option<u32> {
        self.index.get(self.frames).map(|e| e.pgno)
    }

    /// Decodes the next page into `page` (exactly `page_size` bytes) and returns its number,
    /// or `None` after the last page.
    pub fn next_page(&mut self, page: &mut [u8]) -> Result<Option<u32>> {
        let pos = self.pos;
        if pos >= self.block_end {
            return Ok(None);
        }
        // The frame the index announces; where it announces something else, enough bytes for
        // any frame, so that the error can say what the frame there really is.
        let window = match self.index.get(self.frames) {
            Some(e) if e.offset == pos => u64::from(e.size),
            _ => 2 * u64::from(self.header.page_size) + 64,
        }
        .min(self.block_end - pos);
        let rest = self.source.bytes(pos, window as usize, &mut self.buf)?;
        if rest.len() >= PAGE_HEADER_SIZE && rest[..PAGE_HEADER_SIZE] == [0; PAGE_HEADER_SIZE] {
            return Err(Error::InvalidIndex(format!(
                "page block ends at offset {pos} but the index places its end at {}",
                self.block_end
            )));
        }
        let frame = decode_frame_at(rest, self.header.page_size, page)?;
        let seen = PageIndexEntry {
            pgno: frame.pgno,
            offset: pos,
            size: frame.len as u32,
        };
        match self.index.get(self.frames) {
            Some(entry) if *entry == seen => {}
            Some(entry) => {
                return Err(Error::InvalidIndex(format!(
                    "entry {} is {entry:?} but the frame there is {seen:?}",
                    self.frames
                )))
            }
            None => {
                return Err(Error::InvalidIndex(format!(
                    "index has {} entries but the page block holds more frames",
                    self.index.len()
                )))
            }
        }
        self.header.check_next_page(self.prev, frame.pgno)?;
        self.hasher.update(&rest[..frame.hashed_prefix]);
        self.hasher.update(page);
        if self.track_db {
            self.db.xor_page(checksum_page(frame.pgno, page));
        }
        self.prev = frame.pgno;
        self.pos += frame.len as u64;
        self.frames += 1;
        Ok(Some(frame.pgno))
    }

    /// Reads whatever pages are left (the checksum covers them), then checks the end of the
    /// file: zero page header, index, snapshot completeness, file checksum and trailer.
    pub fn finish(mut self) -> Result<FileSummary> {
        let mut page = vec![0u8; self.header.page_size as usize];
        while self.next_page(&mut page)?.is_some() {}
        let PageReader {
            source,
            mut buf,
            header,
            index,
            block_end,
            frames,
            prev,
            mut hasher,
            track_db,
            db,
            ..
        } = self;
        // The index check guarantees contiguity, so reaching here means pos == block_end.
        if frames != index.len() {
            return Err(Error::InvalidIndex(format!(
                "index has {} entries but the page block holds {frames} frames",
                index.len()
            )));
        }
        // Zero page header, index, IndexLen and trailer: as long as the index, read whole.
        let end = source.bytes(block_end, (source.size() - block_end) as usize, &mut buf)?;
        if end[..PAGE_HEADER_SIZE] != [0; PAGE_HEADER_SIZE] {
            return Err(Error::InvalidIndex(format!(
                "no zero page header at offset {block_end}"
            )));
        }
        header.check_complete(prev)?;

        // Everything but the trailer's final 8 bytes (the file checksum itself) is hashed;
        // zero page header, index, IndexLen and the post-apply checksum are contiguous.
        hasher.update(&end[..end.len() - 8]);
        let trailer = Trailer::decode(&end[end.len() - TRAILER_SIZE..])?;
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
}

fn short_index(needed: u64, file_size: u64) -> Error {
    Error::InvalidIndex(format!(
        "index needs {needed} bytes but the file has {file_size}"
    ))
}
