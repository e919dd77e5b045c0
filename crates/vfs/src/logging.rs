//! Logs go to `LITESTREAM_LOG_FILE` when set, else to `sqlite3_log`; never to stdout, which
//! belongs to the host program (the Go extension's default pollutes shell output).

use crate::sqlite_api::printf_literal;
use std::io::Write;
use std::sync::{Arc, Mutex};

use sqlite_plugin::logger::{SqliteLogLevel, SqliteLogger};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

#[derive(Clone)]
enum Sink {
    File(Arc<Mutex<std::fs::File>>),
    Sqlite(SqliteLogger),
}

/// One formatted event; sent to the sink when dropped.
pub struct EventWriter {
    sink: Sink,
    buf: Vec<u8>,
}

impl Write for EventWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        match &self.sink {
            Sink::File(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = f.write_all(&self.buf);
                }
            }
            Sink::Sqlite(logger) => {
                let text = String::from_utf8_lossy(&self.buf);
                let level = if text.contains("ERROR") {
                    SqliteLogLevel::Error
                } else if text.contains("WARN") {
                    SqliteLogLevel::Warn
                } else {
                    SqliteLogLevel::Notice
                };
                // sqlite3_log truncates long messages; send them in pieces.
                for line in text.lines() {
                    let line = line.replace('\0', " ");
                    let mut rest = line.as_str();
                    while !rest.is_empty() {
                        let mut cut = rest.len().min(200);
                        while !rest.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        logger.log(level, &printf_literal(&rest[..cut]));
                        rest = &rest[cut..];
                    }
                }
            }
        }
    }
}

struct Writers(Sink);

impl<'a> MakeWriter<'a> for Writers {
    type Writer = EventWriter;
    fn make_writer(&'a self) -> EventWriter {
        EventWriter {
            sink: self.0.clone(),
            buf: Vec::new(),
        }
    }
}

/// Installs the process-wide log subscriber: level from `LITESTREAM_LOG_LEVEL` (`debug`,
/// `info`, `warn`, `error`; default `info`), destination `LITESTREAM_LOG_FILE` or `sqlite3_log`.
pub fn init(logger: SqliteLogger) {
    let level = std::env::var("LITESTREAM_LOG_LEVEL")
        .ok()
        .map(|l| l.trim().to_ascii_lowercase())
        .filter(|l| ["trace", "debug", "info", "warn", "error"].contains(&l.as_str()))
        .unwrap_or_else(|| "info".into());
    let sink = match std::env::var("LITESTREAM_LOG_FILE")
        .ok()
        .filter(|p| !p.is_empty())
    {
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(f) => Sink::File(Arc::new(Mutex::new(f))),
            Err(e) => {
                logger.log(
                    SqliteLogLevel::Warn,
                    &printf_literal(&format!(
                        "litestream: cannot open LITESTREAM_LOG_FILE {path}: {e}"
                    )),
                );
                Sink::Sqlite(logger)
            }
        },
        None => Sink::Sqlite(logger),
    };
    let filter = EnvFilter::new(format!(
        "warn,replica={level},vfs={level},litestream_vfs={level}"
    ));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_writer(Writers(sink))
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
}
