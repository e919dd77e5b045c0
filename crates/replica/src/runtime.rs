//! The engine's own tokio runtime.
//!
//! SQLite calls the VFS synchronously from arbitrary application threads, which may themselves be
//! inside some other async runtime. So the engine owns one multi-thread runtime on named threads,
//! and callers wait for its futures on a plain channel: `Handle::block_on` would panic when the
//! host thread is already inside a runtime.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::OnceLock;

use futures::FutureExt;
use tokio::runtime::{Builder, Handle, Runtime};

use crate::error::{Error, Result};

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

/// The shared runtime handle, started on first use; an error if its threads cannot be started
/// (the process is out of threads or memory), which every caller reports instead of panicking.
pub fn handle() -> Result<&'static Handle> {
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("litestream-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map(Runtime::handle)
        .map_err(|e| Error::Internal(format!("cannot start the litestream I/O runtime: {e}")))
}

/// Runs `fut` on the engine runtime and waits for it from a synchronous caller. A panic in it
/// comes back as [`Error::Internal`], never as a panic on the caller's (SQLite's) thread.
pub fn block_on<T, F>(fut: F) -> Result<T>
where
    F: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    crate::panics::install_panic_hook();
    let (tx, rx) = mpsc::sync_channel(1);
    handle()?.spawn(async move {
        let _ = tx.send(AssertUnwindSafe(fut).catch_unwind().await);
    });
    match rx.recv() {
        Ok(Ok(out)) => out,
        Ok(Err(panic)) => Err(Error::Internal(format!(
            "panic in an I/O task: {}",
            crate::panics::panic_message(&*panic)
        ))),
        Err(_) => Err(Error::Internal("the I/O runtime stopped".into())),
    }
}
