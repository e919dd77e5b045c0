//! The crate's single error type.
//!
//! Where the Go reference implementation (superfly/ltx) has an error string for the same
//! condition, the `Display` text starts with (or equals) Go's text, so logs and tests read the
//! same in both implementations.

/// Everything that can go wrong while decoding, validating or encoding an LTX file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The file does not start with the `LTX1` magic.
    #[error("invalid LTX file")]
    InvalidMagic,

    /// Header flags other than `HEADER_FLAG_NO_CHECKSUM` are set (format v1's `0x1` included).
    #[error("invalid flags: 0x{0:08x}")]
    InvalidFlags(u32),

    /// The page size is not a power of two in 512..=65536.
    #[error("invalid page size: {0}")]
    InvalidPageSize(u32),

    /// A header rule of the format (TXIDs, WAL fields, pre-apply checksum) is broken.
    /// The message is Go's `Header.Validate` text.
    #[error("{0}")]
    InvalidHeader(String),

    /// A trailer rule is broken (post-apply or file checksum absent, present or malformed).
    /// The message is Go's `Trailer.Validate` text.
    #[error("{0}")]
    InvalidTrailer(String),

    /// Fewer bytes are available than the structure being read needs.
    #[error("truncated {what}: need {needed} bytes, got {got}")]
    Truncated {
        /// Which structure was being read.
        what: &'static str,
        /// Bytes the structure needs.
        needed: u64,
        /// Bytes that were available.
        got: u64,
    },

    /// A page header carries page number 0 without being the all-zero end marker.
    #[error("page number required")]
    PageNumberRequired,

    /// A page header carries flags other than 0 (legacy LZ4 frame) or 1 (size + LZ4 block).
    #[error("invalid page header flags: 0x{flags:04x} (pgno {pgno})")]
    InvalidPageHeaderFlags {
        /// Page number in the offending header.
        pgno: u32,
        /// The flags found.
        flags: u16,
    },

    /// A page frame is structurally wrong (bad size prefix, bad LZ4 frame, wrong length, ...).
    #[error("invalid page frame (pgno {pgno}): {reason}")]
    InvalidPageFrame {
        /// Page number from the frame header (0 if it could not be read).
        pgno: u32,
        /// What is wrong, with the numbers involved.
        reason: String,
    },

    /// The LZ4 decompressor rejected a page's compressed bytes.
    #[error("decompress page {pgno}: {reason}")]
    Decompress {
        /// Page number from the frame header.
        pgno: u32,
        /// The decompressor's complaint.
        reason: String,
    },

    /// A page buffer does not have the file's page size.
    #[error("invalid page buffer size: {got}, expecting {expected}")]
    PageSize {
        /// The file's page size.
        expected: u32,
        /// Length of the buffer that was passed.
        got: u64,
    },

    /// A page number exceeds the database size recorded in the header.
    #[error("page number {pgno} out-of-bounds for commit size {commit}")]
    PageOutOfBounds {
        /// The page number.
        pgno: u32,
        /// The header's commit (database size in pages).
        commit: u32,
    },

    /// The SQLite lock page (PENDING_BYTE page) appears in the file; it must never be stored.
    #[error("lock page {pgno} must not be stored")]
    LockPage {
        /// The lock page number for this page size.
        pgno: u32,
    },

    /// Page numbers of an incremental file are not strictly ascending.
    #[error("out-of-order page numbers: {prev},{pgno}")]
    PageOrder {
        /// The previous page number.
        prev: u32,
        /// The page number that followed it.
        pgno: u32,
    },

    /// A snapshot's pages are not 1, 2, 3, ... (skipping only the lock page).
    /// `prev == 0` means the first page was not page 1.
    #[error("nonsequential page numbers in snapshot transaction: {prev},{pgno}")]
    SnapshotSequence {
        /// The previous page number (0 before the first page).
        prev: u32,
        /// The page number that followed it.
        pgno: u32,
    },

    /// A snapshot stops before its commit size: pages at the end of the database are missing.
    #[error("snapshot ends at page {last} but commit size is {commit}")]
    SnapshotIncomplete {
        /// Last page present (0 if none).
        last: u32,
        /// The header's commit.
        commit: u32,
    },

    /// The page index (or its length field) is malformed or disagrees with the page frames.
    #[error("invalid page index: {0}")]
    InvalidIndex(String),

    /// The file checksum in the trailer differs from the one computed over the file.
    #[error("file checksum mismatch: trailer has {expected:016x}, computed {actual:016x}")]
    ChecksumMismatch {
        /// The checksum stored in the trailer.
        expected: u64,
        /// The checksum computed over the file's contents.
        actual: u64,
    },

    /// A snapshot's post-apply checksum differs from the database checksum of its pages.
    #[error(
        "post-apply checksum in trailer ({expected:016x}) does not match calculated checksum ({actual:016x})"
    )]
    PostApplyChecksumMismatch {
        /// The post-apply checksum (from the trailer, or passed to the encoder).
        expected: u64,
        /// The database checksum computed from the pages.
        actual: u64,
    },

    /// [`compact`](crate::compact) was given no input.
    #[error("at least one input file required")]
    CompactNoInputs,

    /// One input of [`compact`](crate::compact) is malformed or fails verification.
    #[error("input {input}: {source}")]
    CompactInput {
        /// Position of the input in the slice given to `compact`.
        input: usize,
        /// What is wrong with it.
        #[source]
        source: Box<Error>,
    },

    /// Inputs of one compaction have different page sizes.
    #[error(
        "input files have mismatched page sizes: input {input} has {got}, the first has {expected}"
    )]
    CompactPageSize {
        /// Position of the first input whose page size differs.
        input: usize,
        /// Page size of the first input.
        expected: u32,
        /// Page size of input `input`.
        got: u32,
    },

    /// An input does not continue the one before it: it starts after the previous one's
    /// `max + 1` (a gap), or does not go past its end.
    #[error(
        "non-contiguous transaction ids in input files: input {input} ({min:016x},{max:016x}) does not continue ({prev_min:016x},{prev_max:016x})"
    )]
    NonContiguous {
        /// Position of the input that does not continue its predecessor.
        input: usize,
        /// TXID range of the previous input.
        prev_min: u64,
        /// TXID range of the previous input.
        prev_max: u64,
        /// TXID range of input `input`.
        min: u64,
        /// TXID range of input `input`.
        max: u64,
    },

    /// The output tracks database checksums but an input does not, so its pre- or post-apply
    /// checksum is unknown.
    #[error(
        "input {input} does not track database checksums; compact with HEADER_FLAG_NO_CHECKSUM"
    )]
    CompactChecksumUntracked {
        /// Position of the input.
        input: usize,
    },

    /// A compaction starting at TXID 1 (a snapshot) would lack a page below its commit size:
    /// no input holds it.
    #[error("compacted snapshot lacks page {pgno} of {commit}: no input holds it")]
    CompactMissingPage {
        /// The first missing page.
        pgno: u32,
        /// Database size of the output, in pages.
        commit: u32,
    },

    /// The newest input holding a page is followed by an input that truncates the database
    /// below that page, and no later input writes it again although the database grows back
    /// over it: applying the inputs in order leaves a hole a single file cannot express.
    #[error(
        "page {pgno} of input {input} is truncated by a later input (database of {truncated_to} pages) and not written again when the database regrows to {commit} pages"
    )]
    CompactTruncatedPage {
        /// The page.
        pgno: u32,
        /// Position of the newest input holding it.
        input: usize,
        /// Smallest database size among the inputs after `input`.
        truncated_to: u32,
        /// Database size of the output.
        commit: u32,
    },

    /// The [`FileSource`](crate::FileSource) a file is read from failed.
    #[error("cannot read the LTX file: {0}")]
    Input(String),

    /// The writer an [`Encoder`](crate::Encoder) streams into failed; the output is incomplete
    /// and must be discarded.
    #[error("cannot write the LTX file: {0}")]
    Output(String),
}

/// Result type used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;
