//! The engine's own tokio runtime.
//!
//! SQLite calls the VFS synchronously from arbitrary application threads, which may themselves be
//! inside some other async runtime. So the engine owns one multi-thread runtime on named threads,
//! and callers wait for its futures on a plain channel: `Handle::block_on` would panic when the
//! host thread is already inside a runtime.

use std::future::Future;
use std::sync::mpsc;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The shared runtime handle, started on first use.
pub fn handle() -> &'static Handle {
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("litestream-io")
                .enable_all()
                .build()
                .expect("cannot start the litestream I/O runtime")
        })
        .handle()
}

/// Runs `fut` on the engine runtime and waits for it from a synchronous caller.
pub fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    handle().spawn(async move {
        let _ = tx.send(fut.await);
    });
    // The task only ends without sending if it panicked; surface that as a panic here, which
    // the VFS edge turns into an SQLite error.
    rx.recv().expect("litestream I/O task panicked")
}
