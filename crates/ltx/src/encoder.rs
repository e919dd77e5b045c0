//! Encoder producing current-format files (flags `0x0001`: size prefix + LZ4 block), into memory
//! or streamed into any [`std::io::Write`].

use std::io::Write;

use crate::checksum::{checksum_page, DatabaseChecksum, FileHasher};
use crate::error::{Error, Result};
use crate::frame::{append_block_payload, SIZE_PREFIX_SIZE};
use crate::header::{Header, Trailer, PAGE_HEADER_FLAG_SIZE, PAGE_HEADER_SIZE};
use crate::index::{write_index, PageIndexEntry};

/// Builds an LTX file in memory ([`Encoder::new`]) or streams it into a writer
/// ([`Encoder::to_writer`]), holding one frame and the page index, whatever the file's size.
///
/// Usage: [`Encoder::new`], [`Encoder::add_page`] for each page in ascending order, then
/// [`Encoder::finish`]. The output is what Go's ltx ≥ 0.5.2 encoder writes, except that the
/// compressed bytes (and so the file checksum) differ because LZ4 output is not canonical.
#[derive(Debug)]
pub struct Encoder<W = Vec<u8>> {
    header: Header,
    out: W,
    /// Bytes written to `out` so far: the next frame's offset.
    written: u64,
    /// The frame being built, written out whole once it encoded.
    frame: Vec<u8>,
    hasher: FileHasher,
    index: Vec<PageIndexEntry>,
    prev_pgno: u32,
    db_checksum: DatabaseChecksum,
    scratch: Vec<u8>,
}

impl Encoder<Vec<u8>> {
    /// Starts a file in memory with `header`, which must pass [`Header::validate`].
    pub fn new(header: Header) -> Result<Encoder> {
        Encoder::to_writer(header, Vec::with_capacity(4096))
    }
}

impl<W: Write> Encoder<W> {
    /// Starts a file with `header` (which must pass [`Header::validate`]) streamed into `out`;
    /// a write error is [`Error::Output`], after which the output is incomplete.
    pub fn to_writer(header: Header, mut out: W) -> Result<Encoder<W>> {
        header.validate()?;
        let encoded = header.encode();
        let mut hasher = FileHasher::new();
        hasher.update(&encoded);
        write_out(&mut out, &encoded)?;
        Ok(Encoder {
            header,
            out,
            written: encoded.len() as u64,
            frame: Vec::new(),
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

        let frame = &mut self.frame;
        frame.clear();
        frame.extend_from_slice(&pgno.to_be_bytes());
        frame.extend_from_slice(&PAGE_HEADER_FLAG_SIZE.to_be_bytes());
        append_block_payload(frame, pgno, data, &mut self.scratch)?;
        write_out(&mut self.out, frame)?;
        self.hasher
            .update(&frame[..PAGE_HEADER_SIZE + SIZE_PREFIX_SIZE]);
        self.hasher.update(data);
        self.db_checksum.xor_page(checksum_page(pgno, data));
        self.index.push(PageIndexEntry {
            pgno,
            offset: self.written,
            size: frame.len() as u32,
        });
        self.written += frame.len() as u64;
        self.prev_pgno = pgno;
        Ok(())
    }

    /// Writes the end marker, index and trailer and returns the output: the whole file for
    /// [`Encoder::new`], the writer (flushed) for [`Encoder::to_writer`].
    ///
    /// `post_apply_checksum` must follow the trailer rules: 0 when the header says
    /// `HEADER_FLAG_NO_CHECKSUM`; otherwise flagged, `CHECKSUM_FLAG` itself for an empty
    /// database, and for snapshots equal to [`Encoder::database_checksum`] (readers recompute
    /// it). A snapshot must also have received every page up to its commit.
    pub fn finish(self, post_apply_checksum: u64) -> Result<W> {
        let Encoder {
            header,
            mut out,
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

        let mut tail = vec![0u8; PAGE_HEADER_SIZE];
        write_index(&mut tail, &index);
        tail.extend_from_slice(&post_apply_checksum.to_be_bytes());
        hasher.update(&tail);
        trailer.file_checksum = hasher.finish();
        trailer.validate(&header)?;
        tail.extend_from_slice(&trailer.file_checksum.to_be_bytes());
        write_out(&mut out, &tail)?;
        out.flush().map_err(|e| Error::Output(e.to_string()))?;
        Ok(out)
    }
}

fn write_out<W: Write>(out: &mut W, bytes: &[u8]) -> Result<()> {
    out.write_all(bytes)
        .map_err(|e| Error::Output(e.to_string()))
}
