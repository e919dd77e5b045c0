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
/// the process (the transaction's pages are themselves in memory until recorded whole in the
/// write buffer, so after a crash there is nothing to roll back), and keeping it off disk means
/// two replicas opened under one database name can never share a journal file.
#[derive(Debug, Default)]
pub struct MemFile {
    data: Vec<u8>,
}

impl MemFile {
    /// Reads at `offset`; returns the bytes read (short at the end).
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> usize {
        let Some(rest) = self.data.get(offset..) else {
            return 0;
        };
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        n
    }

    /// Writes all of `data` at `offset`, growing the file.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> usize {
        if self.data.len() < offset + data.len() {
            self.data.resize(offset + data.len(), 0);
        }
        self.data[offset..offset + data.len()].copy_from_slice(data);
        data.len()
    }

    /// Truncates (or extends with zeros) to `size` bytes.
    pub fn truncate(&mut self, size: usize) {
        self.data.resize(size, 0);
    }

    /// Current size.
    pub fn size(&self) -> usize {
        self.data.len()
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
        assert_eq!(f.write(4, b"abc"), 3);
        let mut buf = [9u8; 10];
        assert_eq!(f.read(0, &mut buf), 7);
        assert_eq!(&buf[..7], b"\0\0\0\0abc");
        assert_eq!(f.read(10, &mut buf), 0);
        f.truncate(5);
        assert_eq!(f.size(), 5);
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
