//! `compact`: the merge of consecutive files, against hand-made cases and a naive model.

use crate::common;

use std::collections::BTreeMap;

use common::random_page;
use ltx::{
    compact, decode_file, Encoder, Error, Header, PageReader, CHECKSUM_FLAG,
    HEADER_FLAG_NO_CHECKSUM,
};
use proptest::prelude::*;

const PS: u32 = 512;

/// Page `pgno` as written by transaction `txid`.
fn page(pgno: u32, txid: u64) -> Vec<u8> {
    random_page(u64::from(pgno) << 32 | txid, PS as usize)
}

fn header(min: u64, max: u64, commit: u32, ts: i64) -> Header {
    Header {
        flags: HEADER_FLAG_NO_CHECKSUM,
        page_size: PS,
        commit,
        min_txid: min,
        max_txid: max,
        timestamp_ms: ts,
        ..Header::default()
    }
}

/// A Litestream-style (no checksum) file holding `pgnos`, each written by `max`.
fn file(min: u64, max: u64, commit: u32, pgnos: &[u32]) -> Vec<u8> {
    let mut enc = Encoder::new(header(min, max, commit, max as i64 * 1000)).unwrap();
    for &p in pgnos {
        enc.add_page(p, &page(p, max)).unwrap();
    }
    enc.finish(0).unwrap()
}

fn pages_of(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
    decode_file(bytes).unwrap().pages
}

#[test]
fn newest_page_wins_and_header_follows_the_inputs() {
    let snap = file(1, 3, 4, &[1, 2, 3, 4]);
    let mut h = header(4, 4, 4, 9_000);
    h.wal_offset = 32;
    h.wal_size = 4152;
    h.wal_salt1 = 7;
    h.node_id = 5;
    let mut enc = Encoder::new(h).unwrap();
    enc.add_page(2, &page(2, 4)).unwrap();
    let inc4 = enc.finish(0).unwrap();
    let inc5 = file(5, 6, 5, &[2, 5]);

    let out = compact(&[&snap, &inc4, &inc5], HEADER_FLAG_NO_CHECKSUM).unwrap();
    let decoded = decode_file(&out.bytes).unwrap();
    assert_eq!(decoded.header, out.header);
    let h = &out.header;
    assert_eq!((h.min_txid, h.max_txid, h.commit), (1, 6, 5));
    assert_eq!(h.flags, HEADER_FLAG_NO_CHECKSUM);
    // The newest timestamp (input 1's 9000 is newer than input 2's 6000); WAL fields and
    // node id describe one source WAL, so a merge has none.
    assert_eq!(h.timestamp_ms, 9_000);
    assert_eq!(
        (h.wal_offset, h.wal_size, h.wal_salt1, h.node_id),
        (0, 0, 0, 0)
    );
    assert_eq!(decoded.trailer.post_apply_checksum, 0);
    let expect = vec![
        (1, page(1, 3)),
        (2, page(2, 6)),
        (3, page(3, 3)),
        (4, page(4, 3)),
        (5, page(5, 6)),
    ];
    assert_eq!(decoded.pages, expect);
}

#[test]
fn pages_above_the_final_commit_are_dropped() {
    let a = file(10, 10, 6, &[1, 5, 6]);
    let b = file(11, 11, 4, &[2]);
    let out = compact(&[&a, &b], HEADER_FLAG_NO_CHECKSUM).unwrap();
    assert_eq!(out.header.commit, 4);
    assert_eq!(
        pages_of(&out.bytes),
        vec![(1, page(1, 10)), (2, page(2, 11))]
    );
}

#[test]
fn shrink_then_regrow_keeps_only_rewritten_pages() {
    // 1..=6, shrink to 3, regrow to 5 writing 4 and 5 (as Litestream does for growth).
    let snap = file(1, 1, 6, &[1, 2, 3, 4, 5, 6]);
    let shrink = file(2, 2, 3, &[]);
    let regrow = file(3, 3, 5, &[4, 5]);
    let out = compact(&[&snap, &shrink, &regrow], HEADER_FLAG_NO_CHECKSUM).unwrap();
    assert_eq!(
        pages_of(&out.bytes),
        vec![
            (1, page(1, 1)),
            (2, page(2, 1)),
            (3, page(3, 1)),
            (4, page(4, 3)),
            (5, page(5, 3)),
        ]
    );
    // Regrowing over page 5 without writing it would resurrect the image from TXID 1.
    let bad_regrow = file(3, 3, 5, &[4]);
    let err = compact(&[&snap, &shrink, &bad_regrow], HEADER_FLAG_NO_CHECKSUM).unwrap_err();
    assert_eq!(
        err,
        Error::CompactTruncatedPage {
            pgno: 5,
            input: 0,
            truncated_to: 3,
            commit: 5
        }
    );
}

#[test]
fn a_snapshot_output_must_hold_every_page() {
    let snap = file(1, 1, 3, &[1, 2, 3]);
    // Grows to 6 but only carries page 6: pages 4 and 5 are in no input.
    let grow = file(2, 2, 6, &[6]);
    let err = compact(&[&snap, &grow], HEADER_FLAG_NO_CHECKSUM).unwrap_err();
    assert_eq!(err, Error::CompactMissingPage { pgno: 4, commit: 6 });
    // Missing pages at the very end are caught too.
    let grow = file(2, 2, 5, &[4]);
    let err = compact(&[&snap, &grow], HEADER_FLAG_NO_CHECKSUM).unwrap_err();
    assert_eq!(err, Error::CompactMissingPage { pgno: 5, commit: 5 });
    // The same growth is fine in an incremental output: earlier files may hold the pages.
    let inc = compact(&[&file(2, 2, 6, &[6])], HEADER_FLAG_NO_CHECKSUM).unwrap();
    assert_eq!(pages_of(&inc.bytes), vec![(6, page(6, 2))]);
}

#[test]
fn gaps_and_non_advancing_inputs_are_rejected_naming_the_input() {
    let a = file(1, 2, 1, &[1]);
    let b = file(3, 4, 1, &[1]);
    let gap = file(6, 6, 1, &[1]);
    let err = compact(&[&a, &b, &gap], HEADER_FLAG_NO_CHECKSUM).unwrap_err();
    assert_eq!(
        err,
        Error::NonContiguous {
            input: 2,
            prev_min: 3,
            prev_max: 4,
            min: 6,
            max: 6
        }
    );
    assert!(err
        .to_string()
        .starts_with("non-contiguous transaction ids"));
    // Overlap is allowed as long as the input goes further; one that does not is rejected.
    let overlap = file(2, 5, 1, &[1]);
    assert_eq!(
        compact(&[&a, &b, &overlap], HEADER_FLAG_NO_CHECKSUM)
            .unwrap()
            .header
            .max_txid,
        5
    );
    let behind = file(2, 4, 1, &[1]);
    assert!(matches!(
        compact(&[&a, &b, &behind], HEADER_FLAG_NO_CHECKSUM),
        Err(Error::NonContiguous { input: 2, .. })
    ));
    assert_eq!(
        compact::<&[u8]>(&[], HEADER_FLAG_NO_CHECKSUM),
        Err(Error::CompactNoInputs)
    );
}

#[test]
fn mixed_page_sizes_are_rejected_naming_the_input() {
    let a = file(1, 1, 1, &[1]);
    let mut h = header(2, 2, 1, 0);
    h.page_size = 1024;
    let mut enc = Encoder::new(h).unwrap();
    enc.add_page(1, &vec![7u8; 1024]).unwrap();
    let b = enc.finish(0).unwrap();
    assert_eq!(
        compact(&[&a, &b], HEADER_FLAG_NO_CHECKSUM),
        Err(Error::CompactPageSize {
            input: 1,
            expected: 512,
            got: 1024
        })
    );
}

#[test]
fn a_corrupt_input_is_an_error_naming_it() {
    let a = file(1, 1, 2, &[1, 2]);
    let mut b = file(2, 2, 2, &[2]);
    // A byte inside the compressed page: only the file checksum can notice.
    b[120] ^= 0x55;
    let c = file(3, 3, 2, &[1]);
    match compact(&[&a, &b, &c], HEADER_FLAG_NO_CHECKSUM) {
        Err(Error::CompactInput { input: 1, source }) => assert!(
            matches!(
                *source,
                Error::ChecksumMismatch { .. } | Error::Decompress { .. }
            ),
            "{source}"
        ),
        other => panic!("{other:?}"),
    }
    // A page that loses to a newer image is still verified: corrupt page 1 of input 0,
    // which input 2 overwrites.
    let mut a2 = a.clone();
    a2[120] ^= 0x55;
    assert!(matches!(
        compact(&[&a2, &file(2, 2, 2, &[2]), &c], HEADER_FLAG_NO_CHECKSUM),
        Err(Error::CompactInput { input: 0, .. })
    ));
}

/// Files that track database checksums, the way LiteFS or `ltx encode-db` write them.
fn checksummed(
    min: u64,
    max: u64,
    commit: u32,
    pre: u64,
    db: &mut BTreeMap<u32, Vec<u8>>,
    pgnos: &[u32],
) -> Vec<u8> {
    let mut h = header(min, max, commit, 0);
    h.flags = 0;
    h.pre_apply_checksum = pre;
    let mut enc = Encoder::new(h).unwrap();
    for &p in pgnos {
        db.insert(p, page(p, max));
        enc.add_page(p, &page(p, max)).unwrap();
    }
    db.retain(|&p, _| p <= commit);
    let mut sum = ltx::DatabaseChecksum::new();
    for (&p, data) in db.iter() {
        sum.xor_page_data(p, data);
    }
    enc.finish(sum.value()).unwrap()
}

#[test]
fn checksums_are_carried_when_tracked_and_dropped_with_no_checksum() {
    let mut db = BTreeMap::new();
    let snap = checksummed(1, 1, 2, 0, &mut db, &[1, 2]);
    let post1 = decode_file(&snap).unwrap().trailer.post_apply_checksum;
    let inc = checksummed(2, 2, 3, post1, &mut db, &[2, 3]);
    let post2 = decode_file(&inc).unwrap().trailer.post_apply_checksum;
    assert_ne!(post2, post1);

    // Tracked: pre of the first, post of the last; the decoder recomputes the snapshot's.
    let out = compact(&[&snap, &inc], 0).unwrap();
    let d = decode_file(&out.bytes).unwrap();
    assert_eq!(
        (d.header.pre_apply_checksum, d.trailer.post_apply_checksum),
        (0, post2)
    );
    let inc_only = compact(&[&inc], 0).unwrap();
    let d = decode_file(&inc_only.bytes).unwrap();
    assert_eq!(
        (d.header.pre_apply_checksum, d.trailer.post_apply_checksum),
        (post1, post2)
    );
    assert_ne!(post1 & CHECKSUM_FLAG, 0);

    // No checksum: both zero, whatever the inputs carried.
    let out = compact(&[&inc], HEADER_FLAG_NO_CHECKSUM).unwrap();
    let d = decode_file(&out.bytes).unwrap();
    assert_eq!(
        (d.header.pre_apply_checksum, d.trailer.post_apply_checksum),
        (0, 0)
    );

    // Tracked output from an untracked input: its checksums are unknown.
    let plain = file(3, 3, 3, &[1]);
    assert_eq!(
        compact(&[&inc, &plain], 0),
        Err(Error::CompactChecksumUntracked { input: 1 })
    );
}

#[test]
fn page_reader_reads_what_decode_file_reads_and_finish_checks_unread_pages() {
    let bytes = file(1, 1, 5, &[1, 2, 3, 4, 5]);
    let mut r = PageReader::new(&bytes).unwrap();
    let mut buf = vec![0u8; PS as usize];
    let mut seen = Vec::new();
    while let Some(p) = r.peek_pgno() {
        assert_eq!(r.next_page(&mut buf).unwrap(), Some(p));
        seen.push((p, buf.clone()));
    }
    assert_eq!(r.next_page(&mut buf).unwrap(), None);
    assert_eq!(r.finish().unwrap(), ltx::verify_file(&bytes).unwrap());
    assert_eq!(seen, pages_of(&bytes));

    // finish() reads the pages the caller skipped, so damage there is still found.
    let index = ltx::verify_file(&bytes).unwrap().index;
    let mut bad = bytes.clone();
    bad[index[4].offset as usize + 12] ^= 0x01;
    let mut r = PageReader::new(&bad).unwrap();
    assert_eq!(r.next_page(&mut buf).unwrap(), Some(1));
    assert!(r.finish().is_err());
}

#[test]
fn many_small_inputs_merge_in_page_order() {
    // 300 one-page transactions over 40 pages: the heap must interleave all of them.
    let inputs: Vec<Vec<u8>> = (2..302u64)
        .map(|t| file(t, t, 40, &[(t * 7 % 40) as u32 + 1]))
        .collect();
    let out = compact(&inputs, HEADER_FLAG_NO_CHECKSUM).unwrap();
    let mut want = BTreeMap::new();
    for t in 2..302u64 {
        let p = (t * 7 % 40) as u32 + 1;
        want.insert(p, page(p, t));
    }
    assert_eq!(pages_of(&out.bytes), want.into_iter().collect::<Vec<_>>());
    assert_eq!((out.header.min_txid, out.header.max_txid), (2, 301));
}

// ---------------------------------------------------------------------------------------------
// Against a naive model: apply every file in order to a page map, truncating at each commit.
// ---------------------------------------------------------------------------------------------

/// One transaction: its new database size and the pages it writes. Growth writes every new
/// page, as Litestream's writer does.
#[derive(Clone, Debug)]
struct Txn {
    commit: u32,
    pgnos: Vec<u32>,
}

fn history() -> impl Strategy<Value = (u32, Vec<Txn>)> {
    (1u32..12).prop_flat_map(|initial| {
        let txn = (1u32..16, prop::collection::vec(1u32..16, 0..6));
        (Just(initial), prop::collection::vec(txn, 1..12)).prop_map(|(initial, raw)| {
            let mut prev = initial;
            let txns = raw
                .into_iter()
                .map(|(commit, picks)| {
                    let mut pgnos: Vec<u32> = picks.into_iter().filter(|&p| p <= commit).collect();
                    pgnos.extend(prev + 1..=commit);
                    pgnos.sort_unstable();
                    pgnos.dedup();
                    prev = commit;
                    Txn { commit, pgnos }
                })
                .collect();
            (initial, txns)
        })
    })
}

/// Applies a file's pages and size to `db` the way a restore does.
fn apply(db: &mut BTreeMap<u32, Vec<u8>>, bytes: &[u8]) {
    let d = decode_file(bytes).unwrap();
    for (p, data) in d.pages {
        db.insert(p, data);
    }
    db.retain(|&p, _| p <= d.header.commit);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn compaction_matches_sequential_application(
        (initial, txns) in history(),
        split in 0usize..12,
    ) {
        let snapshot = file(1, 1, initial, &(1..=initial).collect::<Vec<_>>());
        let files: Vec<Vec<u8>> = txns
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let txid = i as u64 + 2;
                file(txid, txid, t.commit, &t.pgnos)
            })
            .collect();
        let mut model = BTreeMap::new();
        apply(&mut model, &snapshot);
        for f in &files {
            apply(&mut model, f);
        }

        // Everything into one snapshot: exactly the model.
        let mut all = vec![snapshot.clone()];
        all.extend(files.iter().cloned());
        let full = compact(&all, HEADER_FLAG_NO_CHECKSUM).unwrap();
        prop_assert!(full.header.is_snapshot());
        prop_assert_eq!(full.header.max_txid, files.len() as u64 + 1);
        let mut got = BTreeMap::new();
        apply(&mut got, &full.bytes);
        prop_assert_eq!(&got, &model);

        // Incrementals compacted in two groups, then applied on the snapshot: same state,
        // and the snapshot of (snapshot + both groups) is byte-for-byte the one above.
        let split = split.min(files.len() - 1) + 1;
        let (left, right) = files.split_at(split);
        let mut parts = vec![snapshot.clone()];
        parts.push(compact(left, HEADER_FLAG_NO_CHECKSUM).unwrap().bytes);
        if !right.is_empty() {
            parts.push(compact(right, HEADER_FLAG_NO_CHECKSUM).unwrap().bytes);
        }
        let mut staged = BTreeMap::new();
        for p in &parts {
            apply(&mut staged, p);
        }
        prop_assert_eq!(&staged, &model);
        let again = compact(&parts, HEADER_FLAG_NO_CHECKSUM).unwrap();
        prop_assert_eq!(pages_of(&again.bytes), pages_of(&full.bytes));
        prop_assert_eq!(again.header, full.header);
    }
}
