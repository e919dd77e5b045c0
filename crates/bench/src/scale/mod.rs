//! The scale suite (`BENCH_SUITES=scale`, issue #14): our VFS against the Go VFS on databases
//! of 1 M to 26 M pages (4 to 100 GB), following a live primary.
//!
//! * [`pages`]: the database, page by page, computed from the page number;
//! * [`snapshot`]: streams it into an LTX snapshot; [`dataset`]: the cached replicas;
//! * [`live`]: the live primary, level-0 files at 10 commits a second;
//! * [`suite`]: the driver side, one runner process per (size, target, workload), with the
//!   memory and disk guards; [`runner`]: what the runner measures.

pub mod dataset;
pub mod live;
pub mod pages;
pub mod runner;
pub mod snapshot;
pub mod suite;

use serde::{Deserialize, Serialize};

use crate::spec::Target;

/// What a scale run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleWorkload {
    /// Load + open + first query, RSS after open, a point read deep in the file, then the
    /// follow of the live primary, re-querying.
    Follow,
    /// Load + open + first query + wait until the hydration file is complete.
    Hydrate,
}

/// What the runner is asked to do (`bench-runner --scale '<json>'`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleSpec {
    /// Our VFS or the Go VFS.
    pub target: Target,
    /// What to do.
    pub workload: ScaleWorkload,
    /// The extension to load.
    pub extension: std::path::PathBuf,
    /// Rows of `t`.
    pub leaves: u64,
    /// Bytes of the database (the Go VFS's hydration is complete when its file has them).
    pub db_bytes: u64,
    /// Seconds to follow.
    pub follow_secs: f64,
    /// Created once the reader has opened and read: the live primary starts then.
    pub ready_path: std::path::PathBuf,
    /// The hydration file ([`ScaleWorkload::Hydrate`]).
    pub hydration_path: Option<std::path::PathBuf>,
}

/// The runner's answer to a [`ScaleSpec`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScaleOutput {
    /// Load + open + first query, milliseconds.
    pub open_ms: f64,
    /// Resident memory once open and the first query answered, KiB.
    pub rss_after_open_kb: u64,
    /// Peak resident memory of the process up to the end of the first query (`VmHWM`), KiB;
    /// `None` in results from before it was recorded.
    #[serde(default)]
    pub hwm_after_open_kb: Option<u64>,
    /// Our VFS only: the resident page map after open (`litestream_stats`' `index_bytes`).
    #[serde(default)]
    pub index_after_open: Option<u64>,
    /// Our VFS only: the same at the end of the follow.
    #[serde(default)]
    pub index_follow_end: Option<u64>,
    /// One point read of a row near the end of the file, cold, milliseconds.
    pub deep_read_ms: Option<f64>,
    /// The follow's length, seconds.
    pub follow_secs: f64,
    /// CPU time (user + system) of the process during the follow, seconds.
    pub follow_cpu_secs: f64,
    /// Peak resident memory sampled during the follow, KiB.
    pub follow_rss_peak_kb: u64,
    /// Resident memory at the end of the follow, KiB.
    pub follow_rss_end_kb: u64,
    /// Queries run during the follow.
    pub follow_queries: u64,
    /// The last commit the reader saw (row 1's version).
    pub last_commit_seen: u64,
    /// Hydration: open to complete, milliseconds.
    pub hydrate_ms: Option<f64>,
    /// Peak resident memory of the process (`VmHWM`), KiB.
    pub vmhwm_kb: u64,
    /// The error, if the run failed.
    pub error: Option<String>,
}

/// One scale run, or one skipped with its reason.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleRecord {
    /// Rows of the database.
    pub leaves: u64,
    /// Pages of the database.
    pub total_pages: u32,
    /// Target.
    pub target: Target,
    /// Workload.
    pub workload: ScaleWorkload,
    /// What the runner printed.
    pub output: Option<ScaleOutput>,
    /// Why the run was not made (memory or disk would not suffice).
    pub skipped: Option<String>,
    /// Set when the runner was killed after this many seconds.
    pub timed_out_secs: Option<u64>,
    /// Commits the live primary wrote during the run.
    pub commits_written: u64,
    /// Wall time of the process, seconds.
    pub process_secs: f64,
    /// A failure.
    pub error: Option<String>,
}

/// Everything the scale suite produced, with its own settings and date.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleResults {
    /// The databases, in size order.
    pub datasets: Vec<dataset::ScaleMeta>,
    /// Follow length asked, seconds.
    pub follow_secs: f64,
    /// Commits per second of the live primary.
    pub commits_per_sec: u64,
    /// Pages each commit changes.
    pub pages_per_commit: usize,
    /// Sizes (rows) hydrated.
    pub hydrate_leaves: Vec<u64>,
    /// When the suite ran (UTC).
    pub date: String,
    /// The engine's code measured.
    pub code: String,
    /// Wall time of the suite, seconds.
    pub secs_taken: f64,
    /// Every run.
    pub records: Vec<ScaleRecord>,
}

/// Parses a size list like `1M,8M,26M` or `10k` (rows; `k` = 1000, `M` = 10^6).
pub fn parse_sizes(name: &str, text: &str) -> anyhow::Result<Vec<u64>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (num, mult) = match s.char_indices().last() {
                Some((i, 'k' | 'K')) => (&s[..i], 1_000.0),
                Some((i, 'm' | 'M')) => (&s[..i], 1_000_000.0),
                _ => (s, 1.0),
            };
            num.trim()
                .parse::<f64>()
                .ok()
                .filter(|n| *n > 0.0)
                .map(|n| (n * mult).round() as u64)
                .filter(|n| *n >= 2)
                .ok_or_else(|| anyhow::anyhow!("{name}: {s:?} is not a size like 8M or 10k"))
        })
        .collect()
}

#[cfg(test)]
mod tests;
