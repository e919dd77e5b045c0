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
            let lag = db.session.as_ref().and_then(|s| s.lag());
            Ok(Some(lag.map_or(-1, |d| d.as_secs() as i64).to_string()))
        }
        ("litestream_stats", None) => stats(db).map(Some),
        ("litestream_replica_url", None) => {
            Ok(db.session.as_ref().map(|s| s.display_url().to_string()))
        }
        ("litestream_poll_interval", None) => Ok(Some(format!("{:?}", db.config.poll_interval))),
        ("litestream_cache_size", None) => Ok(Some(db.config.cache_size.to_string())),
        ("litestream_write_enabled", None) => Ok(Some("0".into())),
        ("litestream_write_enabled", Some(v)) => match crate::config::parse_bool(v) {
            Ok(false) => Ok(Some("0".into())),
            _ => Err(fail("write mode is not available in this version of the litestream VFS; the database is read-only".into())),
        },
        ("litestream_hydration_progress", None) => {
            let status = db.session.as_ref().and_then(|s| s.hydration_status());
            Ok(Some(status.map_or("0".into(), |h| format!("{:.1}", h.progress))))
        }
        ("litestream_hydration_file", None) => {
            let status = db.session.as_ref().and_then(|s| s.hydration_status());
            Ok(Some(status.map_or(String::new(), |h| h.path.display().to_string())))
        }
        (
            "litestream_lag" | "litestream_stats" | "litestream_replica_url" | "litestream_poll_interval"
            | "litestream_cache_size" | "litestream_hydration_progress" | "litestream_hydration_file",
            Some(_),
        ) => Err(fail(format!("{name} is read-only"))),
        _ => Err(fail(format!(
            "unknown pragma {name}; the litestream VFS knows litestream_txid, litestream_time, litestream_lag, litestream_stats, litestream_replica_url, litestream_poll_interval, litestream_cache_size, litestream_write_enabled, litestream_hydration_progress, litestream_hydration_file"
        ))),
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
        "\"cache_bytes\":{},\"txid\":\"{:016x}\",\"files\":{},\"page_size\":{},\"pages\":{}}}",
        s.cache_weight(),
        v.txid(),
        v.files().len(),
        v.page_size(),
        v.commit()
    ));
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
