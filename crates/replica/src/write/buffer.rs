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
//! A record whose bytes end early or whose CRC fails is a commit that never returned: recovery
//! drops it and everything after it. The file is locked (`flock`) while a writer uses it.
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

use bytes::Bytes;

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"LSWBUF01";
const KIND_COMMIT: u8 = 1;
const KIND_INTENT: u8 = 2;
/// Zeros kept ahead of the last record: at least this much, else it is extended...
const SPARE_LOW: u64 = 64 << 10;
/// ...by an eighth of the log, within these bounds.
const SPARE_MIN: u64 = 1 << 20;
const SPARE_MAX: u64 = 16 << 20;
const ZEROS: [u8; 64 << 10] = [0; 64 << 10];

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
    /// Changed pages, ascending.
    pub pages: Vec<(u32, Bytes)>,
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
    file: File,
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
            file,
            path: path.to_path_buf(),
            end: 0,
            len,
            base_txid: 0,
            url: url.to_string(),
        };
        if len == 0 {
            buf.rewrite(new_base, &[])?;
            return Ok((buf, Vec::new()));
        }
        let mut bytes = vec![0u8; len as usize];
        buf.file
            .read_exact_at(&mut bytes, 0)
            .map_err(|e| err(path, format!("cannot read: {e}")))?;
        let (base_txid, file_url, header_len) = parse_header(&bytes).ok_or_else(|| {
            err(
                path,
                "not a litestream write buffer (bad header); move it away if it is not needed",
            )
        })?;
        buf.base_txid = base_txid;
        buf.url = file_url;
        let mut records = Vec::new();
        let mut pos = header_len;
        while let Some((rec, next)) = parse_record(&bytes, pos) {
            records.push((pos as u64..next as u64, rec));
            pos = next;
        }
        buf.end = pos as u64;
        if bytes[pos..].iter().any(|b| *b != 0) {
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

    /// Appends `rec`; with `sync`, returns only once it is on disk (one `fdatasync`). Returns
    /// where it ends. On failure the file is cut back, so a failed append leaves no torn record
    /// behind.
    pub(crate) fn append(&mut self, rec: &Record, sync: bool) -> Result<u64> {
        let bytes = encode_record(rec);
        let at = self.end;
        let end = at + bytes.len() as u64;
        let r = self
            .file
            .write_all_at(&bytes, at)
            .and_then(|()| keep_spare(&self.file, self.len, end))
            .and_then(|len| {
                self.len = len;
                if sync {
                    self.file.sync_data()
                } else {
                    Ok(())
                }
            });
        if let Err(e) = r {
            let _ = self.file.set_len(at);
            self.len = at;
            return Err(err(&self.path, format!("cannot append: {e}")));
        }
        self.end = end;
        Ok(self.end)
    }

    /// Replaces the buffer with one based on `base_txid` that keeps the bytes from `keep_from`
    /// on (the records not uploaded yet): tmp file, fsync, rename, directory fsync. Returns
    /// how far the kept records moved (new offset = old offset - shift, as a signed delta).
    pub(crate) fn rebase(&mut self, base_txid: u64, keep_from: u64) -> Result<i64> {
        let mut kept = vec![0u8; (self.end - keep_from) as usize];
        self.file
            .read_exact_at(&mut kept, keep_from)
            .map_err(|e| err(&self.path, format!("cannot read: {e}")))?;
        let header_len = header_bytes(base_txid, &self.url).len() as i64;
        self.rewrite(base_txid, &kept)?;
        Ok(keep_from as i64 - header_len)
    }

    fn rewrite(&mut self, base_txid: u64, records: &[u8]) -> Result<()> {
        let header = header_bytes(base_txid, &self.url);
        let tmp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<File> {
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(&header)?;
            f.write_all(records)?;
            Ok(f)
        };
        let f =
            write().map_err(|e| err(&self.path, format!("cannot write {}: {e}", tmp.display())))?;
        let end = (header.len() + records.len()) as u64;
        let len = keep_spare(&f, end, end)
            .and_then(|len| f.sync_all().map(|()| len))
            .map_err(|e| err(&self.path, format!("cannot write {}: {e}", tmp.display())))?;
        // Locked before it takes the name, so no other process can take it in between.
        lock(&f, &self.path)?;
        std::fs::rename(&tmp, &self.path)
            .map_err(|e| err(&self.path, format!("cannot replace it: {e}")))?;
        sync_dir(&self.path)?;
        self.file = f;
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

/// Writes zeros after `end` in a file `len` long when fewer than `SPARE_LOW` bytes of them are
/// left, so that the next commits change no file size; returns the new length. The sync that
/// follows covers them.
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

fn parse_header(bytes: &[u8]) -> Option<(u64, String, usize)> {
    let mut r = Reader(bytes);
    if r.take(8)? != MAGIC {
        return None;
    }
    let base = r.u64()?;
    let n = r.u32()? as usize;
    let url = String::from_utf8(r.take(n)?.to_vec()).ok()?;
    let len = 8 + 8 + 4 + n;
    let crc = r.u64()?;
    (crc == ltx::crc64(&bytes[..len])).then_some((base, url, len + 8))
}

fn encode_record(rec: &Record) -> Vec<u8> {
    // Kind and length first, the length patched in once the body is written: one buffer, one
    // copy of the pages.
    let mut body = vec![0u8; 5];
    let kind = match rec {
        Record::Commit(c) => {
            body.reserve(28 + c.pages.len() * (4 + c.page_size as usize) + 8);
            body.extend_from_slice(&c.seq.to_be_bytes());
            body.extend_from_slice(&c.commit.to_be_bytes());
            body.extend_from_slice(&c.page_size.to_be_bytes());
            body.extend_from_slice(&c.ts_ms.to_be_bytes());
            body.extend_from_slice(&(c.pages.len() as u32).to_be_bytes());
            for (pgno, page) in &c.pages {
                body.extend_from_slice(&pgno.to_be_bytes());
                body.extend_from_slice(page);
            }
            KIND_COMMIT
        }
        Record::Intent(i) => {
            body.extend_from_slice(&i.txid.to_be_bytes());
            body.extend_from_slice(&i.last_seq.to_be_bytes());
            body.extend_from_slice(&i.checksum.to_be_bytes());
            KIND_INTENT
        }
    };
    let mut out = body;
    out[0] = kind;
    let len = (out.len() - 5) as u32;
    out[1..5].copy_from_slice(&len.to_be_bytes());
    let crc = ltx::crc64(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// The record at `pos` and where it ends, if it is complete and intact.
fn parse_record(bytes: &[u8], pos: usize) -> Option<(Record, usize)> {
    let mut r = Reader(bytes.get(pos..)?);
    let kind = r.take(1)?[0];
    let len = r.u32()? as usize;
    let body = r.take(len)?;
    let crc = r.u64()?;
    let end = pos + 5 + len;
    if crc != ltx::crc64(&bytes[pos..end]) {
        return None;
    }
    let mut b = Reader(body);
    let rec = match kind {
        KIND_COMMIT => {
            let seq = b.u64()?;
            let commit = b.u32()?;
            let page_size = b.u32()?;
            let ts_ms = b.u64()? as i64;
            let n = b.u32()? as usize;
            let mut pages = Vec::with_capacity(n);
            for _ in 0..n {
                let pgno = b.u32()?;
                pages.push((pgno, Bytes::copy_from_slice(b.take(page_size as usize)?)));
            }
            Record::Commit(Commit {
                seq,
                commit,
                page_size,
                ts_ms,
                pages,
            })
        }
        KIND_INTENT => Record::Intent(Intent {
            txid: b.u64()?,
            last_seq: b.u64()?,
            checksum: b.u64()?,
        }),
        _ => return None,
    };
    Some((rec, end + 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(seq: u64, pgnos: &[u32]) -> Record {
        Record::Commit(Commit {
            seq,
            commit: 10,
            page_size: 512,
            ts_ms: 1_700_000_000_000 + seq as i64,
            pages: pgnos
                .iter()
                .map(|&p| (p, Bytes::from(vec![(p as u8) ^ (seq as u8); 512])))
                .collect(),
        })
    }

    #[test]
    fn records_survive_reopen_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b").join("app.buf");
        let (mut b, recs) = Buffer::open(&path, "s3://x/y", 0).unwrap();
        assert!(recs.is_empty());
        let e1 = b.append(&commit(1, &[1, 2]), true).unwrap();
        let intent = Record::Intent(Intent {
            txid: 5,
            last_seq: 1,
            checksum: 77,
        });
        let e2 = b.append(&intent, true).unwrap();
        let e3 = b.append(&commit(2, &[3]), true).unwrap();
        drop(b);
        // Tear the last record: its last byte never reached the disk.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(e3 - 1).unwrap();
        drop(f);
        let (b, recs) = Buffer::open(&path, "s3://x/y", 0).unwrap();
        let ends: Vec<u64> = recs.iter().map(|(r, _)| r.end).collect();
        assert_eq!(ends, vec![e1, e2]);
        assert_eq!(recs[1].0.start, e1);
        assert_eq!(recs[0].1, commit(1, &[1, 2]));
        assert_eq!(recs[1].1, intent);
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
            ends.push(b.append(&commit(seq, &[1]), true).unwrap());
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
        let e1 = b.append(&commit(1, &[1]), true).unwrap();
        b.append(&commit(2, &[2]), true).unwrap();
        b.rebase(42, e1).unwrap();
        assert!(
            Buffer::open(&path, "u", 0).is_err(),
            "still locked after the rename"
        );
        drop(b);
        let (b, recs) = Buffer::open(&path, "u", 0).unwrap();
        assert_eq!(b.base_txid, 42);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].1, commit(2, &[2]));
        let aside = b.set_aside().unwrap();
        assert!(aside.exists() && !path.exists());
    }

    #[test]
    fn a_flipped_bit_ends_the_log_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.buf");
        let (mut b, _) = Buffer::open(&path, "u", 0).unwrap();
        let e1 = b.append(&commit(1, &[1]), true).unwrap();
        b.append(&commit(2, &[2]), true).unwrap();
        drop(b);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[e1 as usize + 40] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let (_, recs) = Buffer::open(&path, "u", 0).unwrap();
        assert_eq!(recs.len(), 1);
    }
}
