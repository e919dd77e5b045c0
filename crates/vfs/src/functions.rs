//! SQL functions (`litestream_time()`, `litestream_txid()`, `litestream_lag()`,
//! `litestream_set_time(t)`) and the per-connection hook that installs them.
//!
//! Each function runs the PRAGMA handler of the connection's main file through
//! `sqlite3_file_control`, so functions and PRAGMAs cannot drift apart.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use sqlite_plugin::vars;

use crate::pragma::OPEN_ERROR;
use crate::sqlite_api::{Api, FnResult, XFunc};

const SQLITE_UTF8: c_int = 1;
/// The function may not be used from triggers or views: it changes connection state.
const SQLITE_DIRECTONLY: c_int = 0x0008_0000;

#[derive(Clone, Copy)]
enum Returns {
    Text,
    Int,
    Null,
}

fn call(ctx: *mut c_void, argc: c_int, argv: *mut *mut c_void, pragma: &str, returns: Returns) {
    let Some(api) = Api::get() else { return };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: SQLite calls us with a live context, and `argv` holds `argc` values.
        let db = unsafe { api.context_db(ctx) };
        let arg = if argc > 0 {
            // SAFETY: as above, argc >= 1.
            match unsafe { api.arg_text(argv, 0) } {
                Some(a) => Some(a),
                None => return FnResult::Error(format!("{pragma}: argument must not be NULL")),
            }
        } else {
            None
        };
        // SAFETY: `db` is the live connection running this function.
        let (rc, text) = unsafe { api.pragma(db, pragma, arg.as_deref()) };
        match rc {
            vars::SQLITE_OK => match returns {
                Returns::Null => FnResult::Null,
                Returns::Text => text.map_or(FnResult::Null, FnResult::Text),
                Returns::Int => match text.and_then(|t| t.parse().ok()) {
                    Some(i) => FnResult::Int(i),
                    None => FnResult::Null,
                },
            },
            vars::SQLITE_NOTFOUND => FnResult::Error(format!(
                "{pragma}: the main database of this connection does not use the litestream VFS"
            )),
            _ => FnResult::Error(text.unwrap_or_else(|| format!("{pragma} failed"))),
        }
    }))
    .unwrap_or_else(|_| FnResult::Error("internal error in the litestream VFS".into()));
    // SAFETY: the context is live for the duration of this call.
    unsafe { api.result(ctx, outcome) };
}

unsafe extern "C" fn fn_time(ctx: *mut c_void, argc: c_int, argv: *mut *mut c_void) {
    call(ctx, argc, argv, "litestream_time", Returns::Text);
}

unsafe extern "C" fn fn_txid(ctx: *mut c_void, argc: c_int, argv: *mut *mut c_void) {
    call(ctx, argc, argv, "litestream_txid", Returns::Text);
}

unsafe extern "C" fn fn_lag(ctx: *mut c_void, argc: c_int, argv: *mut *mut c_void) {
    call(ctx, argc, argv, "litestream_lag", Returns::Int);
}

unsafe extern "C" fn fn_set_time(ctx: *mut c_void, argc: c_int, argv: *mut *mut c_void) {
    call(ctx, argc, argv, "litestream_time", Returns::Null);
}

const FUNCTIONS: &[(&CStr, c_int, c_int, XFunc)] = &[
    (c"litestream_time", 0, SQLITE_UTF8, fn_time),
    (c"litestream_txid", 0, SQLITE_UTF8, fn_txid),
    (c"litestream_lag", 0, SQLITE_UTF8, fn_lag),
    (
        c"litestream_set_time",
        1,
        SQLITE_UTF8 | SQLITE_DIRECTONLY,
        fn_set_time,
    ),
];

/// Registers the SQL functions on `db`.
///
/// # Safety
/// `db` must be a live connection handle.
pub unsafe fn register(api: Api, db: *mut c_void) -> c_int {
    for (name, n_arg, flags, f) in FUNCTIONS {
        // SAFETY: `db` is live per the contract.
        let rc = unsafe { api.create_function(db, name, *n_arg, *flags, *f) };
        if rc != vars::SQLITE_OK {
            return rc;
        }
    }
    vars::SQLITE_OK
}

/// Runs for every connection opened after the extension loaded (`sqlite3_auto_extension`):
/// installs the SQL functions, and fails the open with our message when the main database is
/// ours and its open failed. It returns `SQLITE_OK` for every other connection (the Go
/// extension returned garbage here, breaking unrelated opens: litestream#1506).
///
/// # Safety
/// Called by SQLite with a live connection and a writable error pointer.
pub unsafe extern "C" fn connection_hook(
    db: *mut c_void,
    err: *mut *mut c_char,
    _api: *const c_void,
) -> c_int {
    catch_unwind(AssertUnwindSafe(|| {
        let Some(api) = Api::get() else {
            return vars::SQLITE_OK;
        };
        // SAFETY: SQLite hands the hook a live connection.
        let rc = unsafe { register(api, db) };
        if rc != vars::SQLITE_OK {
            return rc;
        }
        // SAFETY: as above.
        if let (vars::SQLITE_OK, Some(msg)) = unsafe { api.pragma(db, OPEN_ERROR, None) } {
            if !err.is_null() {
                // SAFETY: SQLite gives a writable `char**` and frees what we store with sqlite3_free.
                unsafe { *err = api.mprintf(&msg) };
            }
            return vars::SQLITE_CANTOPEN;
        }
        vars::SQLITE_OK
    }))
    .unwrap_or(vars::SQLITE_OK)
}
