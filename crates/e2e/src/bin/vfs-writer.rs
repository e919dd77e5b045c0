//! A writer process for the crash and race tests: writes through the litestream VFS in write
//! mode and reports every acknowledged commit on stdout, flushed, so that a test killing it
//! with SIGKILL knows exactly which commits returned.
//!
//! - `vfs-writer stream URL BUFFER FIRST COUNT SYNC_INTERVAL TAG`: one autocommit INSERT per id
//!   from FIRST into `t(id, tag, v)` (indexed on `(tag, id)`); prints `ack ID` after each COMMIT returned, `err ID CODE MESSAGE` on failure
//!   (and goes on, up to 20 failures in a row), `closed` after a clean close.
//! - `vfs-writer dump URL BUFFER`: opens in write mode (recovering the buffer), prints
//!   `id ID TAG` for every row, then `closed` once the close has uploaded.

use std::io::Write;

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let out = std::io::stdout();
    let say = |line: String| {
        let mut o = out.lock();
        let _ = writeln!(o, "{line}");
        let _ = o.flush();
    };
    match args.get(1).map(String::as_str) {
        Some("stream") if args.len() == 8 => {
            let (url, buffer) = (&args[2], &args[3]);
            let first: i64 = args[4].parse()?;
            let count: i64 = args[5].parse()?;
            let extra = format!(
                "&buffer_path={}&sync_interval={}",
                e2e::uri_encode(buffer),
                args[6]
            );
            let conn = match e2e::open_vfs_rw("app.db", url, &extra) {
                Ok(c) => c,
                Err(e) => {
                    say(format!("openerr {e}"));
                    std::process::exit(3);
                }
            };
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, tag TEXT NOT NULL, v BLOB NOT NULL);
                 CREATE INDEX IF NOT EXISTS t_tag ON t(tag, id);",
            )
            .context("create table")?;
            let mut failures = 0;
            for id in first..first + count {
                let r = conn.execute(
                    "INSERT INTO t(id, tag, v) VALUES (?1, ?2, randomblob(100 + ?1 % 900))",
                    rusqlite::params![id, args[7]],
                );
                match r {
                    Ok(_) => {
                        failures = 0;
                        say(format!("ack {id}"));
                    }
                    Err(e) => {
                        let code = e
                            .sqlite_error_code()
                            .map(|c| format!("{c:?}"))
                            .unwrap_or_default();
                        say(format!("err {id} {code} {e}"));
                        failures += 1;
                        if failures >= 20 {
                            break;
                        }
                    }
                }
            }
            drop(conn);
            say("closed".into());
            Ok(())
        }
        Some("dump") if args.len() == 4 => {
            let extra = format!("&buffer_path={}", e2e::uri_encode(&args[3]));
            let conn = match e2e::open_vfs_rw("app.db", &args[2], &extra) {
                Ok(c) => c,
                Err(e) => {
                    say(format!("openerr {e}"));
                    std::process::exit(3);
                }
            };
            let rows = (|| -> rusqlite::Result<Vec<(i64, String)>> {
                let mut stmt = conn.prepare("SELECT id, tag FROM t ORDER BY id")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect()
            })();
            match rows {
                Ok(rows) => {
                    for (id, tag) in rows {
                        say(format!("id {id} {tag}"));
                    }
                }
                Err(e) => {
                    say(format!("openerr {e}"));
                    std::process::exit(3);
                }
            }
            drop(conn);
            say("closed".into());
            Ok(())
        }
        _ => bail!(
            "usage: vfs-writer stream URL BUFFER FIRST COUNT SYNC_INTERVAL TAG | dump URL BUFFER"
        ),
    }
}
