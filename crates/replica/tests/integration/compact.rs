//! Compaction, snapshots and retention on `file://` replicas, checked after every step against
//! a model of the database at each TXID, through our reader and through Go's
//! `litestream restore` (0.5.17).

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{page, Layout as DirLayout, ReplicaDir, PAGE_SIZE};
use replica::layout::Layout;
use replica::plan::FileInfo;
use replica::remote::Remote;
use replica::{CompactionOptions, Compactor, Error, ReadAhead, ReplicaOptions, Target};
use testkit::golitestream::{self, ReplicaTarget, RestoreOpts};

/// The database after one TXID: its size and, per page, the TXID that last wrote it.
#[derive(Clone, Debug, Default)]
struct State {
    commit: u32,
    pages: BTreeMap<u32, u64>,
}

impl State {
    /// The database file, as `litestream restore` writes it.
    fn bytes(&self) -> Vec<u8> {
        (1..=self.commit)
            .flat_map(|p| page(p, self.pages[&p]))
            .collect()
    }
}

/// States by TXID (index 0: the empty database) and the L0 file of each transaction.
struct History {
    states: Vec<State>,
    txns: Vec<(u32, Vec<u32>)>,
}

/// 30 transactions on a 20-page database: a few random pages each, growth at TXIDs 8 and
/// 13, a shrink to 10 pages at 18 and regrowth at 22. Like Litestream's writer, a transaction
/// that grows the database carries every new page.
fn history() -> History {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = |n: u32| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % u64::from(n)) as u32
    };
    let mut states = vec![State::default()];
    let mut txns = vec![(0, Vec::new())];
    for txid in 1..=30u64 {
        let prev = states.last().unwrap().clone();
        let commit = match txid {
            1 => 20,
            8 => prev.commit + 5,
            13 => prev.commit + 3,
            18 => 10,
            22 => 16,
            _ => prev.commit,
        };
        let mut pgnos: Vec<u32> = (0..1 + rnd(4)).map(|_| 1 + rnd(commit)).collect();
        pgnos.extend(prev.commit + 1..=commit);
        pgnos.sort_unstable();
        pgnos.dedup();
        let mut next = prev;
        next.commit = commit;
        next.pages.retain(|&p, _| p <= commit);
        for &p in &pgnos {
            next.pages.insert(p, txid);
        }
        states.push(next);
        txns.push((commit, pgnos));
    }
    History { states, txns }
}

fn layout_of(l: DirLayout) -> Layout {
    match l {
        DirLayout::Hex => Layout::Hex,
        DirLayout::Ltx => Layout::Ltx,
    }
}

fn remote(r: &ReplicaDir) -> Remote {
    Remote::new(replica::location::connect(&r.url(), &|_| None).unwrap())
}

fn write_l0(r: &ReplicaDir, h: &History, txids: std::ops::RangeInclusive<u64>) {
    for t in txids {
        let (commit, pgnos) = &h.txns[t as usize];
        let pages: Vec<(u32, u64)> = pgnos.iter().map(|&p| (p, t)).collect();
        r.write(0, t, t, *commit, &pages, t as i64 * 1000);
    }
}

/// Every LTX file in the replica directory, as (level, min, max).
fn files(r: &ReplicaDir) -> Vec<(u8, u64, u64)> {
    let mut out = Vec::new();
    for level in 0..=9u8 {
        let dir = r.path(level, 1, 1).parent().unwrap().to_path_buf();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let name = e.unwrap().file_name().into_string().unwrap();
            if let Some((min, max)) = ltx::parse_filename(&name) {
                out.push((level, min, max));
            }
        }
    }
    out.sort_unstable();
    out
}

fn range(f: &Option<FileInfo>) -> Option<(u8, u64, u64)> {
    f.as_ref().map(|f| (f.level, f.min_txid, f.max_txid))
}

/// Checks the replica against the model: our reader at the latest TXID and at `probe`, and Go's
/// restore at the same points (file layout only: Go's file backend uses `ltx/<level>/`). Go
/// must reach exactly the TXIDs our planner reaches. Returns the probed TXIDs that are reachable.
fn check(
    step: &str,
    r: &ReplicaDir,
    h: &History,
    latest: u64,
    probe: &[u64],
    scratch: &Path,
) -> Vec<u64> {
    static OPENS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = OPENS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // A distinct URL per check: the registry would otherwise hand back the replica opened by
    // an earlier check, with the files it listed then. Query strings are ignored by file URLs.
    let s = replica::open(&ReplicaOptions {
        url: format!("{}?check={n}", r.url()),
        poll_interval: Duration::ZERO,
        cache_size: 8 << 20,
        hydration: None,
        verify: true,
        write: None,
    })
    .unwrap_or_else(|e| panic!("{step}: open: {e}"));
    let read_all = |v: &replica::Version, t: u64| {
        let want = &h.states[t as usize];
        assert_eq!((v.txid(), v.commit()), (t, want.commit), "{step}: TXID {t}");
        let mut buf = vec![0u8; PAGE_SIZE as usize];
        for p in 1..=want.commit {
            s.read_page(v, p, &mut buf, &mut ReadAhead::default())
                .unwrap_or_else(|e| panic!("{step}: TXID {t} page {p}: {e}"));
            assert!(
                buf == page(p, want.pages[&p]),
                "{step}: TXID {t} page {p} differs"
            );
        }
    };
    read_all(&s.current(), latest);
    let mut reachable = Vec::new();
    for &t in probe {
        match s.version_at(Target::Txid(t)) {
            Ok(v) => {
                read_all(&v, t);
                reachable.push(t);
            }
            Err(Error::TargetUnavailable(_)) => {}
            Err(e) => panic!("{step}: TXID {t}: {e}"),
        }
    }
    drop(s);

    if r.layout == DirLayout::Ltx {
        let target = ReplicaTarget::file(&r.root).unwrap();
        let restore = |txid: Option<u64>| {
            let out = scratch.join(format!("restore-{n}-{}.db", txid.unwrap_or(0)));
            golitestream::restore(
                &target,
                &out,
                &RestoreOpts {
                    txid,
                    timestamp: None,
                },
            )
            .map(|()| std::fs::read(&out).unwrap())
        };
        let got = restore(None).unwrap_or_else(|e| panic!("{step}: Go restore: {e:#}"));
        assert!(
            got == h.states[latest as usize].bytes(),
            "{step}: Go restore of the latest state differs"
        );
        for &t in probe {
            match restore(Some(t)) {
                Ok(got) => {
                    assert!(reachable.contains(&t), "{step}: only Go reaches TXID {t}");
                    assert!(
                        got == h.states[t as usize].bytes(),
                        "{step}: Go restore of TXID {t} differs"
                    );
                }
                Err(e) => assert!(
                    !reachable.contains(&t),
                    "{step}: Go cannot restore TXID {t}: {e:#}"
                ),
            }
        }
    }
    reachable
}

#[test]
fn compaction_snapshots_and_retention_keep_the_replica_readable() {
    let h = history();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for dir_layout in [DirLayout::Ltx, DirLayout::Hex] {
        let dir = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let r = ReplicaDir::new(&dir.path().join("replica"), dir_layout);
        let opts = CompactionOptions {
            snapshot_retention: Duration::ZERO,
            l0_retention: Duration::from_millis(1),
            ..CompactionOptions::default()
        };
        let c = Compactor::new(remote(&r), layout_of(dir_layout), opts).unwrap();
        let check = |step: &str, latest: u64, probe: &[u64]| {
            check(step, &r, &h, latest, probe, scratch.path())
        };

        // Files arrive five at a time; level 1 follows each batch.
        for (batch, end) in [5u64, 10, 15].into_iter().enumerate() {
            write_l0(&r, &h, end - 4..=end);
            let got = rt.block_on(c.compact_level(1)).unwrap();
            assert_eq!(range(&got), Some((1, end - 4, end)));
            check(&format!("L1 #{batch}"), end, &[end - 1, 3]);
        }
        assert_eq!(rt.block_on(c.compact_level(1)).unwrap(), None);
        let l2 = rt.block_on(c.compact_level(2)).unwrap();
        assert_eq!(range(&l2), Some((2, 1, 15)));
        check("L2", 15, &[7, 10]);
        let snap = rt.block_on(c.snapshot()).unwrap();
        assert_eq!(range(&snap), Some((9, 1, 15)));
        // Nothing newer: no second snapshot.
        assert_eq!(rt.block_on(c.snapshot()).unwrap(), None);
        check("snapshot at 15", 15, &[14]);

        // Through the shrink (18) and the regrowth (22).
        for end in [20u64, 25, 30] {
            write_l0(&r, &h, end - 4..=end);
            let got = rt.block_on(c.compact_level(1)).unwrap();
            assert_eq!(range(&got), Some((1, end - 4, end)));
            check(&format!("L1 to {end}"), end, &[end - 2]);
        }
        assert_eq!(
            range(&rt.block_on(c.compact_level(2)).unwrap()),
            Some((2, 16, 30))
        );
        assert_eq!(range(&rt.block_on(c.snapshot()).unwrap()), Some((9, 1, 30)));
        check("snapshot at 30", 30, &[17, 21, 29]);

        // Retention with the snapshot retention at zero and L0 retention at 1 ms: the older
        // snapshot goes, level-1 files ending below it (15) go, every level-0 file but the
        // newest goes (all are in level 1).
        std::thread::sleep(Duration::from_millis(20));
        let before = files(&r);
        let deleted = rt.block_on(c.enforce_retention()).unwrap();
        let after = files(&r);
        let expect: Vec<_> = before
            .iter()
            .copied()
            .filter(|&(level, min, max)| match level {
                0 => max == 30,
                1 => max >= 15,
                9 => (min, max) == (1, 30),
                _ => true,
            })
            .collect();
        assert_eq!(after, expect);
        assert_eq!(deleted, before.len() - after.len());
        let reachable = check("retention", 30, &[14, 15, 17, 20, 25, 29]);
        // Still reachable through level 2 (1-15) and level 1; 14, 17 and 29 needed level-0
        // files or the deleted snapshot.
        assert_eq!(reachable, vec![15, 20, 25]);
        // A second pass has nothing left to delete.
        assert_eq!(rt.block_on(c.enforce_retention()).unwrap(), 0);
    }
}

#[test]
fn a_corrupt_input_fails_naming_its_key_and_writes_nothing() {
    let h = history();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(dir.path(), DirLayout::Ltx);
    write_l0(&r, &h, 1..=3);
    let bad = r.path(0, 2, 2);
    let mut bytes = std::fs::read(&bad).unwrap();
    // Inside the first page's compressed bytes: only the file checksum notices.
    bytes[200] ^= 0x40;
    std::fs::write(&bad, bytes).unwrap();

    let c = Compactor::new(remote(&r), Layout::Ltx, CompactionOptions::default()).unwrap();
    for result in [rt.block_on(c.compact_level(1)), rt.block_on(c.snapshot())] {
        match result {
            Err(Error::Corrupt { key, .. }) => {
                assert!(
                    key.ends_with("ltx/0/0000000000000002-0000000000000002.ltx"),
                    "{key}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(files(&r).iter().all(|&(level, _, _)| level == 0));
}

#[test]
fn an_existing_output_key_is_left_alone() {
    let h = history();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(dir.path(), DirLayout::Hex);
    write_l0(&r, &h, 1..=3);
    let theirs = r.path(1, 1, 3);
    std::fs::create_dir_all(theirs.parent().unwrap()).unwrap();
    std::fs::write(&theirs, b"written by another writer").unwrap();

    let c = Compactor::new(remote(&r), Layout::Hex, CompactionOptions::default()).unwrap();
    assert_eq!(rt.block_on(c.compact_level(1)).unwrap(), None);
    assert_eq!(
        std::fs::read(&theirs).unwrap(),
        b"written by another writer"
    );
}

#[test]
fn run_due_follows_the_timers() {
    let h = history();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(dir.path(), DirLayout::Ltx);
    let opts = CompactionOptions {
        levels: vec![Duration::from_secs(10), Duration::from_secs(20)],
        snapshot_interval: Duration::from_secs(60),
        snapshot_retention: Duration::from_secs(3600),
        l0_retention: Duration::from_millis(1),
    };
    let ranges = |fs: &[FileInfo]| -> Vec<(u8, u64, u64)> {
        fs.iter()
            .map(|f| (f.level, f.min_txid, f.max_txid))
            .collect()
    };
    let mut c = Compactor::new(remote(&r), Layout::Ltx, opts.clone()).unwrap();
    let t0 = Instant::now();

    write_l0(&r, &h, 1..=5);
    std::thread::sleep(Duration::from_millis(20));
    // First run: everything is due, levels first, then the snapshot, then retention (which
    // keeps the newest level-0 file).
    let rep = rt.block_on(c.run_due(t0)).unwrap();
    assert_eq!(ranges(&rep.written), vec![(1, 1, 5), (2, 1, 5), (9, 1, 5)]);
    assert_eq!(
        ranges(&rep.deleted),
        (1..=4).map(|t| (0, t, t)).collect::<Vec<_>>()
    );
    // Nothing is due a moment later.
    assert_eq!(
        rt.block_on(c.run_due(t0 + Duration::from_secs(1))).unwrap(),
        Default::default()
    );

    write_l0(&r, &h, 6..=8);
    std::thread::sleep(Duration::from_millis(20));
    // Level 1 is due at 10 s (and brings retention with it); level 2 waits for 20 s.
    let rep = rt
        .block_on(c.run_due(t0 + Duration::from_secs(10)))
        .unwrap();
    assert_eq!(ranges(&rep.written), vec![(1, 6, 8)]);
    assert_eq!(
        ranges(&rep.deleted),
        (5..=7).map(|t| (0, t, t)).collect::<Vec<_>>()
    );
    let rep = rt
        .block_on(c.run_due(t0 + Duration::from_secs(20)))
        .unwrap();
    assert_eq!(ranges(&rep.written), vec![(2, 6, 8)]);

    // A restarted writer does not redo at once what was just done.
    write_l0(&r, &h, 9..=9);
    let mut again = Compactor::new(remote(&r), Layout::Ltx, opts).unwrap();
    let rep = rt.block_on(again.run_due(t0)).unwrap();
    assert!(rep.written.is_empty(), "{rep:?}");
    // Once the level-1 interval has passed since its newest file, it runs.
    let rep = rt
        .block_on(again.run_due(t0 + Duration::from_secs(11)))
        .unwrap();
    assert_eq!(ranges(&rep.written), vec![(1, 9, 9)]);
}
