//! Test support for the `litestream` VFS workspace.
//!
//! * [`s3`]: an embedded S3-compatible server (s3s-fs) with request counters and optional
//!   latency, also available as the `s3-server` binary for benchmarks.
//! * [`golitestream`]: wrappers around the Go `litestream` 0.5.17 binary, the compatibility
//!   oracle: replicate a primary database, list LTX files, restore.
//! * [`fault`]: a fault-injecting HTTP proxy (errors, resets, stalls, truncated bodies, stale
//!   listings, latency, bandwidth caps) in front of the S3 server, seeded and counted.
//! * [`primary`]: a small rusqlite helper for the primary database and for checking restored
//!   copies.
//!
//! This crate is for tests and benchmarks only; it favours clear error messages (via
//! [`anyhow`]) over a typed error API.

#![warn(missing_docs)]

pub mod fault;
pub mod golitestream;
pub mod primary;
pub mod s3;

pub use primary::PrimaryDb;
pub use s3::{RequestStats, S3Server};
