//! The `litestream` VFS: sqlite-plugin's `Vfs` trait, with every method behind a panic guard.

use std::panic::{catch_unwind, AssertUnwindSafe};

use std::path::PathBuf;

use replica::{HydrationOptions, ReplicaOptions, WriteOptions};
use sqlite_plugin::flags::{AccessFlags, LockLevel, OpenKind, OpenOpts};
use sqlite_plugin::vars;
use sqlite_plugin::vfs::{Pragma, PragmaErr, Vfs, VfsHandle, VfsResult};

use crate::config::Config;
use crate::local_file::{local_path, LocalFile, MemFile};
use crate::main_db::MainDb;
use crate::pragma;
use crate::sqlite_api::{printf_literal, Api};

/// An open file: the replicated main database, or a local scratch file.
pub enum Handle {
    /// The main database, read from the replica.
    Main(Box<MainDb>),
    /// Temp databases, sort spills, statement and super-journals.
    Local(LocalFile),
    /// The main database's rollback journal.
    Mem(MemFile),
}

impl VfsHandle for Handle {
    fn readonly(&self) -> bool {
        matches!(self, Handle::Main(db) if !db.writable())
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

impl LitestreamVfs {
    fn open_main(&self, path: &str) -> Handle {
        let api = Api::get();
        let uri = |key: &str| -> Option<String> {
            // sqlite-plugin hands us the name as a `&str` borrowed straight from SQLite's
            // buffer whenever it is valid UTF-8 (it only copies, replacing bytes with U+FFFD,
            // when it is not). Only then is `path.as_ptr()` SQLite's pointer, with the URI
            // parameters stored after it.
            if path.contains('\u{FFFD}') {
                return None;
            }
            // SAFETY: see above: the pointer is the `zName` SQLite passed to xOpen for a main
            // database, which is what sqlite3_uri_parameter requires.
            api.and_then(|a| unsafe { a.uri_parameter(path.as_ptr().cast(), key) })
        };
        let config = match Config::resolve(&uri, &replica::location::process_env) {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("litestream: cannot open {path}: {e}");
                tracing::error!("{msg}");
                return Handle::Main(Box::new(MainDb::failed(msg, fallback_config())));
            }
        };
        let write = config.write_enabled.then(|| WriteOptions {
            buffer_path: config.buffer_file(path, &replica::location::process_env),
            sync_interval: config.sync_interval,
            compaction: config.compaction.clone(),
        });
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
            Ok(session) => Handle::Main(Box::new(MainDb::new(session, config))),
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
            (OpenKind::MainDb, Some(p)) => Ok(self.open_main(p)),
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

    fn access(&self, path: &str, _flags: AccessFlags) -> VfsResult<bool> {
        if is_main_journal(path) {
            return Ok(false);
        }
        guarded("access", || Ok(local_path(path)?.exists()))
    }

    fn file_size(&self, handle: &mut Handle) -> VfsResult<usize> {
        guarded("file_size", || match handle {
            Handle::Main(db) => db.file_size(),
            Handle::Local(f) => f.size(),
            Handle::Mem(f) => Ok(f.size()),
        })
    }

    fn truncate(&self, handle: &mut Handle, size: usize) -> VfsResult<()> {
        guarded("truncate", || match handle {
            Handle::Main(db) => db.truncate(size),
            Handle::Local(f) => f.truncate(size),
            Handle::Mem(f) => {
                f.truncate(size);
                Ok(())
            }
        })
    }

    fn write(&self, handle: &mut Handle, offset: usize, data: &[u8]) -> VfsResult<usize> {
        guarded("write", || match handle {
            Handle::Main(db) => db.write(offset, data),
            Handle::Local(f) => f.write(offset, data),
            Handle::Mem(f) => Ok(f.write(offset, data)),
        })
    }

    fn read(&self, handle: &mut Handle, offset: usize, data: &mut [u8]) -> VfsResult<usize> {
        guarded("read", || match handle {
            Handle::Main(db) => db.read(offset, data),
            Handle::Local(f) => f.read(offset, data),
            Handle::Mem(f) => Ok(f.read(offset, data)),
        })
    }

    fn lock(&self, handle: &mut Handle, level: LockLevel) -> VfsResult<()> {
        guarded("lock", || match handle {
            Handle::Main(db) => db.lock(level),
            Handle::Local(_) | Handle::Mem(_) => Ok(()),
        })
    }

    fn unlock(&self, handle: &mut Handle, level: LockLevel) -> VfsResult<()> {
        guarded("unlock", || match handle {
            Handle::Main(db) => db.unlock(level),
            Handle::Local(_) | Handle::Mem(_) => Ok(()),
        })
    }

    fn check_reserved_lock(&self, handle: &mut Handle) -> VfsResult<bool> {
        guarded("check_reserved_lock", || match handle {
            Handle::Main(db) => Ok(db.check_reserved()),
            Handle::Local(_) | Handle::Mem(_) => Ok(false),
        })
    }

    fn sync(&self, handle: &mut Handle) -> VfsResult<()> {
        guarded("sync", || match handle {
            Handle::Main(db) => db.sync(),
            Handle::Local(f) => f.sync(),
            Handle::Mem(_) => Ok(()),
        })
    }

    fn close(&self, handle: Handle) -> VfsResult<()> {
        guarded("close", move || {
            drop(handle);
            Ok(())
        })
    }

    fn pragma(&self, handle: &mut Handle, p: Pragma<'_>) -> Result<Option<String>, PragmaErr> {
        catch_unwind(AssertUnwindSafe(|| match handle {
            Handle::Main(db) => pragma::handle(db, p.name, p.arg),
            Handle::Local(_) | Handle::Mem(_) => Err(PragmaErr::NotFound),
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
