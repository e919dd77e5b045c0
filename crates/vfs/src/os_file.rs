//! Ordinary local databases opened through our VFS, served by SQLite's default VFS exactly as
//! it would serve them itself: the file of `VACUUM INTO '/path'` and of `ATTACH '/path'` on a
//! connection that uses the litestream VFS (SQLite opens both with the connection's VFS), with
//! their rollback journals and WAL files, locks and shared memory.
//!
//! sqlite-plugin gives every file our own method table, so these files forward each method to
//! the default VFS's `sqlite3_file`, which lives in memory we own. The C structs are declared
//! here (their layout is SQLite's stable ABI) because sqlite-plugin keeps its bindings private.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::NonNull;

use parking_lot::Mutex;
use sqlite_plugin::flags::{LockLevel, ShmLockMode};
use sqlite_plugin::vars;
use sqlite_plugin::vfs::VfsResult;

use crate::sqlite_api::Api;

type Rc = c_int;

/// `sqlite3_file`.
#[repr(C)]
struct RawFile {
    methods: *const IoMethods,
}

/// `sqlite3_io_methods` (version 3).
#[repr(C)]
struct IoMethods {
    version: c_int,
    close: Option<unsafe extern "C" fn(*mut RawFile) -> Rc>,
    read: Option<unsafe extern "C" fn(*mut RawFile, *mut c_void, c_int, i64) -> Rc>,
    write: Option<unsafe extern "C" fn(*mut RawFile, *const c_void, c_int, i64) -> Rc>,
    truncate: Option<unsafe extern "C" fn(*mut RawFile, i64) -> Rc>,
    sync: Option<unsafe extern "C" fn(*mut RawFile, c_int) -> Rc>,
    file_size: Option<unsafe extern "C" fn(*mut RawFile, *mut i64) -> Rc>,
    lock: Option<unsafe extern "C" fn(*mut RawFile, c_int) -> Rc>,
    unlock: Option<unsafe extern "C" fn(*mut RawFile, c_int) -> Rc>,
    check_reserved: Option<unsafe extern "C" fn(*mut RawFile, *mut c_int) -> Rc>,
    file_control: Option<unsafe extern "C" fn(*mut RawFile, c_int, *mut c_void) -> Rc>,
    sector_size: Option<unsafe extern "C" fn(*mut RawFile) -> c_int>,
    device_characteristics: Option<unsafe extern "C" fn(*mut RawFile) -> c_int>,
    shm_map:
        Option<unsafe extern "C" fn(*mut RawFile, c_int, c_int, c_int, *mut *mut c_void) -> Rc>,
    shm_lock: Option<unsafe extern "C" fn(*mut RawFile, c_int, c_int, c_int) -> Rc>,
    shm_barrier: Option<unsafe extern "C" fn(*mut RawFile)>,
    shm_unmap: Option<unsafe extern "C" fn(*mut RawFile, c_int) -> Rc>,
    fetch: Option<unsafe extern "C" fn(*mut RawFile, i64, c_int, *mut *mut c_void) -> Rc>,
    unfetch: Option<unsafe extern "C" fn(*mut RawFile, i64, *mut c_void) -> Rc>,
}

/// The leading fields of `sqlite3_vfs`: all we call.
#[repr(C)]
struct RawVfs {
    version: c_int,
    os_file_size: c_int,
    max_pathname: c_int,
    next: *mut RawVfs,
    name: *const c_char,
    app_data: *mut c_void,
    open: Option<
        unsafe extern "C" fn(*mut RawVfs, *const c_char, *mut RawFile, c_int, *mut c_int) -> Rc,
    >,
    delete: Option<unsafe extern "C" fn(*mut RawVfs, *const c_char, c_int) -> Rc>,
    access: Option<unsafe extern "C" fn(*mut RawVfs, *const c_char, c_int, *mut c_int) -> Rc>,
}

/// The VFS SQLite would use without ours: the default one, or `unix` if ours was made default.
fn default_vfs() -> VfsResult<*mut RawVfs> {
    let api = Api::get().ok_or(vars::SQLITE_CANTOPEN)?;
    let mut vfs = api.vfs_find(None).cast::<RawVfs>();
    // SAFETY: a non-null result of sqlite3_vfs_find is a registered VFS, valid while registered
    // (the default VFS is never unregistered while the process uses it); `name` is its C string.
    let ours = !vfs.is_null()
        && unsafe { CStr::from_ptr((*vfs).name) }.to_bytes() == crate::VFS_NAME.as_bytes();
    if ours {
        vfs = api.vfs_find(Some(c"unix")).cast::<RawVfs>();
    }
    if vfs.is_null() {
        return Err(vars::SQLITE_CANTOPEN);
    }
    Ok(vfs)
}

/// A name as the default VFS expects it: NUL-terminated, then an empty URI parameter list
/// (a second NUL), so that its `sqlite3_uri_*` lookups find nothing.
fn c_name(name: &str) -> Box<[u8]> {
    let mut v: Vec<u8> = name.bytes().filter(|b| *b != 0).collect();
    v.extend_from_slice(&[0, 0]);
    v.into_boxed_slice()
}

/// A file of the default VFS.
pub struct OsFile {
    /// The default VFS's `sqlite3_file`, `szOsFile` bytes (u64 words, for alignment).
    mem: Box<[u64]>,
    /// The name passed to its xOpen, kept alive: the unix VFS keeps a pointer to it.
    _name: Option<Box<[u8]>>,
    readonly: bool,
    /// The main database this file is registered as (see [`is_local_main`]).
    main: Option<String>,
}

// SAFETY: SQLite uses a file from one thread at a time (the connection's mutex), which is all
// the default VFS's files require; the raw pointers inside are owned by this value.
unsafe impl Send for OsFile {}

impl OsFile {
    /// Opens `name` with the default VFS and `flags` (SQLite's xOpen flags). `sqlite_name`, if
    /// given, is SQLite's own filename pointer for `name` (with its URI parameters after it),
    /// valid for as long as the file is open.
    pub fn open(name: &str, sqlite_name: Option<*const c_char>, flags: c_int) -> VfsResult<OsFile> {
        let vfs = default_vfs()?;
        // SAFETY: `vfs` is a registered VFS (see `default_vfs`).
        let (size, open) = unsafe { ((*vfs).os_file_size, (*vfs).open) };
        let open = open.ok_or(vars::SQLITE_CANTOPEN)?;
        let words = (size.max(0) as usize).div_ceil(8).max(1);
        let mut mem = vec![0u64; words].into_boxed_slice();
        let (owned, ptr, flags) = match sqlite_name {
            Some(p) => (None, p, flags),
            None => {
                let n = c_name(name);
                let p = n.as_ptr().cast::<c_char>();
                // Our copy has no URI parameters to read.
                (Some(n), p, flags & !vars::SQLITE_OPEN_URI)
            }
        };
        let mut out: c_int = 0;
        // SAFETY: `mem` has the default VFS's szOsFile bytes, zeroed (pMethods NULL), and
        // outlives the file (we close it in Drop); `ptr` is a NUL-terminated name that lives
        // as long as the file (SQLite's, per this function's contract, or our boxed copy).
        let rc = unsafe { open(vfs, ptr, mem.as_mut_ptr().cast(), flags, &mut out) };
        let file = OsFile {
            mem,
            _name: owned,
            readonly: out & vars::SQLITE_OPEN_READONLY != 0,
            main: None,
        };
        if rc != vars::SQLITE_OK {
            // Drop closes it if xOpen set its methods despite failing.
            return Err(rc);
        }
        Ok(file)
    }

    /// Registers this file as the main database `name`, so that its journal and WAL are
    /// served by the default VFS too.
    pub fn register_main(&mut self, name: &str) {
        let mut mains = LOCAL_MAINS.lock();
        *mains
            .get_or_insert_with(HashMap::new)
            .entry(name.to_string())
            .or_insert(0) += 1;
        self.main = Some(name.to_string());
    }

    /// Whether the default VFS opened the file read-only.
    pub fn readonly(&self) -> bool {
        self.readonly
    }

    fn raw(&mut self) -> *mut RawFile {
        self.mem.as_mut_ptr().cast()
    }

    fn methods(&mut self) -> VfsResult<&'static IoMethods> {
        // SAFETY: `raw()` is an opened sqlite3_file; its pMethods is null or SQLite's static
        // method table of the default VFS.
        unsafe { (*self.raw()).methods.as_ref() }.ok_or(vars::SQLITE_IOERR)
    }

    pub fn read(&mut self, offset: usize, buf: &mut [u8]) -> VfsResult<usize> {
        let f = self.methods()?.read.ok_or(vars::SQLITE_IOERR_READ)?;
        // SAFETY: an open file and a buffer of the length given.
        let rc = unsafe {
            f(
                self.raw(),
                buf.as_mut_ptr().cast(),
                buf.len() as c_int,
                offset as i64,
            )
        };
        match rc {
            vars::SQLITE_OK => Ok(buf.len()),
            // The default VFS zero-filled the rest; sqlite-plugin reports the short read again.
            vars::SQLITE_IOERR_SHORT_READ => {
                Ok(buf.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1))
            }
            rc => Err(rc),
        }
    }

    pub fn write(&mut self, offset: usize, data: &[u8]) -> VfsResult<usize> {
        let f = self.methods()?.write.ok_or(vars::SQLITE_IOERR_WRITE)?;
        // SAFETY: an open file and a buffer of the length given.
        check(unsafe {
            f(
                self.raw(),
                data.as_ptr().cast(),
                data.len() as c_int,
                offset as i64,
            )
        })?;
        Ok(data.len())
    }

    pub fn truncate(&mut self, size: usize) -> VfsResult<()> {
        let f = self
            .methods()?
            .truncate
            .ok_or(vars::SQLITE_IOERR_TRUNCATE)?;
        // SAFETY: an open file.
        check(unsafe { f(self.raw(), size as i64) })
    }

    pub fn sync(&mut self) -> VfsResult<()> {
        let f = self.methods()?.sync.ok_or(vars::SQLITE_IOERR_FSYNC)?;
        // SAFETY: an open file. sqlite-plugin does not pass SQLite's sync flags: NORMAL.
        check(unsafe { f(self.raw(), 2) })
    }

    pub fn size(&mut self) -> VfsResult<usize> {
        let f = self.methods()?.file_size.ok_or(vars::SQLITE_IOERR_FSTAT)?;
        let mut n: i64 = 0;
        // SAFETY: an open file and a valid out pointer.
        check(unsafe { f(self.raw(), &mut n) })?;
        Ok(n.max(0) as usize)
    }

    pub fn lock(&mut self, level: LockLevel) -> VfsResult<()> {
        let f = self.methods()?.lock.ok_or(vars::SQLITE_IOERR_LOCK)?;
        // SAFETY: an open file.
        check(unsafe { f(self.raw(), lock_code(level)) })
    }

    pub fn unlock(&mut self, level: LockLevel) -> VfsResult<()> {
        let f = self.methods()?.unlock.ok_or(vars::SQLITE_IOERR_UNLOCK)?;
        // SAFETY: an open file.
        check(unsafe { f(self.raw(), lock_code(level)) })
    }

    pub fn check_reserved(&mut self) -> VfsResult<bool> {
        let f = self
            .methods()?
            .check_reserved
            .ok_or(vars::SQLITE_IOERR_CHECKRESERVEDLOCK)?;
        let mut out: c_int = 0;
        // SAFETY: an open file and a valid out pointer.
        check(unsafe { f(self.raw(), &mut out) })?;
        Ok(out != 0)
    }

    pub fn sector_size(&mut self) -> VfsResult<i32> {
        let f = self.methods()?.sector_size.ok_or(vars::SQLITE_IOERR)?;
        // SAFETY: an open file.
        Ok(unsafe { f(self.raw()) })
    }

    pub fn device_characteristics(&mut self) -> VfsResult<i32> {
        let f = self
            .methods()?
            .device_characteristics
            .ok_or(vars::SQLITE_IOERR)?;
        // SAFETY: an open file.
        Ok(unsafe { f(self.raw()) })
    }

    pub fn shm_map(
        &mut self,
        region: usize,
        size: usize,
        extend: bool,
    ) -> VfsResult<Option<NonNull<u8>>> {
        let m = self.methods()?;
        let f = m
            .shm_map
            .filter(|_| m.version >= 2)
            .ok_or(vars::SQLITE_IOERR_SHMMAP)?;
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: an open file and a valid out pointer; the region stays mapped until
        // xShmUnmap, as SQLite requires of the pointer it gets back.
        check(unsafe {
            f(
                self.raw(),
                region as c_int,
                size as c_int,
                c_int::from(extend),
                &mut p,
            )
        })?;
        Ok(NonNull::new(p.cast()))
    }

    pub fn shm_lock(&mut self, offset: u32, count: u32, mode: ShmLockMode) -> VfsResult<()> {
        let f = self.methods()?.shm_lock.ok_or(vars::SQLITE_IOERR_SHMLOCK)?;
        let flags = match mode {
            ShmLockMode::LockShared => vars::SQLITE_SHM_LOCK | vars::SQLITE_SHM_SHARED,
            ShmLockMode::LockExclusive => vars::SQLITE_SHM_LOCK | vars::SQLITE_SHM_EXCLUSIVE,
            ShmLockMode::UnlockShared => vars::SQLITE_SHM_UNLOCK | vars::SQLITE_SHM_SHARED,
            ShmLockMode::UnlockExclusive => vars::SQLITE_SHM_UNLOCK | vars::SQLITE_SHM_EXCLUSIVE,
        };
        // SAFETY: an open file.
        check(unsafe { f(self.raw(), offset as c_int, count as c_int, flags) })
    }

    pub fn shm_barrier(&mut self) {
        if let Ok(Some(f)) = self.methods().map(|m| m.shm_barrier) {
            // SAFETY: an open file.
            unsafe { f(self.raw()) }
        }
    }

    pub fn shm_unmap(&mut self, delete: bool) -> VfsResult<()> {
        let f = self.methods()?.shm_unmap.ok_or(vars::SQLITE_IOERR_SHMMAP)?;
        // SAFETY: an open file.
        check(unsafe { f(self.raw(), c_int::from(delete)) })
    }

    pub fn fetch(&mut self, offset: i64, amount: usize) -> VfsResult<Option<NonNull<u8>>> {
        let m = self.methods()?;
        let Some(f) = m.fetch.filter(|_| m.version >= 3) else {
            return Ok(None);
        };
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: an open file and a valid out pointer; SQLite calls xUnfetch for it later.
        check(unsafe { f(self.raw(), offset, amount as c_int, &mut p) })?;
        Ok(NonNull::new(p.cast()))
    }

    pub fn unfetch(&mut self, offset: i64, ptr: *mut u8) -> VfsResult<()> {
        let m = self.methods()?;
        let Some(f) = m.unfetch.filter(|_| m.version >= 3) else {
            return Ok(());
        };
        // SAFETY: an open file; `ptr` came from its xFetch (or is null, a hint).
        check(unsafe { f(self.raw(), offset, ptr.cast()) })
    }
}

impl Drop for OsFile {
    fn drop(&mut self) {
        if let Ok(m) = self.methods() {
            if let Some(close) = m.close {
                // SAFETY: an open file, closed exactly once (pMethods is cleared below).
                unsafe { close(self.raw()) };
            }
            // SAFETY: as in `methods`.
            unsafe { (*self.raw()).methods = std::ptr::null() };
        }
        if let Some(name) = self.main.take() {
            let mut mains = LOCAL_MAINS.lock();
            if let Some(map) = mains.as_mut() {
                if let Some(n) = map.get_mut(&name) {
                    *n -= 1;
                    if *n == 0 {
                        map.remove(&name);
                    }
                }
            }
        }
    }
}

fn check(rc: c_int) -> VfsResult<()> {
    if rc == vars::SQLITE_OK {
        Ok(())
    } else {
        Err(rc)
    }
}

fn lock_code(level: LockLevel) -> c_int {
    match level {
        LockLevel::Unlocked => vars::SQLITE_LOCK_NONE,
        LockLevel::Shared => vars::SQLITE_LOCK_SHARED,
        LockLevel::Reserved => vars::SQLITE_LOCK_RESERVED,
        LockLevel::Pending => vars::SQLITE_LOCK_PENDING,
        LockLevel::Exclusive => vars::SQLITE_LOCK_EXCLUSIVE,
    }
}

/// Names of the local main databases open now, with how many handles each.
static LOCAL_MAINS: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);

/// Whether `name` is the journal or WAL of a local main database served by the default VFS.
pub fn is_local_companion(name: &str) -> bool {
    let Some(main) = name
        .strip_suffix("-journal")
        .or_else(|| name.strip_suffix("-wal"))
    else {
        return false;
    };
    LOCAL_MAINS
        .lock()
        .as_ref()
        .is_some_and(|m| m.contains_key(main))
}

/// The default VFS's xAccess.
pub fn access(name: &str, flags: c_int) -> VfsResult<bool> {
    let vfs = default_vfs()?;
    // SAFETY: a registered VFS.
    let f = unsafe { (*vfs).access }.ok_or(vars::SQLITE_IOERR_ACCESS)?;
    let n = c_name(name);
    let mut out: c_int = 0;
    // SAFETY: a NUL-terminated name and a valid out pointer.
    check(unsafe { f(vfs, n.as_ptr().cast(), flags, &mut out) })?;
    Ok(out != 0)
}

/// The default VFS's xDelete.
pub fn delete(name: &str) -> VfsResult<()> {
    let vfs = default_vfs()?;
    // SAFETY: a registered VFS.
    let f = unsafe { (*vfs).delete }.ok_or(vars::SQLITE_IOERR_DELETE)?;
    let n = c_name(name);
    // SAFETY: a NUL-terminated name. Journals are deleted with the directory synced, as the
    // pager asks for in rollback mode.
    check(unsafe { f(vfs, n.as_ptr().cast(), 1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_end_with_an_empty_parameter_list() {
        assert_eq!(&*c_name("/tmp/a.db"), b"/tmp/a.db\0\0");
        assert_eq!(&*c_name("a\0b"), b"ab\0\0");
    }

    #[test]
    fn only_journals_of_registered_local_databases_are_companions() {
        LOCAL_MAINS
            .lock()
            .get_or_insert_with(HashMap::new)
            .insert("/data/local.db".into(), 1);
        assert!(is_local_companion("/data/local.db-journal"));
        assert!(is_local_companion("/data/local.db-wal"));
        assert!(!is_local_companion("/data/local.db"));
        assert!(!is_local_companion("/data/other.db-journal"));
        LOCAL_MAINS
            .lock()
            .as_mut()
            .unwrap()
            .remove("/data/local.db");
        assert!(!is_local_companion("/data/local.db-journal"));
    }
}
