//! Deterministic fault tests of the engine: the poller, the writer and the hydrator against a
//! store that fails, stalls or lists stale on demand (`store::faults::FaultyStore`, built with
//! the `fault-points` feature these tests enable), with every background task on the test's
//! runtime and its clock paused. Time moves only when every task waits, straight to the next
//! timer, so intervals, back-offs and stalls pass in no real time; the tests assert versions,
//! counters and data, never how long anything took.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{page, Layout, ReplicaDir, PAGE_SIZE};
use object_store::local::LocalFileSystem;
use replica::location::Location;
use replica::store::faults::{Fault, FaultyStore, Op};
use replica::{
    CompactionOptions, HydrationOptions, HydrationState, Replica, ReplicaOptions, TxPages,
    WriteOptions,
};

const POLL: Duration = Duration::from_secs(1);
/// Longer than any test runs on the paused clock: a stall that only the test ends.
const LONG: Duration = Duration::from_secs(24 * 3600);

fn opts(url: &str) -> ReplicaOptions {
    ReplicaOptions {
        url: url.into(),
        poll_interval: POLL,
        cache_size: 8 << 20,
        hydration: None,
        verify: false,
        write: None,
    }
}

/// The replica directory behind a faulty store, and a handle on the store's faults.
fn faulty(r: &ReplicaDir) -> (Location, FaultyStore) {
    let inner = LocalFileSystem::new_with_prefix(&r.root).unwrap();
    let store = FaultyStore::new(Arc::new(inner));
    let loc = Location {
        store: Arc::new(store.clone()),
        bulk: Arc::new(store.clone()),
        root: Default::default(),
        display: r.url(),
    };
    (loc, store)
}

/// Lets the paused clock run in steps of a tenth of the poll interval until `f` holds; the
/// step count is only a hang guard.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..100_000 {
        if f() {
            return;
        }
        tokio::time::sleep(POLL / 10).await;
    }
    panic!("never happened: {what}");
}

/// Lets `n` poll intervals pass on the paused clock.
async fn polls(n: u32) {
    tokio::time::sleep(POLL * n).await;
}

#[tokio::test(start_paused = true)]
async fn poll_errors_keep_the_last_state_and_the_poller_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(dir.path(), Layout::Ltx);
    r.snapshot(9, 1, 5, 1, 1);
    let (loc, store) = faulty(&r);
    let s = Replica::open_on(opts(&r.url()), loc).await.unwrap();
    store.inject(Op::List, "ltx/0", Fault::Error, 3);
    r.write(0, 2, 2, 6, &[(5, 2), (6, 2)], 2);
    until("three failed polls", || s.stats().poll_errors == 3).await;
    assert_eq!(s.current().txid(), 1, "a failed poll changes nothing");
    assert!(s.last_error().unwrap().contains("injected fault"));
    until("txid 2 after the errors", || s.current().txid() == 2).await;
    assert_eq!(s.stats().poll_errors, 3);
    assert_eq!(
        s.stats().task_failures,
        0,
        "a failed poll is not a failed loop"
    );
    assert!(s.last_error().is_none());
    assert!(s.check_health().is_ok());
    assert_eq!(store.injected(), 3);
    assert_eq!(s.current().commit(), 6);
}

#[tokio::test(start_paused = true)]
async fn a_stale_listing_never_moves_the_version_back() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(dir.path(), Layout::Ltx);
    r.snapshot(9, 1, 5, 1, 1);
    r.write(0, 2, 2, 5, &[(2, 2)], 2);
    r.write(0, 3, 3, 5, &[(3, 3)], 3);
    let (loc, store) = faulty(&r);
    let s = Replica::open_on(opts(&r.url()), loc).await.unwrap();
    assert_eq!(s.current().txid(), 3);
    // Every listing for a while lags behind: it lacks the level-0 files, so the full
    // relisting that runs every 30 s sees a replica that ends at TXID 1. And a new file does
    // not show up in the polls meanwhile.
    store.inject(Op::List, "ltx/0/", Fault::Stale, 40);
    r.write(0, 4, 4, 5, &[(4, 4)], 4);
    let mut seen = Vec::new();
    until("the stale listings to be used up", || {
        seen.push(s.current().txid());
        store.injected() == 40
    })
    .await;
    assert!(seen.iter().all(|t| *t == 3), "{seen:?}");
    assert!(
        s.stats().poll_errors >= 1,
        "the relisting that went backwards was refused"
    );
    // Once listings are fresh again, the poller moves on.
    until("txid 4", || s.current().txid() == 4).await;
    let v = s.current();
    let mut out = vec![0u8; PAGE_SIZE as usize];
    let s2 = s.clone();
    let out = tokio::task::spawn_blocking(move || {
        s2.read_page(&v, 4, &mut out, &mut Default::default())
            .map(|()| out)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(out, page(4, 4));
}

#[tokio::test(start_paused = true)]
async fn a_stalled_listing_holds_one_poll_and_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(dir.path(), Layout::Ltx);
    r.snapshot(9, 1, 5, 1, 1);
    let (loc, store) = faulty(&r);
    let s = Replica::open_on(opts(&r.url()), loc).await.unwrap();
    store.inject(Op::List, "ltx/0", Fault::Stall(LONG), 1);
    until("the stalled poll", || store.injected() == 1).await;
    r.write(0, 2, 2, 5, &[(2, 2)], 2);
    let lists = s.stats().list;
    polls(100).await;
    assert_eq!(s.stats().list, lists, "polls piled up behind a stalled one");
    assert_eq!(s.current().txid(), 1);
    // The stall ends; the stalled listing began before the file was written, and the next
    // poll finds it.
    tokio::time::sleep(LONG).await;
    until("txid 2 after the stall", || s.current().txid() == 2).await;
    assert_eq!(s.stats().poll_errors, 0);
    assert_eq!(s.stats().task_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_level_zero_chain_that_only_grows_is_not_relisted_every_poll() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(dir.path(), Layout::Ltx);
    r.snapshot(9, 1, 5, 1, 1);
    let (loc, _store) = faulty(&r);
    let s = Replica::open_on(opts(&r.url()), loc).await.unwrap();
    let lists_before = s.stats().list;
    // One level-0 file a poll, never compacted (as the scale suite's primary writes them):
    // every file stays in the plan, so a rebuild would save nothing.
    let n = 200u64;
    let mut newest = std::collections::BTreeMap::new();
    for txid in 2..=n + 1 {
        let pgno = (txid % 5) as u32 + 1;
        newest.insert(pgno, txid);
        r.write(0, txid, txid, 5, &[(pgno, txid)], txid as i64);
        polls(1).await;
    }
    until("the last file", || s.current().txid() == n + 1).await;
    let lists = s.stats().list - lists_before;
    // A poll lists level 0 once; the full relistings come every 30 s and every 64 new files.
    assert!(
        lists <= n + n / 30 + n / 64 + 4,
        "{lists} listings for {n} polls"
    );
    assert_eq!(s.current().files().len() as u64, n + 1);
    // A compaction that covers them lets a relisting rebuild a version of two files, at the
    // same TXID and with the same pages.
    let pages: Vec<(u32, u64)> = newest.into_iter().collect();
    r.write(1, 2, n + 1, 5, &pages, n as i64 + 2);
    until("a version rebuilt on the compaction", || {
        s.current().files().len() == 2
    })
    .await;
    let v = s.current();
    assert_eq!(v.txid(), n + 1);
    let s2 = s.clone();
    let got = tokio::task::spawn_blocking(move || {
        pages
            .iter()
            .map(|&(pgno, txid)| {
                let mut out = vec![0u8; PAGE_SIZE as usize];
                s2.read_page(&v, pgno, &mut out, &mut Default::default())
                    .unwrap();
                (out == page(pgno, txid), pgno)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert!(got.iter().all(|(same, _)| *same), "{got:?}");
}

/// A writer on a new, empty replica behind a faulty store (uploads every poll interval).
async fn writer() -> (tempfile::TempDir, ReplicaDir, FaultyStore, Arc<Replica>) {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(&dir.path().join("replica"), Layout::Ltx);
    let (loc, store) = faulty(&r);
    let mut o = opts(&r.url());
    o.write = Some(WriteOptions {
        buffer_path: dir.path().join("buffer"),
        sync_interval: POLL,
        compaction: CompactionOptions::default(),
    });
    let s = Replica::open_on(o, loc).await.unwrap();
    (dir, r, store, s)
}

/// Commits a one-page change of page `pgno` (the database has `commit` pages).
fn commit(s: &Arc<Replica>, pgno: u32, txid: u64, commit: u32) {
    let p = Bytes::from(page(pgno, txid));
    let pages = TxPages {
        count: 1,
        pages: Box::new(std::iter::once(Ok((pgno, p)))),
    };
    s.commit(pages, commit, PAGE_SIZE, true).unwrap();
}

/// Checks that the level-0 file `txid` in the replica directory holds exactly `want`: page
/// numbers and the transaction whose content each page has.
fn assert_uploaded(r: &ReplicaDir, txid: u64, want: &[(u32, u64)]) {
    let bytes = std::fs::read(r.path(0, txid, txid)).unwrap();
    let pages = ltx::decode_file(&bytes).unwrap().pages;
    let pgnos: Vec<u32> = pages.iter().map(|(p, _)| *p).collect();
    let want_pgnos: Vec<u32> = want.iter().map(|(p, _)| *p).collect();
    assert_eq!(pgnos, want_pgnos, "pages of TXID {txid}");
    for ((pgno, got), (_, t)) in pages.iter().zip(want) {
        assert!(
            *got == page(*pgno, *t),
            "TXID {txid}: page {pgno} is not transaction {t}'s"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn failed_uploads_are_retried_and_no_commit_is_lost() {
    let (_dir, r, store, s) = writer().await;
    store.inject(Op::Put, "ltx/0/", Fault::Error, 2);
    commit(&s, 1, 1, 2);
    commit(&s, 2, 2, 2);
    until("the upload after two failures", || {
        s.write_status().unwrap().uploads == 1
    })
    .await;
    let st = s.write_status().unwrap();
    assert_eq!((st.upload_errors, st.pending_commits), (2, 0));
    assert!(st.last_error.is_none());
    assert_eq!(store.calls(Op::Put, "ltx/0/"), 3);
    assert!(s.check_writable().is_ok());
    // Both commits are in the one file uploaded, page for page.
    assert_uploaded(&r, 1, &[(1, 1), (2, 2)]);
    assert_eq!(s.current().txid(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_upload_keeps_later_commits_for_the_next_one() {
    let (_dir, r, store, s) = writer().await;
    store.inject(Op::Put, "ltx/0/", Fault::Stall(LONG), 1);
    commit(&s, 1, 1, 1);
    until("the stalled PUT", || store.injected() == 1).await;
    commit(&s, 2, 2, 2);
    commit(&s, 2, 3, 2);
    polls(100).await;
    let st = s.write_status().unwrap();
    assert_eq!(
        (st.uploads, st.upload_errors, st.pending_commits),
        (0, 0, 3)
    );
    assert_eq!(
        store.calls(Op::Put, "ltx/0/"),
        1,
        "one upload at a time, however long it takes"
    );
    tokio::time::sleep(LONG).await;
    until("both uploads", || s.write_status().unwrap().uploads == 2).await;
    let st = s.write_status().unwrap();
    assert_eq!((st.upload_errors, st.pending_commits), (0, 0));
    // The stalled upload carries the commit made before it; the next one the two after it.
    assert_uploaded(&r, 1, &[(1, 1)]);
    assert_uploaded(&r, 2, &[(2, 3)]);
    assert_eq!(s.current().txid(), 2);
}

#[tokio::test(start_paused = true)]
async fn hydration_resumes_after_a_failed_download() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(&dir.path().join("replica"), Layout::Ltx);
    r.snapshot(9, 1, 40, 1, 1);
    r.write(
        0,
        2,
        2,
        48,
        &(30..=48).map(|p| (p, 2)).collect::<Vec<_>>(),
        2,
    );
    let (loc, store) = faulty(&r);
    let path = dir.path().join("hydrated.db");
    let mut o = opts(&r.url());
    o.hydration = Some(HydrationOptions {
        path: Some(path.clone()),
    });
    let s = Replica::open_on(o, loc).await.unwrap();
    // Armed before the hydrator first runs (at the test's next await): the download of the
    // level-0 file fails once, while the snapshot's goes through.
    store.inject(Op::Get, "ltx/0/", Fault::Error, 1);
    until("hydration to complete", || {
        s.hydration_status().unwrap().state == HydrationState::Ready
    })
    .await;
    assert_eq!(store.injected(), 1);
    assert_eq!(
        s.stats().task_failures,
        1,
        "the hydrator was restarted once"
    );
    let st = s.hydration_status().unwrap();
    assert_eq!(st.txid, 2);
    let file = std::fs::read(&path).unwrap();
    assert_eq!(file.len(), 48 * PAGE_SIZE as usize);
    for p in 1..=48u32 {
        let want = if p >= 30 { page(p, 2) } else { page(p, 1) };
        let at = (p as usize - 1) * PAGE_SIZE as usize;
        assert!(file[at..at + PAGE_SIZE as usize] == want[..], "page {p}");
    }
}
