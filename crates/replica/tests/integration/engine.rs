//! The engine against replicas on local disk (`file://`), built with our own encoder.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{page, Layout, ReplicaDir, PAGE_SIZE};
use replica::{Error, ReadAhead, ReplicaOptions, Target, Version};

fn opts(url: &str) -> ReplicaOptions {
    ReplicaOptions {
        url: url.into(),
        poll_interval: Duration::from_millis(50),
        cache_size: 8 << 20,
        hydration: None,
        verify: false,
        write: None,
    }
}

fn read(s: &Arc<replica::Replica>, v: &Version, pgno: u32) -> Vec<u8> {
    let mut out = vec![0u8; PAGE_SIZE as usize];
    s.read_page(v, pgno, &mut out, &mut ReadAhead::default())
        .unwrap();
    out
}

/// The hang guard of this file's waits.
const WAIT: Duration = Duration::from_secs(20);

fn eventually(what: &str, f: impl FnMut() -> bool) {
    common::eventually(what, WAIT, f)
}

#[test]
fn snapshot_plus_incrementals_in_both_layouts() {
    for layout in [Layout::Hex, Layout::Ltx] {
        let dir = tempfile::tempdir().unwrap();
        let r = ReplicaDir::new(dir.path(), layout);
        r.snapshot(9, 3, 40, 1, 1000);
        r.write(0, 4, 4, 40, &[(2, 4), (7, 4)], 2000);
        r.write(0, 5, 5, 42, &[(7, 5), (41, 5), (42, 5)], 3000);
        let s = replica::open(&opts(&r.url())).unwrap();
        let v = s.current();
        assert_eq!((v.txid(), v.commit(), v.page_size()), (5, 42, PAGE_SIZE));
        assert_eq!(v.timestamp_ms(), 3000);
        assert_eq!(read(&s, &v, 1), page(1, 1));
        assert_eq!(read(&s, &v, 2), page(2, 4));
        assert_eq!(read(&s, &v, 7), page(7, 5));
        assert_eq!(read(&s, &v, 42), page(42, 5));
        assert_eq!(read(&s, &v, 40), page(40, 1));
    }
}

#[test]
fn time_travel_by_txid_and_time_reuses_nothing_stale() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(dir.path(), Layout::Ltx);
    r.snapshot(9, 1, 10, 1, 1_000);
    r.write(0, 2, 2, 10, &[(3, 2)], 2_000);
    r.write(0, 3, 3, 12, &[(3, 3), (11, 3), (12, 3)], 3_000);
    let s = replica::open(&opts(&r.url())).unwrap();
    let v2 = s.version_at(Target::Txid(2)).unwrap();
    assert_eq!((v2.txid(), v2.commit()), (2, 10));
    assert_eq!(read(&s, &v2, 3), page(3, 2));
    let latest = s.current();
    assert_eq!(read(&s, &latest, 3), page(3, 3));
    // Times come from the LTX headers (the files' mtimes here are "now").
    let t = jiff::Timestamp::from_millisecond(2_500).unwrap();
    let vt = s.version_at(Target::Time(t)).unwrap();
    assert_eq!(vt.txid(), 2);
    let err = s.version_at(Target::Txid(9)).unwrap_err();
    assert!(matches!(err, Error::TargetUnavailable(_)), "{err}");
    let early = jiff::Timestamp::from_millisecond(10).unwrap();
    assert!(matches!(
        s.version_at(Target::Time(early)),
        Err(Error::TargetUnavailable(_))
    ));
}

#[test]
fn follows_new_files_and_pinned_versions_stay_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(dir.path(), Layout::Hex);
    r.snapshot(9, 1, 5, 1, 1);
    let s = replica::open(&opts(&r.url())).unwrap();
    let pinned = s.current();
    r.write(0, 2, 2, 6, &[(5, 2), (6, 2)], 2);
    r.write(0, 3, 3, 6, &[(5, 3)], 3);
    eventually("txid 3", || s.current().txid() == 3);
    let now = s.current();
    assert_eq!(read(&s, &now, 5), page(5, 3));
    assert_eq!(read(&s, &now, 6), page(6, 2));
    // A transaction still holding the old version keeps reading the old state.
    assert_eq!((pinned.txid(), pinned.commit()), (1, 5));
    assert_eq!(read(&s, &pinned, 5), page(5, 1));
    // Caught up by polls that all succeeded.
    let st = s.stats();
    assert!(st.polls >= 1 && st.poll_errors == 0, "{st:?}");
    assert!(s.last_error().is_none() && s.lag().is_some());
}

#[test]
fn follows_through_compaction_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(dir.path(), Layout::Ltx);
    r.snapshot(9, 1, 24, 1, 1);
    // 20 incompressible pages: over the whole-file limit, so pages are read by range later.
    let touched = |t: u64| (2..22).map(|p| (p, t)).collect::<Vec<_>>();
    let l0: Vec<_> = (2..=4)
        .map(|t| r.write(0, t, t, 24, &touched(t), t as i64))
        .collect();
    let s = replica::open(&opts(&r.url())).unwrap();
    let old = s.current();
    assert_eq!(old.txid(), 4);
    // Litestream compacts L0 into L1 and later deletes the L0 files; the old version's page
    // 2 lived in a deleted file, so reading it re-plans the same TXID from L1.
    r.write(1, 2, 4, 24, &touched(4), 4);
    for p in &l0 {
        std::fs::remove_file(p).unwrap();
    }
    assert_eq!(read(&s, &old, 2), page(2, 4));
    // A gap in L0 (the poller missed files) is bridged through a compacted level.
    r.write(1, 5, 7, 24, &[(3, 7)], 7);
    r.write(0, 8, 8, 24, &[(4, 8)], 8);
    eventually("txid 8", || s.current().txid() == 8);
    let v = s.current();
    assert_eq!(read(&s, &v, 3), page(3, 7));
    assert_eq!(read(&s, &v, 4), page(4, 8));
}

#[test]
fn gaps_fail_the_open_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(dir.path(), Layout::Ltx);
    r.snapshot(9, 1, 4, 1, 1);
    r.write(0, 2, 2, 4, &[(2, 2)], 2);
    r.write(0, 4, 4, 4, &[(2, 4)], 4);
    let err = replica::open(&opts(&r.url())).unwrap_err();
    assert!(
        matches!(err, Error::Inconsistent(ref m) if m.contains("gap") && m.contains("0000000000000004")),
        "{err}"
    );
}

#[test]
fn empty_and_missing_replicas_fail_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let err = replica::open(&opts(&format!("file://{}", dir.path().display()))).unwrap_err();
    assert!(matches!(err, Error::Empty { .. }), "{err}");
    let err = replica::open(&opts("file:///no/such/replica/dir")).unwrap_err();
    assert!(matches!(err, Error::Empty { .. }), "{err}");
    assert!(err.to_string().contains("litestream replicate"), "{err}");
}

/// An empty replica fails the open after one LIST: nothing is retried or waited for.
#[tokio::test]
async fn an_empty_replica_costs_one_listing() {
    use replica::store::faults::{FaultyStore, Op};
    let dir = tempfile::tempdir().unwrap();
    let store = FaultyStore::new(Arc::new(
        object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap(),
    ));
    let loc = replica::location::Location {
        store: Arc::new(store.clone()),
        bulk: Arc::new(store.clone()),
        root: Default::default(),
        display: "empty".into(),
    };
    let err = replica::Replica::open_on(opts("file:///empty"), loc)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Empty { .. }), "{err}");
    assert_eq!(store.calls(Op::List, ""), 1);
    assert_eq!(store.calls(Op::Get, ""), 0);
}

#[test]
fn corrupt_frames_and_mismatched_names_are_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(dir.path(), Layout::Ltx);
    // Large enough (> 64 KiB) that pages are read by range, not verified whole at open.
    let snap = r.snapshot(9, 1, 64, 1, 1);
    let s = replica::open(&opts(&r.url())).unwrap();
    let v = s.current();
    let mut bytes = std::fs::read(&snap).unwrap();
    // Flip a bit inside the compressed body of the frame of page 30.
    let idx = ltx::decode_file(&bytes).unwrap().index;
    let e = idx.iter().find(|e| e.pgno == 30).unwrap();
    bytes[(e.offset + 12) as usize] ^= 0x40;
    std::fs::write(&snap, &bytes).unwrap();
    let mut out = vec![0u8; PAGE_SIZE as usize];
    match s.read_page(&v, 30, &mut out, &mut ReadAhead::default()) {
        Err(Error::Corrupt { key, .. }) => assert!(
            key.contains("0000000000000001-0000000000000001.ltx"),
            "{key}"
        ),
        Ok(()) => assert_ne!(
            out,
            page(30, 1),
            "a corrupt frame must never decode to the page silently"
        ),
        Err(other) => panic!("unexpected error {other}"),
    }

    // A file whose header disagrees with its name is refused at open.
    let dir2 = tempfile::tempdir().unwrap();
    let r2 = ReplicaDir::new(dir2.path(), Layout::Ltx);
    let p = r2.snapshot(9, 2, 4, 1, 1);
    std::fs::rename(&p, r2.path(9, 1, 3)).unwrap();
    let err = replica::open(&opts(&r2.url())).unwrap_err();
    assert!(
        err.to_string().contains("disagrees with the file name"),
        "{err}"
    );
}

#[test]
fn shrinking_database_drops_pages_and_lock_page_reads_zero() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(dir.path(), Layout::Hex);
    r.snapshot(9, 1, 10, 1, 1);
    r.write(0, 2, 2, 6, &[(1, 2)], 2);
    let s = replica::open(&opts(&r.url())).unwrap();
    let v = s.current();
    assert_eq!((v.commit(), v.db_size()), (6, 6 * u64::from(PAGE_SIZE)));
    assert_eq!(read(&s, &v, 6), page(6, 1));
    // Past the end reads zeros: SQLite treats it as a short read.
    assert_eq!(read(&s, &v, 7), vec![0u8; PAGE_SIZE as usize]);
}

#[test]
fn sequential_reads_are_coalesced_and_the_cache_is_shared() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(dir.path(), Layout::Ltx);
    r.snapshot(9, 1, 512, 1, 1);
    let url = r.url();
    let s = replica::open(&opts(&url)).unwrap();
    let v = s.current();
    let before = s.stats();
    let mut ra = ReadAhead::default();
    let mut out = vec![0u8; PAGE_SIZE as usize];
    for p in 1..=512 {
        s.read_page(&v, p, &mut out, &mut ra).unwrap();
        assert_eq!(out, page(p, 1));
    }
    let scan = s.stats();
    let gets = scan.get_range - before.get_range;
    assert!(gets < 32, "a sequential scan of 512 pages took {gets} GETs");
    // A second session on the same URL shares the replica and its cache.
    let s2 = replica::open(&opts(&url)).unwrap();
    assert!(Arc::ptr_eq(&s, &s2));
    let v2 = s2.current();
    for p in (1..=512).rev() {
        s2.read_page(&v2, p, &mut out, &mut ReadAhead::default())
            .unwrap();
    }
    assert_eq!(
        s2.stats().get_range,
        scan.get_range,
        "warm reads must not fetch"
    );
}
