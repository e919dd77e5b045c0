//! The binding tested in-process, with no `.so`: the extension's entry point is registered as a
//! SQLite auto-extension of this test binary's own SQLite (rusqlite's bundled build), which calls
//! it with the real `sqlite3_api_routines` table, exactly as a host's loader does. So
//! `cargo test -p vfs` exercises the file methods, locks, PRAGMAs and SQL functions of the code
//! as it is now; `crates/e2e` keeps testing the built artifact.

use std::ffi::{c_char, c_int};
use std::path::Path;
use std::sync::Once;

use rusqlite::{Connection, ErrorCode, OpenFlags};

const SQLITE_OK_LOAD_PERMANENTLY: c_int = 256;

type Entry = unsafe extern "C" fn(
    *mut rusqlite::ffi::sqlite3,
    *mut *mut c_char,
    *const rusqlite::ffi::sqlite3_api_routines,
) -> c_int;

unsafe extern "C" fn entry(
    db: *mut rusqlite::ffi::sqlite3,
    err: *mut *mut c_char,
    api: *const rusqlite::ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: SQLite calls auto-extensions with the connection, its error pointer and its own
    // routines table, which is what the entry point expects.
    let rc = unsafe { vfs::init_extension(db.cast(), err, api.cast()) };
    // SQLITE_OK_LOAD_PERMANENTLY means OK to sqlite3_load_extension, but an auto-extension
    // must return SQLITE_OK itself.
    if rc == SQLITE_OK_LOAD_PERMANENTLY {
        0
    } else {
        rc
    }
}

fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let f: Entry = entry;
        // SAFETY: `entry` has the entry point's signature, which SQLite calls it with.
        let rc = unsafe { rusqlite::ffi::sqlite3_auto_extension(Some(f)) };
        assert_eq!(rc, 0, "sqlite3_auto_extension");
        // The first connection runs the entry point, which registers the VFS.
        Connection::open_in_memory().expect("a connection runs the auto-extension");
    });
}

fn uri(name: &str, replica: &Path, extra: &str) -> String {
    format!(
        "file:{name}?vfs=litestream&replica_url=file://{}{extra}",
        replica.display()
    )
}

fn open(uri: &str, flags: OpenFlags) -> Connection {
    register();
    Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI).expect("open")
}

fn rw_flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
}

fn text(conn: &Connection, sql: &str) -> String {
    conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

fn count(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .expect("count")
}

/// A replica written through the VFS itself in write mode: three commits of 100 rows, each
/// uploaded before COMMIT returns (`litestream_sync_mode = durable`). Returns the TXID after
/// each commit.
fn written_replica(dir: &Path) -> Vec<u64> {
    let writer = open(
        &uri(
            "app.db",
            &dir.join("replica"),
            &format!(
                "&write_enabled=true&poll_interval=20ms&buffer_path={}",
                dir.join("app.buffer").display()
            ),
        ),
        rw_flags(),
    );
    assert_eq!(
        text(&writer, "PRAGMA litestream_sync_mode = durable"),
        "durable"
    );
    writer
        .execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        .expect("create");
    let mut txids = vec![];
    for batch in 0..3 {
        writer
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
                 INSERT INTO t(v) SELECT ?1 || '-' || i FROM n",
                [format!("batch{batch}")],
            )
            .expect("insert");
        let txid = text(&writer, "PRAGMA litestream_txid");
        txids.push(u64::from_str_radix(&txid, 16).expect("hex txid"));
    }
    // The process keeps the replica (and a writer attached to it) for a while after the last
    // connection closes; switch write mode off so later connections of the test are readers.
    assert_eq!(text(&writer, "PRAGMA litestream_write_enabled = 0"), "0");
    txids
}

#[test]
fn writes_then_reads_through_file_methods_and_locks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let txids = written_replica(dir.path());
    assert!(
        txids.windows(2).all(|w| w[0] < w[1]),
        "TXIDs grow: {txids:?}"
    );
    assert!(dir.path().join("replica").is_dir(), "nothing was uploaded");

    let reader = open(
        &uri("app.db", &dir.path().join("replica"), "&poll_interval=0"),
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    );
    assert_eq!(count(&reader), 300);
    assert_eq!(text(&reader, "PRAGMA integrity_check"), "ok");
    // A read connection's main file reports read-only to SQLite.
    let err = reader
        .execute("INSERT INTO t(v) VALUES ('x')", [])
        .expect_err("read-only");
    assert_eq!(err.sqlite_error_code(), Some(ErrorCode::ReadOnly), "{err}");

    // Locks: while one connection holds a read transaction, another still reads.
    reader.execute_batch("BEGIN").expect("begin");
    assert_eq!(count(&reader), 300);
    let second = open(
        &uri("app.db", &dir.path().join("replica"), "&poll_interval=0"),
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    );
    assert_eq!(count(&second), 300);
    reader.execute_batch("COMMIT").expect("commit");
}

#[test]
fn pragmas_and_sql_functions_time_travel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let txids = written_replica(dir.path());
    let conn = open(
        &uri("app.db", &dir.path().join("replica"), "&poll_interval=0"),
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    );
    let latest = *txids.last().expect("txids");
    assert_eq!(
        text(&conn, "SELECT litestream_txid()"),
        format!("{latest:016x}")
    );
    assert_eq!(count(&conn), 300);

    // Back to the first commit by TXID (PRAGMA), then forward by the SQL function.
    let first = txids[0];
    assert_eq!(
        text(&conn, &format!("PRAGMA litestream_txid = '{first:016x}'")),
        format!("{first:016x}")
    );
    assert_eq!(count(&conn), 100);
    let lag: i64 = conn
        .query_row("SELECT litestream_lag()", [], |r| r.get(0))
        .expect("lag");
    assert!(lag >= 0, "lag {lag}");
    conn.query_row("SELECT litestream_set_time('latest')", [], |_| Ok(()))
        .expect("set_time");
    assert_eq!(count(&conn), 300);

    // Errors are SQLite errors with our message, and the connection keeps working.
    let err = conn
        .execute_batch("PRAGMA litestream_time = 'not a time at all'")
        .expect_err("bad time");
    assert!(err.to_string().contains("invalid value"), "{err}");
    let err = conn
        .execute_batch("PRAGMA litestream_no_such_thing")
        .expect_err("unknown pragma");
    assert!(err.to_string().contains("unknown pragma"), "{err}");
    assert_eq!(count(&conn), 300);
    let stats = text(&conn, "PRAGMA litestream_stats");
    assert!(
        stats.contains(&format!("\"txid\":\"{latest:016x}\"")),
        "{stats}"
    );
    // The page map is reported, and is far smaller than the pages it locates.
    let index = stat(&conn, "index_bytes");
    let db_bytes = stat(&conn, "pages") * stat(&conn, "page_size");
    assert!(index > 0 && index < db_bytes, "index {index} of {stats}");
}

#[test]
fn a_bad_replica_url_fails_the_open_with_a_message() {
    register();
    let err = Connection::open_with_flags(
        "file:app.db?vfs=litestream&replica_url=nosuch://bucket/x",
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )
    .and_then(|c| {
        c.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })
    })
    .expect_err("an unknown scheme must fail");
    assert!(err.to_string().contains("nosuch"), "{err}");
}

fn stat(conn: &Connection, name: &str) -> u64 {
    let stats = text(conn, "PRAGMA litestream_stats");
    let key = format!("\"{name}\":");
    stats
        .split(&key)
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from {stats}"))
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        // Only a guard against a hang, not a measurement.
        assert!(
            start.elapsed().as_secs() < 30,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn a_panicking_uploader_is_restarted_and_commits_still_go_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let replica_dir = dir.path().join("replica");
    let writer = open(
        &uri(
            "app.db",
            &replica_dir,
            &format!(
                "&write_enabled=true&sync_interval=20ms&buffer_path={}",
                dir.path().join("app.buffer").display()
            ),
        ),
        rw_flags(),
    );
    let url = text(&writer, "PRAGMA litestream_replica_url");
    replica::supervise::arm("uploader", &url, 1);
    writer
        .execute_batch(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES ('a');",
        )
        .expect("write");
    eventually("the uploader to panic once", || {
        stat(&writer, "task_failures") == 1
    });
    writer
        .execute("INSERT INTO t(v) VALUES ('b')", [])
        .expect("a write after the restart");
    eventually("both commits uploaded by the restarted loop", || {
        stat(&writer, "write_pending_commits") == 0
    });
    drop(writer);
    let reader = open(
        &uri("app.db", &replica_dir, "&poll_interval=0"),
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    );
    assert_eq!(count(&reader), 2);
}

#[test]
fn a_reader_whose_poller_was_given_up_refuses_the_latest_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let txids = written_replica(dir.path());
    replica::supervise::set_first_backoff(std::time::Duration::from_millis(1));
    let reader = open(
        &uri("app.db", &dir.path().join("replica"), "&poll_interval=20ms"),
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    );
    assert_eq!(count(&reader), 300);
    let url = text(&reader, "PRAGMA litestream_replica_url");
    let n = replica::supervise::MAX_FAILURES_IN_A_ROW;
    replica::supervise::arm("poller", &url, n);
    eventually("the poller to be given up", || {
        stat(&reader, "task_failures") == u64::from(n)
    });
    let err = reader
        .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
        .expect_err("a state that no longer moves is not served as the latest");
    assert_eq!(
        err.sqlite_error_code(),
        Some(ErrorCode::SystemIoFailure),
        "{err}"
    );
    // A past state does not depend on the poller.
    text(
        &reader,
        &format!("PRAGMA litestream_txid = '{:016x}'", txids[0]),
    );
    assert_eq!(count(&reader), 100);
}
