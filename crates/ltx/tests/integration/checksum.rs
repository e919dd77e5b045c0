//! Checksum vectors from the format doc (§7).

use ltx::*;

#[test]
fn crc64_go_iso_check_value() {
    assert_eq!(crc64(b"123456789"), 0xB909_56C7_75A4_1001);
    assert_eq!(crc64(b""), 0);
}

#[test]
fn page_checksum_vector() {
    assert_eq!(checksum_page(1, &[0u8; 4096]), 0xD932_8F59_2D9E_733D);
    // The page number is part of the checksum.
    assert_ne!(checksum_page(2, &[0u8; 4096]), 0xD932_8F59_2D9E_733D);
}

#[test]
fn database_checksum_vector_from_go_tests() {
    let mut db = DatabaseChecksum::new();
    for (pgno, fill) in [(1u32, 1u8), (2, 2), (3, 3)] {
        db.xor_page_data(pgno, &[fill; 512]);
    }
    assert_eq!(db.value(), 0xEFFF_FFFF_ECD9_9000);

    // Removing a page is XORing it in again; order does not matter.
    let mut other = DatabaseChecksum::new();
    for (pgno, fill) in [(3u32, 3u8), (1, 1), (2, 2), (4, 4)] {
        other.xor_page_data(pgno, &[fill; 512]);
    }
    other.xor_page_data(4, &[4; 512]);
    assert_eq!(other, db);
    assert_eq!(DatabaseChecksum::from_value(db.value()), db);
    assert_eq!(DatabaseChecksum::new().value(), CHECKSUM_FLAG);
}

#[test]
fn file_hasher_streams_like_one_crc() {
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut h = FileHasher::new();
    for chunk in data.chunks(33) {
        h.update(chunk);
    }
    assert_eq!(h.finish(), CHECKSUM_FLAG | crc64(&data));
    assert_eq!(FileHasher::new().finish(), CHECKSUM_FLAG);
}

use crate::common;

proptest::proptest! {
    /// The SIMD CRC (`crc-fast`) agrees with the `crc` crate's table CRC on any bytes, in one
    /// piece or in any pieces: lengths around the 16/64/128-byte folding widths are where a
    /// carry-less-multiply CRC has its edge cases.
    #[test]
    fn crc64_matches_an_independent_table_crc(
        data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..9000),
        cuts in proptest::collection::vec(0usize..9000, 0..6),
        pgno in proptest::prelude::any::<u32>(),
    ) {
        let want = common::crc64_go_iso(&data);
        proptest::prop_assert_eq!(crc64(&data), want);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
        cuts.sort_unstable();
        let (mut digest, mut hasher, mut from) = (Crc64Digest::new(), FileHasher::new(), 0);
        for to in cuts.into_iter().chain([data.len()]) {
            digest.update(&data[from..to]);
            hasher.update(&data[from..to]);
            from = to;
        }
        proptest::prop_assert_eq!(digest.finish(), want);
        proptest::prop_assert_eq!(hasher.finish(), CHECKSUM_FLAG | want);
        let mut framed = pgno.to_be_bytes().to_vec();
        framed.extend_from_slice(&data);
        proptest::prop_assert_eq!(checksum_page(pgno, &data), CHECKSUM_FLAG | common::crc64_go_iso(&framed));
    }
}
