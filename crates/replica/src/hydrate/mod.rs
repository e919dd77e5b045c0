//! Hydration: the whole database pulled to a local file in the background, after which reads
//! at the file's TXID are plain file I/O.
//!
//! - **Only what is needed.** The first build downloads, per LTX file of the current version,
//!   only the frames of pages still live in that version (adjacent frames coalesced into large
//!   ranged GETs), so the bytes fetched are about the compressed size of the database, and each
//!   page is written once.
//! - **Never split a transaction.** The file holds exactly one TXID. A read transaction uses
//!   it only when its pinned version has that TXID, and holds a shared lock on it until the
//!   transaction ends; catching up takes the lock exclusively, so pages never change under a
//!   reader. While a catch-up waits, new transactions read remotely instead of waiting.
//! - **Crash safety.** A sidecar `<path>.litestream` records the TXID; it is removed before
//!   the file is modified and rewritten (tmp + fsync + rename + fsync dir) after the file is
//!   fsynced, so a crash never leaves a file that looks complete.
//! - **Resume.** With an explicit path, file and sidecar stay after close; the next open
//!   validates them against the replica and catches up with whole-file reads, or rebuilds and
//!   logs why.

mod download;
mod file;
mod options;
mod slot;

pub use file::LocalReader;
pub use options::{HydrationOptions, HydrationState, HydrationStatus};
pub(crate) use slot::Hydration;
