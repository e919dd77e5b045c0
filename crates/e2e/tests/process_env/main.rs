//! The tests that change this process's environment, which the extension reads: the log sink
//! (read once, when the extension is loaded) and `LITESTREAM_REPLICA_URL` (read at each open).
//! They are a test binary of their own so that no other test's child process inherits either.

mod corruption;
mod replica_url;

use std::path::PathBuf;
use std::sync::OnceLock;

/// The process-wide log file: the extension reads `LITESTREAM_LOG_FILE` once, when it is
/// loaded, so it is set before the first open of this binary. Every test here loads the
/// extension through this function.
fn log_path() -> &'static PathBuf {
    static LOG: OnceLock<PathBuf> = OnceLock::new();
    LOG.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("corruption-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("litestream.log");
        std::env::set_var("LITESTREAM_LOG_FILE", &log);
        std::env::set_var("LITESTREAM_LOG_LEVEL", "info");
        e2e::load_extension().expect("extension loads");
        log
    })
}
