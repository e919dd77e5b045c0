//! What the caller chooses and sees of hydration.

use std::path::PathBuf;

/// How to hydrate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HydrationOptions {
    /// Where the file lives; `None` is a temporary file deleted when the replica closes.
    pub path: Option<PathBuf>,
}

/// Where hydration stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HydrationState {
    /// Downloading the database.
    Building,
    /// The file is complete at `txid` and serves reads at that TXID.
    Ready,
    /// Another process holds the file; this one reads remotely.
    Busy,
    /// Hydration stopped; reads stay remote.
    Failed(String),
}

/// A snapshot of the hydrator's progress, for PRAGMAs and stats.
#[derive(Clone, Debug)]
pub struct HydrationStatus {
    /// State.
    pub state: HydrationState,
    /// The local file.
    pub path: PathBuf,
    /// TXID the file holds (0 while building).
    pub txid: u64,
    /// Percent of pages written in the current build (100 when ready).
    pub progress: f64,
    /// Bytes downloaded by hydration.
    pub bytes: u64,
    /// LTX files (or ranges of them) fetched by hydration.
    pub files: u64,
    /// Pages read from the file by connections.
    pub reads: u64,
}
