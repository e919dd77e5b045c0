//! The main database file of a connection: pages come from the replica.

use std::sync::Arc;

use replica::{LocalReader, ReadAhead, Session, Target, Version};
use sqlite_plugin::flags::LockLevel;
use sqlite_plugin::vars;
use sqlite_plugin::vfs::VfsResult;

use crate::btree::ScanDetector;
use crate::config::Config;
use crate::errors;

/// A connection's view of a replica.
pub struct MainDb {
    /// The shared replica; `None` when the open failed (see `open_error`).
    pub session: Option<Session>,
    /// Why the open failed, reported by the connection hook with this text.
    pub open_error: Option<String>,
    /// Settings this connection was opened with.
    pub config: Config,
    /// Which state this connection reads.
    pub target: Target,
    /// The version for a non-latest target.
    pub pinned: Option<Arc<Version>>,
    /// The version of the read transaction in progress.
    txn: Option<Arc<Version>>,
    /// The hydrated file, when it holds exactly `txn`'s state.
    local: Option<LocalReader>,
    lock: LockLevel,
    ra: ReadAhead,
    scans: ScanDetector,
    page: Vec<u8>,
}

impl MainDb {
    /// A handle over an opened replica.
    pub fn new(session: Session, config: Config) -> MainDb {
        MainDb {
            session: Some(session),
            ..MainDb::without_replica(config)
        }
    }

    /// A handle whose open failed: it looks empty until locked, and the connection hook
    /// reports `error`.
    pub fn failed(error: String, config: Config) -> MainDb {
        MainDb {
            open_error: Some(error),
            ..MainDb::without_replica(config)
        }
    }

    fn without_replica(config: Config) -> MainDb {
        MainDb {
            session: None,
            open_error: None,
            config,
            target: Target::Latest,
            pinned: None,
            txn: None,
            local: None,
            lock: LockLevel::Unlocked,
            ra: ReadAhead::default(),
            scans: ScanDetector::default(),
            page: Vec::new(),
        }
    }

    fn session(&self) -> VfsResult<&Session> {
        match &self.session {
            Some(s) => Ok(s),
            None => {
                if let Some(e) = &self.open_error {
                    tracing::error!("{e}");
                }
                Err(vars::SQLITE_CANTOPEN)
            }
        }
    }

    /// The version reads see now: the transaction's, else the target's.
    pub fn version(&self) -> VfsResult<Arc<Version>> {
        if let Some(v) = &self.txn {
            return Ok(v.clone());
        }
        if let Some(v) = &self.pinned {
            return Ok(v.clone());
        }
        Ok(self.session()?.current())
    }

    /// Moves the connection to `target`. The running transaction, if any, keeps its version.
    pub fn travel(&mut self, target: Target) -> Result<(), replica::Error> {
        let session = self
            .session
            .as_ref()
            .ok_or_else(|| replica::Error::Config(self.open_error.clone().unwrap_or_default()))?;
        self.pinned = match target {
            Target::Latest => None,
            t => Some(session.version_at(t)?),
        };
        self.target = target;
        Ok(())
    }

    /// Database size in bytes. A failed open looks like an empty file: SQLite reads the header
    /// inside `sqlite3_open`, before the connection hook can report why the open failed.
    pub fn file_size(&self) -> VfsResult<usize> {
        if self.session.is_none() {
            return Ok(0);
        }
        Ok(self.version()?.db_size() as usize)
    }

    /// Reads `buf.len()` bytes at `offset`; returns the bytes read (short past the end).
    pub fn read(&mut self, offset: usize, buf: &mut [u8]) -> VfsResult<usize> {
        if self.session.is_none() {
            // See `file_size`; the first lock reports the failure.
            return Ok(0);
        }
        let v = self.version()?;
        let session: Arc<replica::Replica> = Arc::clone(self.session()?);
        let page_size = v.page_size() as usize;
        let size = v.db_size() as usize;
        if self.page.len() != page_size {
            self.page = vec![0; page_size];
        }
        let mut done = 0;
        while done < buf.len() && offset + done < size {
            let pos = offset + done;
            let pgno = (pos / page_size + 1) as u32;
            let in_page = pos % page_size;
            let read = match &self.local {
                Some(local) => local.read_page(pgno, &mut self.page),
                None => session.read_page(&v, pgno, &mut self.page, &mut self.ra),
            };
            read.map_err(|e| {
                tracing::error!(pgno, txid = v.txid(), error = %e, "page read failed");
                errors::read_code(&e)
            })?;
            if self.local.is_none() {
                if let Some(next) = self.scans.observe(pgno, &self.page) {
                    session.prefetch(&v, &next);
                }
            }
            if pgno == 1 {
                patch_header(&mut self.page, v.txid());
            }
            let n = (page_size - in_page).min(buf.len() - done).min(size - pos);
            buf[done..done + n].copy_from_slice(&self.page[in_page..in_page + n]);
            done += n;
        }
        Ok(done)
    }

    /// Takes a lock. A read transaction pins the version it starts on.
    pub fn lock(&mut self, level: LockLevel) -> VfsResult<()> {
        if level > LockLevel::Shared {
            tracing::warn!(
                "write refused: the litestream VFS serves this database read-only; write mode (LITESTREAM_WRITE_ENABLED) is not available in this version"
            );
            return Err(vars::SQLITE_READONLY);
        }
        if level == LockLevel::Shared && self.lock == LockLevel::Unlocked {
            let v = match &self.pinned {
                Some(v) => v.clone(),
                None => self.session()?.current(),
            };
            self.local = self.session()?.local_reader(&v);
            self.txn = Some(v);
        }
        self.lock = self.lock.max(level);
        Ok(())
    }

    /// Releases a lock. Dropping to no lock ends the read transaction, so the next one sees
    /// whatever the poller found meanwhile.
    pub fn unlock(&mut self, level: LockLevel) -> VfsResult<()> {
        if level == LockLevel::Unlocked {
            self.txn = None;
            self.local = None;
        }
        self.lock = level.min(self.lock);
        Ok(())
    }
}

/// Makes page 1 say what SQLite must see through this VFS:
/// - bytes 18/19 = 1 (rollback journal): the primary runs in WAL mode, but a reader here has no
///   WAL and no shared memory;
/// - bytes 24..28 (file change counter) derived from the TXID, so SQLite keeps its page cache
///   across transactions while the TXID stays the same and drops it when it moves. (The Go VFS
///   writes a random value, which throws SQLite's cache away on every transaction.) Bytes
///   92..96 (version-valid-for) follow only if they matched before, so an in-header database
///   size is trusted exactly when it was trustworthy on the primary.
pub fn patch_header(page1: &mut [u8], txid: u64) {
    if page1.len() < 100 {
        return;
    }
    page1[18] = 1;
    page1[19] = 1;
    let valid = page1[24..28] == page1[92..96];
    let counter = (txid as u32).to_be_bytes();
    page1[24..28].copy_from_slice(&counter);
    if valid {
        page1[92..96].copy_from_slice(&counter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_patch_keeps_validity() {
        let mut p = vec![0u8; 512];
        p[18] = 2;
        p[19] = 2;
        p[24..28].copy_from_slice(&7u32.to_be_bytes());
        p[92..96].copy_from_slice(&7u32.to_be_bytes());
        patch_header(&mut p, 0x1_0000_0042);
        assert_eq!((p[18], p[19]), (1, 1));
        assert_eq!(p[24..28], 0x42u32.to_be_bytes());
        assert_eq!(p[92..96], 0x42u32.to_be_bytes());
        // An invalid version-valid-for stays invalid.
        p[92..96].copy_from_slice(&1u32.to_be_bytes());
        patch_header(&mut p, 0x43);
        assert_eq!(p[24..28], 0x43u32.to_be_bytes());
        assert_eq!(p[92..96], 1u32.to_be_bytes());
    }
}
