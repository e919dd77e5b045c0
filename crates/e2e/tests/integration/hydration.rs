//! Hydration against replicas written by the Go `litestream replicate`: the file equals
//! `litestream restore`, reads switch to it without wrong rows, it follows new writes, it
//! survives kill -9 and reopen, and two processes can name the same path.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use e2e::{dump, extension_path, open_vfs, stat, uri_encode};
use testkit::golitestream::{restore, ReplicaTarget, ReplicateOpts, Replicator, RestoreOpts};
use testkit::{PrimaryDb, S3Server};

const ROWS: &str = "SELECT id, grp, body FROM t ORDER BY id";

fn seed(primary: &PrimaryDb, from: i64, n: i64) -> Result<()> {
    primary.conn().execute(
        "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 + ?2 - 1)
         INSERT INTO t SELECT i, i % 11, hex(randomblob(120)) FROM n",
        [from, n],
    )?;
    Ok(())
}

fn setup(dir: &Path, target: ReplicaTarget) -> Result<(PrimaryDb, Replicator)> {
    let primary = PrimaryDb::create(&dir.join("app.db"))?;
    primary.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, body TEXT)")?;
    seed(&primary, 1, 20_000)?;
    let mut rep = Replicator::start(primary.path(), target, ReplicateOpts::default())?;
    primary.exec("UPDATE t SET grp = grp + 100 WHERE id % 5 = 0")?;
    rep.sync()?;
    Ok((primary, rep))
}

fn wait_ready(conn: &rusqlite::Connection, txid: u64) -> Result<()> {
    let start = Instant::now();
    loop {
        let progress: String =
            conn.query_row("PRAGMA litestream_hydration_progress", [], |r| r.get(0))?;
        let held: String = conn.query_row("PRAGMA litestream_stats", [], |r| r.get(0))?;
        if progress == "100.0" && held.contains(&format!("\"hydration_txid\":\"{txid:016x}\"")) {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(60),
            "hydration not ready at {txid:016x}: {held}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn restored_rows(target: &ReplicaTarget, txid: u64) -> Result<Vec<Vec<String>>> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("r.db");
    restore(
        target,
        &out,
        &RestoreOpts {
            txid: Some(txid),
            timestamp: None,
        },
    )?;
    Ok(dump(&rusqlite::Connection::open(&out)?, ROWS)?)
}

fn file_rows(path: &Path) -> Result<(String, Vec<Vec<String>>)> {
    let c =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let check: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    Ok((check, dump(&c, ROWS)?))
}

#[test]
fn hydrated_file_equals_restore_reads_switch_and_follow() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let target = ReplicaTarget::file(&dir.path().join("replica"))?;
    let (primary, mut rep) = setup(dir.path(), target.clone())?;
    let txid = rep.sync()?.txid;
    let hyd = dir.path().join("hydrated.db");
    let extra = format!(
        "&poll_interval=100ms&hydration_path={}",
        uri_encode(&hyd.display().to_string())
    );
    let want = dump(primary.conn(), ROWS)?;

    // Readers run while hydration builds and switches; every answer must be the primary's.
    let url = target.url();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (url, extra, want) = (url.clone(), extra.clone(), want.clone());
            std::thread::spawn(move || -> Result<usize> {
                let c = open_vfs("app.db", &url, &extra)?;
                let mut n = 0;
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(1500) {
                    assert_eq!(dump(&c, ROWS)?, want, "a reader saw wrong rows");
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    let conn = open_vfs("app.db", &url, &extra)?;
    wait_ready(&conn, txid)?;
    for r in readers {
        let n = r.join().expect("reader thread")?;
        assert!(n > 0);
    }
    let (check, rows) = file_rows(&hyd)?;
    assert_eq!(check, "ok");
    assert_eq!(
        rows,
        restored_rows(&target, txid)?,
        "hydrated file differs from litestream restore"
    );
    let bytes = stat(&conn, "hydration_bytes")?;
    let size = std::fs::metadata(&hyd)?.len() as f64;
    assert!(
        bytes <= size * 1.05,
        "hydration downloaded {bytes} bytes for a {size}-byte database"
    );

    // After the switch, a new connection reads the file, not the replica.
    let reads_before = stat(&conn, "hydration_reads")?;
    let gets_before = stat(&conn, "get_range")? + stat(&conn, "get_whole")?;
    let fresh = open_vfs("app.db", &url, &extra)?;
    assert_eq!(dump(&fresh, ROWS)?, want);
    assert!(
        stat(&conn, "hydration_reads")? > reads_before,
        "reads did not use the file"
    );
    assert_eq!(
        stat(&conn, "get_range")? + stat(&conn, "get_whole")?,
        gets_before,
        "reads went remote"
    );

    // New writes from the Go primary arrive in the file.
    seed(&primary, 100_000, 500)?;
    primary.exec("DELETE FROM t WHERE id % 7 = 3")?;
    let txid2 = rep.sync()?.txid;
    wait_ready(&conn, txid2)?;
    let (check, rows) = file_rows(&hyd)?;
    assert_eq!(check, "ok");
    assert_eq!(rows, dump(primary.conn(), ROWS)?);
    assert_eq!(dump(&conn, ROWS)?, rows);

    // Time travel still works: the past reads remotely, `latest` returns to the file.
    conn.query_row(
        &format!("PRAGMA litestream_txid = '{txid:016x}'"),
        [],
        |_| Ok(()),
    )?;
    assert_eq!(dump(&conn, ROWS)?, want);
    conn.query_row("PRAGMA litestream_time = 'latest'", [], |_| Ok(()))?;
    let reads = stat(&conn, "hydration_reads")?;
    assert_eq!(dump(&conn, ROWS)?, rows);
    assert!(stat(&conn, "hydration_reads")? > reads);
    Ok(())
}

/// Runs the sqlite3 shell with hydration to `hyd`, in the background.
fn shell_hydrating(
    url: &str,
    hyd: &Path,
    script: &str,
    env: &[(&str, String)],
) -> Result<std::process::Child> {
    let mut cmd = Command::new("sqlite3");
    cmd.arg("-batch")
        .arg("-cmd")
        .arg(format!(".load {}", extension_path()?.display()))
        .arg(":memory:")
        .env("LITESTREAM_REPLICA_URL", url)
        .env("LITESTREAM_HYDRATION_PATH", hyd)
        .env("AWS_ACCESS_KEY_ID", testkit::s3::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", testkit::s3::SECRET_KEY)
        .env_remove("AWS_CA_BUNDLE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().context("sqlite3")?;
    use std::io::Write;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(script.as_bytes())?;
    Ok(child)
}

#[test]
fn kill_during_hydration_then_resume_and_shared_path() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let root = tempfile::tempdir()?;
    let server = S3Server::start(root.path())?;
    server.create_bucket("bkt")?;
    let target = ReplicaTarget::s3(&server, "bkt", "db");
    let (primary, mut rep) = setup(dir.path(), target.clone())?;
    let txid = rep.sync()?.txid;
    let hyd = dir.path().join("h.db");
    let sidecar = dir.path().join("h.db.litestream");
    let url = target.url();

    // Slow every request so the build takes a while, then kill -9 in the middle of it.
    server.set_latency(Duration::from_millis(400));
    let mut child = shell_hydrating(
        &url,
        &hyd,
        ".open file:app.db?vfs=litestream\nSELECT count(*) FROM t;\n.shell sleep 60\n",
        &[],
    )?;
    let start = Instant::now();
    // Wait until the build has started (file created) and is not complete (no sidecar).
    while !hyd.exists() || sidecar.exists() {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(30),
            "hydration never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill()?;
    child.wait()?;
    assert!(!sidecar.exists(), "a killed build must not look complete");
    server.set_latency(Duration::ZERO);

    // Reopen: the incomplete file is rebuilt, and it equals restore.
    let extra = format!("&hydration_path={}", uri_encode(&hyd.display().to_string()));
    let conn = open_vfs("app.db", &url, &extra)?;
    wait_ready(&conn, txid)?;
    let want = restored_rows(&target, txid)?;
    assert_eq!(file_rows(&hyd)?, ("ok".to_string(), want.clone()));

    // A second process given the same path reads remotely, correctly, and says so.
    let log = dir.path().join("second.log");
    let out = shell_hydrating(
        &url,
        &hyd,
        ".open file:app.db?vfs=litestream\nSELECT count(*) FROM t;\nPRAGMA litestream_stats;\n",
        &[("LITESTREAM_LOG_FILE", log.display().to_string())],
    )?
    .wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with(&format!("{}\n", want.len())), "{stdout}");
    assert!(stdout.contains("\"hydration_state\":\"busy\""), "{stdout}");
    assert!(std::fs::read_to_string(&log)?.contains("locked by another process"));
    drop(conn);

    // Writes while nobody hydrates, then a new process resumes from the sidecar with whole
    // files and downloads far less than the database.
    seed(&primary, 200_000, 200)?;
    let txid2 = rep.sync()?.txid;
    // The replicator's own compaction GETs would count in the server's byte total.
    rep.stop(Duration::from_secs(10))?;
    server.reset_stats();
    let resume_log = dir.path().join("resume.log");
    let out = shell_hydrating(
        &url,
        &hyd,
        ".open file:app.db?vfs=litestream\n.shell sleep 1\nPRAGMA litestream_stats;\nSELECT count(*) FROM t;\n",
        &[("LITESTREAM_LOG_FILE", resume_log.display().to_string())],
    )?
    .wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("\"hydration_txid\":\"{txid2:016x}\"")),
        "{stdout}"
    );
    let downloaded = server.stats().bytes_out as f64;
    let size = std::fs::metadata(&hyd)?.len() as f64;
    assert!(
        downloaded < size * 0.10,
        "resume downloaded {downloaded} bytes of a {size}-byte database; its log:\n{}",
        std::fs::read_to_string(&resume_log).unwrap_or_default()
    );
    assert_eq!(file_rows(&hyd)?.1, dump(primary.conn(), ROWS)?);
    Ok(())
}

#[test]
fn a_replica_that_went_backwards_is_rebuilt() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let replica_dir = dir.path().join("replica");
    let target = ReplicaTarget::file(&replica_dir)?;
    let hyd = dir.path().join("h.db");
    {
        let (_p, mut rep) = setup(dir.path(), target.clone())?;
        let txid = rep.sync()?.txid;
        // Hydrate in a child process, which releases the file lock when it exits.
        let out = shell_hydrating(
            &target.url(),
            &hyd,
            ".open file:app.db?vfs=litestream\n.shell sleep 1\nPRAGMA litestream_stats;\n",
            &[],
        )?
        .wait_with_output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("\"hydration_txid\":\"{txid:016x}\"")),
            "{stdout}"
        );
    }
    // Replace the replica with a fresh, shorter history of another database.
    std::fs::remove_dir_all(&replica_dir)?;
    let dir2 = tempfile::tempdir()?;
    let other = PrimaryDb::create(&dir2.path().join("other.db"))?;
    other.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, body TEXT)")?;
    seed(&other, 1, 300)?;
    let mut rep = Replicator::start(other.path(), target.clone(), ReplicateOpts::default())?;
    rep.sync()?;
    let url = target.url();
    let log = dir.path().join("vfs.log");
    let out = shell_hydrating(
        &url,
        &hyd,
        ".open file:app.db?vfs=litestream\n.shell sleep 1\nSELECT count(*) FROM t;\n",
        &[("LITESTREAM_LOG_FILE", log.display().to_string())],
    )?
    .wait_with_output()?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let log = std::fs::read_to_string(&log)?;
    assert!(
        stdout.starts_with("300\n"),
        "stdout: {stdout}\nstderr: {stderr}\nlog: {log}"
    );
    assert!(log.contains("rebuilding the hydration file"), "{log}");
    assert_eq!(file_rows(&hyd)?.1, dump(other.conn(), ROWS)?);
    Ok(())
}
