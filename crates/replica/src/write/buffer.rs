//! The write buffer: a local, append-only log of committed transactions that are not in the
//! replica yet. It is what makes a COMMIT durable before its upload, and what a crashed writer
//! recovers from.
//!
//! Layout (integers big-endian):
//! - header: magic `LSWBUF01`, base TXID u64 (the replica state the records build on), URL
//!   length u32 + the replica URL, CRC-64 of the preceding header bytes;
//! - records: kind u8, body length u32, body, CRC-64 of kind + length + body.
//!   - kind 1, a commit: seq u64, database size in pages u32, page size u32, time (ms) i64,
//!     page count u32, then per page: pgno u32 + the page;
//!   - kind 2, an upload intent: TXID u64, last seq u64, file checksum u64, written (and
//!     fsynced) before the PUT of that TXID, so that recovery can tell our own upload, whose
//!     response was lost to the crash, from another writer's file.
//!
//! Pages are written and read in pieces, never as one record in memory (the overlay keeps
//! where each page lies). A record whose bytes end early or whose CRC fails is a commit that
//! never returned: recovery drops it and everything after it. The file is locked (`flock`)
//! while a writer uses it.
//!
//! After the last record the file holds zeros, written ahead of need (`SPARE_MIN`..`SPARE_MAX`
//! at a time): a commit then overwrites blocks that exist, the file size does not change, and
//! its `fdatasync` flushes data only, with no metadata. A zero byte is no record kind, so the
//! zeros end the log as the end of the file would.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"LSWBUF01";
const KIND_COMMIT: u8 = 1;
const KIND_INTENT: u8 = 2;
/// Zeros kept ahead of the last record: at least `SPARE_LOW`, else extended by an eighth of
/// the log, within `SPARE_MIN..=SPARE_MAX`.
const SPARE_LOW: u64 = 64 << 10;
const SPARE_MIN: u64 = 1 << 20;
const SPARE_MAX: u64 = 16 << 20;
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
/// Records are written and read in pieces of about this size.
const CHUNK: usize = 1 << 20;
/// Bytes of a commit body before its pages: seq, size, page size, time, page count.
const COMMIT_FIXED: usize = 28;

/// One committed transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Commit {
    /// Local commit sequence number, ascending.
    pub seq: u64,
    /// Database size in pages after the transaction.
    pub commit: u32,
    /// Page size of the pages.
    pub page_size: u32,
    /// When it was committed (ms since the epoch).
    pub ts_ms: i64,
    /// Changed pages, ascending: page number and where the page's bytes lie in the file.
    pub pages: Vec<(u32, u64)>,
}

/// The pages of one transaction, ascending, handed over one at a time so that none of them need
/// be in memory together.
pub struct TxPages<'a> {
    /// How many pages `pages` yields.
    pub count: usize,
    /// Page number and bytes of each.
    pub pages: Box<dyn Iterator<Item = std::io::Result<(u32, Bytes)>> + 'a>,
}

/// An upload about to be attempted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Intent {
    /// The TXID the file will have.
    pub txid: u64,
    /// The last commit it contains.
    pub last_seq: u64,
    /// Its file checksum (the last 8 bytes of the file).
    pub checksum: u64,
}

/// A record and where it ends in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    Commit(Commit),
    Intent(Intent),
}

/// A record and the bytes it occupies in the file.
pub(crate) type Located = (Range<u64>, Record);

/// The open, locked buffer file.
#[derive(Debug)]
pub(crate) struct Buffer {
    /// Shared with the overlays that point into it: a version pinned by a reader keeps the
    /// file it was published with, even after a rebase renamed a new one over it.
    file: Arc<File>,
    path: PathBuf,
    end: u64,
    /// The file's length: records up to `end`, zeros after.
    len: u64,
    /// The replica state the records build on.
    pub base_txid: u64,
    /// The replica the records belong to.
    pub url: String,
}

fn err(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::Buffer {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

fn header_bytes(base_txid: u64, url: &str) -> Vec<u8> {
    let mut h = Vec::with_capacity(32 + url.len());
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&base_txid.to_be_bytes());
    h.extend_from_slice(&(url.len() as u32).to_be_bytes());
    h.extend_from_slice(url.as_bytes());
    let crc = ltx::crc64(&h);
    h.extend_from_slice(&crc.to_be_bytes());
    h
}

fn lock(file: &File, path: &Path) -> Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(Error::Conflict(format!(
            "another process is writing through the buffer {}; only one writer may use a database at a time",
            path.display()
        ))),
        Err(TryLockError::Error(e)) => Err(err(path, format!("cannot lock: {e}"))),
    }
}

fn sync_dir(path: &Path) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err(path, format!("cannot sync its directory: {e}")))
}

/// Reads big-endian integers off a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

impl Buffer {
    /// Opens (creating, based on `new_base`) and locks the buffer at `path` for the replica
    /// `url`. Returns it with every complete record and the byte range it occupies; a torn tail
    /// is cut off.
    pub(crate) fn open(path: &Path, url: &str, new_base: u64) -> Result<(Buffer, Vec<Located>)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(path, format!("cannot create its directory: {e}")))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| err(path, format!("cannot open: {e}")))?;
        lock(&file, path)?;
        let len = file
            .metadata()
            .map_err(|e| err(path, format!("cannot stat: {e}")))?
            .len();
        let mut buf = Buffer {
            file: Arc::new(file),
            path: path.to_path_buf(),
            end: 0,
            len,
            base_txid: 0,
            url: url.to_string(),
        };
        if len == 0 {
            buf.rewrite(new_base, None)?;
            return Ok((buf, Vec::new()));
        }
        let bad = || {
            err(
                path,
                "not a litestream write buffer (bad header); move it away if it is not needed",
            )
        };
        let (base_txid, file_url, header_len) = read_header(&buf.file, len)
            .map_err(|e| err(path, format!("cannot read: {e}")))?
            .ok_or_else(bad)?;
        buf.base_txid = base_txid;
        buf.url = file_url;
        let mut records = Vec::new();
        let mut pos = header_len;
        while let Some((rec, next)) =
            read_record(&buf.file, pos, len).map_err(|e| err(path, format!("cannot read: {e}")))?
        {
            records.push((pos..next, rec));
            pos = next;
        }
        buf.end = pos;
        let torn =
            !zeros_from(&buf.file, pos, len).map_err(|e| err(path, format!("cannot read: {e}")))?;
        if torn {
            tracing::warn!(path = %path.display(), dropped = len - buf.end, "write buffer: dropping the incomplete record at its end (a commit that never returned)");
            buf.file
                .set_len(buf.end)
                .and_then(|()| buf.file.sync_data())
                .map_err(|e| err(path, format!("cannot truncate its torn tail: {e}")))?;
            buf.len = buf.end;
        }
        Ok((buf, records))
    }

    /// Releases the file lock (write mode turned off); the file stays as it is.
    pub(crate) fn release(&self) {
        if let Err(e) = self.file.unlock() {
            tracing::warn!(path = %self.path.display(), error = %e, "write buffer: unlock failed; the lock goes with the file when it closes");
        }
    }

    /// Where the next record goes.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// Where the records start.
    pub(crate) fn header_len(&self) -> u64 {
        header_bytes(self.base_txid, &self.url).len() as u64
    }

    /// Appends an upload intent, synced.
    pub(crate) fn append_intent(&mut self, i: &Intent) -> Result<u64> {
        let at = self.end;
        let mut w = ChunkWriter::new(&self.file, at);
        let r = (|| -> std::io::Result<u64> {
            w.put(&[KIND_INTENT])?;
            w.put(&24u32.to_be_bytes())?;
            w.put(&i.txid.to_be_bytes())?;
            w.put(&i.last_seq.to_be_bytes())?;
            w.put(&i.checksum.to_be_bytes())?;
            w.finish()
        })();
        self.after_write(at, r, true)
    }

    /// The file the records are in now (page offsets of commits refer to it).
    pub(crate) fn file(&self) -> Arc<File> {
        self.file.clone()
    }

    /// Appends commit `c` (whose `pages` are ignored) with `pages`, written one by one; with
    /// `sync`, returns only once it is on disk (one `fdatasync`). Returns the commit with
    /// where each page lies, and where the record ends. On failure the file is cut back.
    pub(crate) fn append_commit(
        &mut self,
        c: Commit,
        pages: TxPages<'_>,
        sync: bool,
    ) -> Result<(Commit, u64)> {
        let ps = c.page_size as usize;
        let count = pages.count;
        let body = (4 + ps)
            .checked_mul(count)
            .and_then(|n| n.checked_add(COMMIT_FIXED))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                err(
                    &self.path,
                    format!(
                        "a transaction of {count} pages is too large for one buffer record (4 GiB at most)"
                    ),
                )
            })?;
        let at = self.end;
        let mut offsets = Vec::with_capacity(count);
        let mut w = ChunkWriter::new(&self.file, at);
        let r = (|| -> std::io::Result<u64> {
            w.put(&[KIND_COMMIT])?;
            w.put(&body.to_be_bytes())?;
            w.put(&c.seq.to_be_bytes())?;
            w.put(&c.commit.to_be_bytes())?;
            w.put(&c.page_size.to_be_bytes())?;
            w.put(&c.ts_ms.to_be_bytes())?;
            w.put(&(count as u32).to_be_bytes())?;
            for page in pages.pages {
                let (pgno, page) = page?;
                if page.len() != ps || offsets.len() == count {
                    return Err(std::io::Error::other(format!(
                        "page {pgno} of {} bytes (page size {ps}), page {} of {count}",
                        page.len(),
                        offsets.len() + 1
                    )));
                }
                w.put(&pgno.to_be_bytes())?;
                offsets.push((pgno, w.pos()));
                w.put(&page)?;
            }
            if offsets.len() != count {
                return Err(std::io::Error::other(format!(
                    "{} pages given, {count} announced",
                    offsets.len()
                )));
            }
            w.finish()
        })();
        let end = self.after_write(at, r, sync)?;
        Ok((
            Commit {
                pages: offsets,
                ..c
            },
            end,
        ))
    }

    /// Follows the write of a record at `at` that ended where `written` says: zeros ahead,
    /// the sync, and the new end; on failure, the file cut back to `at`.
    fn after_write(&mut self, at: u64, written: std::io::Result<u64>, sync: bool) -> Result<u64> {
        let r = written.and_then(|end| {
            self.len = keep_spare(&self.file, self.len, end)?;
            if sync {
                self.file.sync_data()?;
            }
            Ok(end)
        });
        match r {
            Ok(end) => {
                self.end = end;
                Ok(end)
            }
            Err(e) => {
                let _ = self.file.set_len(at);
                self.len = at;
                Err(err(&self.path, format!("cannot append: {e}")))
            }
        }
    }

    /// Replaces the buffer with one based on `base_txid` that keeps the bytes from `keep_from`
    /// on (the records not uploaded yet): tmp file, fsync, rename, directory fsync. Returns
    /// how far the kept records moved (new offset = old offset - shift, as a signed delta).
    pub(crate) fn rebase(&mut self, base_txid: u64, keep_from: u64) -> Result<i64> {
        let header_len = header_bytes(base_txid, &self.url).len() as i64;
        let old = self.file.clone();
        self.rewrite(base_txid, Some((&old, keep_from..self.end)))?;
        Ok(keep_from as i64 - header_len)
    }

    /// Writes a new file of `base_txid` holding the bytes `records` of a file, copied in
    /// pieces, and puts it in place.
    fn rewrite(&mut self, base_txid: u64, records: Option<(&File, Range<u64>)>) -> Result<()> {
        let header = header_bytes(base_txid, &self.url);
        let tmp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<(File, u64)> {
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(&header)?;
            let mut n = 0;
            if let Some((from, range)) = &records {
                let mut chunk = vec![0u8; CHUNK.min((range.end - range.start) as usize)];
                let mut at = range.start;
                while at < range.end {
                    let k = chunk.len().min((range.end - at) as usize);
                    from.read_exact_at(&mut chunk[..k], at)?;
                    f.write_all(&chunk[..k])?;
                    at += k as u64;
                }
                n = range.end - range.start;
            }
            Ok((f, n))
        };
        let (f, kept) =
            write().map_err(|e| err(&self.path, format!("cannot write {}: {e}", tmp.display())))?;
        let end = header.len() as u64 + kept;
        let len = keep_spare(&f, end, end)
            .and_then(|len| f.sync_all().map(|()| len))
            .map_err(|e| err(&self.path, format!("cannot write {}: {e}", tmp.display())))?;
        // Locked before it takes the name, so no other process can take it in between.
        lock(&f, &self.path)?;
        std::fs::rename(&tmp, &self.path)
            .map_err(|e| err(&self.path, format!("cannot replace it: {e}")))?;
        sync_dir(&self.path)?;
        self.file = Arc::new(f);
        self.base_txid = base_txid;
        self.end = end;
        self.len = len;
        Ok(())
    }

    /// Renames the buffer out of the way (its records conflict with the replica) and returns
    /// the new path. Nothing in it is lost.
    pub(crate) fn set_aside(self) -> Result<PathBuf> {
        let ts = jiff::Timestamp::now().as_second();
        let aside = PathBuf::from(format!("{}.conflict-{ts}", self.path.display()));
        std::fs::rename(&self.path, &aside)
            .map_err(|e| err(&self.path, format!("cannot set it aside: {e}")))?;
        sync_dir(&aside)?;
        Ok(aside)
    }
}

/// Writes zeros after `end` in a file `len` long when fewer than `SPARE_LOW` are left, so that
/// the next commits change no file size; returns the new length (the next sync covers them).
fn keep_spare(file: &File, len: u64, end: u64) -> std::io::Result<u64> {
    let mut len = len.max(end);
    if len - end >= SPARE_LOW {
        return Ok(len);
    }
    let target = end + (end / 8).clamp(SPARE_MIN, SPARE_MAX);
    while len < target {
        let n = (target - len).min(ZEROS.len() as u64) as usize;
        file.write_all_at(&ZEROS[..n], len)?;
        len += n as u64;
    }
    Ok(len)
}

/// Base TXID, URL and length of the header of a file `len` long, if it is one.
fn read_header(file: &File, len: u64) -> std::io::Result<Option<(u64, String, u64)>> {
    let mut fixed = [0u8; 20];
    if len < 28 {
        return Ok(None);
    }
    file.read_exact_at(&mut fixed, 0)?;
    let n = u32::from_be_bytes([fixed[16], fixed[17], fixed[18], fixed[19]]) as u64;
    if &fixed[..8] != MAGIC || 28 + n > len {
        return Ok(None);
    }
    let mut bytes = vec![0u8; 28 + n as usize];
    file.read_exact_at(&mut bytes, 0)?;
    let mut r = Reader(&bytes[8..]);
    let parsed = (|| {
        let base = r.u64()?;
        let k = r.u32()? as usize;
        let url = String::from_utf8(r.take(k)?.to_vec()).ok()?;
        let crc = r.u64()?;
        (crc == ltx::crc64(&bytes[..20 + n as usize])).then_some((base, url, 28 + n))
    })();
    Ok(parsed)
}

/// The record at `pos` of a file `len` long and where it ends, if it is complete and intact.
/// A commit's pages are read in pieces and only their places are kept.
fn read_record(file: &File, pos: u64, len: u64) -> std::io::Result<Option<(Record, u64)>> {
    let mut head = [0u8; 5 + COMMIT_FIXED];
    if pos + 5 > len {
        return Ok(None);
    }
    file.read_exact_at(&mut head[..5], pos)?;
    let kind = head[0];
    let body = u64::from(u32::from_be_bytes([head[1], head[2], head[3], head[4]]));
    let end = pos + 5 + body;
    let fixed = match kind {
        KIND_COMMIT => COMMIT_FIXED as u64,
        KIND_INTENT => 24,
        _ => return Ok(None),
    };
    if body < fixed || end + 8 > len {
        return Ok(None);
    }
    file.read_exact_at(&mut head[5..5 + fixed as usize], pos + 5)?;
    let mut digest = ltx::Crc64Digest::new();
    digest.update(&head[..5 + fixed as usize]);
    let mut b = Reader(&head[5..5 + fixed as usize]);
    let u = |v: Option<u64>| v.unwrap_or_default();
    let rec = if kind == KIND_INTENT {
        if body != 24 {
            return Ok(None);
        }
        Record::Intent(Intent {
            txid: u(b.u64()),
            last_seq: u(b.u64()),
            checksum: u(b.u64()),
        })
    } else {
        let seq = u(b.u64());
        let commit = b.u32().unwrap_or_default();
        let page_size = b.u32().unwrap_or_default();
        let ts_ms = u(b.u64()) as i64;
        let n = u64::from(b.u32().unwrap_or_default());
        let entry = 4 + u64::from(page_size);
        if page_size == 0 || body != fixed + n * entry {
            return Ok(None);
        }
        let mut pages = Vec::with_capacity(n as usize);
        let per_chunk = (CHUNK as u64 / entry).max(1);
        let mut chunk = vec![0u8; (per_chunk.min(n) * entry) as usize];
        let mut at = pos + 5 + fixed;
        let mut left = n;
        while left > 0 {
            let k = per_chunk.min(left);
            let bytes = &mut chunk[..(k * entry) as usize];
            file.read_exact_at(bytes, at)?;
            digest.update(bytes);
            for (i, e) in bytes.chunks_exact(entry as usize).enumerate() {
                let pgno = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
                pages.push((pgno, at + i as u64 * entry + 4));
            }
            at += k * entry;
            left -= k;
        }
        Record::Commit(Commit {
            seq,
            commit,
            page_size,
            ts_ms,
            pages,
        })
    };
    let mut crc = [0u8; 8];
    file.read_exact_at(&mut crc, end)?;
    Ok((u64::from_be_bytes(crc) == digest.finish()).then_some((rec, end + 8)))
}

/// Whether the file holds only zeros from `pos` to `len`.
fn zeros_from(file: &File, mut pos: u64, len: u64) -> std::io::Result<bool> {
    let mut chunk = vec![0u8; CHUNK];
    while pos < len {
        let k = CHUNK.min((len - pos) as usize);
        file.read_exact_at(&mut chunk[..k], pos)?;
        if chunk[..k].iter().any(|b| *b != 0) {
            return Ok(false);
        }
        pos += k as u64;
    }
    Ok(true)
}

/// Writes a record at a position in pieces of about `CHUNK` bytes, with its CRC.
struct ChunkWriter<'a> {
    file: &'a File,
    at: u64,
    pending: Vec<u8>,
    digest: ltx::Crc64Digest,
}

impl<'a> ChunkWriter<'a> {
    fn new(file: &'a File, at: u64) -> Self {
        ChunkWriter {
            file,
            at,
            pending: Vec::new(),
            digest: ltx::Crc64Digest::new(),
        }
    }

    fn pos(&self) -> u64 {
        self.at + self.pending.len() as u64
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= CHUNK {
            self.digest.update(&self.pending);
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.write_all_at(&self.pending, self.at)?;
        self.at += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Writes the CRC of everything put; returns where the record ends.
    fn finish(mut self) -> std::io::Result<u64> {
        // Hashed a chunk at a time, not a put at a time: most puts are fields of a few bytes.
        self.digest.update(&self.pending);
        let crc = std::mem::take(&mut self.digest).finish();
        self.pending.extend_from_slice(&crc.to_be_bytes());
        self.flush()?;
        Ok(self.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(seq: u64, p: u32) -> Bytes {
        Bytes::from(vec![(p as u8) ^ (seq as u8); 512])
    }

    /// Appends commit `seq` of pages `pgnos`; returns it as recorded and where it ends.
    fn append(b: &mut Buffer, seq: u64, pgnos: &[u32]) -> (Record, u64) {
        let pages: Vec<_> = pgnos.iter().map(|&p| (p, page(seq, p))).collect();
        let head = Commit {
            seq,
            commit: 10,
            page_size: 512,
            ts_ms: 1_700_000_000_000 + seq as i64,
            pages: Vec::new(),
        };
        let tx = TxPages {
            count: pages.len(),
            pages: Box::new(pages.into_iter().map(Ok)),
        };
        let (c, end) = b.append_commit(head, tx, true).unwrap();
        (Record::Commit(c), end)
    }

    /// The pages of a recorded commit, read back from the file.
    fn pages_of(b: &Buffer, rec: &Record) -> Vec<(u32, Bytes)> {
        let Record::Commit(c) = rec else {
            return Vec::new();
        };
        c.pages
            .iter()
            .map(|&(p, at)| {
                let mut v = vec![0u8; 512];
                b.file().read_exact_at(&mut v, at).unwrap();
                (p, Bytes::from(v))
            })
            .collect()
    }

    #[test]
    fn records_survive_reopen_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b").join("app.buf");
        let (mut b, recs) = Buffer::open(&path, "s3://x/y", 0).unwrap();
        assert!(recs.is_empty());
        let (c1, e1) = append(&mut b, 1, &[1, 2]);
        let i = Intent {
            txid: 5,
            last_seq: 1,
            checksum: 77,
        };
        let e2 = b.append_intent(&i).unwrap();
        let (_, e3) = append(&mut b, 2, &[3]);
        drop(b);
        // Tear the last record: its last byte never reached the disk.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(e3 - 1).unwrap();
        drop(f);
        let (b, recs) = Buffer::open(&path, "s3://x/y", 0).unwrap();
        let ends: Vec<u64> = recs.iter().map(|(r, _)| r.end).collect();
        assert_eq!(ends, vec![e1, e2]);
        assert_eq!(recs[1].0.start, e1);
        assert_eq!(recs[0].1, c1);
        assert_eq!(
            pages_of(&b, &recs[0].1),
            vec![(1, page(1, 1)), (2, page(1, 2))]
        );
        assert_eq!(recs[1].1, Record::Intent(i));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), e2);
        assert_eq!(b.url, "s3://x/y");
    }

    #[test]
    fn commits_overwrite_zeros_written_ahead_and_do_not_grow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.buf");
        let (mut b, _) = Buffer::open(&path, "u", 0).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len >= SPARE_MIN, "zeros written ahead at creation: {len}");
        let mut ends = Vec::new();
        for seq in 1..=100 {
            ends.push(append(&mut b, seq, &[1]).1);
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        drop(b);
        let (b, recs) = Buffer::open(&path, "u", 0).unwrap();
        let got: Vec<u64> = recs.iter().map(|(r, _)| r.end).collect();
        assert_eq!(got, ends, "the zeros after the log are no record");
        assert_eq!(b.end(), *ends.last().unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len, "nothing cut");
    }

    #[test]
    fn a_commit_larger_than_a_write_piece_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.buf");
        let (mut b, _) = Buffer::open(&path, "u", 0).unwrap();
        let pgnos: Vec<u32> = (1..=3000).collect();
        let (rec, end) = append(&mut b, 7, &pgnos);
        assert!(end > CHUNK as u64);
        let want = pages_of(&b, &rec);
        drop(b);
        let (b, recs) = Buffer::open(&path, "u", 0).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].1, rec);
        assert_eq!(pages_of(&b, &recs[0].1), want);
        assert_eq!(want[2999], (3000, page(7, 3000)));
    }

    #[test]
    fn a_second_opener_is_refused_while_the_first_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.buf");
        let (_b, _) = Buffer::open(&path, "u", 0).unwrap();
        let e = Buffer::open(&path, "u", 0).unwrap_err();
        assert!(matches!(e, Error::Conflict(_)), "{e}");
    }

    #[test]
    fn rebase_keeps_the_tail_and_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.buf");
        let (mut b, _) = Buffer::open(&path, "u", 0).unwrap();
        let (_, e1) = append(&mut b, 1, &[1]);
        append(&mut b, 2, &[2]);
        b.rebase(42, e1).unwrap();
        assert!(
            Buffer::open(&path, "u", 0).is_err(),
            "still locked after the rename"
        );
        drop(b);
        let (b, recs) = Buffer::open(&path, "u", 0).unwrap();
        assert_eq!(b.base_txid, 42);
        assert_eq!(recs.len(), 1);
        assert_eq!(pages_of(&b, &recs[0].1), vec![(2, page(2, 2))]);
        let aside = b.set_aside().unwrap();
        assert!(aside.exists() && !path.exists());
    }

    #[test]
    fn a_flipped_bit_ends_the_log_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.buf");
        let (mut b, _) = Buffer::open(&path, "u", 0).unwrap();
        let (_, e1) = append(&mut b, 1, &[1]);
        append(&mut b, 2, &[2]);
        drop(b);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[e1 as usize + 40] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let (_, recs) = Buffer::open(&path, "u", 0).unwrap();
        assert_eq!(recs.len(), 1);
    }
}
