//! CRC-64/GO-ISO checksums: page, database and file checksums.

use crc_fast::{CrcAlgorithm, Digest};

/// ORed into every stored page, database and file checksum so a real checksum is never 0;
/// 0 is reserved for "not tracked".
pub const CHECKSUM_FLAG: u64 = 1 << 63;

// Go's `crc64.MakeTable(crc64.ISO)`. The CRC of each write-buffer record was the largest
// user-space cost of a `synchronous=OFF` commit (perf): byte-at-a-time tables first, then
// slice-by-16 at 15% of its CPU, hence the carry-less-multiply implementation.
const CRC64: CrcAlgorithm = CrcAlgorithm::Crc64GoIso;

fn digest() -> Digest {
    Digest::new(CRC64)
}

/// Plain CRC-64/GO-ISO of `data` (no flag bit). Check value for `"123456789"` is
/// `0xB90956C775A41001`.
pub fn crc64(data: &[u8]) -> u64 {
    crc_fast::checksum(CRC64, data)
}

/// Plain CRC-64/GO-ISO computed piece by piece: `crc64` of the concatenation of what was fed.
#[derive(Clone)]
pub struct Crc64Digest(Digest);

impl Crc64Digest {
    /// Starts an empty digest.
    pub fn new() -> Self {
        Crc64Digest(digest())
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The CRC of everything fed, as `crc64` gives it.
    pub fn finish(self) -> u64 {
        self.0.finalize()
    }
}

impl Default for Crc64Digest {
    fn default() -> Self {
        Self::new()
    }
}

/// Checksum of one database page: `CHECKSUM_FLAG | crc64(pgno as u32 BE ‖ data)`.
///
/// `data` is the uncompressed page. These are the terms of the database checksum.
pub fn checksum_page(pgno: u32, data: &[u8]) -> u64 {
    let mut d = digest();
    d.update(&pgno.to_be_bytes());
    d.update(data);
    CHECKSUM_FLAG | d.finalize()
}

/// Rolling checksum of a whole database: `CHECKSUM_FLAG | XOR of checksum_page(p)` over every
/// page except the lock page.
///
/// XOR makes it order-independent and lets a page be removed by XORing its checksum in again,
/// which is how incremental updates work (`xor_page(old); xor_page(new)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatabaseChecksum(u64);

impl DatabaseChecksum {
    /// Checksum of an empty database. It is the flag alone, not 0, because 0 means "untracked".
    pub const EMPTY: DatabaseChecksum = DatabaseChecksum(CHECKSUM_FLAG);

    /// Starts from an empty database.
    pub fn new() -> Self {
        Self::EMPTY
    }

    /// Continues from a previously computed database checksum (e.g. a pre-apply checksum).
    pub fn from_value(value: u64) -> Self {
        DatabaseChecksum(value | CHECKSUM_FLAG)
    }

    /// Adds or removes (the operation is its own inverse) one page checksum.
    pub fn xor_page(&mut self, page_checksum: u64) {
        self.0 = CHECKSUM_FLAG | (self.0 ^ page_checksum);
    }

    /// Adds or removes the page `pgno` with contents `data`.
    pub fn xor_page_data(&mut self, pgno: u32, data: &[u8]) {
        self.xor_page(checksum_page(pgno, data));
    }

    /// The checksum value as stored in headers and trailers.
    pub fn value(self) -> u64 {
        self.0
    }
}

impl Default for DatabaseChecksum {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// Incremental file checksum, shared by the encoder and the decoder so both hash exactly the
/// same byte sequence.
///
/// What goes in (format §7.4): the 100-byte header; per page its 6-byte page header, the 4-byte
/// size prefix (current encoding only) and the **uncompressed** page; the 6-byte zero page
/// header; the index varints, terminator and IndexLen; the post-apply checksum. The compressed
/// bytes are never hashed, which is why compressor output need not be canonical.
#[derive(Clone)]
pub struct FileHasher {
    digest: Digest,
}

impl FileHasher {
    /// Starts an empty hash.
    pub fn new() -> Self {
        FileHasher { digest: digest() }
    }

    /// Feeds bytes; successive calls are equivalent to one call over the concatenation.
    pub fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    /// The file checksum as stored in the trailer (flag bit set).
    pub fn finish(self) -> u64 {
        CHECKSUM_FLAG | self.digest.finalize()
    }
}

impl Default for FileHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FileHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileHasher").finish_non_exhaustive()
    }
}
