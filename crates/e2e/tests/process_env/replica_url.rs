//! A connection opened by the VFS's name alone, configured by `LITESTREAM_REPLICA_URL`.

use anyhow::Result;
use e2e::{dump, go_restore, snapshot};
use rusqlite::Connection;

#[test]
fn the_vfs_named_at_open_serves_the_replica_and_attached_files_stay_local() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let target = e2e::small_replica(dir.path())?;
    crate::log_path();
    // `sqlite3_open_v2(name, flags, "litestream")`, configured by the environment: the name
    // has no URI parameter saying it is a replica. (The other tests of this binary name their replica in the
    // URI, which wins over this variable, and the child processes run without it.)
    std::env::set_var("LITESTREAM_REPLICA_URL", target.url());
    let name = dir.path().join("app.db");
    let opened = Connection::open_with_flags_and_vfs(
        &name,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_CREATE,
        c"litestream",
    );
    std::env::remove_var("LITESTREAM_REPLICA_URL");
    let conn = opened?;
    let want = snapshot(&go_restore(&target, dir.path(), "restored.db")?)?;
    assert_eq!(
        snapshot(&conn)?,
        want,
        "the connection's own database is the replica"
    );
    assert!(!name.exists(), "no local file of the replica's name");

    let copy = dir.path().join("copy.db");
    conn.execute("VACUUM INTO ?1", [copy.display().to_string()])?;
    assert_eq!(snapshot(&Connection::open(&copy)?)?, want);
    let local = dir.path().join("local.db");
    conn.execute("ATTACH ?1 AS loc", [local.display().to_string()])?;
    conn.execute_batch("CREATE TABLE loc.x AS SELECT id FROM t WHERE id <= 5; DETACH loc;")?;
    assert_eq!(
        dump(&Connection::open(&local)?, "SELECT count(*) FROM x")?,
        vec![vec!["Integer(5)".to_string()]]
    );
    Ok(())
}
