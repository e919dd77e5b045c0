//! Local files for everything that is not the main database: journals, temp databases, sort
//! spills. They must never reach the replica (litestream#772).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sqlite_plugin::vars;
use sqlite_plugin::vfs::VfsResult;

/// A plain file on local disk.
pub struct LocalFile {
    file: File,
    path: PathBuf,
    delete_on_close: bool,
}

/// Our private directory for local files, one per process.
fn dir() -> VfsResult<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("litestream-vfs-{}", std::process::id()));
        std::fs::create_dir_all(&d).ok().map(|_| d)
    })
    .as_deref()
    .ok_or(vars::SQLITE_CANTOPEN)
}

/// The local path for a name SQLite gives us. Names are flattened into our directory so a
/// crafted name cannot point outside it.
pub fn local_path(name: &str) -> VfsResult<PathBuf> {
    let flat: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let flat = flat.trim_start_matches('.');
    Ok(dir()?.join(format!(
        "{:016x}-{}",
        fnv1a(name),
        &flat[flat.len().saturating_sub(64)..]
    )))
}

/// FNV-1a: stable across runs and versions, enough to keep flattened names apart.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

impl LocalFile {
    /// Opens (creating) a local file; `None` names an anonymous temp file.
    pub fn open(name: Option<&str>, create: bool, delete_on_close: bool) -> VfsResult<LocalFile> {
        let path = match name {
            Some(n) => local_path(n)?,
            None => {
                static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                dir()?.join(format!("temp-{n}"))
            }
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create || name.is_none())
            .truncate(false)
            .open(&path)
            .map_err(|_| vars::SQLITE_CANTOPEN)?;
        Ok(LocalFile {
            file,
            path,
            delete_on_close: delete_on_close || name.is_none(),
        })
    }

    /// Reads at `offset`; returns the bytes read (short at end of file).
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> VfsResult<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], (offset + done) as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(vars::SQLITE_IOERR_READ),
            }
        }
        Ok(done)
    }

    /// Writes all of `data` at `offset`.
    pub fn write(&self, offset: usize, data: &[u8]) -> VfsResult<usize> {
        self.file
            .write_all_at(data, offset as u64)
            .map_err(|_| vars::SQLITE_IOERR_WRITE)?;
        Ok(data.len())
    }

    /// Truncates to `size` bytes.
    pub fn truncate(&self, size: usize) -> VfsResult<()> {
        self.file
            .set_len(size as u64)
            .map_err(|_| vars::SQLITE_IOERR_TRUNCATE)
    }

    /// Nothing to flush: these are temp databases, sort spills and statement journals, which
    /// die with the process, and super-journals, which never serve crash recovery here (the
    /// main database's pages stay in memory until the transaction is recorded whole in the
    /// write buffer). Skipping their fsyncs leaves one fsync per commit: the buffer's.
    pub fn sync(&self) -> VfsResult<()> {
        Ok(())
    }

    /// Current size.
    pub fn size(&self) -> VfsResult<usize> {
        self.file
            .metadata()
            .map(|m| m.len() as usize)
            .map_err(|_| vars::SQLITE_IOERR_FSTAT)
    }
}

/// The rollback journal of a main database, kept in memory: it only serves a rollback within
/// the process (the transaction's pages are themselves in memory or in an unnamed spill file
/// until recorded whole in the write buffer, so after a crash there is nothing to roll back),
/// and keeping it off named files means two replicas opened under one database name can never
/// share a journal. Past [`JOURNAL_MEM_BUDGET`] it moves to an unnamed temporary file, so that a
/// transaction rewriting gigabytes of existing pages does not hold their old images in memory.
#[derive(Debug, Default)]
pub struct MemFile {
    data: Vec<u8>,
    /// Once spilled: the file and its size (`data` is then empty).
    disk: Option<(File, usize)>,
}

/// Journal bytes held in memory before the journal moves to a temporary file.
pub const JOURNAL_MEM_BUDGET: usize = 16 << 20;

impl MemFile {
    /// Reads at `offset`; returns the bytes read (short at the end).
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> VfsResult<usize> {
        let Some((file, size)) = &self.disk else {
            let Some(rest) = self.data.get(offset..) else {
                return Ok(0);
            };
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            return Ok(n);
        };
        let n = size.saturating_sub(offset).min(buf.len());
        file.read_exact_at(&mut buf[..n], offset as u64)
            .map_err(|_| vars::SQLITE_IOERR_READ)?;
        Ok(n)
    }

    /// Writes all of `data` at `offset`, growing the file.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> VfsResult<usize> {
        let end = offset + data.len();
        if self.disk.is_none() && end > JOURNAL_MEM_BUDGET {
            let file = tempfile::tempfile().map_err(|_| vars::SQLITE_IOERR_WRITE)?;
            file.write_all_at(&self.data, 0)
                .map_err(|_| vars::SQLITE_IOERR_WRITE)?;
            self.disk = Some((file, self.data.len()));
            self.data = Vec::new();
        }
        match &mut self.disk {
            Some((file, size)) => {
                file.write_all_at(data, offset as u64)
                    .map_err(|_| vars::SQLITE_IOERR_WRITE)?;
                *size = (*size).max(end);
            }
            None => {
                if self.data.len() < end {
                    self.data.resize(end, 0);
                }
                self.data[offset..end].copy_from_slice(data);
            }
        }
        Ok(data.len())
    }

    /// Truncates (or extends with zeros) to `size` bytes.
    pub fn truncate(&mut self, size: usize) -> VfsResult<()> {
        match &mut self.disk {
            Some((file, len)) => {
                file.set_len(size as u64)
                    .map_err(|_| vars::SQLITE_IOERR_TRUNCATE)?;
                *len = size;
            }
            None => self.data.resize(size, 0),
        }
        Ok(())
    }

    /// Current size.
    pub fn size(&self) -> usize {
        self.disk.as_ref().map_or(self.data.len(), |(_, n)| *n)
    }

    /// Whether the journal moved to a temporary file.
    pub fn is_spilled(&self) -> bool {
        self.disk.is_some()
    }
}

impl Drop for LocalFile {
    fn drop(&mut self) {
        if self.delete_on_close {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_file_reads_what_was_written() {
        let mut f = MemFile::default();
        assert_eq!(f.write(4, b"abc"), Ok(3));
        let mut buf = [9u8; 10];
        assert_eq!(f.read(0, &mut buf), Ok(7));
        assert_eq!(&buf[..7], b"\0\0\0\0abc");
        assert_eq!(f.read(10, &mut buf), Ok(0));
        f.truncate(5).unwrap();
        assert_eq!(f.size(), 5);
        assert!(!f.is_spilled());
    }

    #[test]
    fn a_journal_past_the_budget_spills_and_reads_the_same() {
        let mut f = MemFile::default();
        let chunk: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 251) as u8).collect();
        let n = JOURNAL_MEM_BUDGET / chunk.len() + 2;
        for i in 0..n {
            let mut c = chunk.clone();
            c[0] = i as u8;
            f.write(i * chunk.len(), &c).unwrap();
        }
        assert!(f.is_spilled());
        assert_eq!(f.size(), n * chunk.len());
        let mut buf = vec![0u8; chunk.len()];
        for i in [0, n / 2, n - 1] {
            assert_eq!(f.read(i * chunk.len(), &mut buf), Ok(chunk.len()));
            assert_eq!(buf[0], i as u8);
            assert_eq!(buf[1..], chunk[1..]);
        }
        // Short at the end, then truncated as SQLite does after a commit.
        assert_eq!(f.read(n * chunk.len() - 3, &mut buf), Ok(3));
        f.truncate(0).unwrap();
        assert_eq!((f.size(), f.read(0, &mut buf)), (0, Ok(0)));
    }

    #[test]
    fn names_cannot_escape_the_directory() {
        let base = dir().unwrap();
        for name in [
            "../../etc/passwd",
            "/etc/passwd-journal",
            "a/../../b",
            "..",
            "x\0y",
        ] {
            let p = local_path(name).unwrap();
            assert_eq!(p.parent(), Some(base), "{name} -> {}", p.display());
        }
        assert_ne!(local_path("a/b").unwrap(), local_path("a_b").unwrap());
    }
}
