//! Legacy (ltx 0.5.0–0.5.1) page frames: flags 0 and one LZ4 frame per page.

use crate::common;

use std::io::Write;

use common::{random_page, vector_page};
use ltx::*;
use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
use twox_hash::XxHash32;

fn lz4_frame(page: &[u8], info: FrameInfo, chunk: usize) -> Vec<u8> {
    let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
    // A flush after each chunk ends a block, giving multi-block frames for small pages.
    for part in page.chunks(chunk) {
        enc.write_all(part).unwrap();
        enc.flush().unwrap();
    }
    enc.finish().unwrap()
}

fn legacy_frame(pgno: u32, lz4: &[u8]) -> Vec<u8> {
    let mut frame = pgno.to_be_bytes().to_vec();
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(lz4);
    frame
}

fn decode(frame: &[u8], page_size: u32) -> Result<(u32, Vec<u8>)> {
    let mut out = vec![0u8; page_size as usize];
    let pgno = decode_page_frame(frame, page_size, &mut out)?;
    Ok((pgno, out))
}

#[test]
fn frames_from_lz4_flex_frame_encoder() {
    let pages = [
        vector_page(0x21, 4096),
        random_page(7, 4096),
        vec![0u8; 4096],
    ];
    let infos = [
        // What pierrec writes: 64 KiB blocks, independent, content checksum.
        FrameInfo::new()
            .block_size(BlockSize::Max64KB)
            .content_checksum(true),
        FrameInfo::new()
            .block_size(BlockSize::Max64KB)
            .content_checksum(true)
            .block_checksums(true)
            .content_size(Some(4096)),
        FrameInfo::new()
            .block_size(BlockSize::Max64KB)
            .block_mode(BlockMode::Linked)
            .content_checksum(true),
    ];
    for (i, page) in pages.iter().enumerate() {
        for info in &infos {
            for chunk in [4096, 1000, 256] {
                let lz4 = lz4_frame(page, info.clone(), chunk);
                let frame = legacy_frame(40 + i as u32, &lz4);
                let (pgno, out) = decode(&frame, 4096).unwrap_or_else(|e| {
                    panic!("page {i} chunk {chunk} {info:?}: {e}");
                });
                assert_eq!(pgno, 40 + i as u32);
                assert_eq!(&out, page);
                // Cut anywhere, the frame is no longer complete.
                for cut in [frame.len() - 1, frame.len() - 4, 7] {
                    assert!(decode(&frame[..cut], 4096).is_err());
                }
            }
        }
    }
    // Linked blocks really depend on earlier blocks, so the dictionary path is exercised.
    let linked = lz4_frame(&pages[0], infos[2].clone(), 1000);
    assert_eq!(linked[4] & 0x20, 0, "linked FLG");
    let first_len = u32::from_le_bytes(linked[7..11].try_into().unwrap()) as usize;
    let second_at = 11 + first_len;
    let second_word = u32::from_le_bytes(linked[second_at..second_at + 4].try_into().unwrap());
    assert_eq!(second_word >> 31, 0, "second block is compressed");
    let second = &linked[second_at + 4..second_at + 4 + second_word as usize];
    let mut scratch = vec![0u8; 4096];
    assert!(lz4_flex::block::decompress_into(second, &mut scratch).is_err());

    // pierrec's frame descriptor bytes for its default options.
    let lz4 = lz4_frame(&pages[0], infos[0].clone(), 4096);
    assert_eq!(&lz4[..7], &[0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7]);
}

/// Builds `04 22 4D 18 | FLG BD HC | blocks... | EndMark | content checksum` by hand.
fn hand_frame(blocks: &[(bool, &[u8])], content: &[u8]) -> Vec<u8> {
    let (flg, bd) = (0x64u8, 0x40u8);
    let mut f = vec![0x04, 0x22, 0x4d, 0x18, flg, bd];
    f.push((XxHash32::oneshot(0, &[flg, bd]) >> 8) as u8);
    for (stored, data) in blocks {
        let mut word = data.len() as u32;
        if *stored {
            word |= 1 << 31;
        }
        f.extend_from_slice(&word.to_le_bytes());
        f.extend_from_slice(data);
    }
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&XxHash32::oneshot(0, content).to_le_bytes());
    f
}

#[test]
fn stored_uncompressed_blocks() {
    let page = random_page(99, 512);
    let hc = hand_frame(&[(true, &page)], &page);
    // FLG 0x64 / BD 0x40 give the HC byte the doc quotes.
    assert_eq!(hc[6], 0xa7);
    let (pgno, out) = decode(&legacy_frame(9, &hc), 512).unwrap();
    assert_eq!((pgno, &out), (9, &page));

    // A stored block followed by a compressed one (independent blocks).
    let second = lz4_flex::block::compress(&page[200..]);
    let mixed = hand_frame(&[(true, &page[..200]), (false, &second)], &page);
    assert_eq!(decode(&legacy_frame(9, &mixed), 512).unwrap().1, page);

    // Too little or too much data, or a bad content checksum, is an error.
    let short = hand_frame(&[(true, &page[..511])], &page[..511]);
    assert!(decode(&legacy_frame(9, &short), 512).is_err());
    let long = hand_frame(&[(true, &page), (true, &page[..1])], &page);
    assert!(decode(&legacy_frame(9, &long), 512).is_err());
    let mut bad_sum = hc.clone();
    let n = bad_sum.len();
    bad_sum[n - 1] ^= 0x80;
    assert!(decode(&legacy_frame(9, &bad_sum), 512).is_err());
    // Extra bytes after the frame are not part of it.
    let mut trailing = legacy_frame(9, &hc);
    trailing.push(0);
    assert!(decode(&trailing, 512).is_err());
}

#[test]
fn whole_legacy_file_with_mixed_frames() {
    // ltx 0.5.1 files only hold legacy frames, but the reader decides per frame like Go.
    let header = Header {
        flags: HEADER_FLAG_NO_CHECKSUM,
        page_size: 1024,
        commit: 5,
        min_txid: 7,
        max_txid: 8,
        timestamp_ms: 1,
        ..Header::default()
    };
    let pages = [
        (2u32, vector_page(3, 1024)),
        (4, random_page(4, 1024)),
        (5, vector_page(9, 1024)),
    ];
    let mut file = header.encode().to_vec();
    let mut hashed = file.clone();
    let mut index = Vec::new();
    for (i, (pgno, page)) in pages.iter().enumerate() {
        let offset = file.len();
        let frame = if i == 1 {
            // Current encoding in the middle.
            let block = lz4_flex::block::compress(page);
            let mut f = pgno.to_be_bytes().to_vec();
            f.extend_from_slice(&[0, 1]);
            f.extend_from_slice(&(block.len() as u32).to_be_bytes());
            hashed.extend_from_slice(&f);
            f.extend_from_slice(&block);
            f
        } else {
            let f = legacy_frame(
                *pgno,
                &lz4_frame(page, FrameInfo::new().content_checksum(true), 1024),
            );
            hashed.extend_from_slice(&f[..6]);
            f
        };
        hashed.extend_from_slice(page);
        index.push(PageIndexEntry {
            pgno: *pgno,
            offset: offset as u64,
            size: frame.len() as u32,
        });
        file.extend_from_slice(&frame);
    }
    let tail_start = file.len();
    file.extend_from_slice(&[0; 6]);
    let index_start = file.len();
    for e in &index {
        for v in [u64::from(e.pgno), e.offset, u64::from(e.size)] {
            let mut v = v;
            while v >= 0x80 {
                file.push(v as u8 | 0x80);
                v >>= 7;
            }
            file.push(v as u8);
        }
    }
    file.push(0);
    let index_len = (file.len() - index_start) as u64;
    file.extend_from_slice(&index_len.to_be_bytes());
    file.extend_from_slice(&0u64.to_be_bytes());
    hashed.extend_from_slice(&file[tail_start..]);
    let sum = CHECKSUM_FLAG | common::crc64_go_iso(&hashed);
    file.extend_from_slice(&sum.to_be_bytes());

    let decoded = decode_file(&file).unwrap();
    assert_eq!(decoded.header, header);
    assert_eq!(decoded.index, index);
    assert_eq!(decoded.trailer.file_checksum, sum);
    let want: Vec<_> = pages.iter().map(|(p, d)| (*p, d.clone())).collect();
    assert_eq!(decoded.pages, want);
}
