//! `PRAGMA litestream_*`, with the Go VFS's names and value formats, plus a few of our own.
//! The SQL functions (`litestream_time()` …) run through this same code.

use replica::{parse_time, parse_txid, Target};
use sqlite_plugin::vars;
use sqlite_plugin::vfs::PragmaErr;

use crate::errors;
use crate::main_db::MainDb;

/// Internal: asks a connection's main file whether its open failed (see `functions`).
pub const OPEN_ERROR: &str = "litestream_open_error";

type PragmaResult = Result<Option<String>, PragmaErr>;

/// Handles `PRAGMA name` / `PRAGMA name = arg` on the main database. Names not ours give
/// `NotFound`, so SQLite's own pragmas keep working.
pub fn handle(db: &mut MainDb, name: &str, arg: Option<&str>) -> PragmaResult {
    let name = name.to_ascii_lowercase();
    if name == OPEN_ERROR {
        return Ok(db.open_error.clone());
    }
    if name == "journal_mode" {
        return journal_mode(db, arg);
    }
    if name == "mmap_size" {
        // Pages come from the replica (and the write overlay), never from a file SQLite could
        // map: answered as SQLite answers on a VFS that cannot map, 0, for a get and a set.
        return Ok(Some("0".into()));
    }
    if !name.starts_with("litestream_") {
        return Err(PragmaErr::NotFound);
    }
    if let Some(e) = &db.open_error {
        return Err(fail(e.clone()));
    }
    match (name.as_str(), arg) {
        ("litestream_txid", None) => Ok(Some(format!("{:016x}", version(db)?.txid()))),
        ("litestream_txid", Some(v)) => {
            travel(db, parse_txid(v))?;
            Ok(Some(format!("{:016x}", version(db)?.txid())))
        }
        ("litestream_time", None) => time(db).map(Some),
        ("litestream_time", Some(v)) => {
            travel(db, parse_time(v))?;
            time(db).map(Some)
        }
        ("litestream_lag", None) => {
            // A writer lags by the age of its oldest commit not uploaded yet; a reader by the
            // time since its last successful poll.
            let lag = match db.session.as_ref().and_then(|s| s.write_status()) {
                Some(w) => Some(w.oldest_pending.unwrap_or_default()),
                None => db.session.as_ref().and_then(|s| s.lag()),
            };
            Ok(Some(lag.map_or(-1, |d| d.as_secs() as i64).to_string()))
        }
        ("litestream_stats", None) => stats(db).map(Some),
        ("litestream_replica_url", None) => {
            Ok(db.session.as_ref().map(|s| s.display_url().to_string()))
        }
        ("litestream_poll_interval", None) => Ok(Some(format!("{:?}", db.config.poll_interval))),
        ("litestream_cache_size", None) => Ok(Some(db.config.cache_size.to_string())),
        ("litestream_write_enabled", None) => Ok(Some(u8::from(db.writable()).to_string())),
        ("litestream_write_enabled", Some(v)) => {
            let on = crate::config::parse_bool(v)
                .map_err(|e| fail(format!("litestream_write_enabled: {v:?}: {e}")))?;
            db.set_write_mode(on)
                .map_err(|e| fail(format!("litestream_write_enabled = {}: {e}", u8::from(on))))?;
            Ok(Some(u8::from(db.writable()).to_string()))
        }
        ("litestream_sync", None) => {
            let session = db
                .session
                .as_ref()
                .filter(|_| db.writable())
                .ok_or_else(|| fail("litestream_sync needs write mode (LITESTREAM_WRITE_ENABLED=true)".into()))?;
            session
                .sync_now()
                .map(|txid| Some(format!("{txid:016x}")))
                .map_err(|e| PragmaErr::Fail(errors::pragma_code(&e), Some(e.to_string())))
        }
        ("litestream_sync_mode", None) => {
            Ok(Some(if db.durable { "durable" } else { "interval" }.into()))
        }
        ("litestream_sync_mode", Some(v)) => {
            db.durable = match v.trim().to_ascii_lowercase().as_str() {
                "durable" => true,
                "interval" => false,
                _ => return Err(fail(format!("litestream_sync_mode: {v:?}: expected durable (COMMIT returns once uploaded) or interval (uploads every LITESTREAM_SYNC_INTERVAL)"))),
            };
            Ok(Some(v.trim().to_ascii_lowercase()))
        }
        ("litestream_hydration_progress", None) => {
            let status = db.session.as_ref().and_then(|s| s.hydration_status());
            Ok(Some(status.map_or("0".into(), |h| format!("{:.1}", h.progress))))
        }
        ("litestream_hydration_file", None) => {
            let status = db.session.as_ref().and_then(|s| s.hydration_status());
            Ok(Some(status.map_or(String::new(), |h| h.path.display().to_string())))
        }
        (
            "litestream_lag" | "litestream_stats" | "litestream_sync" | "litestream_replica_url" | "litestream_poll_interval"
            | "litestream_cache_size" | "litestream_hydration_progress" | "litestream_hydration_file",
            Some(_),
        ) => Err(fail(format!("{name} is read-only"))),
        _ => Err(fail(format!(
            "unknown pragma {name}; the litestream VFS knows litestream_txid, litestream_time, litestream_lag, litestream_stats, litestream_replica_url, litestream_poll_interval, litestream_cache_size, litestream_write_enabled, litestream_sync, litestream_sync_mode, litestream_hydration_progress, litestream_hydration_file"
        ))),
    }
}

/// `PRAGMA journal_mode`. The replica is the log, so SQLite runs in rollback mode here, and
/// the main database has no shared memory: `= WAL` (and `wal2`) is answered as SQLite answers
/// it on a VFS without shared memory, with the mode in effect and no error, so that
/// applications that ask for WAL at connect time work unchanged. (sqlite-plugin gives every
/// file the shared-memory methods, so SQLite would otherwise try to switch.) Every other mode
/// is SQLite's to set; we note it, to answer with it.
fn journal_mode(db: &mut MainDb, arg: Option<&str>) -> PragmaResult {
    static LOGGED: std::sync::Once = std::sync::Once::new();
    let Some(mode) = arg.map(|a| a.trim().trim_matches(['\'', '"']).to_ascii_lowercase()) else {
        return Err(PragmaErr::NotFound);
    };
    match mode.as_str() {
        "wal" | "wal2" => {
            LOGGED.call_once(|| {
                tracing::info!(
                    requested = %mode,
                    "journal_mode stays {}: the litestream VFS has no WAL (the replica is the log) and no shared memory, so SQLite keeps its rollback journal, as with any such VFS",
                    db.journal_mode
                )
            });
            Ok(Some(db.journal_mode.clone()))
        }
        // SQLite ignores a change inside a write transaction.
        "delete" | "truncate" | "persist" | "memory" | "off" if !db.in_write_transaction() => {
            db.journal_mode = mode.clone();
            Err(PragmaErr::NotFound)
        }
        _ => Err(PragmaErr::NotFound),
    }
}

fn fail(msg: String) -> PragmaErr {
    PragmaErr::Fail(vars::SQLITE_ERROR, Some(msg))
}

fn version(db: &MainDb) -> Result<std::sync::Arc<replica::Version>, PragmaErr> {
    db.version()
        .map_err(|code| PragmaErr::Fail(code, Some("the replica is not open".into())))
}

fn travel(db: &mut MainDb, target: replica::Result<Target>) -> Result<(), PragmaErr> {
    target
        .and_then(|t| db.travel(t))
        .map_err(|e| PragmaErr::Fail(errors::pragma_code(&e), Some(e.to_string())))
}

/// RFC 3339 with as many fraction digits as needed (Go's RFC3339Nano); `latest` when unknown.
fn time(db: &MainDb) -> Result<String, PragmaErr> {
    if let Target::Time(t) = db.target {
        return Ok(t.to_string());
    }
    let ms = version(db)?.timestamp_ms();
    Ok(match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) if ms > 0 => t.to_string(),
        _ => "latest".into(),
    })
}

fn stats(db: &MainDb) -> Result<String, PragmaErr> {
    let v = version(db)?;
    let Some(s) = &db.session else {
        return Err(fail("the replica is not open".into()));
    };
    let mut out = String::from("{");
    for (k, n) in s.stats().fields() {
        out.push_str(&format!("\"{k}\":{n},"));
    }
    out.push_str(&format!(
        "\"cache_bytes\":{},\"index_bytes\":{},\"txid\":\"{:016x}\",\"files\":{},\"page_size\":{},\"pages\":{}}}",
        s.cache_weight(),
        v.resident_bytes(),
        v.txid(),
        v.files().len(),
        v.page_size(),
        v.commit()
    ));
    if let Some(w) = s.write_status() {
        out.pop();
        let quote = |v: Option<&str>| {
            v.map_or("null".to_string(), |t| {
                format!("\"{}\"", t.replace('"', "'"))
            })
        };
        out.push_str(&format!(
            ",\"write_pending_commits\":{},\"write_oldest_pending_ms\":{},\"write_upload_errors\":{},\"write_last_error\":{},\"write_fenced\":{},\"write_buffer\":{}}}",
            w.pending_commits,
            w.oldest_pending.map_or(0, |d| d.as_millis()),
            w.upload_errors,
            quote(w.last_error.as_deref()),
            quote(w.fenced.as_deref()),
            quote(Some(&w.buffer_path.display().to_string())),
        ));
    }
    if let Some(h) = s.hydration_status() {
        out.pop();
        let state = match &h.state {
            replica::HydrationState::Building => "building".to_string(),
            replica::HydrationState::Ready => "ready".to_string(),
            replica::HydrationState::Busy => "busy".to_string(),
            replica::HydrationState::Failed(e) => format!("failed: {}", e.replace('"', "'")),
        };
        out.push_str(&format!(
            ",\"hydration_state\":\"{state}\",\"hydration_txid\":\"{:016x}\",\"hydration_progress\":{:.1},\"hydration_bytes\":{},\"hydration_files\":{},\"hydration_reads\":{}}}",
            h.txid, h.progress, h.bytes, h.files, h.reads
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> MainDb {
        let config = crate::config::Config::resolve(&|_| None, &|_| None).unwrap();
        MainDb::failed("no replica in unit tests".into(), config)
    }

    #[test]
    fn wal_answers_with_the_rollback_mode_in_effect() {
        let mut db = db();
        let wal = |db: &mut MainDb, v: &str| match handle(db, "journal_mode", Some(v)) {
            Ok(Some(mode)) => mode,
            other => panic!("{v}: {other:?}"),
        };
        assert_eq!(wal(&mut db, "WAL"), "delete");
        // Other modes are SQLite's to set (NotFound lets it), and are then the answer.
        assert!(matches!(
            handle(&mut db, "JOURNAL_MODE", Some("Persist")),
            Err(PragmaErr::NotFound)
        ));
        assert_eq!(wal(&mut db, "wal2"), "persist");
        assert!(matches!(
            handle(&mut db, "journal_mode", Some("bogus")),
            Err(PragmaErr::NotFound)
        ));
        assert_eq!(wal(&mut db, "'wal'"), "persist");
        assert!(matches!(
            handle(&mut db, "journal_mode", None),
            Err(PragmaErr::NotFound)
        ));
    }
}
