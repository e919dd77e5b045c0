//! The SQLite binding of the `litestream` VFS: file methods, locks, PRAGMAs, SQL functions, and
//! the one place that maps engine errors to SQLite codes. The root cdylib only calls
//! [`init_extension`].

// Product code returns errors; it never unwraps, panics or leaves debugging output behind.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::dbg_macro
)]

pub mod btree;
pub mod config;
pub mod dirty;
pub mod errors;
pub mod functions;
pub mod local_file;
pub mod locks;
pub mod logging;
pub mod main_db;
pub mod os_file;
pub mod pragma;
pub mod sqlite_api;
pub mod vfs;

use std::ffi::c_int;

/// The name the VFS registers under (not as the default VFS).
pub const VFS_NAME: &str = "litestream";

/// Oldest SQLite we accept: sqlite-plugin's minimum, below which its registration panics.
#[cfg_attr(not(feature = "dynamic"), allow(dead_code))]
const MIN_SQLITE: c_int = sqlite_plugin::vfs::MIN_SQLITE_VERSION_NUMBER;

/// `SQLITE_OK_LOAD_PERMANENTLY`: our threads outlive the loading connection, so SQLite must
/// never unload the library.
#[cfg_attr(not(feature = "dynamic"), allow(dead_code))]
const SQLITE_OK_LOAD_PERMANENTLY: c_int = 256;

/// The extension entry point's body: registers the VFS once per process, the per-connection
/// hook, and the SQL functions on the loading connection.
///
/// # Safety
/// Must be called by SQLite's extension loader with its `db`, `pzErrMsg` and
/// `sqlite3_api_routines` pointers.
#[cfg(feature = "dynamic")]
pub unsafe fn init_extension(
    db: *mut std::ffi::c_void,
    err: *mut *mut std::ffi::c_char,
    p_api: *const sqlite_plugin::sqlite3_api_routines,
) -> c_int {
    use std::ffi::CString;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::OnceLock;

    use sqlite_plugin::vars;

    use crate::sqlite_api::Api;

    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: per this function's contract.
        let api = match unsafe { Api::install(p_api) } {
            Ok(a) => a,
            Err(_) => return vars::SQLITE_ERROR,
        };
        let fail = |msg: String| {
            if !err.is_null() {
                // SAFETY: SQLite gives a writable `char**` and frees it with sqlite3_free.
                unsafe { *err = api.mprintf(&msg) };
            }
            vars::SQLITE_ERROR
        };
        match api.libversion_number() {
            Ok(v) if v >= MIN_SQLITE => {}
            Ok(v) => {
                return fail(format!(
                    "litestream VFS needs SQLite 3.37.2 or newer; this is {v}"
                ))
            }
            Err(e) => return fail(e.to_string()),
        }
        static ONCE: OnceLock<Result<(), String>> = OnceLock::new();
        let registered = ONCE.get_or_init(|| {
            let name = CString::new(VFS_NAME).map_err(|e| e.to_string())?;
            // SAFETY: `api.raw()` is SQLite's routines table, valid for the process lifetime.
            let logger = unsafe {
                sqlite_plugin::vfs::register_dynamic(
                    api.raw(),
                    name,
                    vfs::LitestreamVfs,
                    sqlite_plugin::vfs::RegisterOpts {
                        make_default: false,
                    },
                )
            }
            .map_err(|rc| format!("registering the litestream VFS failed with code {rc}"))?;
            logging::init(logger);
            api.auto_extension(functions::connection_hook)
                .map_err(str::to_string)
        });
        if let Err(e) = registered {
            return fail(e.clone());
        }
        // SAFETY: `db` is the connection loading us.
        let rc = unsafe { functions::register(api, db) };
        if rc != vars::SQLITE_OK {
            return fail(format!(
                "registering litestream SQL functions failed with code {rc}"
            ));
        }
        SQLITE_OK_LOAD_PERMANENTLY
    }))
    .unwrap_or(vars::SQLITE_INTERNAL)
}
