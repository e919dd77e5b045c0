//! In-memory encoder producing current-format files (flags `0x0001`: size prefix + LZ4 block).

use crate::checksum::{checksum_page, DatabaseChecksum, FileHasher};
use crate::error::{Error, Result};
use crate::frame::{append_block_payload, SIZE_PREFIX_SIZE};
use crate::header::{Header, Trailer, PAGE_HEADER_FLAG_SIZE, PAGE_HEADER_SIZE};
use crate::index::{write_index, PageIndexEntry};

/// Builds an LTX file in memory.
///
/// Usage: [`Encoder::new`], [`Encoder::add_page`] for each page in ascending order, then
/// [`Encoder::finish`]. The output is what Go's ltx ≥ 0.5.2 encoder writes, except that the
/// compressed bytes (and so the file checksum) differ because LZ4 output is not canonical.
#[derive(Debug)]
pub struct Encoder {
    header: Header,
    buf: Vec<u8>,
    hasher: FileHasher,
    index: Vec<PageIndexEntry>,
    prev_pgno: u32,
    db_checksum: DatabaseChecksum,
    scratch: Vec<u8>,
}

impl Encoder {
    /// Starts a file with `header`, which must pass [`Header::validate`].
    pub fn new(header: Header) -> Result<Encoder> {
        header.validate()?;
        let encoded = header.encode();
        let mut hasher = FileHasher::new();
        hasher.update(&encoded);
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(&encoded);
        Ok(Encoder {
            header,
            buf,
            hasher,
            index: Vec::new(),
            prev_pgno: 0,
            db_checksum: DatabaseChecksum::new(),
            scratch: Vec::new(),
        })
    }

    /// The header being written.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Index entries of the pages added so far; after the last `add_page` this is exactly the
    /// index `finish` writes.
    pub fn index(&self) -> &[PageIndexEntry] {
        &self.index
    }

    /// XOR-fold ([`DatabaseChecksum`]) of the pages added so far. For a snapshot this is the
    /// database checksum its post-apply checksum must equal when checksums are tracked; for an
    /// incremental file it only covers the changed pages.
    pub fn database_checksum(&self) -> u64 {
        self.db_checksum.value()
    }

    /// Appends page `pgno`. Pages must be ascending, within `1..=commit`, never the lock page,
    /// exactly `page_size` bytes, and for snapshots consecutive from 1 (skipping the lock page).
    /// On error nothing is written and the encoder stays usable.
    pub fn add_page(&mut self, pgno: u32, data: &[u8]) -> Result<()> {
        if data.len() != self.header.page_size as usize {
            return Err(Error::PageSize {
                expected: self.header.page_size,
                got: data.len() as u64,
            });
        }
        self.header.check_next_page(self.prev_pgno, pgno)?;

        let offset = self.buf.len();
        let mut frame_header = [0u8; PAGE_HEADER_SIZE];
        frame_header[..4].copy_from_slice(&pgno.to_be_bytes());
        frame_header[4..].copy_from_slice(&PAGE_HEADER_FLAG_SIZE.to_be_bytes());
        self.buf.extend_from_slice(&frame_header);
        if let Err(e) = append_block_payload(&mut self.buf, pgno, data, &mut self.scratch) {
            self.buf.truncate(offset);
            return Err(e);
        }
        let hashed_end = offset + PAGE_HEADER_SIZE + SIZE_PREFIX_SIZE;
        self.hasher.update(&self.buf[offset..hashed_end]);
        self.hasher.update(data);
        self.db_checksum.xor_page(checksum_page(pgno, data));
        self.index.push(PageIndexEntry {
            pgno,
            offset: offset as u64,
            size: (self.buf.len() - offset) as u32,
        });
        self.prev_pgno = pgno;
        Ok(())
    }

    /// Writes the end marker, index and trailer and returns the file.
    ///
    /// `post_apply_checksum` must follow the trailer rules: 0 when the header says
    /// `HEADER_FLAG_NO_CHECKSUM`; otherwise flagged, `CHECKSUM_FLAG` itself for an empty
    /// database, and for snapshots equal to [`Encoder::database_checksum`] (readers recompute
    /// it). A snapshot must also have received every page up to its commit.
    pub fn finish(self, post_apply_checksum: u64) -> Result<Vec<u8>> {
        let Encoder {
            header,
            mut buf,
            mut hasher,
            index,
            prev_pgno,
            db_checksum,
            ..
        } = self;
        header.check_complete(prev_pgno)?;
        let mut trailer = Trailer {
            post_apply_checksum,
            file_checksum: 0,
        };
        if header.is_snapshot()
            && !header.no_checksum()
            && post_apply_checksum != db_checksum.value()
        {
            return Err(Error::PostApplyChecksumMismatch {
                expected: post_apply_checksum,
                actual: db_checksum.value(),
            });
        }

        let tail_start = buf.len();
        buf.extend_from_slice(&[0u8; PAGE_HEADER_SIZE]);
        write_index(&mut buf, &index);
        buf.extend_from_slice(&post_apply_checksum.to_be_bytes());
        hasher.update(&buf[tail_start..]);
        trailer.file_checksum = hasher.finish();
        trailer.validate(&header)?;
        buf.extend_from_slice(&trailer.file_checksum.to_be_bytes());
        Ok(buf)
    }
}
