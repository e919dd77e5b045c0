//! The few SQLite C API calls sqlite-plugin does not wrap (URI parameters, SQL functions,
//! auto-extensions, file control, VFS lookup), made through the `sqlite3_api_routines` table
//! SQLite hands to a loadable extension. Every `unsafe` block of the crate that touches C lives
//! here, except the calls into the default VFS's methods, in `os_file`.
//!
//! sqlite-plugin exposes the routines table but not its pointer types (`sqlite3`,
//! `sqlite3_context`, `sqlite3_value`), so handles travel as `*mut c_void` and are cast at the
//! call. All of them are plain pointers to opaque C structs, so the casts change no ABI.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::OnceLock;

pub use sqlite_plugin::sqlite3_api_routines as RawApi;
use sqlite_plugin::sqlite3_api_routines;
use sqlite_plugin::vars;

/// `s` made safe to pass where sqlite-plugin hands our text to SQLite as a printf *format*
/// (`sqlite3_mprintf` for PRAGMA results and errors, `sqlite3_log` for log lines): every `%` is
/// doubled, so a user's `PRAGMA litestream_time = '%s%s'` or a URL with `%2F` is printed, not
/// interpreted, and NUL, which would end the C string (or panic sqlite-plugin's `CString`
/// conversion), becomes a space.
pub fn printf_literal(s: &str) -> String {
    s.replace('%', "%%").replace('\0', " ")
}

/// The routines table, valid for the life of the process (it is a static inside SQLite).
#[derive(Clone, Copy)]
pub struct Api(&'static sqlite3_api_routines);

// SAFETY: the table is immutable after SQLite builds it, and SQLite's API is thread-safe in the
// serialized and multi-thread modes every host uses with extensions.
unsafe impl Send for Api {}
// SAFETY: as above; we only read function pointers from it.
unsafe impl Sync for Api {}

static API: OnceLock<Api> = OnceLock::new();

/// SQL function callback, with the opaque pointers as `c_void`.
pub type XFunc = unsafe extern "C" fn(ctx: *mut c_void, argc: c_int, argv: *mut *mut c_void);
/// Auto-extension entry point, with the opaque pointers as `c_void`.
pub type XEntry =
    unsafe extern "C" fn(db: *mut c_void, err: *mut *mut c_char, api: *const c_void) -> c_int;

macro_rules! routine {
    ($api:expr, $name:ident) => {
        $api.0.$name.ok_or(concat!(
            "sqlite3_api_routines.",
            stringify!($name),
            " is missing"
        ))
    };
}

impl Api {
    /// Keeps the routines table handed to the extension entry point.
    ///
    /// # Safety
    /// `p` must be the `sqlite3_api_routines` pointer SQLite passed to the entry point.
    pub unsafe fn install(p: *const sqlite3_api_routines) -> Result<Api, &'static str> {
        // SAFETY: per the contract, `p` is SQLite's static routines table or null.
        let table = unsafe { p.as_ref() }.ok_or("null sqlite3_api_routines")?;
        Ok(*API.get_or_init(|| Api(table)))
    }

    /// The table installed by the entry point.
    pub fn get() -> Option<Api> {
        API.get().copied()
    }

    /// The raw table, for sqlite-plugin's registration.
    pub fn raw(self) -> *mut sqlite3_api_routines {
        self.0 as *const sqlite3_api_routines as *mut sqlite3_api_routines
    }

    /// `sqlite3_libversion_number()`.
    pub fn libversion_number(self) -> Result<c_int, &'static str> {
        let f = routine!(self, libversion_number)?;
        // SAFETY: no arguments; SQLite's own function.
        Ok(unsafe { f() })
    }

    /// `sqlite3_uri_parameter(filename, key)`.
    ///
    /// # Safety
    /// `filename` must be the exact pointer SQLite passed to `xOpen` for a main database
    /// file: SQLite stores the URI parameters in memory right after it.
    pub unsafe fn uri_parameter(self, filename: *const c_char, key: &str) -> Option<String> {
        let f = self.0.uri_parameter?;
        let key = CString::new(key).ok()?;
        // SAFETY: `filename` satisfies the function's contract (see above); `key` is a valid C string.
        let v = unsafe { f(filename.cast(), key.as_ptr()) };
        if v.is_null() {
            return None;
        }
        // SAFETY: SQLite returns a NUL-terminated string living as long as the filename.
        Some(unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned())
    }

    /// `sqlite3_vfs_find(name)` (`None`: the default VFS), as an opaque pointer; null if none.
    pub fn vfs_find(self, name: Option<&CStr>) -> *mut c_void {
        let Some(f) = self.0.vfs_find else {
            return std::ptr::null_mut();
        };
        // SAFETY: `name` is null or a valid C string; SQLite only reads it.
        unsafe { f(name.map_or(std::ptr::null(), CStr::as_ptr)) }.cast()
    }

    /// `sqlite3_auto_extension(entry)`.
    pub fn auto_extension(self, entry: XEntry) -> Result<(), &'static str> {
        let f = routine!(self, auto_extension)?;
        // SAFETY: SQLite stores the pointer as `void(*)(void)` and calls it with the
        // `(sqlite3*, char**, const sqlite3_api_routines*)` signature that `XEntry` has.
        let rc = unsafe {
            f(Some(std::mem::transmute::<XEntry, unsafe extern "C" fn()>(
                entry,
            )))
        };
        if rc == vars::SQLITE_OK {
            Ok(())
        } else {
            Err("sqlite3_auto_extension failed")
        }
    }

    /// `sqlite3_create_function_v2(db, name, n_arg, flags, NULL, x_func, NULL, NULL, NULL)`.
    ///
    /// # Safety
    /// `db` must be a live connection handle.
    pub unsafe fn create_function(
        self,
        db: *mut c_void,
        name: &CStr,
        n_arg: c_int,
        flags: c_int,
        x_func: XFunc,
    ) -> c_int {
        let Some(f) = self.0.create_function_v2 else {
            return vars::SQLITE_ERROR;
        };
        // SAFETY: `db` is live per the contract; the callback has the C signature SQLite
        // expects, with opaque pointers spelled as `c_void` (same ABI). The target type is
        // sqlite-plugin's private binding type, which cannot be named here.
        #[allow(clippy::missing_transmute_annotations)]
        unsafe {
            f(
                db.cast(),
                name.as_ptr(),
                n_arg,
                flags,
                std::ptr::null_mut(),
                Some(std::mem::transmute::<XFunc, _>(x_func)),
                None,
                None,
                None,
            )
        }
    }

    /// Runs our PRAGMA handler for the main database of `db` through
    /// `sqlite3_file_control(db, "main", SQLITE_FCNTL_PRAGMA, …)`. Returns the result code and
    /// the text the handler produced.
    ///
    /// # Safety
    /// `db` must be a live connection handle.
    pub unsafe fn pragma(
        self,
        db: *mut c_void,
        name: &str,
        arg: Option<&str>,
    ) -> (c_int, Option<String>) {
        let (Some(fc), Some(free)) = (self.0.file_control, self.0.free) else {
            return (vars::SQLITE_ERROR, None);
        };
        let (Ok(name), Ok(arg)) = (CString::new(name), arg.map(CString::new).transpose()) else {
            return (
                vars::SQLITE_ERROR,
                Some("argument contains a NUL byte".into()),
            );
        };
        let mut args: [*mut c_char; 3] = [
            std::ptr::null_mut(),
            name.as_ptr() as *mut c_char,
            arg.as_ref()
                .map_or(std::ptr::null_mut(), |a| a.as_ptr() as *mut c_char),
        ];
        // SAFETY: `db` is live; the array has the layout SQLITE_FCNTL_PRAGMA documents and
        // outlives the call.
        let rc = unsafe {
            fc(
                db.cast(),
                c"main".as_ptr(),
                vars::SQLITE_FCNTL_PRAGMA,
                args.as_mut_ptr().cast(),
            )
        };
        let out = if args[0].is_null() {
            None
        } else {
            // SAFETY: the handler stored a string from sqlite3_mprintf, which we now own and free.
            let s = unsafe { CStr::from_ptr(args[0]) }
                .to_string_lossy()
                .into_owned();
            // SAFETY: as above.
            unsafe { free(args[0].cast()) };
            Some(s)
        };
        (rc, out)
    }

    /// `sqlite3_context_db_handle(ctx)`.
    ///
    /// # Safety
    /// `ctx` must be the context of a running SQL function call.
    pub unsafe fn context_db(self, ctx: *mut c_void) -> *mut c_void {
        match self.0.context_db_handle {
            // SAFETY: per the contract.
            Some(f) => unsafe { f(ctx.cast()) }.cast(),
            None => std::ptr::null_mut(),
        }
    }

    /// The text of SQL function argument `i`.
    ///
    /// # Safety
    /// `argv` must hold at least `i + 1` values of a running SQL function call.
    pub unsafe fn arg_text(self, argv: *mut *mut c_void, i: usize) -> Option<String> {
        let f = self.0.value_text?;
        // SAFETY: per the contract.
        let v = unsafe { f((*argv.add(i)).cast()) };
        if v.is_null() {
            return None;
        }
        // SAFETY: sqlite3_value_text returns a NUL-terminated string valid until the value changes.
        Some(
            unsafe { CStr::from_ptr(v.cast()) }
                .to_string_lossy()
                .into_owned(),
        )
    }

    /// Sets a SQL function's result.
    ///
    /// # Safety
    /// `ctx` must be the context of a running SQL function call.
    pub unsafe fn result(self, ctx: *mut c_void, value: FnResult) {
        let ctx = ctx.cast();
        // SAFETY: in every arm, `ctx` is live per the contract; SQLITE_TRANSIENT (-1) makes SQLite
        // copy the text before we drop it.
        unsafe {
            match value {
                FnResult::Null => {
                    if let Some(f) = self.0.result_null {
                        f(ctx)
                    }
                }
                FnResult::Int(i) => {
                    if let Some(f) = self.0.result_int64 {
                        f(ctx, i)
                    }
                }
                FnResult::Text(s) => {
                    if let (Some(f), Ok(c)) = (self.0.result_text, CString::new(s)) {
                        f(
                            ctx,
                            c.as_ptr(),
                            -1,
                            Some(std::mem::transmute::<
                                isize,
                                unsafe extern "C" fn(*mut c_void),
                            >(-1)),
                        )
                    }
                }
                FnResult::Error(s) => {
                    if let Some(f) = self.0.result_error {
                        f(ctx, s.as_ptr().cast(), s.len() as c_int)
                    }
                }
            }
        }
    }

    /// A copy of `s` in memory from `sqlite3_mprintf`, for `char**` error outputs SQLite frees.
    pub fn mprintf(self, s: &str) -> *mut c_char {
        let (Some(f), Ok(c)) = (self.0.mprintf, CString::new(printf_literal(s))) else {
            return std::ptr::null_mut();
        };
        // SAFETY: the format string has every `%` escaped, so it takes no arguments.
        unsafe { f(c.as_ptr()) }
    }
}

/// The result of a SQL function.
pub enum FnResult {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// An error with this message.
    Error(String),
}
