//! The replica engine: reads a Litestream replica on object storage.
//!
//! Layers, bottom up: [`location`] (URL → store), [`layout`] (keys), [`plan`] (restore plans),
//! [`meta`] (per-file header + page index), [`version`] (where every page lives at one TXID),
//! [`replica`] (catalog, shared page cache, poller). For the writer, [`writer`] (write buffer,
//! uploads, fencing) and [`compact`] (compaction, snapshots, retention). Nothing here knows SQLite.

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
pub use read::ReadAhead;
pub use registry::{open, Session};
pub use replica::Replica;
pub use stats::StatsSnapshot;
pub use target::{parse_time, parse_txid, Target};
pub use version::Version;
pub use writer::{WriteOptions, WriteStatus, UPLOAD_FAILURE_BOUND};
