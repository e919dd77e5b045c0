//! One page frame: `pgno u32 BE | flags u16 BE | payload`.
//!
//! Two payload encodings exist and a reader must handle both, per frame:
//! * flags `0x0001` (ltx ≥ 0.5.2): `u32 BE` compressed size, then a raw LZ4 block;
//! * flags `0x0000` (ltx 0.5.0–0.5.1, Litestream ≤ 0.5.15): one complete LZ4 frame.

use twox_hash::XxHash32;

use crate::error::{Error, Result};
use crate::header::{is_valid_page_size, read_be_u32, PAGE_HEADER_FLAG_SIZE, PAGE_HEADER_SIZE};

/// Bytes of the current encoding's compressed-size prefix.
pub const SIZE_PREFIX_SIZE: usize = 4;

/// Largest LZ4 block a page of `page_size` bytes can need (pierrec's `CompressBlockBound`,
/// which Go's encoder sizes its buffer with). Anything larger in a file is corruption, and
/// refusing it bounds the work done on garbage.
pub fn max_compressed_size(page_size: u32) -> usize {
    let n = page_size as usize;
    n + n / 255 + 16
}

const LZ4_FRAME_MAGIC: u32 = 0x184D_2204;
const LZ4_FLG_VERSION_MASK: u8 = 0b1100_0000;
const LZ4_FLG_VERSION_01: u8 = 0b0100_0000;
const LZ4_FLG_BLOCK_INDEPENDENT: u8 = 1 << 5;
const LZ4_FLG_BLOCK_CHECKSUM: u8 = 1 << 4;
const LZ4_FLG_CONTENT_SIZE: u8 = 1 << 3;
const LZ4_FLG_CONTENT_CHECKSUM: u8 = 1 << 2;
const LZ4_FLG_RESERVED: u8 = 1 << 1;
const LZ4_FLG_DICT_ID: u8 = 1;
const LZ4_BD_RESERVED: u8 = 0b1000_1111;
const LZ4_BLOCK_UNCOMPRESSED: u32 = 1 << 31;

/// What [`decode_frame_at`] learned about a frame besides the page bytes.
pub(crate) struct FrameInfo {
    /// Page number from the frame header.
    pub pgno: u32,
    /// Bytes the frame occupies (header + payload).
    pub len: usize,
    /// Leading bytes of the frame that the file checksum covers before the page bytes:
    /// the page header, plus the size prefix in the current encoding.
    pub hashed_prefix: usize,
}

/// Decodes one page frame (the bytes `[offset, offset + size)` named by a page-index entry)
/// into `out`, which must be exactly `page_size` bytes, and returns the frame's page number.
///
/// Both encodings are accepted. The frame must decode to exactly `page_size` bytes and must use
/// all of `frame`. For legacy frames the LZ4 header, block and content checksums are verified;
/// the current encoding carries no checksum of its own, so a corrupt block that still
/// decompresses to `page_size` bytes is only caught by [`decode_file`](crate::decode_file).
pub fn decode_page_frame(frame: &[u8], page_size: u32, out: &mut [u8]) -> Result<u32> {
    let info = decode_frame_at(frame, page_size, out)?;
    if info.len != frame.len() {
        return Err(Error::InvalidPageFrame {
            pgno: info.pgno,
            reason: format!(
                "frame is {} bytes but its contents end after {}",
                frame.len(),
                info.len
            ),
        });
    }
    Ok(info.pgno)
}

/// Decodes the frame at the start of `buf` (which may continue past it) into `out`.
pub(crate) fn decode_frame_at(buf: &[u8], page_size: u32, out: &mut [u8]) -> Result<FrameInfo> {
    if !is_valid_page_size(page_size) {
        return Err(Error::InvalidPageSize(page_size));
    }
    if out.len() != page_size as usize {
        return Err(Error::PageSize {
            expected: page_size,
            got: out.len() as u64,
        });
    }
    if buf.len() < PAGE_HEADER_SIZE {
        return Err(Error::Truncated {
            what: "page header",
            needed: PAGE_HEADER_SIZE as u64,
            got: buf.len() as u64,
        });
    }
    let pgno = read_be_u32(buf, 0);
    let flags = u16::from_be_bytes([buf[4], buf[5]]);
    if pgno == 0 {
        return Err(Error::PageNumberRequired);
    }
    let payload = &buf[PAGE_HEADER_SIZE..];
    match flags {
        PAGE_HEADER_FLAG_SIZE => {
            let used = decode_block_payload(pgno, payload, page_size, out)?;
            Ok(FrameInfo {
                pgno,
                len: PAGE_HEADER_SIZE + used,
                hashed_prefix: PAGE_HEADER_SIZE + SIZE_PREFIX_SIZE,
            })
        }
        0 => {
            let used = decode_lz4_frame(pgno, payload, out)?;
            Ok(FrameInfo {
                pgno,
                len: PAGE_HEADER_SIZE + used,
                hashed_prefix: PAGE_HEADER_SIZE,
            })
        }
        _ => Err(Error::InvalidPageHeaderFlags { pgno, flags }),
    }
}

fn frame_error(pgno: u32, reason: String) -> Error {
    Error::InvalidPageFrame { pgno, reason }
}

/// Current encoding: `u32 BE size | LZ4 block`. Returns the payload bytes used.
fn decode_block_payload(
    pgno: u32,
    payload: &[u8],
    page_size: u32,
    out: &mut [u8],
) -> Result<usize> {
    if payload.len() < SIZE_PREFIX_SIZE {
        return Err(Error::Truncated {
            what: "page size prefix",
            needed: SIZE_PREFIX_SIZE as u64,
            got: payload.len() as u64,
        });
    }
    let size = read_be_u32(payload, 0) as usize;
    let bound = max_compressed_size(page_size);
    if size > bound {
        return Err(frame_error(
            pgno,
            format!("compressed size {size} exceeds the bound {bound} for {page_size}-byte pages"),
        ));
    }
    let block = &payload[SIZE_PREFIX_SIZE..];
    if size > block.len() {
        return Err(Error::Truncated {
            what: "page block",
            needed: size as u64,
            got: block.len() as u64,
        });
    }
    let n =
        lz4_flex::block::decompress_into(&block[..size], out).map_err(|e| Error::Decompress {
            pgno,
            reason: e.to_string(),
        })?;
    if n != out.len() {
        return Err(frame_error(
            pgno,
            format!("decompressed to {n} bytes, expected {page_size}"),
        ));
    }
    Ok(SIZE_PREFIX_SIZE + size)
}

/// Byte cursor over a legacy LZ4 frame that reports truncation with the field name.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let rest = &self.buf[self.pos..];
        if rest.len() < n {
            return Err(Error::Truncated {
                what,
                needed: n as u64,
                got: rest.len() as u64,
            });
        }
        self.pos += n;
        Ok(&rest[..n])
    }

    fn u32_le(&mut self, what: &'static str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Legacy encoding: one LZ4 frame (LZ4 frame format spec) holding exactly one page.
/// Parsed by hand because a streaming reader would read past the frame's end into the next
/// page header. Returns the payload bytes used.
fn decode_lz4_frame(pgno: u32, payload: &[u8], out: &mut [u8]) -> Result<usize> {
    let bad = |reason: String| frame_error(pgno, reason);
    let mut cur = Cursor {
        buf: payload,
        pos: 0,
    };

    let magic = cur.u32_le("lz4 frame magic")?;
    if magic != LZ4_FRAME_MAGIC {
        return Err(bad(format!(
            "lz4 frame magic 0x{magic:08x}, expected 0x{LZ4_FRAME_MAGIC:08x}"
        )));
    }
    let descriptor_start = cur.pos;
    let fd = cur.take(2, "lz4 frame descriptor")?;
    let (flg, bd) = (fd[0], fd[1]);
    if flg & LZ4_FLG_VERSION_MASK != LZ4_FLG_VERSION_01 || flg & LZ4_FLG_RESERVED != 0 {
        return Err(bad(format!("unsupported lz4 frame FLG byte 0x{flg:02x}")));
    }
    if flg & LZ4_FLG_DICT_ID != 0 {
        return Err(bad("lz4 frame needs a dictionary".into()));
    }
    let block_size_id = (bd >> 4) & 0x7;
    if bd & LZ4_BD_RESERVED != 0 || block_size_id < 4 {
        return Err(bad(format!("invalid lz4 frame BD byte 0x{bd:02x}")));
    }
    let max_block = 1usize << (8 + 2 * block_size_id);
    if flg & LZ4_FLG_CONTENT_SIZE != 0 {
        let b = cur.take(8, "lz4 content size")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        let content_size = u64::from_le_bytes(a);
        if content_size != out.len() as u64 {
            return Err(bad(format!(
                "lz4 content size {content_size}, expected {}",
                out.len()
            )));
        }
    }
    let descriptor = &payload[descriptor_start..cur.pos];
    let hc = cur.take(1, "lz4 header checksum")?[0];
    let expected_hc = (XxHash32::oneshot(0, descriptor) >> 8) as u8;
    if hc != expected_hc {
        return Err(bad(format!(
            "lz4 header checksum 0x{hc:02x}, expected 0x{expected_hc:02x}"
        )));
    }

    let linked = flg & LZ4_FLG_BLOCK_INDEPENDENT == 0;
    let mut written = 0usize;
    loop {
        let word = cur.u32_le("lz4 block size")?;
        if word == 0 {
            break; // EndMark
        }
        let stored = word & LZ4_BLOCK_UNCOMPRESSED != 0;
        let len = (word & !LZ4_BLOCK_UNCOMPRESSED) as usize;
        if len > max_block {
            return Err(bad(format!(
                "lz4 block of {len} bytes exceeds the frame's {max_block}-byte maximum"
            )));
        }
        let data = cur.take(len, "lz4 block")?;
        if flg & LZ4_FLG_BLOCK_CHECKSUM != 0 {
            let sum = cur.u32_le("lz4 block checksum")?;
            if sum != XxHash32::oneshot(0, data) {
                return Err(bad("lz4 block checksum mismatch".into()));
            }
        }
        let room = out.len() - written;
        if stored {
            if len > room {
                return Err(bad(format!("lz4 data exceeds the page size {}", out.len())));
            }
            out[written..written + len].copy_from_slice(data);
            written += len;
        } else {
            // Linked blocks may copy from earlier output of the same frame; a page is at most
            // 64 KiB, which is exactly LZ4's window, so all earlier output is the dictionary.
            let (before, rest) = out.split_at_mut(written);
            let result = if linked && !before.is_empty() {
                lz4_flex::block::decompress_into_with_dict(data, rest, before)
            } else {
                lz4_flex::block::decompress_into(data, rest)
            };
            written += result.map_err(|e| Error::Decompress {
                pgno,
                reason: e.to_string(),
            })?;
        }
    }
    if flg & LZ4_FLG_CONTENT_CHECKSUM != 0 {
        let sum = cur.u32_le("lz4 content checksum")?;
        if sum != XxHash32::oneshot(0, &out[..written]) {
            return Err(bad("lz4 content checksum mismatch".into()));
        }
    }
    if written != out.len() {
        return Err(bad(format!(
            "decompressed to {written} bytes, expected {}",
            out.len()
        )));
    }
    Ok(cur.pos)
}

/// Compresses `page` into a current-encoding payload appended to `out`:
/// `u32 BE size | LZ4 block`. `scratch` is reused between calls to avoid reallocating.
pub(crate) fn append_block_payload(
    out: &mut Vec<u8>,
    pgno: u32,
    page: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<()> {
    scratch.resize(lz4_flex::block::get_maximum_output_size(page.len()), 0);
    let n = lz4_flex::block::compress_into(page, scratch)
        .map_err(|e| frame_error(pgno, format!("lz4 compression failed: {e}")))?;
    // Readers (ours and any careful one) refuse blocks above the bound; never write one.
    let bound = max_compressed_size(page.len() as u32);
    if n > bound {
        return Err(frame_error(
            pgno,
            format!("compressed to {n} bytes, above the bound {bound}"),
        ));
    }
    out.extend_from_slice(&(n as u32).to_be_bytes());
    out.extend_from_slice(&scratch[..n]);
    Ok(())
}
