//! Write mode: local commits go to the crash-safe `Buffer` and to an in-memory [`Overlay`]
//! that every connection of the process reads through at once; a background task uploads them as
//! level-0 LTX files, one TXID per upload, each created with a conditional PUT so that a second
//! writer can never overwrite anything (it loses the race and stops).
//!
//! Durability: a commit is durable when its buffer record is fsynced (skipped when SQLite asked
//! for no sync); it is in the replica after the next upload (`sync_interval`, default 1 s), or
//! before COMMIT returns when the interval is zero.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::index::plan::FileInfo;
use crate::index::version::Version;
use crate::read::core::Core;
use crate::stats::Stats;
use crate::supervise::{Health, Task};
pub use crate::write::buffer::TxPages;
use crate::write::buffer::{Buffer, Commit, Intent, Record};
use crate::write::compact::CompactionOptions;
use crate::write::state::State;
use crate::write::upload::{encode_upload, now_ms, remote_checksum, Encoded};

/// Uploads that keep failing for this long make the next write transaction fail, so that an
/// application cannot go on committing into a buffer that never drains without noticing.
pub const UPLOAD_FAILURE_BOUND: Duration = Duration::from_secs(30);
/// Before an upload, the whole replica is relisted if it was not checked for this long: another
/// writer's level-0 file could otherwise be compacted and deleted by retention (5 min by
/// default) before our conditional create of the same TXID would collide with it.
const VERIFY_AFTER: Duration = Duration::from_secs(60);
/// Uploads of up to this many bytes of pages (decoded) put them into the page cache.
const KEEP_UPLOADED_PAGES_MAX: u64 = 8 << 20;
/// Write-mode states are numbered from here, apart from the TXIDs that number the states
/// read from the replica (time travel), so SQLite never mistakes one for the other.
const STATE_NO_BASE: u32 = 0x8000_0000;

/// How to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    /// The buffer file.
    pub buffer_path: PathBuf,
    /// How often committed transactions are uploaded; zero uploads each one before its COMMIT
    /// returns.
    pub sync_interval: Duration,
    /// Compaction, snapshots and retention, run by the writer.
    pub compaction: CompactionOptions,
}

/// What `PRAGMA litestream_stats` and `litestream_lag` report about the writer.
#[derive(Clone, Debug, Default)]
pub struct WriteStatus {
    /// Committed transactions not uploaded yet.
    pub pending_commits: usize,
    /// Age of the oldest of them.
    pub oldest_pending: Option<Duration>,
    /// Successful uploads.
    pub uploads: u64,
    /// Failed upload attempts.
    pub upload_errors: u64,
    /// The last upload error, while uploads fail.
    pub last_error: Option<String>,
    /// Set once another writer won: the reason.
    pub fenced: Option<String>,
    /// The buffer file.
    pub buffer_path: PathBuf,
}

/// The writer of one replica.
pub(crate) struct Writer {
    opts: WriteOptions,
    state: Mutex<State>,
    /// One upload at a time.
    upload: tokio::sync::Mutex<()>,
    /// Wakes the sync task early (close, `PRAGMA litestream_sync`).
    wake: tokio::sync::Notify,
    /// The supervised upload and compaction loops.
    uploader: Arc<Health>,
    compactor: Arc<Health>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("buffer", &self.opts.buffer_path)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Opens the buffer, reconciles it with the replica (at `base`, as just listed) and
    /// replays what was committed but not uploaded. Fails, setting the buffer aside, when the
    /// replica moved on without those commits.
    pub(crate) async fn recover(
        replica_url: &str,
        opts: WriteOptions,
        base: Version,
        core: &Core,
    ) -> Result<Writer> {
        let (buffer, records) = Buffer::open(&opts.buffer_path, replica_url, base.txid())?;
        let mut base_txid = buffer.base_txid;
        let (mut commits, intents) = replay(base_txid, records);
        let remote_txid = base.txid();
        let aside = |buffer: Buffer, n: usize, why: String| -> Error {
            match buffer.set_aside() {
                Ok(p) => Error::Conflict(format!(
                    "{why}. The {n} committed transaction(s) that were not uploaded are kept in {}; nothing was overwritten. Stop the other writer, restore or inspect that file, then reopen",
                    p.display()
                )),
                Err(e) => e,
            }
        };
        if commits.is_empty() {
            let mut buffer = buffer;
            // Rewritten only when it says something else: each rewrite costs two fsyncs and a
            // rename, which an open pays.
            if buffer.base_txid != remote_txid
                || buffer.url != replica_url
                || buffer.end() > buffer.header_len()
            {
                buffer.url = replica_url.to_string();
                let end = buffer.end();
                buffer.rebase(remote_txid, end)?;
            }
            return Ok(Writer::new(opts, buffer, base, Vec::new()));
        }
        if buffer.url != replica_url {
            let why = format!(
                "the write buffer {} belongs to replica {}, not {replica_url}",
                opts.buffer_path.display(),
                buffer.url
            );
            return Err(aside(buffer, commits.len(), why));
        }
        // A crash between the PUT and the buffer rewrite: the file of that TXID is ours exactly
        // when its checksum is one an intent recorded. Any attempt counts, not only the last: a
        // retry after a lost response records its own intent, then finds the first one's file.
        if !intents.is_empty() && remote_txid > base_txid {
            let txid = base_txid + 1;
            let theirs = match remote_checksum(core, txid).await {
                Ok(sum) => sum,
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            if let Some(i) = intents.iter().find(|i| Some(i.checksum) == theirs) {
                tracing::info!(
                    txid = format!("{txid:016x}"),
                    "write buffer: the last upload before the crash had succeeded"
                );
                commits.retain(|(_, c)| c.seq > i.last_seq);
                base_txid = txid;
            }
        }
        if remote_txid != base_txid {
            let why = format!(
                "the replica is at TXID {remote_txid:016x}, but the buffered transactions build on TXID {base_txid:016x}: another writer changed the replica (or it was restored) after this writer stopped"
            );
            return Err(aside(buffer, commits.len(), why));
        }
        let mut buffer = buffer;
        let keep_from = commits.first().map_or(buffer.end(), |(at, _)| at.start);
        let delta = buffer.rebase(base_txid, keep_from)?;
        let shift = |at: u64| (at as i64 - delta) as u64;
        let commits: Vec<(u64, Commit)> = commits
            .into_iter()
            .map(|(at, c)| {
                let pages = c.pages.iter().map(|&(p, at)| (p, shift(at))).collect();
                (shift(at.end), Commit { pages, ..c })
            })
            .collect();
        tracing::info!(
            buffer = %opts.buffer_path.display(),
            commits = commits.len(),
            txid = format!("{base_txid:016x}"),
            "write buffer: recovered committed transactions that were not uploaded"
        );
        Ok(Writer::new(opts, buffer, base, commits))
    }

    fn new(
        opts: WriteOptions,
        buffer: Buffer,
        base: Version,
        commits: Vec<(u64, Commit)>,
    ) -> Writer {
        let state_no = STATE_NO_BASE | (base.txid() as u32 & !STATE_NO_BASE);
        let mut st = State {
            buffer,
            base: Arc::new(base),
            overlay: None,
            state_no,
            next_seq: 1,
            pending: Vec::new(),
            attempts: Vec::new(),
            fenced: None,
            retired: false,
            last_error: None,
            failing_since: None,
            uploads: 0,
            upload_errors: 0,
            verified: Instant::now(),
        };
        for (end, c) in commits {
            st.next_seq = c.seq + 1;
            st.apply(&c, end);
        }
        Writer {
            opts,
            state: Mutex::new(st),
            upload: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
            uploader: Arc::new(Health::new(Task::Uploader)),
            compactor: Arc::new(Health::new(Task::Compactor)),
        }
    }

    /// `Err` once the upload or compaction loop was given up.
    pub(crate) fn check_health(&self) -> Result<()> {
        self.uploader.check()?;
        self.compactor.check()
    }

    /// Failures of the writer's loops so far.
    pub(crate) fn task_failures(&self) -> u64 {
        self.uploader.failures() + self.compactor.failures()
    }

    /// The version connections read: the replica's state plus local commits.
    pub(crate) fn view(&self) -> Version {
        self.state.lock().view()
    }

    /// The path prefix of this writer's spool files (its buffer's path): its compactions merge
    /// large files there.
    pub(crate) fn spool_prefix(&self) -> std::path::PathBuf {
        self.opts.buffer_path.clone()
    }

    pub(crate) fn sync_interval(&self) -> Duration {
        self.opts.sync_interval
    }

    pub(crate) fn status(&self) -> WriteStatus {
        let st = self.state.lock();
        WriteStatus {
            pending_commits: st.pending.len(),
            oldest_pending: st.pending.first().map(|p| p.3.elapsed()),
            uploads: st.uploads,
            upload_errors: st.upload_errors,
            last_error: st.last_error.clone(),
            fenced: st.fenced.clone(),
            buffer_path: self.opts.buffer_path.clone(),
        }
    }

    /// Whether a write transaction may start: not fenced, and uploads not failing for longer
    /// than the bound.
    pub(crate) fn check_writable(&self) -> Result<()> {
        self.check_health()?;
        let st = self.state.lock();
        if let Some(f) = &st.fenced {
            return Err(Error::Conflict(f.clone()));
        }
        if let Some(since) = st
            .failing_since
            .filter(|s| s.elapsed() >= UPLOAD_FAILURE_BOUND)
        {
            return Err(Error::Unavailable {
                op: "upload",
                key: self.opts.buffer_path.display().to_string(),
                elapsed: since.elapsed(),
                detail: format!(
                    "uploads have failed for {:.0?} ({}); the {} committed transaction(s) are safe in the write buffer and writes resume once an upload succeeds",
                    since.elapsed(),
                    st.last_error.as_deref().unwrap_or("unknown error"),
                    st.pending.len()
                ),
            });
        }
        Ok(())
    }

    /// Records one transaction: `pages` changed, `commit` pages in all. Returns the version
    /// that shows it, which is published at once.
    pub(crate) fn commit(
        &self,
        core: &Core,
        pages: TxPages<'_>,
        commit: u32,
        page_size: u32,
        sync: bool,
    ) -> Result<Version> {
        let mut st = self.state.lock();
        if let Some(f) = &st.fenced {
            return Err(Error::Conflict(f.clone()));
        }
        if st.retired {
            return Err(Error::Config(
                "write mode was turned off for this database (PRAGMA litestream_write_enabled = 0)"
                    .into(),
            ));
        }
        let have = st.view();
        if have.commit() > 0 && page_size != have.page_size() {
            return Err(Error::Config(format!(
                "the database has {}-byte pages; a transaction wrote {page_size}-byte pages (the page size of an existing database cannot change)",
                have.page_size()
            )));
        }
        if st.base.txid() == 0 && st.base.page_size() != page_size {
            st.base = Arc::new(Version::empty(page_size));
        }
        let head = Commit {
            seq: st.next_seq,
            commit,
            page_size,
            ts_ms: now_ms(),
            pages: Vec::new(),
        };
        // The pages go to the buffer file; the overlay keeps only where they are.
        let (c, end) = st.buffer.append_commit(head, pages, sync)?;
        st.next_seq += 1;
        st.apply(&c, end);
        // Published under the writer's lock: an upload publishing in between must never
        // replace this state with an older one.
        let v = st.view();
        core.current.publish_local(v.clone());
        Ok(v)
    }

    /// Uploads everything committed so far as one level-0 file; returns its TXID, or `None`
    /// when there was nothing to upload.
    pub(crate) async fn upload(&self, core: &Core) -> Result<Option<u64>> {
        let _one = self.upload.lock().await;
        let result = self.upload_once(core).await;
        let mut st = self.state.lock();
        match &result {
            Ok(_) => {
                st.last_error = None;
                st.failing_since = None;
            }
            Err(e) => {
                st.upload_errors += 1;
                st.last_error = Some(e.to_string());
                st.failing_since.get_or_insert_with(Instant::now);
            }
        }
        result
    }

    async fn upload_once(&self, core: &Core) -> Result<Option<u64>> {
        let (base, overlay, last_seq, verify) = {
            let st = self.state.lock();
            if let Some(f) = &st.fenced {
                return Err(Error::Conflict(f.clone()));
            }
            let Some(o) = st.overlay.clone() else {
                return Ok(None);
            };
            let last = st.pending.last().map_or(0, |p| p.0);
            (
                st.base.clone(),
                o,
                last,
                st.verified.elapsed() >= VERIFY_AFTER,
            )
        };
        let txid = base.txid() + 1;
        if verify {
            let newest = core.catalog.newest_txid().await?;
            if newest != base.txid() {
                return Err(self.fence(format!(
                    "the replica reached TXID {newest:016x} while this writer was at {:016x}: another writer is active",
                    base.txid()
                )));
            }
            self.state.lock().verified = Instant::now();
        }
        let spool_path = spool_path(&self.opts.buffer_path);
        let (encoded, spool) = encode_upload(&base, &overlay, txid, &spool_path)?;
        let intent = Intent {
            txid,
            last_seq,
            checksum: encoded.checksum(),
        };
        {
            let mut st = self.state.lock();
            st.buffer.append_intent(&intent)?;
            st.attempts.push((intent, encoded.clone()));
        }
        let key = core
            .catalog
            .layout
            .file_key(&core.catalog.remote.root, 0, txid, txid);
        let remote = &core.catalog.remote;
        let created = match (&encoded, &spool) {
            (Encoded::Memory(bytes), _) => remote.put_new(&key, bytes.clone()).await?,
            (Encoded::Spooled { .. }, Some(s)) => remote.put_new_file(&key, s.path()).await?,
            (Encoded::Spooled { .. }, None) => {
                return Err(Error::Inconsistent(
                    "a spooled upload without its file".into(),
                ))
            }
        };
        drop(spool);
        let done = if created {
            (intent, encoded)
        } else {
            // The key exists: our own earlier attempt whose response was lost, or a rival.
            let theirs = remote_checksum(core, txid).await?;
            let mine = self
                .state
                .lock()
                .attempts
                .iter()
                .find(|(i, _)| Some(i.checksum) == theirs)
                .cloned();
            match mine {
                Some(a) => a,
                None => {
                    return Err(self.fence(format!(
                        "another writer created {key} first; this writer stops so that nothing is overwritten"
                    )))
                }
            }
        };
        let info = FileInfo {
            level: 0,
            min_txid: txid,
            max_txid: txid,
            size: done.1.size(),
            created_ms: now_ms(),
        };
        // The pages of a small upload go into the cache (the next reads want them); those of a
        // large one would all be decoded into memory at once, so it is read back on demand.
        let decoded = overlay.pages.len() as u64 * u64::from(base.page_size());
        let keep_pages = decoded <= KEEP_UPLOADED_PAGES_MAX;
        let loaded = done
            .1
            .load(&info, key.clone(), core.catalog.next_file_id(), keep_pages)?;
        core.catalog.adopt_uploaded(&info, &loaded);
        let mut st = self.state.lock();
        st.rebase_after_upload(done.0.last_seq, &loaded.meta)?;
        st.uploads += 1;
        Stats::add(&core.catalog.remote.stats.uploads, 1);
        core.current.publish_local(st.view());
        drop(st);
        tracing::debug!(%key, txid = format!("{txid:016x}"), "uploaded");
        Ok(Some(txid))
    }

    fn fence(&self, why: String) -> Error {
        let mut st = self.state.lock();
        tracing::error!(buffer = %self.opts.buffer_path.display(), "{why}");
        st.fenced = Some(format!(
            "{why}. The {} committed transaction(s) not uploaded are kept in {}",
            st.pending.len(),
            self.opts.buffer_path.display()
        ));
        Error::Conflict(st.fenced.clone().unwrap_or_default())
    }

    /// Puts `v` (the replica's files, planned afresh) under the local commits, if it is the
    /// same state as the current base; an upload in between makes it stale, and it is dropped.
    pub(crate) fn replace_base(&self, core: &Core, v: Version) {
        let mut st = self.state.lock();
        if v.txid() == st.base.txid() && v.commit() == st.base.commit() {
            st.base = Arc::new(v);
            core.current.publish_local(st.view());
        }
    }

    /// Stops accepting commits and releases the buffer's lock, so that this or another
    /// process can write again; refused while commits are not uploaded.
    pub(crate) fn retire(&self) -> Result<()> {
        let mut st = self.state.lock();
        if !st.pending.is_empty() {
            return Err(Error::Config(format!(
                "{} transaction(s) were committed while write mode was being turned off; they are not uploaded yet, so write mode stays on. Retry",
                st.pending.len()
            )));
        }
        st.retired = true;
        st.buffer.release();
        Ok(())
    }

    /// Wakes the sync task early.
    pub(crate) fn wake(&self) -> &tokio::sync::Notify {
        &self.wake
    }

    /// The upload loop's health.
    pub(crate) fn uploader(&self) -> Arc<Health> {
        self.uploader.clone()
    }

    /// The compaction loop's health.
    pub(crate) fn compactor(&self) -> Arc<Health> {
        self.compactor.clone()
    }

    /// Whether another writer won and this one stopped.
    pub(crate) fn is_fenced(&self) -> bool {
        self.state.lock().fenced.is_some()
    }

    /// Asks the sync task to upload now.
    pub(crate) fn nudge(&self) {
        self.wake.notify_one();
    }
}

/// A buffer's commits, with the bytes each occupies, and the intents of the upload of
/// `base_txid + 1` (older intents are of uploads the base already includes).
type Replayed = (Vec<(std::ops::Range<u64>, Commit)>, Vec<Intent>);

fn replay(base_txid: u64, records: Vec<crate::write::buffer::Located>) -> Replayed {
    let mut commits = Vec::new();
    let mut intents = Vec::new();
    for (at, rec) in records {
        match rec {
            Record::Commit(c) => commits.push((at, c)),
            Record::Intent(i) if i.txid == base_txid + 1 => intents.push(i),
            Record::Intent(_) => {}
        }
    }
    (commits, intents)
}

/// Where this writer spools a large upload: beside its buffer, on the disk it already writes.
fn spool_path(buffer: &std::path::Path) -> std::path::PathBuf {
    let mut p = buffer.as_os_str().to_owned();
    p.push(".upload");
    p.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(seq: u64, at: u64) -> (std::ops::Range<u64>, Record) {
        let c = Commit {
            seq,
            commit: 1,
            page_size: 512,
            ts_ms: 0,
            pages: vec![(1, at + 40)],
        };
        (at..at + 600, Record::Commit(c))
    }

    fn intent(txid: u64, last_seq: u64, checksum: u64) -> (std::ops::Range<u64>, Record) {
        let i = Intent {
            txid,
            last_seq,
            checksum,
        };
        (0..0, Record::Intent(i))
    }

    #[test]
    fn every_attempt_at_the_next_txid_is_kept_and_older_intents_are_not() {
        let (commits, intents) = replay(
            10,
            vec![
                intent(10, 0, 0x1),
                commit(1, 100),
                intent(11, 1, 0xa),
                commit(2, 700),
                intent(11, 2, 0xb),
            ],
        );
        let seqs: Vec<u64> = commits.iter().map(|(_, c)| c.seq).collect();
        assert_eq!(seqs, vec![1, 2]);
        assert_eq!(commits[1].0, 700..1300);
        let sums: Vec<u64> = intents.iter().map(|i| i.checksum).collect();
        assert_eq!(
            sums,
            vec![0xa, 0xb],
            "a retry does not hide the first attempt"
        );
    }
}
