//! Property tests: encode → decode round trips over random headers and page sets.

use crate::common;

use common::{be_u32, crc64_go_iso, random_page, vector_page};
use ltx::*;
use proptest::prelude::*;

/// How a generated page is filled: incompressible, patterned, all zero, or mostly zero.
#[derive(Clone, Debug)]
enum Fill {
    Random(u64),
    Pattern(u8),
    Zero,
    Sparse(u64),
}

fn fill_page(fill: &Fill, page_size: usize) -> Vec<u8> {
    match fill {
        Fill::Random(seed) => random_page(*seed, page_size),
        Fill::Pattern(seed) => vector_page(*seed, page_size),
        Fill::Zero => vec![0; page_size],
        Fill::Sparse(seed) => {
            let mut page = vec![0; page_size];
            let noise = random_page(*seed, 64);
            let at = (*seed as usize) % (page_size - 64);
            page[at..at + 64].copy_from_slice(&noise);
            page
        }
    }
}

fn fill_strategy() -> impl Strategy<Value = Fill> {
    prop_oneof![
        any::<u64>().prop_map(Fill::Random),
        any::<u8>().prop_map(Fill::Pattern),
        Just(Fill::Zero),
        any::<u64>().prop_map(Fill::Sparse),
    ]
}

#[derive(Clone, Debug)]
struct Case {
    header: Header,
    pages: Vec<(u32, Vec<u8>)>,
    post: u64,
}

/// Page numbers for a file: a full run for snapshots, a subset for incrementals (sometimes
/// around the lock page, which is never included).
fn layout_strategy(page_size: u32, snapshot: bool) -> BoxedStrategy<(u32, Vec<u32>)> {
    // Keep big-page cases small so the suite stays fast in debug builds.
    let max_pages: u32 = if page_size >= 16384 { 3 } else { 8 };
    if snapshot {
        return (0..=max_pages)
            .prop_map(|commit| (commit, (1..=commit).collect()))
            .boxed();
    }
    let lock = lock_pgno(page_size);
    prop_oneof![
        (1u32..40, any::<u64>()).prop_map(move |(commit, mask)| {
            let pgnos: Vec<u32> = (1..=commit)
                .filter(|p| mask >> (p % 64) & 1 == 1)
                .take(max_pages as usize)
                .collect();
            (commit, pgnos)
        }),
        (0u32..4, any::<u8>()).prop_map(move |(extra, mask)| {
            let commit = lock + extra;
            let candidates = [1, lock - 2, lock - 1, lock + 1, lock + 2, lock + 3];
            let pgnos: Vec<u32> = candidates
                .iter()
                .enumerate()
                .filter(|&(i, &p)| mask >> i & 1 == 1 && p <= commit)
                .map(|(_, &p)| p)
                .collect();
            (commit, pgnos)
        }),
    ]
    .boxed()
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (9u32..=16, any::<bool>(), any::<bool>())
        .prop_flat_map(|(exp, snapshot, no_checksum)| {
            let page_size = 1u32 << exp;
            (
                Just((page_size, snapshot, no_checksum)),
                layout_strategy(page_size, snapshot),
                prop::collection::vec(fill_strategy(), 8),
                (2u64..u64::MAX / 2, 0u64..1000),
                any::<(i64, u64, u64, u64)>(),
                prop::option::of((1i64..i64::MAX, 0i64..i64::MAX, any::<(u32, u32)>())),
            )
        })
        .prop_map(
            |(
                (page_size, snapshot, no_checksum),
                (commit, pgnos),
                fills,
                (min, span),
                (timestamp_ms, node_id, pre, post),
                wal,
            )| {
                let min_txid = if snapshot { 1 } else { min };
                let (wal_offset, wal_size, (wal_salt1, wal_salt2)) = wal.unwrap_or((0, 0, (0, 0)));
                let tracked_pre = !snapshot && !no_checksum;
                let header = Header {
                    flags: if no_checksum {
                        HEADER_FLAG_NO_CHECKSUM
                    } else {
                        0
                    },
                    page_size,
                    commit,
                    min_txid,
                    max_txid: min_txid + span,
                    timestamp_ms,
                    pre_apply_checksum: if tracked_pre { CHECKSUM_FLAG | pre } else { 0 },
                    wal_offset,
                    wal_size,
                    wal_salt1,
                    wal_salt2,
                    node_id,
                };
                let pages: Vec<(u32, Vec<u8>)> = pgnos
                    .iter()
                    .zip(fills.iter().cycle())
                    .map(|(&pgno, fill)| (pgno, fill_page(fill, page_size as usize)))
                    .collect();
                let post = if no_checksum {
                    0
                } else if snapshot {
                    let mut db = DatabaseChecksum::new();
                    for (pgno, page) in &pages {
                        db.xor_page_data(*pgno, page);
                    }
                    db.value()
                } else if commit == 0 {
                    CHECKSUM_FLAG
                } else {
                    CHECKSUM_FLAG | post
                };
                Case {
                    header,
                    pages,
                    post,
                }
            },
        )
}

fn encode(case: &Case) -> (Vec<u8>, Vec<PageIndexEntry>) {
    let mut enc = Encoder::new(case.header.clone()).unwrap();
    for (pgno, page) in &case.pages {
        enc.add_page(*pgno, page).unwrap();
    }
    let index = enc.index().to_vec();
    (enc.finish(case.post).unwrap(), index)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn encode_decode_round_trip(case in case_strategy()) {
        let (bytes, enc_index) = encode(&case);
        let ps = case.header.page_size;

        // Whole-file decode gives back exactly what went in.
        let decoded = decode_file(&bytes).unwrap();
        prop_assert_eq!(&decoded.header, &case.header);
        prop_assert_eq!(&decoded.pages, &case.pages);
        prop_assert_eq!(decoded.trailer.post_apply_checksum, case.post);
        prop_assert_eq!(&decoded.index, &enc_index);
        prop_assert_eq!(verify_file(&bytes).unwrap().index, enc_index.clone());

        // Layout, computed here rather than trusted from the crate: frames from offset 100,
        // back to back, in page order, current encoding with a size prefix.
        let mut offset = HEADER_SIZE as u64;
        prop_assert_eq!(enc_index.len(), case.pages.len());
        for (e, (pgno, _)) in enc_index.iter().zip(&case.pages) {
            prop_assert_eq!(e.pgno, *pgno);
            prop_assert_eq!(e.offset, offset);
            let frame = &bytes[e.offset as usize..e.end() as usize];
            prop_assert_eq!(be_u32(frame), *pgno);
            prop_assert_eq!(&frame[4..6], &[0u8, 1][..]);
            prop_assert_eq!(be_u32(&frame[6..]) as usize + 10, frame.len());
            prop_assert!(frame.len() - 10 <= max_compressed_size(ps));
            offset = e.end();
        }
        let block_end = offset as usize;
        let index_start = block_end + PAGE_HEADER_SIZE;
        prop_assert_eq!(&bytes[block_end..index_start], &[0u8; 6][..]);
        let len = bytes.len();
        let index_len = u64::from_be_bytes(bytes[len - 24..len - 16].try_into().unwrap());
        prop_assert_eq!(index_len as usize, len - 24 - index_start);

        // File checksum over exactly the §7.4 byte sequence.
        let mut hashed = bytes[..HEADER_SIZE].to_vec();
        for (e, (_, page)) in enc_index.iter().zip(&case.pages) {
            hashed.extend_from_slice(&bytes[e.offset as usize..e.offset as usize + 10]);
            hashed.extend_from_slice(page);
        }
        hashed.extend_from_slice(&bytes[block_end..len - 8]);
        let file_checksum = u64::from_be_bytes(bytes[len - 8..].try_into().unwrap());
        prop_assert_eq!(file_checksum, CHECKSUM_FLAG | crc64_go_iso(&hashed));
        prop_assert_eq!(decoded.trailer.file_checksum, file_checksum);
        // Read back from the file's end, whole or as its last 8 bytes; too short says so.
        prop_assert_eq!(ltx::Trailer::file_checksum_at_end(&bytes), Some(file_checksum));
        prop_assert_eq!(ltx::Trailer::file_checksum_at_end(&bytes[len - 8..]), Some(file_checksum));
        prop_assert_eq!(ltx::Trailer::file_checksum_at_end(&bytes[len - 7..]), None);

        // Index from the tail, at every interesting tail length.
        let file_size = len as u64;
        let needed = file_size - index_start as u64;
        let loc = page_index_location(file_size, &bytes[len - 24..]).unwrap();
        prop_assert_eq!(loc.index_start, index_start as u64);
        for tail_len in [24, needed as usize - 1, needed as usize, needed as usize + 6, len] {
            let tail_len = tail_len.clamp(24, len);
            let got = decode_page_index(file_size, &bytes[len - tail_len..]).unwrap();
            if (tail_len as u64) < needed {
                prop_assert_eq!(got, PageIndexDecode::NeedTail(needed));
            } else {
                prop_assert_eq!(got, PageIndexDecode::Complete(enc_index.clone()));
            }
        }
        prop_assert!(decode_page_index(file_size, &bytes[len - 23..]).is_err());

        // Each frame on its own, as a VFS reads it.
        let mut out = vec![0u8; ps as usize];
        for (e, (pgno, page)) in enc_index.iter().zip(&case.pages) {
            let frame = &bytes[e.offset as usize..e.end() as usize];
            prop_assert_eq!(decode_page_frame(frame, ps, &mut out).unwrap(), *pgno);
            prop_assert_eq!(&out, page);
        }
    }
}

#[test]
fn lz4_flex_output_is_within_the_reader_bound() {
    // Worst case for LZ4 is incompressible data; the encoder must never write a block the
    // decoder would refuse.
    for exp in 9..=16 {
        let ps = 1usize << exp;
        let page = random_page(exp, ps);
        let block = lz4_flex::block::compress(&page);
        assert!(
            block.len() <= max_compressed_size(ps as u32),
            "{ps}: {}",
            block.len()
        );
        assert!(block.len() > ps, "random data does not compress");
    }
}
