//! Test support for the `litestream` VFS workspace.
//!
//! * [`s3`]: an embedded S3-compatible server (s3s-fs) with request counters and optional
//!   latency, also available as the `s3-server` binary for benchmarks.
//! * [`golitestream`]: wrappers around the Go `litestream` 0.5.17 binary, the compatibility
//!   oracle: replicate a primary database, list LTX files, restore.
//! * [`fault`]: a fault-injecting HTTP proxy (errors, resets, stalls, truncated bodies, stale
//!   listings, latency, bandwidth caps) in front of the S3 server, seeded and counted.
//! * [`azurite`] and [`gcs`]: the Azure and Google Cloud Storage emulators (Azurite from npm,
//!   fake-gcs-server from PyPI behind a front that adds the XML API's object PUT), started on
//!   127.0.0.1 by the tests; [`emulator`] runs them as child processes.
//! * [`backend`]: file, S3, GCS or Azure behind one type, for tests run against each.
//! * [`http`]: one blocking HTTP request, for control endpoints and emulator setup; its
//!   HTTP/1.1 parsing (on httparse) also serves the fault proxy.
//! * [`primary`]: a small rusqlite helper for the primary database and for checking restored
//!   copies.
//!
//! This crate is for tests and benchmarks only; it favours clear error messages (via
//! [`anyhow`]) over a typed error API.

#![warn(missing_docs)]

pub mod azurite;
pub mod backend;
pub mod emulator;
pub mod fault;
pub mod gcs;
pub mod golitestream;
pub mod http;
pub mod primary;
pub mod s3;

pub use primary::PrimaryDb;
pub use s3::{RequestStats, S3Server};
