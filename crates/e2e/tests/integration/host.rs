//! How the extension behaves inside real hosts: SQLite's own page cache, Python's sqlite3.

use std::process::Command;

use anyhow::Result;
use e2e::{extension_path, open_vfs};
use testkit::golitestream::ReplicaTarget;

fn replica(dir: &std::path::Path) -> Result<ReplicaTarget> {
    e2e::go_file_replica(dir, 3000, 100)
}

fn page_reads(conn: &rusqlite::Connection) -> Result<u64> {
    Ok((e2e::stat(conn, "cache_hits")? + e2e::stat(conn, "cache_misses")?) as u64)
}

#[test]
fn sqlite_page_cache_survives_unchanged_transactions() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let target = replica(dir.path())?;
    let conn = open_vfs("app.db", &target.url(), "&poll_interval=0")?;
    let q = "SELECT count(*), sum(length(body)) FROM t";
    let first: (i64, i64) = conn.query_row(q, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    assert_eq!(first.0, 3000);
    let before = page_reads(&conn)?;
    assert!(before > 20, "the first scan read {before} pages");
    for _ in 0..5 {
        let again: (i64, i64) = conn.query_row(q, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        assert_eq!(again, first);
    }
    // Each new transaction only re-reads the 16-byte change counter on page 1.
    let after = page_reads(&conn)?;
    assert!(
        after - before <= 5 * 2,
        "{} page reads for 5 repeated scans",
        after - before
    );
    Ok(())
}

#[test]
fn python_sqlite3_setters_return_a_row() -> Result<()> {
    // Debian's Python can load extensions (pyenv's build cannot).
    let python = "/usr/bin/python3";
    anyhow::ensure!(
        std::path::Path::new(python).exists(),
        "{python} is missing: apt-get install python3"
    );
    let dir = tempfile::tempdir()?;
    let target = replica(dir.path())?;
    let script = r#"
import sqlite3, sys
so, url = sys.argv[1], sys.argv[2]
boot = sqlite3.connect(":memory:")
boot.enable_load_extension(True)
boot.load_extension(so)
conn = sqlite3.connect("file:app.db?vfs=litestream&replica_url=" + url, uri=True)
now = conn.execute("PRAGMA litestream_time").fetchone()[0]
rows = conn.execute("PRAGMA litestream_time = '%s'" % now).fetchall()
err = None
try:
    conn.execute("PRAGMA litestream_time = 'not a time at all'")
except sqlite3.Error as e:
    err = str(e)
conn.execute("PRAGMA litestream_time = 'latest'").fetchall()
print(len(rows), conn.execute("SELECT count(*) FROM t").fetchone()[0], "|", err)
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(extension_path()?)
        .arg(target.url())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("MemoryError"), "{stderr}");
    assert!(out.status.success(), "python failed: {stderr}");
    // One row from the setter, the rows still readable, and a clear error for a bad value.
    assert!(stdout.contains("1 3000 | invalid value"), "{stdout}");
    Ok(())
}

#[test]
fn python_keeps_other_databases_and_exports_with_the_backup_api() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let target = replica(dir.path())?;
    // Every kind of database a process may open after loading the extension: plain files,
    // in-memory ones, another VFS; then ours, and plain files again. The Go extension broke
    // every open after it was loaded (litestream#1506).
    let script = r#"
import sqlite3, sys, os
so, url, d = sys.argv[1], sys.argv[2], sys.argv[3]
boot = sqlite3.connect(":memory:")
boot.enable_load_extension(True)
boot.load_extension(so)
def plain(name, **kw):
    c = sqlite3.connect(name, **kw)
    c.execute("CREATE TABLE IF NOT EXISTS x(a)")
    c.execute("INSERT INTO x VALUES (1)")
    c.commit()
    return c.execute("SELECT count(*) FROM x").fetchone()[0]
print("file", plain(os.path.join(d, "plain.db")))
print("memory", plain(":memory:"))
print("other-vfs", plain("file:" + os.path.join(d, "dot.db") + "?vfs=unix-dotfile", uri=True))
ours = sqlite3.connect("file:app.db?vfs=litestream&replica_url=" + url, uri=True)
print("ours", ours.execute("SELECT count(*) FROM t").fetchone()[0])
print("file-again", plain(os.path.join(d, "plain.db")))
# The backup API exports the state the connection reads, into a plain file.
dest = sqlite3.connect(os.path.join(d, "backup.db"))
ours.backup(dest)
dest.close()
print("backup", sqlite3.connect(os.path.join(d, "backup.db")).execute("SELECT count(*), sum(length(body)) FROM t").fetchone())
print("source", ours.execute("SELECT count(*), sum(length(body)) FROM t").fetchone())
"#;
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(extension_path()?)
        .arg(target.url())
        .arg(dir.path())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |k: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(line("file"), "1", "{stdout}");
    assert_eq!(line("memory"), "1");
    assert_eq!(line("other-vfs"), "1");
    assert_eq!(line("ours"), "3000");
    assert_eq!(line("file-again"), "2");
    assert_eq!(line("backup"), line("source"));
    assert!(line("backup").starts_with("(3000, "), "{stdout}");
    Ok(())
}
