//! Writes the scale database straight into an LTX snapshot (TXID 1), streaming: one page in
//! memory at a time, the page index spooled to a file beside it, so that a 100 GB database
//! costs a few MB of memory to write. `ltx::Encoder` keeps the whole file and its index in
//! memory (about 1.6 GB at 26 M pages), hence this writer; it produces the same format
//! (size-prefixed LZ4 blocks, the index, the file checksum) and the tests check its output
//! with `ltx`'s decoder and the Go `litestream restore`. Like every Litestream 0.5 writer it
//! tracks no database checksum (`HEADER_FLAG_NO_CHECKSUM`): the Go tools refuse a snapshot
//! that carries one ("post-apply checksum not allowed").

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use ltx::{FileHasher, Header, PAGE_HEADER_FLAG_SIZE};

use super::pages::{Layout, PAGE_SIZE};

/// Writes the snapshot of `layout`, every row at version 0, to `path` (through a temporary
/// file renamed into place, so that a half-written snapshot is never seen).
/// Returns the bytes of the file.
pub fn write(path: &Path, layout: &Layout, timestamp_ms: i64) -> Result<u64> {
    let tmp = path.with_extension("ltx.tmp");
    let spool = path.with_extension("index.tmp");
    let header = Header::unchecksummed(PAGE_SIZE as u32, layout.total_pages, 1, 1, timestamp_ms);
    header.validate()?;
    let mut out = Counted::new(File::create(&tmp).with_context(|| format!("create {tmp:?}"))?);
    let mut index = BufWriter::new(File::create(&spool)?);
    let mut index_len = 0u64;
    let mut hasher = FileHasher::new();
    let encoded = header.encode();
    hasher.update(&encoded);
    out.write_all(&encoded)?;

    let mut page = [0u8; PAGE_SIZE];
    let mut block = vec![0u8; lz4_flex::block::get_maximum_output_size(PAGE_SIZE)];
    let lock = header.lock_pgno();
    for pgno in (1..=layout.total_pages).filter(|&p| p != lock) {
        layout.page(pgno, |_| 0, &mut page);
        let n = lz4_flex::block::compress_into(&page, &mut block)
            .map_err(|e| anyhow::anyhow!("lz4 of page {pgno}: {e}"))?;
        let mut prefix = [0u8; 10];
        prefix[..4].copy_from_slice(&pgno.to_be_bytes());
        prefix[4..6].copy_from_slice(&PAGE_HEADER_FLAG_SIZE.to_be_bytes());
        prefix[6..].copy_from_slice(&(n as u32).to_be_bytes());
        let offset = out.pos;
        out.write_all(&prefix)?;
        out.write_all(&block[..n])?;
        hasher.update(&prefix);
        hasher.update(&page);
        let mut entry = Vec::with_capacity(24);
        for v in [u64::from(pgno), offset, (prefix.len() + n) as u64] {
            push_uvarint(&mut entry, v);
        }
        index.write_all(&entry)?;
        index_len += entry.len() as u64;
    }

    // End of pages, the index (read back from the spool), its length, the checksums.
    let end = [0u8; 6];
    out.write_all(&end)?;
    hasher.update(&end);
    index.flush()?;
    drop(index);
    let mut spooled = BufReader::new(File::open(&spool)?);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = spooled.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        hasher.update(&buf[..n]);
    }
    std::fs::remove_file(&spool)?;
    let mut tail = vec![0u8];
    tail.extend_from_slice(&(index_len + 1).to_be_bytes());
    tail.extend_from_slice(&0u64.to_be_bytes()); // no post-apply checksum
    out.write_all(&tail)?;
    hasher.update(&tail);
    out.write_all(&hasher.finish().to_be_bytes())?;
    let bytes = out.pos;
    out.inner.flush()?;
    out.inner.get_ref().sync_all()?;
    drop(out);
    std::fs::rename(&tmp, path).with_context(|| format!("rename {tmp:?}"))?;
    Ok(bytes)
}

/// Go's `binary.PutUvarint` (little-endian groups of 7 bits), as the LTX index stores numbers.
fn push_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A buffered file that knows how many bytes went through it.
struct Counted {
    inner: BufWriter<File>,
    pos: u64,
}

impl Counted {
    fn new(f: File) -> Counted {
        Counted {
            inner: BufWriter::with_capacity(1 << 20, f),
            pos: 0,
        }
    }

    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.pos += b.len() as u64;
        self.inner.write_all(b)
    }
}
