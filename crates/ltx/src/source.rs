//! Where a [`PageReader`](crate::PageReader) reads a file from: bytes in memory, or anything
//! that can read a byte range (the engine's files on disk), so that a file need not be held in
//! memory to be verified or merged.

use crate::error::{Error, Result};

/// A whole LTX file, read by range.
pub trait FileSource {
    /// The file's size in bytes.
    fn size(&self) -> u64;

    /// The `len` bytes at `offset`: borrowed where the file is in memory, otherwise read into
    /// `buf`. A range beyond the end is [`Error::Truncated`]; a failed read is
    /// [`Error::Input`].
    fn bytes<'s>(&'s self, offset: u64, len: usize, buf: &'s mut Vec<u8>) -> Result<&'s [u8]>;
}

/// The positions of the `len` bytes at `offset` in a file of `size` bytes, or
/// [`Error::Truncated`] when they run past its end: the bounds every [`FileSource`] keeps.
pub fn source_range(offset: u64, len: usize, size: u64) -> Result<std::ops::Range<usize>> {
    let end = offset.checked_add(len as u64).filter(|&end| end <= size);
    match (usize::try_from(offset), end.map(usize::try_from)) {
        (Ok(start), Some(Ok(end))) => Ok(start..end),
        _ => Err(Error::Truncated {
            what: "file",
            needed: offset.saturating_add(len as u64),
            got: size,
        }),
    }
}

impl<T: AsRef<[u8]> + ?Sized> FileSource for &T {
    fn size(&self) -> u64 {
        self.as_ref().len() as u64
    }

    fn bytes<'s>(&'s self, offset: u64, len: usize, _: &'s mut Vec<u8>) -> Result<&'s [u8]> {
        let all = self.as_ref();
        Ok(&all[source_range(offset, len, all.len() as u64)?])
    }
}
