//! `liblitestream_vfs`: a SQLite loadable extension registering the `litestream` VFS.
//!
//! `.load ./liblitestream_vfs` finds the entry point by SQLite's naming rule (the file name
//! without `lib`, non-letters dropped: `sqlite3_litestreamvfs_init`), the same symbol the Go
//! extension exports.

// Product code returns errors; it never unwraps, panics or leaves debugging output behind.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::dbg_macro
)]

use std::ffi::{c_char, c_int, c_void};

/// SQLite extension entry point.
///
/// # Safety
/// Called only by SQLite's extension loader, with its own pointers.
#[no_mangle]
pub unsafe extern "C" fn sqlite3_litestreamvfs_init(
    db: *mut c_void,
    err: *mut *mut c_char,
    api: *const vfs::sqlite_api::RawApi,
) -> c_int {
    // SAFETY: we pass SQLite's own arguments through unchanged.
    unsafe { vfs::init_extension(db, err, api) }
}
