//! End-to-end: the Go `litestream` 0.5.17 replicates a WAL database to our S3 server and to a
//! directory, and restores it; the restored copies match the primary.

use std::path::Path;
use std::time::{Duration, Instant};

use testkit::golitestream::{
    ltx_files, max_txid, restore, ReplicaTarget, ReplicateOpts, Replicator, RestoreOpts,
};
use testkit::primary::{count_rows, integrity_check};
use testkit::{PrimaryDb, S3Server};

const WAIT: Duration = Duration::from_secs(20);

/// Writes 100 rows, replicates, writes 50 more; checks the listing, then restores the latest
/// state and the state at the first sync's TXID. Returns the replicator (still running).
fn replicate_and_check(dir: &Path, target: ReplicaTarget) -> Replicator {
    let db_path = dir.join("primary.db");
    let mut db = PrimaryDb::create(&db_path).expect("create primary");
    db.insert_rows("items", 100).expect("insert");

    let mut rep =
        Replicator::start(&db_path, target.clone(), ReplicateOpts::default()).expect("start");
    let first = rep.sync().expect("sync");
    assert_eq!(first.replica_txid, Some(first.txid), "{first:?}");
    let files = rep.wait_for_txid(first.txid, WAIT).expect("ltx files");
    assert!(files.iter().any(|f| f.level == 0), "{files:#?}");

    // A point in time between the two batches, with millisecond precision (LTX timestamps
    // are milliseconds). Taken from SQLite to avoid a date crate.
    std::thread::sleep(Duration::from_millis(50));
    let between: String = db
        .conn()
        .query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", [], |r| {
            r.get(0)
        })
        .expect("now");
    std::thread::sleep(Duration::from_millis(50));

    db.insert_rows("items", 50).expect("insert more");
    let second = rep.sync().expect("sync");
    assert!(second.txid > first.txid, "{first:?} {second:?}");
    let files = rep.wait_for_txid(second.txid, WAIT).expect("ltx files");
    assert!(max_txid(&files) >= second.txid);

    // Every listed L0 file is where the documented layout says.
    for f in files.iter().filter(|f| f.level == 0) {
        let loc = target.ltx_location(0, f.min_txid, f.max_txid);
        match &target {
            ReplicaTarget::File { .. } => assert!(Path::new(&loc).is_file(), "{loc}"),
            ReplicaTarget::S3 { .. } => {
                assert!(loc.contains("/0000/"), "{loc}")
            }
            other => unreachable!("this test replicates to files and S3 only: {other:?}"),
        }
    }

    let latest = dir.join("restored-latest.db");
    restore(&target, &latest, &RestoreOpts::default()).expect("restore latest");
    assert_eq!(integrity_check(&latest).expect("integrity"), "ok");
    assert_eq!(count_rows(&latest, "items").expect("count"), 150);
    assert_eq!(db.count("items").expect("count primary"), 150);

    let at_first = dir.join("restored-first.db");
    let opts = RestoreOpts {
        txid: Some(first.txid),
        timestamp: None,
    };
    restore(&target, &at_first, &opts).expect("restore at txid");
    assert_eq!(integrity_check(&at_first).expect("integrity"), "ok");
    assert_eq!(count_rows(&at_first, "items").expect("count"), 100);

    let at_time = dir.join("restored-time.db");
    let opts = RestoreOpts {
        txid: None,
        timestamp: Some(between.clone()),
    };
    restore(&target, &at_time, &opts).expect("restore at timestamp");
    assert_eq!(
        count_rows(&at_time, "items").expect("count"),
        100,
        "at {between}"
    );
    rep
}

#[test]
fn s3_replicate_and_restore() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("s3");
    std::fs::create_dir_all(&root).expect("mkdir");
    let server = S3Server::start(&root).expect("start s3");
    server.create_bucket("bkt").expect("bucket");
    let target = ReplicaTarget::s3(&server, "bkt", "db");

    let rep = replicate_and_check(dir.path(), target.clone());

    // s3s-fs stores objects as plain files: bucket dir / key.
    let files = ltx_files(&target).expect("ltx");
    let l0 = files.iter().find(|f| f.level == 0).expect("an L0 file");
    let key = target.ltx_location(0, l0.min_txid, l0.max_txid);
    let on_disk = server.object_path("bkt", &key);
    let len = std::fs::metadata(&on_disk).expect("object file").len();
    assert_eq!(len, l0.size, "{}", on_disk.display());

    let stats = server.stats();
    assert!(stats.put > 0, "{stats:?}");
    assert!(stats.list > 0, "{stats:?}");
    assert!(stats.bytes_in > 0 && stats.bytes_out > 0, "{stats:?}");
    drop(rep);
    eprintln!("s3_replicate_and_restore took {:?}", t0.elapsed());
}

#[test]
fn file_replicate_and_restore() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let target = ReplicaTarget::file(&dir.path().join("replica")).expect("target");
    let rep = replicate_and_check(dir.path(), target);
    drop(rep);
    eprintln!("file_replicate_and_restore took {:?}", t0.elapsed());
}

/// With the default (fast) levels, L1, L2, L3 and a snapshot appear within seconds.
#[test]
fn compaction_levels_appear() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("primary.db");
    let mut db = PrimaryDb::create(&db_path).expect("create primary");
    db.insert_rows("items", 10).expect("insert");
    let target = ReplicaTarget::file(&dir.path().join("replica")).expect("target");
    let mut rep =
        Replicator::start(&db_path, target.clone(), ReplicateOpts::default()).expect("start");
    rep.sync().expect("sync");
    let deadline = Instant::now() + Duration::from_secs(30);
    let files = loop {
        db.insert_rows("items", 1).expect("insert");
        let files = ltx_files(&target).expect("ltx");
        if [1, 2, 3, 9]
            .iter()
            .all(|lvl| files.iter().any(|f| f.level == *lvl))
        {
            break files;
        }
        assert!(Instant::now() < deadline, "levels missing: {files:#?}");
        std::thread::sleep(Duration::from_millis(250));
    };
    let last = rep.sync().expect("sync");
    assert!(last.txid >= max_txid(&files));
    drop(rep);
    eprintln!("compaction_levels_appear took {:?}", t0.elapsed());
}
