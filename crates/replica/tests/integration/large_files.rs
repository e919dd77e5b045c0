//! Files larger than the spool threshold (32 MiB): a write transaction that large is encoded
//! into a spool file beside the buffer and sent from there, and a compaction of inputs that
//! large merges through spool files; either way the file in the replica is the one the
//! in-memory path would have written, the fence still holds, and no spool file is left behind.

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{eventually, page, Layout as DirLayout, ReplicaDir, PAGE_SIZE};
use replica::layout::Layout;
use replica::remote::Remote;
use replica::{CompactionOptions, Compactor, Replica, ReplicaOptions, TxPages, WriteOptions};

/// 40 MiB of incompressible pages: above the threshold whatever the compression.
const PAGES: u32 = 10_240;
const HANG: Duration = Duration::from_secs(300);

fn writer(dir: &Path, r: &ReplicaDir) -> replica::Session {
    let opts = ReplicaOptions {
        url: r.url(),
        poll_interval: Duration::from_millis(200),
        cache_size: 8 << 20,
        hydration: None,
        verify: false,
        write: Some(WriteOptions {
            buffer_path: dir.join("buffer"),
            sync_interval: Duration::from_millis(200),
            compaction: CompactionOptions::default(),
        }),
    };
    replica::open(&opts).unwrap()
}

/// One transaction writing pages 1..=PAGES, each with transaction 1's content.
fn commit_large(s: &Arc<Replica>) -> replica::Result<()> {
    let pages = TxPages {
        count: PAGES as usize,
        pages: Box::new((1..=PAGES).map(|p| Ok((p, Bytes::from(page(p, 1)))))),
    };
    s.commit(pages, PAGES, PAGE_SIZE, true).map(|_| ())
}

fn spool_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("buffer.") && !n.ends_with(".lock"))
        .collect()
}

#[test]
fn a_large_transaction_goes_up_whole_through_a_spool_file() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(&dir.path().join("replica"), DirLayout::Ltx);
    let s = writer(dir.path(), &r);
    commit_large(&s).unwrap();
    eventually("the upload", HANG, || {
        s.write_status().unwrap().uploads == 1
    });

    let bytes = std::fs::read(r.path(0, 1, 1)).unwrap();
    assert!(bytes.len() as u64 > 32 << 20, "{} bytes", bytes.len());
    let file = ltx::decode_file(&bytes).unwrap();
    assert_eq!(file.header.commit, PAGES);
    assert_eq!(file.pages.len(), PAGES as usize);
    for (pgno, got) in &file.pages {
        assert!(*got == page(*pgno, 1), "page {pgno}");
    }
    // The catalog took the file from what the encoder recorded: reads find every page in it.
    let v = s.current();
    assert_eq!(
        (v.txid(), v.commit(), v.has_local_changes()),
        (1, PAGES, false)
    );
    let mut out = vec![0u8; PAGE_SIZE as usize];
    let mut ra = replica::ReadAhead::default();
    for pgno in [1, 2, PAGES / 2, PAGES] {
        s.read_page(&v, pgno, &mut out, &mut ra).unwrap();
        assert!(out == page(pgno, 1), "page {pgno} read back");
    }
    assert_eq!(spool_files(dir.path()), Vec::<String>::new());
}

#[test]
fn a_large_upload_meeting_a_rivals_file_fences_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(&dir.path().join("replica"), DirLayout::Ltx);
    let s = writer(dir.path(), &r);
    // Another writer got TXID 1 in first.
    r.write(0, 1, 1, 1, &[(1, 99)], 1);
    let rival = std::fs::read(r.path(0, 1, 1)).unwrap();
    commit_large(&s).unwrap();
    eventually("the fence", HANG, || s.check_writable().is_err());
    let err = s.check_writable().unwrap_err().to_string();
    assert!(err.contains("another writer"), "{err}");
    assert_eq!(std::fs::read(r.path(0, 1, 1)).unwrap(), rival);
    assert_eq!(s.write_status().unwrap().pending_commits, 1);
    assert_eq!(spool_files(dir.path()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_compaction_merges_through_spool_files() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(&dir.path().join("replica"), DirLayout::Ltx);
    let half = PAGES / 2;
    let first: Vec<(u32, u64)> = (1..=half).map(|p| (p, 1)).collect();
    let second: Vec<(u32, u64)> = (half / 2..=PAGES).map(|p| (p, 2)).collect();
    r.write(0, 1, 1, half, &first, 1000);
    r.write(0, 2, 2, PAGES, &second, 2000);
    let inputs = [
        std::fs::read(r.path(0, 1, 1)).unwrap(),
        std::fs::read(r.path(0, 2, 2)).unwrap(),
    ];
    assert!(inputs.iter().map(Vec::len).sum::<usize>() as u64 > 32 << 20);

    let remote = Remote::new(replica::location::connect(&r.url(), &|_| None).unwrap());
    let prefix = dir.path().join("spool");
    let c = Compactor::new(remote, Layout::Ltx, CompactionOptions::default())
        .unwrap()
        .with_spool(prefix.clone());
    let out = c.compact_level(1).await.unwrap().unwrap();
    assert_eq!((out.level, out.min_txid, out.max_txid), (1, 1, 2));

    // Byte for byte what merging in memory writes.
    let want = ltx::compact(&inputs, ltx::HEADER_FLAG_NO_CHECKSUM).unwrap();
    let got = std::fs::read(r.path(1, 1, 2)).unwrap();
    assert_eq!(got.len() as u64, out.size);
    assert!(
        got == want.bytes,
        "the spooled merge differs from the in-memory one"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with("spool"))
        .collect();
    assert!(left.is_empty(), "spool files left: {left:?}");
}
