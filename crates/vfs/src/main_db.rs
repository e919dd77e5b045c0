//! The main database file of a connection: pages come from the replica; in write mode, a
//! transaction's pages are held here until SQLite syncs or unlocks, then recorded as one
//! commit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use replica::{LocalReader, ReadAhead, Session, Target, Version};
use sqlite_plugin::flags::LockLevel;
use sqlite_plugin::vars;
use sqlite_plugin::vfs::VfsResult;

use crate::btree::{interior_children, Prefetch, ScanDetector};
use crate::config::Config;
use crate::dirty::Dirty;
use crate::errors;
use crate::locks::{table_for, LockTable};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A connection's view of a replica.
pub struct MainDb {
    /// The shared replica; `None` when the open failed (see `open_error`).
    pub session: Option<Session>,
    /// Why the open failed, reported by the connection hook with this text.
    pub open_error: Option<String>,
    /// Settings this connection was opened with.
    pub config: Config,
    /// The database name the connection opened (it names the default write buffer).
    pub name: String,
    /// The rollback-journal mode SQLite was last asked to use (`journal_mode = WAL` is
    /// answered with it).
    pub journal_mode: String,
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
    /// Write mode: the transaction's pages.
    dirty: Option<Dirty>,
    /// Write mode: locks shared with the other connections of this process.
    locks: Option<Arc<Mutex<LockTable>>>,
    id: u64,
    /// `PRAGMA litestream_sync_mode = durable`: COMMIT returns once uploaded.
    pub durable: bool,
}

impl MainDb {
    /// A handle over an opened replica, named `name`.
    pub fn new(session: Session, config: Config, name: &str) -> MainDb {
        let locks = session
            .write_status()
            .is_some()
            .then(|| table_for(Arc::as_ptr(&session) as usize));
        let mut db = MainDb::without_replica(config);
        db.session = Some(session);
        db.locks = locks;
        db.name = name.to_string();
        db
    }

    /// A handle whose open failed: it looks empty until locked, and the connection hook
    /// reports `error`.
    pub fn failed(error: String, config: Config) -> MainDb {
        let mut db = MainDb::without_replica(config);
        db.open_error = Some(error);
        db
    }

    fn without_replica(config: Config) -> MainDb {
        let durable = config.sync_interval.is_zero();
        MainDb {
            session: None,
            open_error: None,
            config,
            name: String::new(),
            journal_mode: "delete".into(),
            target: Target::Latest,
            pinned: None,
            txn: None,
            local: None,
            lock: LockLevel::Unlocked,
            ra: ReadAhead::default(),
            scans: ScanDetector::default(),
            page: Vec::new(),
            dirty: None,
            locks: None,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            durable,
        }
    }

    /// Whether this connection may write.
    pub fn writable(&self) -> bool {
        self.locks.is_some()
    }

    /// Whether a write transaction is open (RESERVED or more).
    pub fn in_write_transaction(&self) -> bool {
        self.lock >= LockLevel::Reserved
    }

    /// Turns write mode on or off for this connection (`PRAGMA litestream_write_enabled`).
    /// On: the replica gets a writer as an open in write mode would (the configured or
    /// default buffer, recovery, fencing), or joins the one it has. Off: the last writing
    /// connection of the process uploads what is pending and retires the writer, releasing its
    /// buffer; otherwise only this connection stops writing. Never inside a transaction: its
    /// snapshot would not be the state the writer starts from.
    pub fn set_write_mode(&mut self, on: bool) -> Result<(), String> {
        if on == self.writable() {
            return Ok(());
        }
        if self.lock != LockLevel::Unlocked {
            return Err(
                "write mode cannot change inside a transaction: COMMIT or ROLLBACK first".into(),
            );
        }
        let session = self
            .session
            .as_ref()
            .ok_or_else(|| self.open_error.clone().unwrap_or_default())?;
        if on {
            if self.target != Target::Latest {
                return Err("this connection reads a past state (litestream_time / litestream_txid), which is read-only: set PRAGMA litestream_time = 'latest' first".into());
            }
            let opts = self
                .config
                .write_options(&self.name, &replica::location::process_env);
            session.attach_writer(&opts).map_err(|e| e.to_string())?;
            tracing::info!(db = %self.name, buffer = %opts.buffer_path.display(), "write mode on");
            self.locks = Some(table_for(Arc::as_ptr(session) as usize));
            return Ok(());
        }
        let others = self.locks.as_ref().map_or(0, Arc::strong_count) > 1;
        if !others {
            session.detach_writer().map_err(|e| e.to_string())?;
        }
        self.locks = None;
        Ok(())
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
        if let Some(d) = &self.dirty {
            return Ok(d.size as usize * d.page_size as usize);
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
        let page_size = self.dirty.as_ref().map_or(v.page_size(), |d| d.page_size) as usize;
        let size = self.file_size()?;
        if self.page.len() != page_size {
            self.page = vec![0; page_size];
        }
        let mut done = 0;
        while done < buf.len() && offset + done < size {
            let pos = offset + done;
            let pgno = (pos / page_size + 1) as u32;
            let in_page = pos % page_size;
            let n = (page_size - in_page).min(buf.len() - done).min(size - pos);
            if let Some(d) = &self.dirty {
                // The transaction's own page, exactly as SQLite wrote it.
                let own = d
                    .read(pgno, in_page, &mut buf[done..done + n])
                    .map_err(|e| {
                        tracing::error!(pgno, error = %e, "cannot read a page of the transaction");
                        vars::SQLITE_IOERR_READ
                    })?;
                if own {
                    done += n;
                    continue;
                }
            }
            self.read_page(&v, &session, pgno)?;
            buf[done..done + n].copy_from_slice(&self.page[in_page..in_page + n]);
            done += n;
        }
        Ok(done)
    }

    /// Reads page `pgno` of `v` into `self.page`, as SQLite must see it.
    fn read_page(
        &mut self,
        v: &Version,
        session: &Arc<replica::Replica>,
        pgno: u32,
    ) -> VfsResult<()> {
        if let Some(d) = &self.dirty {
            if pgno > d.low.min(v.commit()) {
                // Truncated or grown by this transaction and not written since: zeros, as a
                // file would read.
                self.page.fill(0);
                return Ok(());
            }
        }
        let read = match &self.local {
            Some(local) => local.read_page(pgno, &mut self.page),
            None => session.read_page(v, pgno, &mut self.page, &mut self.ra),
        };
        read.map_err(|e| {
            tracing::error!(pgno, txid = v.txid(), error = %e, "page read failed");
            errors::read_code(&e)
        })?;
        if self.local.is_none() {
            let room = || session.prefetch_room(v.page_size());
            match self.scans.observe(pgno, &self.page, room) {
                Some(Prefetch::Pages(next)) => session.prefetch(v, &next),
                Some(Prefetch::Below(parents)) => {
                    session.prefetch_below(v, &parents, interior_children)
                }
                None => {}
            }
        }
        if pgno == 1 {
            patch_header(&mut self.page, v.state_no());
        }
        Ok(())
    }

    /// Write mode: keeps one page of the transaction. SQLite writes whole pages of the main
    /// database; the first write of a new database sets the page size.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> VfsResult<usize> {
        if !self.writable() {
            return Err(vars::SQLITE_READONLY);
        }
        let d = self.dirty()?;
        if d.size == 0 && d.is_empty() && offset == 0 {
            d.page_size = data.len() as u32;
        }
        let ps = d.page_size as usize;
        if ps == 0 || !offset.is_multiple_of(ps) || data.len() != ps {
            tracing::error!(
                offset,
                len = data.len(),
                page_size = ps,
                "write refused: the main database is written in whole pages"
            );
            return Err(vars::SQLITE_IOERR_WRITE);
        }
        let pgno = (offset / ps + 1) as u32;
        d.put(pgno, data).map_err(|e| {
            tracing::error!(pgno, error = %e, "cannot keep a page of the transaction");
            vars::SQLITE_IOERR_WRITE
        })?;
        Ok(data.len())
    }

    /// Write mode: the transaction shrinks (or grows) the database to `size` bytes.
    pub fn truncate(&mut self, size: usize) -> VfsResult<()> {
        if !self.writable() {
            return Err(vars::SQLITE_READONLY);
        }
        let d = self.dirty()?;
        let pages = (size / d.page_size.max(1) as usize) as u32;
        d.truncate(pages);
        Ok(())
    }

    /// The transaction's pages, started on the state this lock reads. Beyond a memory budget
    /// they spill beside the write buffer.
    fn dirty(&mut self) -> VfsResult<&mut Dirty> {
        if self.dirty.is_none() {
            let v = self.version()?;
            let spill_dir = self
                .session
                .as_ref()
                .and_then(|s| s.write_status())
                .and_then(|w| w.buffer_path.parent().map(|p| p.to_path_buf()))
                .filter(|p| !p.as_os_str().is_empty());
            self.dirty = Some(Dirty::new(v.commit(), v.page_size(), spill_dir));
        }
        self.dirty.as_mut().ok_or(vars::SQLITE_INTERNAL)
    }

    /// SQLite wants the file durable: record the transaction, fsynced.
    pub fn sync(&mut self) -> VfsResult<()> {
        self.record(true)
    }

    /// Records the transaction's pages as one commit. Page 1 gets the state number the commit
    /// will have, which is the change counter every connection then sees.
    fn record(&mut self, sync: bool) -> VfsResult<()> {
        let Some(mut d) = self.dirty.take() else {
            return Ok(());
        };
        let session = Arc::clone(self.session()?);
        let state_no = session.next_state_no();
        d.update(1, |p1| patch_header(p1, state_no)).map_err(|e| {
            tracing::error!(error = %e, "cannot read page 1 of the transaction");
            vars::SQLITE_IOERR_WRITE
        })?;
        let (size, page_size) = (d.size, d.page_size);
        let pages = d.into_pages(ltx::lock_pgno(page_size));
        let mut committed = session.commit(pages, size, page_size, sync);
        if committed.is_ok() && self.durable {
            committed = session.sync_now().map(|_| session.current());
        }
        match committed {
            Ok(v) => {
                // The rest of this lock reads the state it just made.
                self.txn = Some(v);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "commit failed");
                Err(errors::write_code(&e))
            }
        }
    }

    /// Takes a lock. A read transaction pins the version it starts on. Writing (RESERVED and
    /// up) needs write mode, a writer that is not fenced and uploads that are not failing past
    /// their bound.
    pub fn lock(&mut self, level: LockLevel) -> VfsResult<()> {
        if level > LockLevel::Shared {
            let Some(session) = &self.session else {
                return Err(vars::SQLITE_CANTOPEN);
            };
            if !self.writable() {
                tracing::warn!(
                    "write refused: this database was opened read-only; set LITESTREAM_WRITE_ENABLED=true (or the URI parameter write_enabled=true, or PRAGMA litestream_write_enabled = 1) to write"
                );
                return Err(vars::SQLITE_READONLY);
            }
            if self.target != Target::Latest {
                tracing::warn!("write refused: this connection reads a past state (time travel is read-only); set PRAGMA litestream_time = 'latest' to write");
                return Err(vars::SQLITE_READONLY);
            }
            if self.lock < LockLevel::Reserved {
                if let Err(e) = session.check_writable() {
                    tracing::error!(error = %e, "write refused");
                    return Err(errors::write_code(&e));
                }
            }
        }
        if let Some(t) = &self.locks {
            t.lock().lock(self.id, self.lock, level)?;
        }
        if level >= LockLevel::Shared && self.lock == LockLevel::Unlocked {
            let v = match &self.pinned {
                Some(v) => v.clone(),
                None => {
                    let session = self.session()?;
                    if let Err(e) = session.check_health() {
                        tracing::error!(error = %e, "read refused");
                        return Err(errors::read_code(&e));
                    }
                    session.current()
                }
            };
            self.local = self.session()?.local_reader(&v);
            self.txn = Some(v);
        }
        self.lock = self.lock.max(level);
        Ok(())
    }

    /// Releases a lock. Dropping to no lock ends the read transaction, so the next one sees
    /// whatever the poller found meanwhile. Leaving EXCLUSIVE records what the transaction
    /// wrote if SQLite did not sync it (`synchronous=OFF`): a commit, without an fsync.
    pub fn unlock(&mut self, level: LockLevel) -> VfsResult<()> {
        let mut result = Ok(());
        if level < LockLevel::Exclusive && self.dirty.is_some() {
            result = self.record(false);
        }
        if let Some(t) = &self.locks {
            t.lock().unlock(self.id, self.lock, level);
        }
        if level == LockLevel::Unlocked {
            self.txn = None;
            self.local = None;
        }
        self.lock = level.min(self.lock);
        result
    }

    /// Whether some connection of this process holds RESERVED or more on this database.
    pub fn check_reserved(&self) -> bool {
        self.locks.as_ref().is_some_and(|t| t.lock().reserved())
    }
}

impl Drop for MainDb {
    fn drop(&mut self) {
        if let Some(t) = &self.locks {
            t.lock().unlock(self.id, self.lock, LockLevel::Unlocked);
        }
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
pub fn patch_header(page1: &mut [u8], state_no: u32) {
    if page1.len() < 100 {
        return;
    }
    page1[18] = 1;
    page1[19] = 1;
    let valid = page1[24..28] == page1[92..96];
    let counter = state_no.to_be_bytes();
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
        patch_header(&mut p, 0x42);
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
