//! The primary SQLite database that Litestream replicates, and checks on restored copies.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rusqlite::{Connection, OpenFlags};

/// A primary database opened with rusqlite (bundled SQLite) in WAL mode, with autocheckpoint
/// off (Litestream checkpoints).
///
/// Litestream only replicates WAL-mode databases, and it needs writers to tolerate its brief
/// locks (it holds a read transaction to control checkpoints), hence the busy timeout.
#[derive(Debug)]
pub struct PrimaryDb {
    conn: Connection,
    path: PathBuf,
}

impl PrimaryDb {
    /// Creates (or opens) the database at `path` and switches it to WAL mode.
    pub fn create(path: &Path) -> Result<PrimaryDb> {
        let conn = Connection::open(path)
            .with_context(|| format!("open primary database {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))
            .context("set busy_timeout")?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .context("PRAGMA journal_mode=WAL")?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!("{}: journal_mode is {mode}, expected wal", path.display());
        }
        // Checkpoints are Litestream's job. With SQLite's default autocheckpoint the writer can
        // restart the WAL between two of Litestream's reads, and 0.5.17 then uploads LTX files
        // that restore to a corrupt database ("row N missing from index", seen in the chaos test
        // at the TXIDs after a `saltMatch=false` sync). Litestream recommends exactly this.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0")
            .context("PRAGMA wal_autocheckpoint = 0")?;
        Ok(PrimaryDb {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying connection, for anything the helpers do not cover.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs one or more SQL statements (no results).
    pub fn exec(&self, sql: &str) -> Result<()> {
        self.conn
            .execute_batch(sql)
            .with_context(|| format!("exec on {}: {sql}", self.path.display()))
    }

    /// Runs a query returning a single integer (e.g. `SELECT count(*) FROM t`).
    pub fn query_i64(&self, sql: &str) -> Result<i64> {
        self.conn
            .query_row(sql, [], |r| r.get(0))
            .with_context(|| format!("query on {}: {sql}", self.path.display()))
    }

    /// Inserts `n` rows into `table` in one transaction, creating it as
    /// `(id INTEGER PRIMARY KEY, val TEXT NOT NULL)` if needed. Values are deterministic
    /// (`row-<id>` padded to 100 bytes) so restored copies can be compared by content.
    pub fn insert_rows(&mut self, table: &str, n: usize) -> Result<()> {
        let tx = self.conn.transaction().context("begin")?;
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS \"{table}\" (id INTEGER PRIMARY KEY, val TEXT NOT NULL)"
        ))
        .with_context(|| format!("create table {table}"))?;
        {
            let mut stmt = tx
                .prepare(&format!(
                    "INSERT INTO \"{table}\" (val) VALUES (printf('row-%d-%0100d', \
                     (SELECT coalesce(max(id), 0) + 1 FROM \"{table}\"), 0))"
                ))
                .with_context(|| format!("prepare insert into {table}"))?;
            for _ in 0..n {
                stmt.execute([])
                    .with_context(|| format!("insert into {table}"))?;
            }
        }
        tx.commit().context("commit")?;
        Ok(())
    }

    /// Number of rows in `table`.
    pub fn count(&self, table: &str) -> Result<i64> {
        self.query_i64(&format!("SELECT count(*) FROM \"{table}\""))
    }
}

/// Opens `path` read-only (for checking restored databases).
pub fn open_readonly(path: &Path) -> Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("open {} read-only", path.display()))
}

/// Result of `PRAGMA integrity_check` on the database at `path` (`"ok"` when healthy; several
/// problems are joined with newlines).
pub fn integrity_check(path: &Path) -> Result<String> {
    let conn = open_readonly(path)?;
    let mut stmt = conn
        .prepare("PRAGMA integrity_check")
        .context("prepare integrity_check")?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .context("run integrity_check")?
        .collect::<rusqlite::Result<Vec<_>>>()
        .with_context(|| format!("integrity_check on {}", path.display()))?;
    Ok(rows.join("\n"))
}

/// `SELECT count(*)` of `table` in the database at `path`, opened read-only.
pub fn count_rows(path: &Path, table: &str) -> Result<i64> {
    let conn = open_readonly(path)?;
    conn.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
        r.get(0)
    })
    .with_context(|| format!("count rows of {table} in {}", path.display()))
}
