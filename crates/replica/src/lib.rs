//! The replica engine: reads a Litestream replica on object storage, and writes one.
//!
//! Rooms, bottom up, each using only those before it: [`store`] (URL → store, requests, key
//! layouts, listings), [`index`] (restore plans, per-file header + page index, versions),
//! `read` (catalog, page cache, current version, page reader, follower), [`write`](mod@write) (buffer,
//! writer, uploads, compaction) and [`hydrate`]; then the [`Replica`] facade over them and the
//! process registry ([`open`], [`Session`]). Nothing here knows SQLite. See
//! docs/architecture.md.

// Product code returns errors; it never unwraps, panics or leaves debugging output behind.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::dbg_macro
)]

pub mod error;
pub mod hydrate;
pub mod index;
mod options;
mod panics;
mod read;
mod registry;
pub mod replica;
pub mod runtime;
pub mod stats;
pub mod store;
pub mod supervise;
pub mod target;
pub mod write;

// The modules' former paths, which tests and the VFS name.
pub use index::{meta, plan, version};
pub use store::{layout, location, remote};
pub use write::{compact, writer};

pub use compact::{CompactionOptions, CompactionReport, Compactor};
pub use error::{Error, Result};
pub use hydrate::{HydrationOptions, HydrationState, HydrationStatus, LocalReader};
pub use options::{ReplicaOptions, DEFAULT_CACHE_SIZE, DEFAULT_POLL_INTERVAL};
pub use read::{ChildrenOf, ReadAhead};
pub use registry::{open, Session};
pub use replica::Replica;
pub use stats::StatsSnapshot;
pub use target::{parse_time, parse_txid, Target};
pub use version::Version;
pub use writer::{TxPages, WriteOptions, WriteStatus, UPLOAD_FAILURE_BOUND};
