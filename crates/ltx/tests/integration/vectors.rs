//! Decoding the hex vectors A, B and C of the format doc (§14.2), produced by Go's ltx.

use crate::common;

use common::{be_u32, reseal, vector_a, vector_b, vector_c, vector_page};
use ltx::*;

fn entry(pgno: u32, offset: u64, size: u32) -> PageIndexEntry {
    PageIndexEntry { pgno, offset, size }
}

fn header_b() -> Header {
    Header {
        flags: HEADER_FLAG_NO_CHECKSUM,
        page_size: 512,
        commit: 3,
        min_txid: 3,
        max_txid: 3,
        timestamp_ms: 1_700_000_002_000,
        pre_apply_checksum: 0,
        wal_offset: 1104,
        wal_size: 536,
        wal_salt1: 1,
        wal_salt2: 2,
        node_id: 0,
    }
}

/// Everything a reader can learn from one vector must agree with the doc.
fn check_vector(
    bytes: &[u8],
    header: &Header,
    pages: &[(u32, Vec<u8>)],
    index: &[PageIndexEntry],
    trailer: Trailer,
    index_start: u64,
) {
    let decoded = decode_file(bytes).unwrap();
    assert_eq!(&decoded.header, header);
    assert_eq!(decoded.pages, pages);
    assert_eq!(decoded.index, index);
    assert_eq!(decoded.trailer, trailer);
    assert_eq!(&header.encode()[..], &bytes[..HEADER_SIZE]);

    let summary = verify_file(bytes).unwrap();
    assert_eq!(summary.index, index);
    assert_eq!(summary.trailer, trailer);

    let file_size = bytes.len() as u64;
    let loc = page_index_location(file_size, &bytes[bytes.len() - 24..]).unwrap();
    assert_eq!(loc.index_start, index_start);
    assert_eq!(loc.index_len, file_size - 24 - index_start);
    let needed = file_size - index_start;
    for tail_len in 24..=bytes.len() {
        let got = decode_page_index(file_size, &bytes[bytes.len() - tail_len..]).unwrap();
        if (tail_len as u64) < needed {
            assert_eq!(got, PageIndexDecode::NeedTail(needed), "tail {tail_len}");
        } else {
            assert_eq!(
                got,
                PageIndexDecode::Complete(index.to_vec()),
                "tail {tail_len}"
            );
        }
    }

    let mut out = vec![0u8; header.page_size as usize];
    for (e, (pgno, page)) in index.iter().zip(pages) {
        let frame = &bytes[e.offset as usize..e.end() as usize];
        assert_eq!(
            decode_page_frame(frame, header.page_size, &mut out).unwrap(),
            *pgno
        );
        assert_eq!(&out, page);
    }
}

#[test]
fn vector_a_snapshot_with_checksums() {
    let bytes = vector_a();
    assert_eq!(bytes.len(), 268);
    let header = Header {
        flags: 0,
        page_size: 512,
        commit: 2,
        min_txid: 1,
        max_txid: 1,
        timestamp_ms: 1_700_000_000_000,
        ..Header::default()
    };
    let pages = vec![(1, vector_page(0x10, 512)), (2, vector_page(0x40, 512))];
    let trailer = Trailer {
        post_apply_checksum: 0x90D0_4985_5555_5555,
        file_checksum: 0xB4F5_1F2B_395A_26B8,
    };
    check_vector(
        &bytes,
        &header,
        &pages,
        &[entry(1, 100, 65), entry(2, 165, 65)],
        trailer,
        236,
    );

    // Page and database checksums quoted by the doc.
    assert_eq!(checksum_page(1, &pages[0].1), 0xE474_E679_5E90_AF14);
    assert_eq!(checksum_page(2, &pages[1].1), 0xF4A4_AFFC_0BC5_FA41);
    let mut db = DatabaseChecksum::new();
    for (pgno, page) in &pages {
        db.xor_page_data(*pgno, page);
    }
    assert_eq!(db.value(), trailer.post_apply_checksum);

    // Our encoder writes an equivalent file (different LZ4 bytes, same logical content).
    let mut enc = Encoder::new(header.clone()).unwrap();
    for (pgno, page) in &pages {
        enc.add_page(*pgno, page).unwrap();
    }
    let ours = enc.finish(trailer.post_apply_checksum).unwrap();
    assert_eq!(&ours[..HEADER_SIZE], &bytes[..HEADER_SIZE]);
    let decoded = decode_file(&ours).unwrap();
    assert_eq!(decoded.pages, pages);
    assert_eq!(
        decoded.trailer.post_apply_checksum,
        trailer.post_apply_checksum
    );
}

#[test]
fn vector_b_incremental_no_checksum() {
    let bytes = vector_b();
    assert_eq!(bytes.len(), 199);
    check_vector(
        &bytes,
        &header_b(),
        &[(3, vector_page(0x33, 512))],
        &[entry(3, 100, 65)],
        Trailer {
            post_apply_checksum: 0,
            file_checksum: 0xEA0E_1B80_24B3_4F96,
        },
        171,
    );
    // The frame is in the current encoding: size prefix 55.
    assert_eq!(&bytes[104..106], &[0, 1]);
    assert_eq!(be_u32(&bytes[106..110]), 55);
}

#[test]
fn vector_c_legacy_lz4_frame() {
    let bytes = vector_c();
    assert_eq!(bytes.len(), 214);
    check_vector(
        &bytes,
        &header_b(),
        &[(3, vector_page(0x33, 512))],
        &[entry(3, 100, 80)],
        Trailer {
            post_apply_checksum: 0,
            file_checksum: 0xADB1_8703_B0A3_2CBD,
        },
        186,
    );
    assert_eq!(&bytes[104..106], &[0, 0]);
    assert_eq!(
        &bytes[106..113],
        &[0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7]
    );
}

#[test]
fn legacy_frame_checksums_are_verified() {
    let bytes = vector_c();
    let frame = &bytes[100..180];
    let mut out = vec![0u8; 512];
    // Header checksum (HC), block size word, block byte, content checksum.
    for at in [12, 13, 30, 76] {
        let mut bad = frame.to_vec();
        bad[at] ^= 0x01;
        assert!(decode_page_frame(&bad, 512, &mut out).is_err(), "byte {at}");
    }
    // A legacy frame of the right page but a wrong page size is rejected.
    let mut big = vec![0u8; 1024];
    assert!(decode_page_frame(frame, 1024, &mut big).is_err());
}

#[test]
fn checksum_mismatch_reports_both_values() {
    let mut bytes = vector_a();
    // A reserved header byte: ignored by the header parser, covered by the file checksum.
    bytes[90] = 1;
    match decode_file(&bytes) {
        Err(e @ Error::ChecksumMismatch { expected, actual }) => {
            assert_eq!(expected, 0xB4F5_1F2B_395A_26B8);
            assert_ne!(actual, expected);
            assert!(e.to_string().starts_with("file checksum mismatch"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // Resealing proves the reserved byte really is ignored otherwise.
    reseal(&mut bytes);
    decode_file(&bytes).unwrap();
}

#[test]
fn snapshot_post_apply_checksum_is_recomputed() {
    let mut bytes = vector_a();
    let post_at = bytes.len() - 16;
    bytes[post_at + 7] ^= 0x01;
    reseal(&mut bytes);
    match decode_file(&bytes) {
        Err(e @ Error::PostApplyChecksumMismatch { expected, actual }) => {
            assert_eq!(actual, 0x90D0_4985_5555_5555);
            assert_eq!(expected, 0x90D0_4985_5555_5554);
            assert!(e
                .to_string()
                .starts_with("post-apply checksum in trailer (90d0498555555554) does not match"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn go_error_strings() {
    let a = vector_a();
    let mut bad = a.clone();
    bad[0] = b'X';
    assert_eq!(
        decode_file(&bad).unwrap_err().to_string(),
        "invalid LTX file"
    );
    let mut bad = a.clone();
    bad[7] = 1;
    assert_eq!(
        decode_file(&bad).unwrap_err().to_string(),
        "invalid flags: 0x00000001"
    );
    let mut bad = a.clone();
    bad[10] = 3; // page size 0x300
    assert_eq!(
        decode_file(&bad).unwrap_err().to_string(),
        "invalid page size: 768"
    );
    let mut out = vec![0u8; 512];
    let mut frame = a[100..165].to_vec();
    frame[5] = 2;
    assert!(decode_page_frame(&frame, 512, &mut out)
        .unwrap_err()
        .to_string()
        .starts_with("invalid page header flags: 0x0002"));
    frame[..4].copy_from_slice(&[0; 4]);
    frame[5] = 1;
    assert_eq!(
        decode_page_frame(&frame, 512, &mut out)
            .unwrap_err()
            .to_string(),
        "page number required"
    );
}

#[test]
fn structural_checks_behind_a_valid_checksum() {
    // Page numbers are edited in both the frame header and the index, then the file is
    // resealed, so only the structural checks can object.
    let a = vector_a();
    let set_pgnos = |first: u8, second: u8| {
        let mut b = a.clone();
        b[103] = first;
        b[168] = second;
        b[236] = first;
        b[239] = second;
        reseal(&mut b);
        decode_file(&b)
    };
    assert!(set_pgnos(1, 2).is_ok());
    assert!(matches!(
        set_pgnos(2, 3),
        Err(Error::SnapshotSequence { prev: 0, pgno: 2 })
    ));
    assert!(matches!(
        set_pgnos(1, 3),
        Err(Error::PageOutOfBounds { pgno: 3, commit: 2 })
    ));

    // Index disagreeing with the frame header.
    let mut b = a.clone();
    b[239] = 1;
    let mut ok = a.clone();
    reseal(&mut ok);
    assert_eq!(ok, a, "reseal reproduces Go's checksum");
    assert!(matches!(
        decode_page_index(b.len() as u64, &b),
        Err(Error::InvalidIndex(_))
    ));
    b[239] = 2;
    b[103] = 2; // frame header says 2 where the index says 1
    assert!(matches!(decode_file(&b), Err(Error::InvalidIndex(_))));
}

#[test]
fn incremental_rules_behind_a_valid_checksum() {
    // Vector B's single page moved to pgno 4 (> commit 3).
    let mut b = vector_b();
    b[103] = 4;
    b[171] = 4;
    reseal(&mut b);
    assert!(matches!(
        decode_file(&b),
        Err(Error::PageOutOfBounds { pgno: 4, commit: 3 })
    ));
    b[103] = 2;
    b[171] = 2;
    reseal(&mut b);
    assert_eq!(decode_file(&b).unwrap().pages[0].0, 2);
}
