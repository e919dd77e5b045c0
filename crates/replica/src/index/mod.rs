//! What the files say, without I/O policy: restore plans ([`plan`]), each file's header and page
//! index ([`meta`]), where a page's frame lies (`loc`), and the database at one TXID
//! ([`version`]). Uses the store to fetch a file's index; nothing above it.

pub(crate) mod head;
pub(crate) mod loc;
pub mod meta;
pub mod plan;
pub mod version;
