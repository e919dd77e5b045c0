//! Codec for LTX (Lite Transaction) files, the format Litestream 0.5 replicates SQLite
//! databases in.
//!
//! Pure: works on byte slices or a caller's [`FileSource`], does no I/O of its own. Reads both page encodings of format v3 (current
//! size-prefixed LZ4 blocks and legacy per-page LZ4 frames) and writes the current one.
//!
//! Entry points:
//! * random access (a VFS): [`page_index_location`] / [`decode_page_index`] on the file's tail,
//!   then [`decode_page_frame`] on one frame's bytes;
//! * whole files: [`decode_file`], [`verify_file`], [`decode_file_with`];
//! * page by page: [`PageReader`] (verifies as it goes, one page of memory);
//! * writing: [`Encoder`]; merging consecutive files into one: [`compact`].

// Product code returns errors; it never unwraps, panics or leaves debugging output behind.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::dbg_macro
)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checksum;
mod compact;
mod encoder;
mod error;
mod file;
mod filename;
mod frame;
mod header;
mod index;
mod source;

pub use checksum::{
    checksum_page, crc64, Crc64Digest, DatabaseChecksum, FileHasher, CHECKSUM_FLAG,
};
pub use compact::{compact, compact_into, Compacted};
pub use encoder::Encoder;
pub use error::{Error, Result};
pub use file::{decode_file, decode_file_with, verify_file, DecodedFile, FileSummary, PageReader};
pub use filename::{format_filename, parse_filename};
pub use frame::{decode_page_frame, max_compressed_size, SIZE_PREFIX_SIZE};
pub use header::{
    is_valid_page_size, lock_pgno, Header, Trailer, HEADER_FLAG_NO_CHECKSUM, HEADER_SIZE,
    INDEX_LEN_SIZE, MAGIC, MIN_FILE_SIZE, PAGE_HEADER_FLAG_SIZE, PAGE_HEADER_SIZE, TRAILER_SIZE,
};
pub use index::{
    decode_page_index, page_index_location, visit_page_index, IndexLocation, PageIndexDecode,
    PageIndexEntry, INDEX_TAIL_SIZE,
};
pub use source::{source_range, FileSource};
