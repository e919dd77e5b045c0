//! Files on local disk that stand in for memory while a large LTX file is encoded, uploaded or
//! merged, so that memory follows a page rather than the file. A spool file is removed when
//! it is dropped; one left by a crash is truncated by the next use of its name.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Above this many bytes, a file being encoded, uploaded or merged goes through a spool file
/// rather than memory.
pub(crate) const SPOOL_ABOVE: u64 = 32 << 20;

/// Where encoded files are written: a buffered writer in front of the spool file.
pub(crate) type SpoolWriter<'a> = BufWriter<&'a File>;

/// A temporary file at a fixed path, removed on drop.
#[derive(Debug)]
pub(crate) struct Spool {
    path: PathBuf,
    file: File,
}

impl Spool {
    /// Creates (or truncates) the file at `path`.
    pub(crate) fn create(path: PathBuf) -> Result<Spool> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| spool_error(&path, "cannot create", &e))?;
        Ok(Spool { path, file })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A writer that appends from the start of the file; large writes, few syscalls.
    pub(crate) fn writer(&self) -> SpoolWriter<'_> {
        BufWriter::with_capacity(1 << 20, &self.file)
    }

    /// The file, for a download to append to.
    pub(crate) fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// The file as an LTX source, once written: its size is taken now.
    pub(crate) fn source(&self) -> Result<SpoolSource<'_>> {
        let size = (&self.file)
            .seek(SeekFrom::End(0))
            .map_err(|e| self.error("cannot size", &e))?;
        Ok(SpoolSource { spool: self, size })
    }

    fn error(&self, what: &str, e: &std::io::Error) -> Error {
        spool_error(&self.path, what, e)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), "cannot remove a spool file: {e}");
            }
        }
    }
}

/// A written spool file, read by range.
#[derive(Debug)]
pub(crate) struct SpoolSource<'a> {
    spool: &'a Spool,
    size: u64,
}

impl SpoolSource<'_> {
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The checksum the LTX file in the spool ends with, read through the source's own ranged
    /// reads.
    pub(crate) fn file_checksum(&self) -> Result<u64> {
        let mut buf = Vec::new();
        let end = ltx::FileSource::bytes(self, self.size.saturating_sub(8), 8, &mut buf).map_err(
            |e| Error::Buffer {
                path: self.spool.path.display().to_string(),
                detail: format!("cannot read the spool file's checksum: {e}"),
            },
        )?;
        Ok(ltx::Trailer::file_checksum_at_end(end).unwrap_or(0))
    }
}

impl ltx::FileSource for SpoolSource<'_> {
    fn size(&self) -> u64 {
        self.size
    }

    fn bytes<'s>(&'s self, offset: u64, len: usize, buf: &'s mut Vec<u8>) -> ltx::Result<&'s [u8]> {
        ltx::source_range(offset, len, self.size)?;
        buf.resize(len, 0);
        self.spool
            .file
            .read_exact_at(buf, offset)
            .map_err(|e| ltx::Error::Input(format!("{}: {e}", self.spool.path.display())))?;
        Ok(buf)
    }
}

fn spool_error(path: &Path, what: &str, e: &std::io::Error) -> Error {
    Error::Buffer {
        path: path.display().to_string(),
        detail: format!("{what} the spool file: {e}"),
    }
}
