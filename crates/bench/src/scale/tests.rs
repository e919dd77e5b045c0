//! The generated replica is a valid database for the real tools: our LTX decoder verifies
//! every file, `litestream restore` rebuilds it, and SQLite's `integrity_check` passes, at a
//! small size (10 000 rows), with and without live commits on top.

use testkit::golitestream::{restore, ReplicaTarget, RestoreOpts};

use super::dataset;
use super::live::{Live, RANDOM_ROWS};
use super::pages::{body_version, BODY_LEN};
use super::parse_sizes;

const LEAVES: u64 = 10_000;

fn restored(replica: &std::path::Path, out: &std::path::Path) -> rusqlite::Connection {
    restore(
        &ReplicaTarget::file(replica).unwrap(),
        out,
        &RestoreOpts::default(),
    )
    .unwrap();
    let conn = rusqlite::Connection::open(out).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    conn
}

fn row_version(conn: &rusqlite::Connection, id: i64) -> u64 {
    let body: String = conn
        .query_row("SELECT body FROM t WHERE id = ?1", [id], |r| r.get(0))
        .unwrap();
    assert_eq!(body.len(), BODY_LEN);
    body_version(&body).unwrap()
}

#[test]
fn snapshot_and_live_commits_restore_to_a_valid_database() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset::ensure(dir.path(), LEAVES).unwrap();
    assert!(ds.generated_now);
    // Highly compressible: well under a tenth of the database.
    assert!(ds.meta.ltx_bytes * 10 < ds.meta.db_bytes, "{:?}", ds.meta);

    // Our decoder verifies the snapshot: checksums, page order, the post-apply checksum.
    let snap = ds.replica.join("ltx/9").join(ltx::format_filename(1, 1));
    let summary = ltx::verify_file(&std::fs::read(&snap).unwrap()).unwrap();
    assert_eq!(summary.header.commit, ds.layout.total_pages);

    let conn = restored(&ds.replica, &dir.path().join("snapshot.db"));
    let n: i64 = conn
        .query_row("SELECT count(*), max(id) FROM t", [], |r| r.get(1))
        .unwrap();
    assert_eq!(n as u64, LEAVES);
    assert_eq!(row_version(&conn, LEAVES as i64 - 3), 0);
    let pages: u32 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pages, ds.layout.total_pages);
    drop(conn);

    // Five live commits: the chain verifies, and row 1 says which commit it saw last.
    let mut live = Live::start(ds.layout.clone(), &ds.replica).unwrap();
    for _ in 0..5 {
        live.commit().unwrap();
    }
    assert_eq!(live.commits(), 5);
    let l0: Vec<_> = std::fs::read_dir(ds.replica.join("ltx/0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(l0.len(), 5);
    for f in &l0 {
        let s = ltx::verify_file(&std::fs::read(f).unwrap()).unwrap();
        assert_eq!(s.index.len(), 2 + RANDOM_ROWS);
    }
    let conn = restored(&ds.replica, &dir.path().join("live.db"));
    assert_eq!(row_version(&conn, 1), 5);
    let changed: i64 = conn
        .query_row(
            "SELECT count(*) FROM t WHERE substr(body, 1, 40) NOT LIKE '% v0 %'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // Row 1 and the random rows of five commits (a row may be drawn twice).
    assert!(
        changed > 1 && changed as usize <= 1 + 5 * RANDOM_ROWS,
        "{changed}"
    );

    // A second start drops the commits and starts again from the snapshot.
    let again = Live::start(ds.layout.clone(), &ds.replica).unwrap();
    assert_eq!(again.commits(), 0);
    assert_eq!(
        std::fs::read_dir(ds.replica.join("ltx/0")).unwrap().count(),
        0
    );

    // Cached the second time.
    assert!(!dataset::ensure(dir.path(), LEAVES).unwrap().generated_now);
}

#[test]
fn sizes_parse() {
    assert_eq!(
        parse_sizes("X", "1M, 8M,26M,10k,5000").unwrap(),
        vec![1_000_000, 8_000_000, 26_000_000, 10_000, 5000]
    );
    assert_eq!(parse_sizes("X", "0.5M").unwrap(), vec![500_000]);
    assert!(parse_sizes("X", "8G").is_err());
    assert!(parse_sizes("X", "1").is_err());
}

/// Past SQLite's lock page (1 GiB): the b-tree must skip it. Restores a 1.1 GB file, so it is
/// not run by default: `cargo test --release -p bench --lib scale -- --ignored`.
#[test]
#[ignore]
fn a_database_past_the_lock_page_restores_and_checks() {
    let lock = u64::from(ltx::lock_pgno(super::pages::PAGE_SIZE as u32));
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset::ensure(dir.path(), lock + 3000).unwrap();
    assert!(u64::from(ds.layout.total_pages) > lock);
    let conn = restored(&ds.replica, &dir.path().join("big.db"));
    let n: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n as u64, lock + 3000);
    assert_eq!(row_version(&conn, (lock + 2000) as i64), 0);
}
