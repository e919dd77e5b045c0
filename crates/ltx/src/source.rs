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

impl<T: AsRef<[u8]> + ?Sized> FileSource for &T {
    fn size(&self) -> u64 {
        self.as_ref().len() as u64
    }

    fn bytes<'s>(&'s self, offset: u64, len: usize, _: &'s mut Vec<u8>) -> Result<&'s [u8]> {
        let all = self.as_ref();
        usize::try_from(offset)
            .ok()
            .and_then(|start| all.get(start..start.checked_add(len)?))
            .ok_or(Error::Truncated {
                what: "file",
                needed: offset.saturating_add(len as u64),
                got: all.len() as u64,
            })
    }
}
