//! What the files say, without I/O policy: restore plans ([`plan`]), each file's header and page
//! index ([`meta`], compacted by [`frames`]), where a page's frame lies (`loc`), and the database
//! at one TXID ([`version`], whose page map is `pagemap`). Uses the store to fetch a file's index; nothing above it.

pub mod frames;
pub(crate) mod head;
pub(crate) mod loc;
pub mod meta;
mod pagemap;
pub mod plan;
#[cfg(test)]
mod testing;
pub mod version;
