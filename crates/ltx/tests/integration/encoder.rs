//! Encoder rules (format §4.5 and §6) and their error values.

use crate::common;

use common::vector_page;
use ltx::*;

fn incremental(commit: u32) -> Header {
    Header {
        flags: HEADER_FLAG_NO_CHECKSUM,
        page_size: 1024,
        commit,
        min_txid: 5,
        max_txid: 5,
        ..Header::default()
    }
}

fn snapshot(commit: u32, flags: u32) -> Header {
    Header {
        flags,
        min_txid: 1,
        ..incremental(commit)
    }
}

#[test]
fn rejects_invalid_headers() {
    let bad = Header {
        page_size: 1000,
        ..incremental(1)
    };
    assert!(matches!(
        Encoder::new(bad),
        Err(Error::InvalidPageSize(1000))
    ));
    let bad = Header {
        flags: 1,
        ..incremental(1)
    };
    assert!(matches!(Encoder::new(bad), Err(Error::InvalidFlags(1))));
}

#[test]
fn incremental_page_rules() {
    let page = vector_page(1, 1024);
    let mut enc = Encoder::new(incremental(10)).unwrap();
    assert!(matches!(
        enc.add_page(3, &page[..1000]),
        Err(Error::PageSize {
            expected: 1024,
            got: 1000
        })
    ));
    assert!(matches!(
        enc.add_page(0, &page),
        Err(Error::PageNumberRequired)
    ));
    assert!(matches!(
        enc.add_page(11, &page),
        Err(Error::PageOutOfBounds {
            pgno: 11,
            commit: 10
        })
    ));
    enc.add_page(3, &page).unwrap();
    assert!(matches!(
        enc.add_page(3, &page),
        Err(Error::PageOrder { prev: 3, pgno: 3 })
    ));
    assert!(matches!(
        enc.add_page(2, &page),
        Err(Error::PageOrder { prev: 3, pgno: 2 })
    ));
    // Failed calls leave no trace: the file holds exactly the accepted pages.
    enc.add_page(10, &page).unwrap();
    assert_eq!(
        enc.index().iter().map(|e| e.pgno).collect::<Vec<_>>(),
        [3, 10]
    );
    let bytes = enc.finish(0).unwrap();
    let decoded = decode_file(&bytes).unwrap();
    assert_eq!(decoded.pages, vec![(3, page.clone()), (10, page)]);
}

#[test]
fn lock_page_is_refused() {
    let lock = lock_pgno(1024);
    let mut enc = Encoder::new(incremental(lock + 1)).unwrap();
    let page = vec![7u8; 1024];
    enc.add_page(lock - 1, &page).unwrap();
    assert!(matches!(
        enc.add_page(lock, &page),
        Err(Error::LockPage { pgno }) if pgno == lock
    ));
    enc.add_page(lock + 1, &page).unwrap();
    let decoded = decode_file(&enc.finish(0).unwrap()).unwrap();
    assert_eq!(
        decoded.pages.iter().map(|p| p.0).collect::<Vec<_>>(),
        [lock - 1, lock + 1]
    );
}

#[test]
fn snapshot_rules() {
    let page = vec![1u8; 1024];
    let mut enc = Encoder::new(snapshot(3, HEADER_FLAG_NO_CHECKSUM)).unwrap();
    assert!(matches!(
        enc.add_page(2, &page),
        Err(Error::SnapshotSequence { prev: 0, pgno: 2 })
    ));
    enc.add_page(1, &page).unwrap();
    assert!(matches!(
        enc.add_page(3, &page),
        Err(Error::SnapshotSequence { prev: 1, pgno: 3 })
    ));
    enc.add_page(2, &page).unwrap();
    // Two of three pages: incomplete.
    assert!(matches!(
        enc.finish(0),
        Err(Error::SnapshotIncomplete { last: 2, commit: 3 })
    ));
}

#[test]
fn post_apply_rules() {
    let page = vector_page(9, 1024);
    let build = |header: Header, post: u64| {
        let mut enc = Encoder::new(header.clone()).unwrap();
        for pgno in 1..=header.commit {
            enc.add_page(pgno, &page).unwrap();
        }
        enc.finish(post)
    };
    // Untracked files must carry 0.
    assert!(matches!(
        build(incremental(1), CHECKSUM_FLAG),
        Err(Error::InvalidTrailer(_))
    ));
    // Tracked incrementals need a flagged checksum.
    let tracked = Header {
        flags: 0,
        pre_apply_checksum: CHECKSUM_FLAG | 3,
        ..incremental(1)
    };
    assert!(matches!(
        build(tracked.clone(), 0),
        Err(Error::InvalidTrailer(_))
    ));
    assert!(matches!(
        build(tracked.clone(), 5),
        Err(Error::InvalidTrailer(_))
    ));
    decode_file(&build(tracked, CHECKSUM_FLAG | 5).unwrap()).unwrap();

    // Tracked snapshots must carry the checksum of their pages.
    let expected = {
        let mut db = DatabaseChecksum::new();
        db.xor_page_data(1, &page);
        db.xor_page_data(2, &page);
        db.value()
    };
    match build(snapshot(2, 0), expected ^ 1) {
        Err(Error::PostApplyChecksumMismatch {
            expected: e,
            actual,
        }) => {
            assert_eq!(e, expected ^ 1);
            assert_eq!(actual, expected);
        }
        other => panic!("{other:?}"),
    }
    let bytes = build(snapshot(2, 0), expected).unwrap();
    assert_eq!(
        decode_file(&bytes).unwrap().trailer.post_apply_checksum,
        expected
    );

    // Empty database: the flag alone when tracked; 0 when untracked (Go's encoder cannot
    // write the latter, but it is a well-formed file).
    assert!(matches!(
        build(snapshot(0, 0), CHECKSUM_FLAG | 1),
        Err(Error::PostApplyChecksumMismatch { .. })
    ));
    let tracked_empty = Header {
        flags: 0,
        pre_apply_checksum: CHECKSUM_FLAG | 3,
        ..incremental(0)
    };
    assert!(matches!(
        build(tracked_empty.clone(), CHECKSUM_FLAG | 1),
        Err(Error::InvalidTrailer(_))
    ));
    let bytes = build(tracked_empty, CHECKSUM_FLAG).unwrap();
    assert_eq!(bytes.len(), MIN_FILE_SIZE);
    decode_file(&bytes).unwrap();
    let bytes = build(snapshot(0, HEADER_FLAG_NO_CHECKSUM), 0).unwrap();
    assert!(decode_file(&bytes).unwrap().pages.is_empty());
}
