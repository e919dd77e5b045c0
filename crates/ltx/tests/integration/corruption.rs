//! Corrupted and truncated files must be rejected, never panic, never yield different pages.

use crate::common;

use common::{random_page, vector_a, vector_b, vector_c, vector_page};
use ltx::*;

fn encode(header: Header, pages: &[(u32, Vec<u8>)], post: u64) -> Vec<u8> {
    let mut enc = Encoder::new(header).unwrap();
    for (pgno, page) in pages {
        enc.add_page(*pgno, page).unwrap();
    }
    enc.finish(post).unwrap()
}

fn snapshot_file() -> Vec<u8> {
    let pages: Vec<_> = (1..=3)
        .map(|p| (p, vector_page(p as u8 * 16, 512)))
        .collect();
    let mut db = DatabaseChecksum::new();
    for (p, d) in &pages {
        db.xor_page_data(*p, d);
    }
    let header = Header {
        page_size: 512,
        commit: 3,
        min_txid: 1,
        max_txid: 4,
        timestamp_ms: 1_700_000_000_000,
        ..Header::default()
    };
    encode(header, &pages, db.value())
}

fn random_pages_file() -> Vec<u8> {
    let pages: Vec<_> = [2u32, 5, 6]
        .iter()
        .map(|&p| (p, random_page(u64::from(p), 512)))
        .collect();
    let header = Header {
        flags: HEADER_FLAG_NO_CHECKSUM,
        page_size: 512,
        commit: 9,
        min_txid: 10,
        max_txid: 12,
        wal_offset: 32,
        wal_size: 4096,
        wal_salt1: 7,
        wal_salt2: 8,
        ..Header::default()
    };
    encode(header, &pages, 0)
}

/// Byte ranges holding compressed LZ4 data (block bodies), per frame. A bit flip there may
/// legitimately decode to the same page (e.g. a match offset that points at equal bytes):
/// compressed bytes are not covered by the file checksum, only their result is.
fn lz4_payload_ranges(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let index = match decode_page_index(bytes.len() as u64, bytes).unwrap() {
        PageIndexDecode::Complete(index) => index,
        other => panic!("{other:?}"),
    };
    index
        .iter()
        .map(|e| {
            let (start, end) = (e.offset as usize, e.end() as usize);
            if bytes[start + 5] == 1 {
                start + 10..end
            } else {
                // Legacy: magic + FLG/BD/HC + block size word ... EndMark + content checksum.
                start + 6 + 7 + 4..end - 8
            }
        })
        .collect()
}

/// Flips every bit of `bytes` one at a time; returns the `(byte, bit)` flips that still
/// decoded (only to identical content inside LZ4 payloads, which is asserted).
fn flip_every_bit(bytes: &[u8]) -> Vec<(usize, u8)> {
    let original = decode_file(bytes).unwrap();
    let payload = lz4_payload_ranges(bytes);
    let mut still_ok = Vec::new();
    let mut copy = bytes.to_vec();
    for at in 0..bytes.len() {
        for bit in 0..8u8 {
            copy[at] ^= 1 << bit;
            if let Ok(decoded) = decode_file(&copy) {
                assert_eq!(decoded.pages, original.pages, "byte {at} bit {bit}");
                assert_eq!(decoded.header, original.header, "byte {at} bit {bit}");
                assert!(
                    payload.iter().any(|r| r.contains(&at)),
                    "flip at byte {at} bit {bit} outside LZ4 data was accepted"
                );
                still_ok.push((at, bit));
            }
            // Page index and single frames must not panic on the same garbage.
            let _ = decode_page_index(copy.len() as u64, &copy);
            copy[at] ^= 1 << bit;
        }
    }
    still_ok
}

#[test]
fn every_bit_flip_is_rejected_or_harmless() {
    for (name, bytes) in [
        ("A", vector_a()),
        ("B", vector_b()),
        ("C", vector_c()),
        ("snapshot", snapshot_file()),
    ] {
        let ok = flip_every_bit(&bytes).len();
        // Equal-output flips are rare; most of the payload is literals and lengths.
        assert!(ok * 20 < bytes.len() * 8, "{name}: {ok} flips accepted");
    }
}

#[test]
fn every_bit_flip_of_literal_only_pages_is_rejected() {
    // Random pages compress to one literal run. Every bit changes the page or a length,
    // except the token's match-length nibble: the last sequence has no match, and LZ4
    // decoders ignore that nibble there.
    let bytes = random_pages_file();
    let tokens: Vec<usize> = lz4_payload_ranges(&bytes).iter().map(|r| r.start).collect();
    let accepted = flip_every_bit(&bytes);
    let expected: Vec<(usize, u8)> = tokens
        .iter()
        .flat_map(|&t| (0..4).map(move |bit| (t, bit)))
        .collect();
    assert_eq!(accepted, expected);
}

#[test]
fn every_truncation_and_extension_is_rejected() {
    for bytes in [vector_a(), vector_c(), snapshot_file(), random_pages_file()] {
        for len in 0..bytes.len() {
            assert!(decode_file(&bytes[..len]).is_err(), "truncated to {len}");
            // Dropping bytes from the front breaks the header or the layout.
            assert!(
                decode_file(&bytes[bytes.len() - len..]).is_err(),
                "suffix {len}"
            );
        }
        for extra in [0u8, 0xff] {
            let mut longer = bytes.clone();
            longer.push(extra);
            assert!(decode_file(&longer).is_err(), "appended {extra}");
            let mut prefixed = vec![extra];
            prefixed.extend_from_slice(&bytes);
            assert!(decode_file(&prefixed).is_err(), "prepended {extra}");
        }
    }
}

#[test]
fn single_frames_truncated_anywhere_are_rejected() {
    for bytes in [vector_a(), vector_c(), random_pages_file()] {
        let ps = common::be_u32(&bytes[8..12]);
        let mut out = vec![0u8; ps as usize];
        let index = match decode_page_index(bytes.len() as u64, &bytes).unwrap() {
            PageIndexDecode::Complete(index) => index,
            other => panic!("{other:?}"),
        };
        for e in index {
            let frame = &bytes[e.offset as usize..e.end() as usize];
            decode_page_frame(frame, ps, &mut out).unwrap();
            for len in 0..frame.len() {
                assert!(decode_page_frame(&frame[..len], ps, &mut out).is_err());
            }
            let mut longer = frame.to_vec();
            longer.push(0);
            assert!(decode_page_frame(&longer, ps, &mut out).is_err());
            // Wrong page size or buffer.
            let mut small = vec![0u8; ps as usize / 2];
            assert!(decode_page_frame(frame, ps, &mut small).is_err());
            assert!(decode_page_frame(frame, ps * 2, &mut vec![0; ps as usize * 2]).is_err());
            assert!(decode_page_frame(frame, 1000, &mut vec![0; 1000]).is_err());
        }
    }
}

#[test]
fn oversized_compressed_size_is_rejected_before_reading() {
    let mut frame = vec![0, 0, 0, 1, 0, 1];
    let bound = max_compressed_size(512) as u32;
    frame.extend_from_slice(&(bound + 1).to_be_bytes());
    frame.resize(10 + bound as usize + 1, 0);
    let err = decode_page_frame(&frame, 512, &mut [0u8; 512]).unwrap_err();
    assert!(
        matches!(err, Error::InvalidPageFrame { pgno: 1, .. }),
        "{err}"
    );
}
