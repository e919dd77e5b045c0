//! The engine's integration tests, one test binary (one link instead of six). The supervision
//! tests stay a binary of their own: they set process-wide back-off and idle-release overrides.

#[path = "../common/mod.rs"]
mod common;
mod compact;
mod engine;
mod faults;
mod large_files;
mod large_uploads;
mod pagemap;
