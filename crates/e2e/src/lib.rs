//! Shared helpers of the end-to-end tests: find the built extension, open connections through
//! it, percent-encode URI parameters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{bail, Context, Result};
use rusqlite::{Connection, OpenFlags};
use testkit::golitestream::{restore, ReplicaTarget, RestoreOpts};

/// The repository's top directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The release build of the extension (`make build`), or `$LITESTREAM_VFS_SO`.
pub fn extension_path() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("LITESTREAM_VFS_SO") {
        return Ok(PathBuf::from(p));
    }
    let p = repo_root().join("target/release/liblitestream_vfs.so");
    if !p.exists() {
        bail!(
            "{} is missing: run `make build` (or `make test`) first",
            p.display()
        );
    }
    Ok(p.canonicalize()?)
}

/// Loads the extension into this process's SQLite once (it registers the VFS process-wide),
/// and sets the credentials of the test S3 server and of Azurite, which the engine reads from
/// the environment.
pub fn load_extension() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", testkit::s3::ACCESS_KEY);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", testkit::s3::SECRET_KEY);
        std::env::set_var(
            "LITESTREAM_AZURE_ACCOUNT_KEY",
            testkit::azurite::ACCOUNT_KEY,
        );
        std::env::remove_var("AWS_CA_BUNDLE");
        result = (|| {
            let path = extension_path()?;
            let conn = Connection::open_in_memory()?;
            // SAFETY: we load our own extension, built from this workspace.
            unsafe {
                let _guard = rusqlite::LoadExtensionGuard::new(&conn)?;
                conn.load_extension(&path, None::<&str>)
                    .context("load the litestream extension")?;
            }
            Ok(())
        })();
    });
    result
}

/// Percent-encodes a value for a SQLite URI filename.
pub fn uri_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Opens `name` through the litestream VFS with `replica_url` and extra URI parameters.
pub fn open_vfs(name: &str, replica_url: &str, extra: &str) -> rusqlite::Result<Connection> {
    open_with(name, replica_url, extra, OpenFlags::SQLITE_OPEN_READ_ONLY)
}

/// Opens `name` through the litestream VFS in write mode (creating it if the replica is empty).
pub fn open_vfs_rw(name: &str, replica_url: &str, extra: &str) -> rusqlite::Result<Connection> {
    open_with(
        name,
        replica_url,
        &format!("&write_enabled=true{extra}"),
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )
}

/// Opens `name` as applications open a database (read-write flags) without write mode: it
/// reads until `PRAGMA litestream_write_enabled = 1`.
pub fn open_vfs_app(name: &str, replica_url: &str, extra: &str) -> rusqlite::Result<Connection> {
    open_with(
        name,
        replica_url,
        extra,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )
}

fn open_with(
    name: &str,
    replica_url: &str,
    extra: &str,
    flags: OpenFlags,
) -> rusqlite::Result<Connection> {
    load_extension().expect("extension loads");
    let uri = format!(
        "file:{name}?vfs=litestream&replica_url={}{extra}",
        uri_encode(replica_url)
    );
    Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
}

/// Every row of a query, each column rendered as text, for whole-table comparisons.
pub fn dump(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<Vec<String>>> {
    let mut stmt = conn.prepare(sql)?;
    let n = stmt.column_count();
    let rows = stmt.query_map([], |row| {
        (0..n)
            .map(|i| {
                let v: rusqlite::types::Value = row.get(i)?;
                Ok(format!("{v:?}"))
            })
            .collect::<rusqlite::Result<Vec<String>>>()
    })?;
    rows.collect()
}

/// Every table's rows (and the schema), for comparing two databases.
pub fn snapshot(conn: &Connection) -> Result<BTreeMap<String, Vec<Vec<String>>>> {
    let mut out = BTreeMap::new();
    out.insert(
        "schema".into(),
        dump(
            conn,
            "SELECT type, name, sql FROM sqlite_schema ORDER BY name",
        )?,
    );
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for t in tables {
        let rows = dump(conn, &format!("SELECT * FROM \"{t}\" ORDER BY 1"))?;
        out.insert(t, rows);
    }
    Ok(out)
}

/// `PRAGMA integrity_check`.
pub fn integrity(conn: &Connection) -> Result<String> {
    Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
}

/// Restores the newest state with the Go tools and opens it.
pub fn go_restore(target: &ReplicaTarget, dir: &Path, name: &str) -> Result<Connection> {
    let out = dir.join(name);
    restore(target, &out, &RestoreOpts::default()).context("litestream restore")?;
    Ok(Connection::open(&out)?)
}

/// A file:// replica that the Go `litestream replicate` wrote of a table `t(id, body)` with
/// `rows` rows of `blob_bytes` random bytes each (as hex), synced, and the replicator stopped.
pub fn go_file_replica(dir: &Path, rows: u32, blob_bytes: u32) -> Result<ReplicaTarget> {
    use testkit::golitestream::{ReplicateOpts, Replicator};
    let primary = testkit::PrimaryDb::create(&dir.join("app.db"))?;
    primary.exec(&format!(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
         INSERT INTO t SELECT i, hex(randomblob({blob_bytes})) FROM n;"
    ))?;
    let target = ReplicaTarget::file(&dir.join("replica"))?;
    let mut rep = Replicator::start(primary.path(), target.clone(), ReplicateOpts::default())?;
    rep.sync()?;
    rep.stop(std::time::Duration::from_secs(5))?;
    Ok(target)
}

/// Debian's Python in the venv `scripts/setup.sh` makes (`target/venv-debian`), with Django.
pub fn venv_python() -> Result<PathBuf> {
    let p = repo_root().join("target/venv-debian/bin/python");
    if !p.exists() {
        bail!(
            "{} is missing: run scripts/setup.sh (make test does)",
            p.display()
        );
    }
    Ok(p)
}

/// Runs the `sqlite3` shell with the extension loaded, `script` on standard input and extra
/// environment; returns what it printed, errors interleaved with results.
pub fn shell(script: &str, env: &[(&str, &str)]) -> Result<String> {
    shell_status(script, env).map(|(out, _)| out)
}

/// Runs `sql` in a `sqlite3` shell process that opens `app.db` on `replica_url` in write mode
/// with the write buffer `buffer` (uploaded when the shell exits); fails on any output.
pub fn shell_write(replica_url: &str, buffer: &Path, sql: &str) -> Result<()> {
    let out = shell(
        &format!(
            ".open file:app.db?vfs=litestream&write_enabled=true&replica_url={}&buffer_path={}\n{sql}\n",
            uri_encode(replica_url),
            uri_encode(&buffer.display().to_string())
        ),
        &[],
    )?;
    if !out.trim().is_empty() {
        bail!("the sqlite3 shell said: {out}");
    }
    Ok(())
}

/// A replica of a small table, written by our writer through the sqlite3 shell (uploaded when
/// the shell closes it).
pub fn small_replica(dir: &Path) -> Result<ReplicaTarget> {
    let target = ReplicaTarget::file(&dir.join("replica"))?;
    shell_write(
        &target.url(),
        &dir.join("setup.buffer"),
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);\n\
         INSERT INTO t(v) SELECT hex(randomblob(50)) FROM generate_series(1, 200);",
    )?;
    Ok(target)
}

/// Like [`shell`], also returning whether the shell exited normally (`false`: killed by a
/// signal, a crash of the host process).
pub fn shell_status(script: &str, env: &[(&str, &str)]) -> Result<(String, bool)> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let so = extension_path()?;
    // Through `sh` so errors (stderr) interleave with results (stdout) as a user sees them.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("exec sqlite3 -batch -cmd \"$1\" :memory: 2>&1")
        .arg("sh")
        .arg(format!(".load {}", so.display()))
        .env_remove("LITESTREAM_REPLICA_URL")
        .env_remove("AWS_CA_BUNDLE")
        .env("AWS_ACCESS_KEY_ID", testkit::s3::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", testkit::s3::SECRET_KEY)
        .env(
            "LITESTREAM_AZURE_ACCOUNT_KEY",
            testkit::azurite::ACCOUNT_KEY,
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .context("run sqlite3 (apt-get install sqlite3)")?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    // `exec` above: the status is the shell's own, signal included.
    let signaled = std::os::unix::process::ExitStatusExt::signal(&out.status).is_some();
    Ok((
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        !signaled,
    ))
}

/// A numeric field of `PRAGMA litestream_stats`.
pub fn stat(conn: &rusqlite::Connection, name: &str) -> Result<f64> {
    let stats: String = conn.query_row("PRAGMA litestream_stats", [], |r| r.get(0))?;
    let key = format!("\"{name}\":");
    stats
        .split(&key)
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .and_then(|v| v.trim_matches('"').parse().ok())
        .with_context(|| format!("{name} missing from {stats}"))
}

/// A replica history written with our own LTX encoder from a real SQLite database: a level-9
/// snapshot at TXID 1, then one level-0 file per later transaction. Each state's rows are
/// known, so a test can damage the files and check what a reader gets.
#[derive(Debug, Clone)]
pub struct EncodedHistory {
    /// Page size of the database (4096).
    pub page_size: u32,
    /// `(key relative to the replica root, file bytes)`, in TXID order, hex layout
    /// (`0009/…`, `0000/…`, as Litestream writes to S3).
    pub files: Vec<(String, Vec<u8>)>,
    /// `(txid, rows of ROWS_SQL)` after each transaction.
    pub states: Vec<(u64, Vec<Vec<String>>)>,
}

/// The query whose rows [`EncodedHistory::states`] records.
pub const ROWS_SQL: &str = "SELECT id, grp, hex(body) FROM t ORDER BY id";

impl EncodedHistory {
    /// Builds the history: TXID 1 is a snapshot of ~300 KB (incompressible rows, so it is read
    /// with ranged GETs), TXIDs 2..=`txids` are small level-0 files (read whole and
    /// checksum-verified), except TXID 3, which rewrites enough rows to be larger than 64 KiB.
    pub fn build(txids: u64) -> Result<EncodedHistory> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("src.db");
        let conn = Connection::open(&path)?;
        conn.execute_batch(
            "PRAGMA page_size = 4096; PRAGMA journal_mode = DELETE;
             CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, body BLOB NOT NULL);
             CREATE INDEX t_grp ON t(grp);
             WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 240)
             INSERT INTO t SELECT i, i % 13, randomblob(1000 + i % 100) FROM s;",
        )?;
        let page_size = 4096u32;
        let read_pages = || -> Result<Vec<Vec<u8>>> {
            let bytes = std::fs::read(&path)?;
            Ok(bytes
                .chunks(page_size as usize)
                .map(<[u8]>::to_vec)
                .collect())
        };
        let base_ms = 1_700_000_000_000i64;
        let mut files = Vec::new();
        let mut states = Vec::new();
        let mut pages = read_pages()?;
        let all: Vec<(u32, Vec<u8>)> = pages
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u32 + 1, p.clone()))
            .collect();
        files.push((
            format!("0009/{}", ltx::format_filename(1, 1)),
            encode(page_size, 1, 1, pages.len() as u32, &all, base_ms)?,
        ));
        states.push((1, dump(&conn, ROWS_SQL)?));
        for txid in 2..=txids {
            if txid == 3 {
                conn.execute(
                    "UPDATE t SET body = randomblob(1100), grp = grp + 1 WHERE id <= 70",
                    [],
                )?;
            } else {
                conn.execute(
                    "UPDATE t SET body = randomblob(900), grp = grp + 100 WHERE id % 50 = ?1",
                    [txid as i64 % 50],
                )?;
                conn.execute(
                    "INSERT INTO t(grp, body) VALUES (?1, randomblob(800))",
                    [txid as i64],
                )?;
            }
            let now = read_pages()?;
            let changed: Vec<(u32, Vec<u8>)> = now
                .iter()
                .enumerate()
                .filter(|(i, p)| pages.get(*i) != Some(*p))
                .map(|(i, p)| (i as u32 + 1, p.clone()))
                .collect();
            files.push((
                format!("0000/{}", ltx::format_filename(txid, txid)),
                encode(
                    page_size,
                    txid,
                    txid,
                    now.len() as u32,
                    &changed,
                    base_ms + txid as i64 * 1000,
                )?,
            ));
            states.push((txid, dump(&conn, ROWS_SQL)?));
            pages = now;
        }
        Ok(EncodedHistory {
            page_size,
            files,
            states,
        })
    }

    /// Rows after `txid`, if it is one of the history's states.
    pub fn rows_at(&self, txid: u64) -> Option<&Vec<Vec<String>>> {
        self.states.iter().find(|(t, _)| *t == txid).map(|(_, r)| r)
    }

    /// Writes the files below `root` (a directory: a file:// replica, or a bucket directory of
    /// the test S3 server plus a prefix).
    pub fn write_to(&self, root: &std::path::Path) -> Result<()> {
        for (key, bytes) in &self.files {
            let p = root.join(key);
            std::fs::create_dir_all(p.parent().context("key has a parent")?)?;
            std::fs::write(&p, bytes)?;
        }
        Ok(())
    }
}

fn encode(
    page_size: u32,
    min: u64,
    max: u64,
    commit: u32,
    pages: &[(u32, Vec<u8>)],
    ts_ms: i64,
) -> Result<Vec<u8>> {
    let header = ltx::Header::unchecksummed(page_size, commit, min, max, ts_ms);
    let mut enc = ltx::Encoder::new(header)?;
    for (pgno, data) in pages {
        if *pgno != ltx::lock_pgno(page_size) {
            enc.add_page(*pgno, data)?;
        }
    }
    Ok(enc.finish(0)?)
}

/// The SQLite primary result code of an error, if it came from SQLite.
pub fn sqlite_code(e: &rusqlite::Error) -> Option<rusqlite::ErrorCode> {
    e.sqlite_error_code()
}
