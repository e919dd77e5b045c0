//! Write mode: local commits go to the crash-safe [`Buffer`] and to an in-memory [`Overlay`]
//! that every connection of the process reads through at once; a background task uploads them as
//! level-0 LTX files, one TXID per upload, each created with a conditional PUT so that a second
//! writer can never overwrite anything (it loses the race and stops).
//!
//! Durability: a commit is durable when its buffer record is fsynced (skipped when SQLite asked
//! for no sync); it is in the replica after the next upload (`sync_interval`, default 1 s), or
//! before COMMIT returns when the interval is zero.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::write::buffer::{Buffer, Commit, Intent, Record};
use crate::write::compact::{CompactionOptions, Compactor};

use crate::index::meta;
use crate::index::plan::FileInfo;
use crate::index::version::{Overlay, Version};
use crate::replica::Replica;
use crate::stats::Stats;
use crate::supervise::{self, Health, Task};

/// Uploads that keep failing for this long make the next write transaction fail, so that an
/// application cannot go on committing into a buffer that never drains without noticing.
pub const UPLOAD_FAILURE_BOUND: Duration = Duration::from_secs(30);
/// Before an upload, the whole replica is relisted if it was not checked for this long: another
/// writer's level-0 file could otherwise be compacted and deleted by retention (5 min by
/// default) before our conditional create of the same TXID would collide with it.
const VERIFY_AFTER: Duration = Duration::from_secs(60);
/// Longest pause between two failed upload attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
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

struct State {
    buffer: Buffer,
    /// The replica's state as this writer last made it (no overlay).
    base: Arc<Version>,
    overlay: Option<Arc<Overlay>>,
    state_no: u32,
    next_seq: u64,
    /// Commits not uploaded yet: (seq, where its record ends in the buffer, size, when).
    pending: Vec<(u64, u64, u32, Instant)>,
    /// Upload attempts for `base.txid() + 1`, whose responses may have been lost.
    attempts: Vec<(Intent, Bytes)>,
    fenced: Option<String>,
    /// Write mode was turned off: no more commits.
    retired: bool,
    last_error: Option<String>,
    failing_since: Option<Instant>,
    uploads: u64,
    upload_errors: u64,
    verified: Instant,
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

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl Writer {
    /// Opens the buffer, reconciles it with the replica (at `base`, as just listed) and
    /// replays what was committed but not uploaded. Fails, setting the buffer aside, when the
    /// replica moved on without those commits.
    pub(crate) async fn recover(
        replica_url: &str,
        opts: WriteOptions,
        base: Version,
        r: &Replica,
    ) -> Result<Writer> {
        let (buffer, records) = Buffer::open(&opts.buffer_path, replica_url, base.txid())?;
        let mut base_txid = buffer.base_txid;
        let mut commits: Vec<(std::ops::Range<u64>, Commit)> = Vec::new();
        let mut intent: Option<Intent> = None;
        for (at, rec) in records {
            match rec {
                Record::Commit(c) => commits.push((at, c)),
                Record::Intent(i) if i.txid == base_txid + 1 => intent = Some(i),
                Record::Intent(_) => {}
            }
        }
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
        // when its checksum is the one the intent recorded.
        if let Some(i) = intent.filter(|i| remote_txid >= i.txid) {
            match remote_checksum(r, i.txid).await {
                Ok(Some(theirs)) if theirs == i.checksum => {
                    tracing::info!(
                        txid = format!("{:016x}", i.txid),
                        "write buffer: the last upload before the crash had succeeded"
                    );
                    commits.retain(|(_, c)| c.seq > i.last_seq);
                    base_txid = i.txid;
                }
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
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
        let commits: Vec<(u64, Commit)> = commits
            .into_iter()
            .map(|(at, c)| ((at.end as i64 - delta) as u64, c))
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
        r: &Replica,
        pages: Vec<(u32, Bytes)>,
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
        let c = Commit {
            seq: st.next_seq,
            commit,
            page_size,
            ts_ms: now_ms(),
            pages,
        };
        let end = st.buffer.append(&Record::Commit(c.clone()), sync)?;
        st.next_seq += 1;
        st.apply(&c, end);
        // Published under the writer's lock: an upload publishing in between must never
        // replace this state with an older one.
        let v = st.view();
        r.publish_view(v.clone());
        Ok(v)
    }

    /// Uploads everything committed so far as one level-0 file; returns its TXID, or `None`
    /// when there was nothing to upload.
    pub(crate) async fn upload(&self, r: &Replica) -> Result<Option<u64>> {
        let _one = self.upload.lock().await;
        let result = self.upload_once(r).await;
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

    async fn upload_once(&self, r: &Replica) -> Result<Option<u64>> {
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
            let newest = r.newest_txid().await?;
            if newest != base.txid() {
                return Err(self.fence(format!(
                    "the replica reached TXID {newest:016x} while this writer was at {:016x}: another writer is active",
                    base.txid()
                )));
            }
            self.state.lock().verified = Instant::now();
        }
        let bytes = Bytes::from(encode_upload(&base, &overlay, txid)?);
        let checksum = trailer_checksum(&bytes);
        let intent = Intent {
            txid,
            last_seq,
            checksum,
        };
        {
            let mut st = self.state.lock();
            st.buffer.append(&Record::Intent(intent), true)?;
            st.attempts.push((intent, bytes.clone()));
        }
        let key = r.layout().file_key(&r.remote().root, 0, txid, txid);
        let done = if r.remote().put_new(&key, bytes.clone()).await? {
            (intent, bytes)
        } else {
            // The key exists: our own earlier attempt whose response was lost, or a rival.
            let theirs = remote_checksum(r, txid).await?;
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
            size: done.1.len() as u64,
            created_ms: now_ms(),
        };
        let loaded = meta::from_bytes(&done.1, &info, key.clone(), r.next_file_id(), true)?;
        r.adopt_uploaded(&info, &loaded);
        let mut st = self.state.lock();
        st.rebase_after_upload(done.0.last_seq, &loaded.meta)?;
        st.uploads += 1;
        Stats::add(&r.remote().stats.uploads, 1);
        r.publish_view(st.view());
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

    /// Starts the task that uploads every `sync_interval`, whatever the commit rate: it never
    /// waits for a quiet moment. Failures back off (up to `MAX_BACKOFF`) and are reported.
    pub(crate) fn spawn_sync(r: &Arc<Replica>, mine: &Arc<Writer>) {
        let weak = Arc::downgrade(r);
        let health = mine.uploader.clone();
        let mine = Arc::downgrade(mine);
        let context = r.display_url().to_string();
        supervise::spawn(health, context, move || {
            Writer::sync_loop(weak.clone(), mine.clone())
        });
    }

    /// The upload loop; `Ok` once its replica or this writer is gone, or the writer is fenced.
    async fn sync_loop(weak: Weak<Replica>, mine: Weak<Writer>) -> Result<()> {
        let mut backoff = Duration::ZERO;
        let mut last = Instant::now();
        loop {
            let (interval, wake) = {
                let Some(r) = weak.upgrade() else {
                    return Ok(());
                };
                let Some(w) = current(&r, &mine) else {
                    return Ok(());
                };
                (w.opts.sync_interval, w)
            };
            let interval = if interval.is_zero() {
                Duration::from_secs(1)
            } else {
                interval
            };
            // Counted from the start of the last upload, not its end, so that under load
            // there is an upload in every interval rather than one per interval + upload.
            let pause = interval.saturating_sub(last.elapsed()).max(backoff);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = wake.wake.notified() => {}
            }
            let Some(r) = weak.upgrade() else {
                return Ok(());
            };
            let Some(w) = current(&r, &mine) else {
                return Ok(());
            };
            supervise::fault_point("uploader", r.display_url());
            last = Instant::now();
            match w.upload(&r).await {
                Ok(_) => backoff = Duration::ZERO,
                Err(Error::Conflict(_)) => return Ok(()),
                Err(e) => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(250), MAX_BACKOFF);
                    tracing::warn!(error = %e, retry_in = ?backoff, "upload failed; the commits stay in the write buffer");
                }
            }
        }
    }

    pub(crate) fn spawn_compaction(r: &Arc<Replica>, mine: &Arc<Writer>, compactor: Compactor) {
        let weak = Arc::downgrade(r);
        let health = mine.compactor.clone();
        let mine = Arc::downgrade(mine);
        let context = r.display_url().to_string();
        // Shared by every restart, so a restart keeps the schedule of what is due.
        let compactor = Arc::new(tokio::sync::Mutex::new(compactor));
        supervise::spawn(health, context, move || {
            Writer::compaction_loop(weak.clone(), mine.clone(), compactor.clone())
        });
    }

    /// The compaction loop; `Ok` once its replica or this writer is gone, or it is fenced.
    async fn compaction_loop(
        weak: Weak<Replica>,
        mine: Weak<Writer>,
        compactor: Arc<tokio::sync::Mutex<Compactor>>,
    ) -> Result<()> {
        let mut compactor = compactor.lock().await;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Some(r) = weak.upgrade() else {
                return Ok(());
            };
            let Some(w) = current(&r, &mine) else {
                return Ok(());
            };
            if w.state.lock().fenced.is_some() {
                return Ok(());
            }
            supervise::fault_point("compactor", r.display_url());
            match compactor.run_due(Instant::now()).await {
                Ok(report) if report.written.is_empty() && report.deleted.is_empty() => {}
                Ok(report) => {
                    tracing::debug!(
                        written = report.written.len(),
                        deleted = report.deleted.len(),
                        "compaction"
                    );
                    match r.build_latest().await {
                        Ok(v) => w.replace_base(&r, v),
                        Err(e) => {
                            tracing::warn!(error = %e, "could not re-plan after compaction")
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "compaction failed; retrying later"),
            }
        }
    }

    /// Puts `v` (the replica's files, planned afresh) under the local commits, if it is the
    /// same state as the current base; an upload in between makes it stale, and it is dropped.
    fn replace_base(&self, r: &Replica, v: Version) {
        let mut st = self.state.lock();
        if v.txid() == st.base.txid() && v.commit() == st.base.commit() {
            st.base = Arc::new(v);
            r.publish_view(st.view());
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

    /// Asks the sync task to upload now.
    pub(crate) fn nudge(&self) {
        self.wake.notify_one();
    }
}

/// The replica's writer if it is still `mine`: a task of a writer that was turned off ends,
/// even when write mode was turned on again since (with a new writer and its own tasks).
fn current(r: &Replica, mine: &std::sync::Weak<Writer>) -> Option<Arc<Writer>> {
    let w = r.writer()?;
    Arc::ptr_eq(&w, &mine.upgrade()?).then_some(w)
}

/// The file checksum of the level-0 file of `txid` in the replica (its last 8 bytes), if the
/// object is at least that long: what tells this writer's own uploads from another's. One HEAD
/// for the size, then a bounded range: Azure has no suffix range, and no listing is at hand.
async fn remote_checksum(r: &Replica, txid: u64) -> Result<Option<u64>> {
    let key = r.layout().file_key(&r.remote().root, 0, txid, txid);
    let size = r.remote().size_of(&key).await?;
    if size < 8 {
        return Ok(None);
    }
    let tail = r.remote().get_tail(&key, size, 8).await?;
    Ok((tail.len() == 8).then(|| trailer_checksum(&tail)))
}

fn trailer_checksum(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    let mut a = [0u8; 8];
    if n >= 8 {
        a.copy_from_slice(&bytes[n - 8..]);
    }
    u64::from_be_bytes(a)
}

impl State {
    fn view(&self) -> Version {
        self.base.with_overlay(self.overlay.clone(), self.state_no)
    }

    /// Adds a recorded commit to the overlay.
    fn apply(&mut self, c: &Commit, end: u64) {
        let mut o = self.overlay.as_deref().cloned().unwrap_or_else(|| Overlay {
            pages: imbl::OrdMap::new(),
            commit: self.base.commit(),
            low: self.base.commit(),
        });
        if c.commit < o.commit {
            let cut: Vec<u32> = o.pages.range(c.commit + 1..).map(|(p, _)| *p).collect();
            for p in cut {
                o.pages.remove(&p);
            }
        }
        for (pgno, page) in &c.pages {
            if *pgno <= c.commit {
                o.pages.insert(*pgno, (c.seq, page.clone()));
            }
        }
        o.commit = c.commit;
        o.low = o.low.min(c.commit);
        self.overlay = Some(Arc::new(o));
        self.state_no = self.state_no.wrapping_add(1);
        self.pending.push((c.seq, end, c.commit, Instant::now()));
    }

    /// After the file holding commits up to `last_seq` is in the replica: it becomes the base,
    /// the overlay keeps only later commits, and the buffer drops what was uploaded.
    fn rebase_after_upload(&mut self, last_seq: u64, file: &Arc<meta::FileMeta>) -> Result<()> {
        let base = self.base.apply(std::slice::from_ref(file))?;
        let keep: Vec<_> = self
            .pending
            .iter()
            .filter(|p| p.0 > last_seq)
            .copied()
            .collect();
        let uploaded_end = self
            .pending
            .iter()
            .filter(|p| p.0 <= last_seq)
            .map(|p| p.1)
            .max();
        self.overlay = match (&self.overlay, keep.is_empty()) {
            (Some(o), false) => {
                let pages = o
                    .pages
                    .iter()
                    .filter(|(_, (seq, _))| *seq > last_seq)
                    .map(|(p, v)| (*p, v.clone()))
                    .collect();
                let low = keep.iter().map(|p| p.2).fold(base.commit(), u32::min);
                Some(Arc::new(Overlay {
                    pages,
                    commit: o.commit,
                    low,
                }))
            }
            _ => None,
        };
        let delta = match uploaded_end {
            Some(end) => self.buffer.rebase(base.txid(), end)?,
            None => 0,
        };
        self.pending = keep
            .into_iter()
            .map(|(s, e, c, t)| (s, (e as i64 - delta) as u64, c, t))
            .collect();
        self.base = Arc::new(base.with_overlay(None, 0));
        self.attempts.clear();
        Ok(())
    }
}

/// The level-0 file of TXID `txid`: every page of the overlay, plus zeros for pages that were
/// truncated away and regrown without being written (readers would otherwise keep the old
/// images). TXID 1 is a snapshot and carries every page.
fn encode_upload(base: &Version, o: &Overlay, txid: u64) -> Result<Vec<u8>> {
    let page_size = base.page_size();
    let header = ltx::Header {
        flags: ltx::HEADER_FLAG_NO_CHECKSUM,
        page_size,
        commit: o.commit,
        min_txid: txid,
        max_txid: txid,
        timestamp_ms: now_ms(),
        pre_apply_checksum: 0,
        wal_offset: 0,
        wal_size: 0,
        wal_salt1: 0,
        wal_salt2: 0,
        node_id: 0,
    };
    let corrupt = |source| Error::Corrupt {
        key: format!("(upload of TXID {txid:016x})"),
        source,
    };
    let mut enc = ltx::Encoder::new(header).map_err(corrupt)?;
    let zeros = vec![0u8; page_size as usize];
    let lock = ltx::lock_pgno(page_size);
    let fill_from = if txid == 1 {
        0
    } else {
        o.low.min(base.commit())
    };
    let mut next_fill = fill_from + 1;
    for (pgno, (_, page)) in o.pages.iter() {
        while next_fill < *pgno && next_fill <= o.commit {
            if next_fill != lock {
                enc.add_page(next_fill, &zeros).map_err(corrupt)?;
            }
            next_fill += 1;
        }
        enc.add_page(*pgno, page).map_err(corrupt)?;
        next_fill = next_fill.max(pgno + 1);
    }
    while next_fill <= o.commit {
        if next_fill != lock {
            enc.add_page(next_fill, &zeros).map_err(corrupt)?;
        }
        next_fill += 1;
    }
    enc.finish(0).map_err(corrupt)
}
