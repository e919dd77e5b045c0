//! Parsers fed arbitrary bytes must return, not panic.

use crate::common;

use common::{random_page, vector_c, vector_page};
use ltx::*;
use proptest::prelude::*;

fn page_size_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![(9u32..=16).prop_map(|e| 1 << e), any::<u32>()]
}

/// A small valid file to mutate.
fn base_file() -> (Vec<u8>, Vec<(u32, Vec<u8>)>) {
    let pages = vec![
        (1u32, vector_page(1, 512)),
        (2, random_page(2, 512)),
        (3, vec![0; 512]),
    ];
    let header = Header {
        flags: HEADER_FLAG_NO_CHECKSUM,
        page_size: 512,
        commit: 3,
        min_txid: 1,
        max_txid: 1,
        ..Header::default()
    };
    let mut enc = Encoder::new(header).unwrap();
    for (p, d) in &pages {
        enc.add_page(*p, d).unwrap();
    }
    (enc.finish(0).unwrap(), pages)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn page_index_on_random_tails(tail in prop::collection::vec(any::<u8>(), 0..300),
                                  extra in prop_oneof![0u64..200, any::<u64>()]) {
        let file_size = (tail.len() as u64).saturating_add(extra);
        let _ = page_index_location(file_size, &tail);
        let _ = decode_page_index(file_size, &tail);
        // Smaller than the tail is invalid input, still no panic.
        let _ = decode_page_index(extra, &tail);
    }

    #[test]
    fn page_index_with_plausible_length(area in prop::collection::vec(any::<u8>(), 1..120),
                                        before in 106u64..400) {
        // A tail whose IndexLen is consistent, so the entry parser sees random varints.
        let mut tail = area.clone();
        tail.extend_from_slice(&(area.len() as u64).to_be_bytes());
        tail.extend_from_slice(&[0; 16]);
        let file_size = before + tail.len() as u64;
        if let Ok(PageIndexDecode::Complete(entries)) = decode_page_index(file_size, &tail) {
            let mut next = HEADER_SIZE as u64;
            for e in &entries {
                prop_assert_eq!(e.offset, next);
                prop_assert!(e.pgno > 0 && e.size > 6);
                next = e.end();
            }
            prop_assert_eq!(next + 6, before);
        }
    }

    #[test]
    fn page_frame_on_random_bytes(frame in prop::collection::vec(any::<u8>(), 0..700),
                                  page_size in page_size_strategy()) {
        let mut out = vec![0u8; (page_size as usize).min(1 << 16)];
        let _ = decode_page_frame(&frame, page_size, &mut out);
    }

    #[test]
    fn page_frame_with_plausible_headers(pgno in 1u32.., body in prop::collection::vec(any::<u8>(), 0..700),
                                         legacy in any::<bool>(), flg in any::<u8>(), bd in any::<u8>()) {
        let mut frame = pgno.to_be_bytes().to_vec();
        if legacy {
            frame.extend_from_slice(&[0, 0, 0x04, 0x22, 0x4d, 0x18, flg, bd]);
        } else {
            frame.extend_from_slice(&[0, 1]);
            frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        }
        frame.extend_from_slice(&body);
        let mut out = vec![0u8; 512];
        let _ = decode_page_frame(&frame, 512, &mut out);
    }

    #[test]
    fn legacy_frame_mutations(at in 0usize..80, value in any::<u8>()) {
        // Mutations of a real legacy frame (vector C) walk through every parser branch.
        let c = vector_c();
        let mut frame = c[100..180].to_vec();
        frame[at] = value;
        let mut out = vec![0u8; 512];
        if decode_page_frame(&frame, 512, &mut out).is_ok() {
            prop_assert_eq!(out, vector_page(0x33, 512));
        }
    }

    #[test]
    fn whole_file_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode_file(&bytes);
        let mut with_magic = MAGIC.to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = decode_file(&with_magic);
    }

    #[test]
    fn whole_file_mutations(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let (bytes, pages) = base_file();
        let mut copy = bytes.clone();
        for (at, value) in &edits {
            copy[at.index(bytes.len())] = *value;
        }
        if let Ok(decoded) = decode_file(&copy) {
            prop_assert_eq!(decoded.pages, pages);
        }
        let _ = decode_page_index(copy.len() as u64, &copy);
    }
}
