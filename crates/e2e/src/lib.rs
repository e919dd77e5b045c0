//! Shared helpers of the end-to-end tests: find the built extension, open connections through
//! it, percent-encode URI parameters.

use std::path::PathBuf;
use std::sync::Once;

use anyhow::{bail, Context, Result};
use rusqlite::{Connection, OpenFlags};

/// The release build of the extension (`make build`), or `$LITESTREAM_VFS_SO`.
pub fn extension_path() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("LITESTREAM_VFS_SO") {
        return Ok(PathBuf::from(p));
    }
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/liblitestream_vfs.so");
    if !p.exists() {
        bail!(
            "{} is missing: run `make build` (or `make test`) first",
            p.display()
        );
    }
    Ok(p.canonicalize()?)
}

/// Loads the extension into this process's SQLite once (it registers the VFS process-wide),
/// and sets the test S3 server's credentials, which the engine reads from the environment.
pub fn load_extension() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", testkit::s3::ACCESS_KEY);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", testkit::s3::SECRET_KEY);
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
    load_extension().expect("extension loads");
    let uri = format!(
        "file:{name}?vfs=litestream&replica_url={}{extra}",
        uri_encode(replica_url)
    );
    Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )
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

/// Runs the `sqlite3` shell with the extension loaded, `script` on standard input and extra
/// environment; returns what it printed, errors interleaved with results.
pub fn shell(script: &str, env: &[(&str, &str)]) -> Result<String> {
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
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}
