//! The read path of one replica: the [`catalog`] of its files and their indexes, the page
//! [`cache`], the [`current`] version, the [`core`] that holds them together, the page reader
//! ([`pages`]: cache, read-ahead, prefetch; [`tree`]: prefetch a level below the pages a scan
//! walks) and the [`follower`] that polls for new files.
//! Depends on the store and the index, never on the replica facade, the writer or the hydrator.

pub(crate) mod cache;
pub(crate) mod catalog;
pub(crate) mod core;
pub(crate) mod current;
pub(crate) mod follower;
pub(crate) mod pages;
pub(crate) mod tree;

pub use pages::ReadAhead;
pub use tree::ChildrenOf;
