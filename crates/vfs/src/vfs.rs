//! The `litestream` VFS: sqlite-plugin's `Vfs` trait, with every method behind a panic guard.

use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::ptr::NonNull;

use replica::{HydrationOptions, ReplicaOptions};
use sqlite_plugin::flags::{AccessFlags, LockLevel, OpenKind, OpenOpts, ShmLockMode};
use sqlite_plugin::vars;
use sqlite_plugin::vfs::{Pragma, PragmaErr, Vfs, VfsHandle, VfsResult};

use crate::config::Config;
use crate::local_file::{local_path, LocalFile, MemFile};
use crate::main_db::MainDb;
use crate::os_file::{self, OsFile};
use crate::pragma;
use crate::sqlite_api::{printf_literal, Api};

/// An open file: the replicated main database, a local database, or a local scratch file.
pub enum Handle {
    /// The main database, read from the replica.
    Main(Box<MainDb>),
    /// A main database whose name does not say it is a replica (see [`Undecided`]).
    Undecided(Box<Undecided>),
    /// An ordinary local database, or its journal or WAL, served by the default VFS.
    Os(OsFile),
    /// Temp databases, sort spills, statement and super-journals.
    Local(LocalFile),
    /// The replicated main database's rollback journal.
    Mem(MemFile),
}

/// A main database opened without a `vfs` or `replica_url` URI parameter. SQLite opens with
/// the connection's VFS both the connection's own database (`sqlite3_open_v2(name, flags,
/// "litestream")`) and the databases the connection attaches, including the output file of
/// `VACUUM INTO`; only the first is the replica. The two are told apart by what SQLite does
/// next: right after opening the connection's database it runs our connection hook, which
/// asks this file for its open error (a PRAGMA), while an attached file is locked first, to
/// read its schema. Until then it reads as an empty file: SQLite only peeks at the header,
/// and reads it again, with a lock, before trusting it.
pub struct Undecided {
    name: String,
    sqlite_name: Option<SqliteName>,
    flags: i32,
}

/// SQLite's filename pointer for a main database (its URI parameters follow it in memory).
#[derive(Clone, Copy)]
struct SqliteName(*const c_char);

// SAFETY: the pointer is only read, on the thread SQLite calls us on, while the file is open,
// and SQLite keeps the name alive until it closes the file.
unsafe impl Send for SqliteName {}

impl VfsHandle for Handle {
    fn readonly(&self) -> bool {
        // The replicated database always opens read-write for SQLite: a read connection can
        // turn into a writer (`PRAGMA litestream_write_enabled = 1`), and until then a write
        // fails at its lock with SQLITE_READONLY, as with the Go VFS.
        matches!(self, Handle::Os(f) if f.readonly())
    }

    fn in_memory(&self) -> bool {
        false
    }
}

/// The VFS registered as `litestream`.
#[derive(Default)]
pub struct LitestreamVfs;

/// Runs a VFS method; a panic becomes `SQLITE_INTERNAL` instead of unwinding into C.
fn guarded<T>(what: &'static str, f: impl FnOnce() -> VfsResult<T>) -> VfsResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("unknown panic");
        tracing::error!(method = what, "internal error (panic): {msg}");
        Err(vars::SQLITE_INTERNAL)
    })
}

/// SQLite's own pointer for a name sqlite-plugin hands us. sqlite-plugin gives the name as a
/// `&str` borrowed straight from SQLite's buffer whenever it is valid UTF-8 (it only copies,
/// replacing bytes with U+FFFD, when it is not); only then is `path.as_ptr()` SQLite's pointer,
/// with the URI parameters stored after it.
fn sqlite_name(path: &str) -> Option<SqliteName> {
    (!path.contains('\u{FFFD}')).then(|| SqliteName(path.as_ptr().cast()))
}

/// A URI parameter of a main database's name.
fn uri_parameter(name: Option<SqliteName>, key: &str) -> Option<String> {
    let (api, name) = (Api::get()?, name?);
    // SAFETY: `name` is the `zName` SQLite passed to xOpen for a main database (see
    // `sqlite_name`), which is what sqlite3_uri_parameter requires.
    unsafe { api.uri_parameter(name.0, key) }
}

impl LitestreamVfs {
    /// A main database: the replica when its name says so, else undecided (see [`Undecided`]).
    fn open_any_main(&self, path: &str, flags: i32) -> Handle {
        let name = sqlite_name(path);
        let ours = uri_parameter(name, "vfs").is_some_and(|v| v == crate::VFS_NAME)
            || uri_parameter(name, "replica_url").is_some();
        if ours {
            return self.open_main(path, name);
        }
        Handle::Undecided(Box::new(Undecided {
            name: path.to_string(),
            sqlite_name: name,
            flags,
        }))
    }

    /// Settles an undecided main database as the replica (the connection's own database).
    fn claim(&self, handle: &mut Handle) {
        if let Handle::Undecided(u) = handle {
            *handle = self.open_main(&u.name, u.sqlite_name);
        }
    }

    /// Settles an undecided main database as an ordinary local file (an attached database, or
    /// the output of `VACUUM INTO`), opened by the default VFS.
    fn settle_local(handle: &mut Handle) -> VfsResult<()> {
        if let Handle::Undecided(u) = handle {
            let mut f = OsFile::open(&u.name, u.sqlite_name.map(|n| n.0), u.flags)?;
            f.register_main(&u.name);
            tracing::debug!(db = %u.name, "a local database, served by the default VFS");
            *handle = Handle::Os(f);
        }
        Ok(())
    }

    fn open_main(&self, path: &str, name: Option<SqliteName>) -> Handle {
        let uri = |key: &str| uri_parameter(name, key);
        let config = match Config::resolve(&uri, &replica::location::process_env) {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("litestream: cannot open {path}: {e}");
                tracing::error!("{msg}");
                return Handle::Main(Box::new(MainDb::failed(msg, fallback_config())));
            }
        };
        let write = config
            .write_enabled
            .then(|| config.write_options(path, &replica::location::process_env));
        // A path alone starts hydration (with the Go VFS it silently did nothing); `enabled`
        // without a path hydrates to a temporary file.
        let hydrate = config.hydration_enabled || config.hydration_path.is_some();
        if hydrate && write.is_some() {
            tracing::warn!(
                db = path,
                "hydration is not used in write mode: the writer reads through its own cache"
            );
        }
        let hydration = (hydrate && write.is_none()).then(|| HydrationOptions {
            path: config.hydration_path.clone().map(PathBuf::from),
        });
        let opts = ReplicaOptions {
            url: config.replica_url.clone(),
            poll_interval: config.poll_interval,
            cache_size: config.cache_size,
            hydration,
            verify: config.verify,
            write,
        };
        match replica::open(&opts) {
            Ok(session) => Handle::Main(Box::new(MainDb::new(session, config, path))),
            Err(e) => {
                let msg = format!("litestream: cannot open {path}: {e}");
                tracing::error!("{msg}");
                Handle::Main(Box::new(MainDb::failed(msg, config)))
            }
        }
    }
}

/// Main journals live in memory (`Handle::Mem`) and die with their handle: SQLite's checks
/// for a hot one and its deletion after each commit need no system call.
fn is_main_journal(path: &str) -> bool {
    path.ends_with("-journal")
}

fn fallback_config() -> Config {
    Config::resolve(&|_| None, &|_| None).unwrap_or_else(|_| unreachable!("defaults always parse"))
}

impl Vfs for LitestreamVfs {
    type Handle = Handle;

    fn open(&self, path: Option<&str>, opts: OpenOpts) -> VfsResult<Handle> {
        guarded("open", || match (opts.kind(), path) {
            (OpenKind::MainDb, Some(p)) => Ok(self.open_any_main(p, opts.flags())),
            (OpenKind::MainJournal | OpenKind::Wal, Some(p)) if os_file::is_local_companion(p) => {
                Ok(Handle::Os(OsFile::open(p, None, opts.flags())?))
            }
            // The primary's WAL is not ours to read, and we run SQLite in rollback mode.
            (OpenKind::Wal, _) => Err(vars::SQLITE_CANTOPEN),
            (OpenKind::MainJournal, _) => Ok(Handle::Mem(MemFile::default())),
            (_, p) => {
                let create = !opts.mode().is_readonly();
                Ok(Handle::Local(LocalFile::open(
                    p,
                    create,
                    opts.delete_on_close(),
                )?))
            }
        })
    }

    fn delete(&self, path: &str) -> VfsResult<()> {
        if os_file::is_local_companion(path) {
            return guarded("delete", || os_file::delete(path));
        }
        if is_main_journal(path) {
            return Ok(());
        }
        guarded("delete", || match std::fs::remove_file(local_path(path)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(vars::SQLITE_IOERR_DELETE_NOENT)
            }
            Err(_) => Err(vars::SQLITE_IOERR_DELETE),
        })
    }

    fn access(&self, path: &str, flags: AccessFlags) -> VfsResult<bool> {
        if os_file::is_local_companion(path) {
            let flags = match flags {
                AccessFlags::Exists => vars::SQLITE_ACCESS_EXISTS,
                AccessFlags::Read => vars::SQLITE_ACCESS_READ,
                AccessFlags::ReadWrite => vars::SQLITE_ACCESS_READWRITE,
            };
            return guarded("access", || os_file::access(path, flags));
        }
        // SQLite asks for the WAL at the start of every read transaction; a replicated
        // database never has one (we run it in rollback mode and refuse to open a WAL).
        if is_main_journal(path) || path.ends_with("-wal") {
            return Ok(false);
        }
        guarded("access", || Ok(local_path(path)?.exists()))
    }

    fn file_size(&self, handle: &mut Handle) -> VfsResult<usize> {
        guarded("file_size", || match handle {
            Handle::Main(db) => db.file_size(),
            Handle::Undecided(_) => Ok(0),
            Handle::Os(f) => f.size(),
            Handle::Local(f) => f.size(),
            Handle::Mem(f) => Ok(f.size()),
        })
    }

    fn truncate(&self, handle: &mut Handle, size: usize) -> VfsResult<()> {
        guarded("truncate", || match handle {
            Handle::Main(db) => db.truncate(size),
            Handle::Undecided(_) => Err(vars::SQLITE_IOERR_TRUNCATE),
            Handle::Os(f) => f.truncate(size),
            Handle::Local(f) => f.truncate(size),
            Handle::Mem(f) => f.truncate(size),
        })
    }

    fn write(&self, handle: &mut Handle, offset: usize, data: &[u8]) -> VfsResult<usize> {
        guarded("write", || match handle {
            Handle::Main(db) => db.write(offset, data),
            Handle::Undecided(_) => Err(vars::SQLITE_IOERR_WRITE),
            Handle::Os(f) => f.write(offset, data),
            Handle::Local(f) => f.write(offset, data),
            Handle::Mem(f) => f.write(offset, data),
        })
    }

    fn read(&self, handle: &mut Handle, offset: usize, data: &mut [u8]) -> VfsResult<usize> {
        guarded("read", || match handle {
            Handle::Main(db) => db.read(offset, data),
            Handle::Undecided(_) => Ok(0),
            Handle::Os(f) => f.read(offset, data),
            Handle::Local(f) => f.read(offset, data),
            Handle::Mem(f) => f.read(offset, data),
        })
    }

    fn lock(&self, handle: &mut Handle, level: LockLevel) -> VfsResult<()> {
        guarded("lock", || {
            Self::settle_local(handle)?;
            match handle {
                Handle::Main(db) => db.lock(level),
                Handle::Os(f) => f.lock(level),
                Handle::Undecided(_) | Handle::Local(_) | Handle::Mem(_) => Ok(()),
            }
        })
    }

    fn unlock(&self, handle: &mut Handle, level: LockLevel) -> VfsResult<()> {
        guarded("unlock", || match handle {
            Handle::Main(db) => db.unlock(level),
            Handle::Os(f) => f.unlock(level),
            Handle::Undecided(_) | Handle::Local(_) | Handle::Mem(_) => Ok(()),
        })
    }

    fn check_reserved_lock(&self, handle: &mut Handle) -> VfsResult<bool> {
        guarded("check_reserved_lock", || match handle {
            Handle::Main(db) => Ok(db.check_reserved()),
            Handle::Os(f) => f.check_reserved(),
            Handle::Undecided(_) | Handle::Local(_) | Handle::Mem(_) => Ok(false),
        })
    }

    fn sync(&self, handle: &mut Handle) -> VfsResult<()> {
        guarded("sync", || match handle {
            Handle::Main(db) => db.sync(),
            Handle::Os(f) => f.sync(),
            Handle::Local(f) => f.sync(),
            Handle::Undecided(_) | Handle::Mem(_) => Ok(()),
        })
    }

    fn sector_size(&self, handle: &mut Handle) -> VfsResult<i32> {
        guarded("sector_size", || match handle {
            Handle::Os(f) => f.sector_size(),
            _ => Ok(sqlite_plugin::vfs::DEFAULT_SECTOR_SIZE),
        })
    }

    fn device_characteristics(&self, handle: &mut Handle) -> VfsResult<i32> {
        guarded("device_characteristics", || match handle {
            Handle::Os(f) => f.device_characteristics(),
            _ => Ok(sqlite_plugin::vfs::DEFAULT_DEVICE_CHARACTERISTICS),
        })
    }

    // Shared memory and memory-mapped reads exist for local databases only (the default VFS's);
    // the others answer as sqlite-plugin's defaults do.
    fn shm_map(
        &self,
        handle: &mut Handle,
        region: usize,
        size: usize,
        extend: bool,
    ) -> VfsResult<Option<NonNull<u8>>> {
        guarded("shm_map", || match handle {
            Handle::Os(f) => f.shm_map(region, size, extend),
            _ => Err(vars::SQLITE_READONLY_CANTINIT),
        })
    }

    fn shm_lock(
        &self,
        handle: &mut Handle,
        offset: u32,
        count: u32,
        mode: ShmLockMode,
    ) -> VfsResult<()> {
        guarded("shm_lock", || match handle {
            Handle::Os(f) => f.shm_lock(offset, count, mode),
            _ => Err(vars::SQLITE_IOERR),
        })
    }

    fn shm_barrier(&self, handle: &mut Handle) {
        if let Handle::Os(f) = handle {
            let _ = guarded("shm_barrier", || {
                f.shm_barrier();
                Ok(())
            });
        }
    }

    fn shm_unmap(&self, handle: &mut Handle, delete: bool) -> VfsResult<()> {
        guarded("shm_unmap", || match handle {
            Handle::Os(f) => f.shm_unmap(delete),
            _ => Err(vars::SQLITE_IOERR),
        })
    }

    fn fetch(
        &self,
        handle: &mut Handle,
        offset: i64,
        amt: usize,
    ) -> VfsResult<Option<NonNull<u8>>> {
        guarded("fetch", || match handle {
            Handle::Os(f) => f.fetch(offset, amt),
            _ => Ok(None),
        })
    }

    fn unfetch(&self, handle: &mut Handle, offset: i64, ptr: *mut u8) -> VfsResult<()> {
        guarded("unfetch", || match handle {
            Handle::Os(f) => f.unfetch(offset, ptr),
            _ => Ok(()),
        })
    }

    fn close(&self, handle: Handle) -> VfsResult<()> {
        guarded("close", move || {
            drop(handle);
            Ok(())
        })
    }

    fn pragma(&self, handle: &mut Handle, p: Pragma<'_>) -> Result<Option<String>, PragmaErr> {
        catch_unwind(AssertUnwindSafe(|| {
            // Only the connection's own database meets a PRAGMA before its first lock: our
            // connection hook's, right after sqlite3_open.
            self.claim(handle);
            match handle {
                Handle::Main(db) => pragma::handle(db, p.name, p.arg),
                _ => Err(PragmaErr::NotFound),
            }
        }))
        // sqlite-plugin passes both texts to sqlite3_mprintf as the format.
        .map(|r| match r {
            Ok(v) => Ok(v.map(|v| printf_literal(&v))),
            Err(PragmaErr::Fail(code, msg)) => {
                Err(PragmaErr::Fail(code, msg.map(|m| printf_literal(&m))))
            }
            Err(e) => Err(e),
        })
        .unwrap_or_else(|_| {
            tracing::error!(pragma = p.name, "internal error (panic) in pragma");
            Err(PragmaErr::Fail(
                vars::SQLITE_INTERNAL,
                Some("internal error in the litestream VFS".into()),
            ))
        })
    }
}
