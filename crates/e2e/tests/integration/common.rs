//! Helpers shared by the write tests and the conformance suite: comparing databases, the Go
//! restore, and `vfs-writer` child processes (whose path only integration tests know).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use testkit::golitestream::ReplicaTarget;

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The same workload, statement by statement, on our VFS and on a plain local database:
/// schema changes, small and large transactions, rollbacks, a truncating VACUUM.
pub const WORKLOAD: &[&str] = &[
    "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER)",
    "CREATE INDEX items_n ON items(n)",
    "INSERT INTO items(name, n) VALUES ('first', 1)",
    "INSERT INTO items(name, n) VALUES ('second', 2)",
    "BEGIN; INSERT INTO items(name, n) SELECT printf('%.*c', 100 + value % 700, 'x'), value FROM (WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < 20000) SELECT value FROM s); COMMIT",
    "BEGIN; DELETE FROM items; ROLLBACK",
    "BEGIN; UPDATE items SET n = n * 2 WHERE id % 3 = 0; SAVEPOINT s; DELETE FROM items WHERE id < 5000; ROLLBACK TO s; RELEASE s; COMMIT",
    "ALTER TABLE items ADD COLUMN note TEXT DEFAULT 'none'",
    "CREATE TABLE other(k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID",
    "INSERT INTO other SELECT 'k' || value, zeroblob(value % 5000) FROM (WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < 300) SELECT value FROM s)",
    "DROP INDEX items_n",
    "DELETE FROM items WHERE id > 3000",
    "VACUUM",
    "INSERT INTO items(name, n, note) VALUES ('after vacuum', 7, 'yes')",
    "UPDATE other SET v = X'00ff' WHERE k = 'k7'",
];

/// A `vfs-writer` child and the lines it printed so far.
pub struct Writer {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Writer {
    pub fn spawn(args: &[&str]) -> Result<Writer> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vfs-writer"))
            .args(args)
            .env("LITESTREAM_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawn vfs-writer")?;
        let out = child.stdout.take().context("stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Writer {
            child,
            lines: rx,
            seen: Vec::new(),
        })
    }

    /// Waits for it to exit (bounded) and returns everything it printed.
    pub fn finish(mut self, limit: Duration) -> Result<Vec<String>> {
        let start = Instant::now();
        loop {
            if self.child.try_wait()?.is_some() {
                break;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                bail!(
                    "vfs-writer did not exit within {limit:?}: {:?}",
                    self.drain()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The reader thread sees EOF once the pipe closes.
        std::thread::sleep(Duration::from_millis(50));
        Ok(self.drain())
    }

    /// Waits until it has acknowledged a commit.
    pub fn wait_for_ack(&mut self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.drain().iter().any(|l| l.starts_with("ack ")) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        bail!(
            "no commit acknowledged within {limit:?}: {:?}",
            self.drain()
        )
    }

    pub fn kill(mut self) -> Result<Vec<String>> {
        self.child.kill()?; // SIGKILL
        self.child.wait()?;
        std::thread::sleep(Duration::from_millis(50));
        Ok(self.drain())
    }

    pub fn drain(&mut self) -> Vec<String> {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        self.seen.clone()
    }
}

pub fn acked(lines: &[String]) -> BTreeSet<i64> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("ack "))
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

/// Opens in write mode in a child (recovering `buffer`) and returns the rows' (id, tag).
pub fn dump_child(url: &str, buffer: &Path) -> Result<Result<BTreeMap<i64, String>, String>> {
    let lines = Writer::spawn(&["dump", url, &buffer.display().to_string()])?
        .finish(Duration::from_secs(60))?;
    if let Some(e) = lines.iter().find(|l| l.starts_with("openerr")) {
        return Ok(Err(e.clone()));
    }
    if !lines.iter().any(|l| l == "closed") {
        bail!("dump did not close cleanly: {lines:?}");
    }
    Ok(Ok(lines
        .iter()
        .filter_map(|l| l.strip_prefix("id "))
        .filter_map(|l| {
            let (id, tag) = l.split_once(' ')?;
            Some((id.parse().ok()?, tag.to_string()))
        })
        .collect()))
}

/// Runs `script` in the `sqlite3` shell with the Go VFS loaded, on `target`.
pub fn go_vfs_shell(target: &ReplicaTarget, dir: &Path, script: &str) -> Result<String> {
    let so = testkit::golitestream::go_vfs_so()?;
    let file = dir.join("go-vfs.sql");
    std::fs::write(
        &file,
        format!(
            ".load {}\n.open file:app.db?vfs=litestream\n{script}\n",
            so.display()
        ),
    )?;
    let mut cmd = Command::new("sh");
    testkit::golitestream::sanitize_env(&mut cmd);
    cmd.envs(target.go_vfs_env())
        .arg("-c")
        .arg("exec sqlite3 -batch < \"$1\" 2>&1")
        .arg("sh")
        .arg(&file);
    let out = testkit::golitestream::run_bounded(&mut cmd, Duration::from_secs(60))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
