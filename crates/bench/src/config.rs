//! The benchmark's settings, from the environment (`BENCH_*`; listed in `docs/benchmarks.md`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use testkit::golitestream::go_vfs_so;

use crate::write::WriteWorkload;

/// Settings, from the environment (see `docs/benchmarks.md`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// `BENCH_SIZES`: database sizes in MB (default `10,200`).
    pub sizes: Vec<u32>,
    /// `BENCH_VACUUMED_SIZES`: sizes also run on a vacuumed database (default `200` when 200 is
    /// among the sizes; empty: none).
    pub vacuumed_sizes: Vec<u32>,
    /// `BENCH_RUNS`: fresh processes per workload and target (default 5).
    pub runs: usize,
    /// `BENCH_LATENCY_MS`: latency added to every S3 request in the latency pass (default 20).
    pub latency_ms: u64,
    /// `BENCH_LATENCY_SIZES`: sizes that get a latency pass (default `200`; empty: none).
    pub latency_sizes: Vec<u32>,
    /// `BENCH_LATENCY_RUNS`: runs of our VFS in the latency pass (default 3).
    pub latency_runs: usize,
    /// `BENCH_LATENCY_GO_RUNS`: runs of the Go VFS in the latency pass (default 1).
    pub latency_go_runs: usize,
    /// `BENCH_TIMEOUT`: seconds before a runner is killed (default 300).
    pub timeout_secs: u64,
    /// `BENCH_LATENCY_TIMEOUT`: the same in the latency pass (default 15).
    pub latency_timeout_secs: u64,
    /// `BENCH_SUITES`: any of `read`, `write`, `scale` (default `read,write`). A suite not run keeps
    /// its figures from the last `results.json`, so that the report stays whole.
    #[serde(default = "all_suites")]
    pub suites: Vec<String>,
    /// `BENCH_WRITE_SIZES`: replicas the write suite writes to besides a new database (default
    /// `200` when 200 is among the sizes; empty: a new database only).
    #[serde(default)]
    pub write_sizes: Vec<u32>,
    /// `BENCH_WRITE_RUNS`: fresh processes per write workload, database and target (default 3).
    #[serde(default)]
    pub write_runs: usize,
    /// `BENCH_WRITE_SECS`: length of each throughput run, seconds (default 1.2: longer than the
    /// upload interval, so that an upload competes with the commits as it does in use, and
    /// short enough to keep the suite within a few minutes).
    #[serde(default)]
    pub write_secs: f64,
    /// `BENCH_WRITE_LOAD_SECS`: continuous writes while counting uploads, seconds (default 5).
    #[serde(default)]
    pub write_load_secs: f64,
    /// `BENCH_WRITE_SAMPLES`: commits timed to the store per run (default 3).
    #[serde(default)]
    pub write_samples: usize,
    /// `BENCH_WRITE_TIMEOUT`: seconds before a write runner is killed (default 60).
    #[serde(default)]
    pub write_timeout_secs: u64,
    /// `BENCH_WRITE_WORKLOADS`: the write workloads run, by name (`tx_full`, …, `bigtx`; default
    /// or empty: all).
    #[serde(default)]
    pub write_workloads: Vec<WriteWorkload>,
    /// `BENCH_BIGTX_MB`: sizes of the one big transaction on a new database, MB of row data
    /// (default `500`; empty: not run).
    #[serde(default)]
    pub bigtx_mb: Vec<u32>,
    /// `BENCH_BIGTX_RUNS`: fresh processes per size and target of the big transaction (default
    /// 1: a 2 GB run takes minutes).
    #[serde(default)]
    pub bigtx_runs: usize,
    /// `BENCH_BIGTX_TIMEOUT`: seconds before a big-transaction runner is killed (default 600).
    #[serde(default)]
    pub bigtx_timeout_secs: u64,
    /// `BENCH_SCALE_PAGES`: rows (one leaf page each) of the scale suite's databases (default
    /// `1M,8M,26M`).
    #[serde(default)]
    pub scale_pages: Vec<u64>,
    /// `BENCH_SCALE_FOLLOW_SECS`: length of each follow of the live primary (default 600).
    #[serde(default)]
    pub scale_follow_secs: f64,
    /// `BENCH_SCALE_HYDRATE`: the sizes among `BENCH_SCALE_PAGES` that are hydrated too
    /// (default `8M`; empty: none).
    #[serde(default)]
    pub scale_hydrate: Vec<u64>,
    /// `BENCH_SCALE_TIMEOUT`: seconds before a scale runner is killed (default: the follow
    /// plus 1800).
    #[serde(default)]
    pub scale_timeout_secs: u64,
    /// `BENCH_DIR`: cache and scratch directory (default `<repo>/.bench`).
    pub bench_dir: PathBuf,
    /// `LITESTREAM_VFS_SO`: our extension (default `<repo>/target/release/liblitestream_vfs.so`).
    pub ours_so: PathBuf,
    /// `LITESTREAM_GO_VFS_SO` or the `litestream_vfs` Python package.
    pub go_so: PathBuf,
    /// The runner binary (next to this one).
    pub runner: PathBuf,
    /// `BENCH_OUT`: the report (default `<repo>/docs/benchmarks.md`).
    pub out_md: PathBuf,
    /// `BENCH_PNG`: the chart (default `<repo>/docs/benchmarks.png`).
    pub out_png: PathBuf,
    /// `BENCH_PYTHON`: a Python with matplotlib (default `python3`).
    pub python: String,
    /// `BENCH_COMMAND`: the command line shown in the report (default `make bench`).
    pub command: String,
    /// `BENCH_T0`: Unix time the whole command started (default: now), for the total time.
    pub t0_unix: f64,
}

/// The suites an old `results.json` (written before there were suites) ran.
fn all_suites() -> Vec<String> {
    SUITES.iter().map(|s| s.to_string()).collect()
}

/// The suites `BENCH_SUITES` may name.
pub const SUITES: [&str; 3] = ["read", "write", "scale"];

/// The suites run when `BENCH_SUITES` is not set: the scale suite writes up to 100 GB of
/// replicas and follows for 10 minutes per VFS and size, so it is asked for by name.
pub const DEFAULT_SUITES: &str = "read,write";

fn env_list(name: &str, default: &str) -> Result<Vec<u32>> {
    let v = std::env::var(name).unwrap_or_else(|_| default.to_string());
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .with_context(|| format!("{name}: {s:?} is not a number"))
        })
        .collect()
}

/// `BENCH_WRITE_WORKLOADS`: names of write workloads; unset or empty: every one.
fn env_workloads(name: &str) -> Result<Vec<WriteWorkload>> {
    let every: Vec<WriteWorkload> = WriteWorkload::ALL
        .into_iter()
        .chain([WriteWorkload::BigTx])
        .collect();
    let v = std::env::var(name).unwrap_or_default();
    let mut out = Vec::new();
    for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some(w) = every.iter().find(|w| w.name() == s.to_ascii_lowercase()) else {
            bail!(
                "{name}: unknown workload {s:?}; name any of {}",
                every
                    .iter()
                    .map(|w| w.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        out.push(*w);
    }
    Ok(if out.is_empty() { every } else { out })
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}: {v:?} is not a number")),
        _ => Ok(default),
    }
}

fn env_path(name: &str, default: PathBuf) -> PathBuf {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or(default)
}

/// Unix time now, seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Config {
    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Config> {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .canonicalize()
            .context("repository root")?;
        let sizes = env_list("BENCH_SIZES", "10,200")?;
        if sizes.is_empty() {
            bail!("BENCH_SIZES is empty");
        }
        let runner = std::env::current_exe()
            .context("current_exe")?
            .with_file_name("bench-runner");
        if !runner.is_file() {
            bail!(
                "{} is missing: build with `cargo build --release -p bench`",
                runner.display()
            );
        }
        let ours_so = env_path(
            "LITESTREAM_VFS_SO",
            repo.join("target/release/liblitestream_vfs.so"),
        );
        if !ours_so.is_file() {
            bail!(
                "{} is missing: run `make build` (or set LITESTREAM_VFS_SO)",
                ours_so.display()
            );
        }
        let vacuumed_sizes = env_list(
            "BENCH_VACUUMED_SIZES",
            if sizes.contains(&200) { "200" } else { "" },
        )?;
        let suites: Vec<String> = std::env::var("BENCH_SUITES")
            .unwrap_or_else(|_| DEFAULT_SUITES.to_string())
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        if let Some(bad) = suites.iter().find(|s| !SUITES.contains(&s.as_str())) {
            bail!("BENCH_SUITES: unknown suite {bad:?}; name any of read, write, scale");
        }
        if suites.is_empty() {
            bail!("BENCH_SUITES is empty");
        }
        let write_sizes = env_list(
            "BENCH_WRITE_SIZES",
            if sizes.contains(&200) { "200" } else { "" },
        )?;
        let scale_follow_secs = env_num("BENCH_SCALE_FOLLOW_SECS", 600.0f64)?.max(1.0);
        let scale_pages = crate::scale::parse_sizes(
            "BENCH_SCALE_PAGES",
            &std::env::var("BENCH_SCALE_PAGES").unwrap_or_else(|_| "1M,8M,26M".into()),
        )?;
        if suites.iter().any(|s| s == "scale") && scale_pages.is_empty() {
            bail!("BENCH_SCALE_PAGES is empty");
        }
        Ok(Config {
            scale_hydrate: crate::scale::parse_sizes(
                "BENCH_SCALE_HYDRATE",
                &std::env::var("BENCH_SCALE_HYDRATE").unwrap_or_else(|_| "8M".into()),
            )?,
            scale_timeout_secs: env_num("BENCH_SCALE_TIMEOUT", scale_follow_secs as u64 + 1800)?,
            scale_pages,
            scale_follow_secs,
            suites,
            write_sizes,
            write_runs: env_num("BENCH_WRITE_RUNS", 3usize)?.max(1),
            write_secs: env_num("BENCH_WRITE_SECS", 1.2f64)?.max(0.1),
            write_load_secs: env_num("BENCH_WRITE_LOAD_SECS", 5.0f64)?.max(0.1),
            write_samples: env_num("BENCH_WRITE_SAMPLES", 3usize)?.max(1),
            write_timeout_secs: env_num("BENCH_WRITE_TIMEOUT", 60u64)?,
            write_workloads: env_workloads("BENCH_WRITE_WORKLOADS")?,
            bigtx_mb: env_list("BENCH_BIGTX_MB", "500")?,
            bigtx_runs: env_num("BENCH_BIGTX_RUNS", 1usize)?.max(1),
            bigtx_timeout_secs: env_num("BENCH_BIGTX_TIMEOUT", 600u64)?,
            sizes,
            vacuumed_sizes,
            runs: env_num("BENCH_RUNS", 5usize)?.max(1),
            latency_ms: env_num("BENCH_LATENCY_MS", 20u64)?,
            latency_sizes: env_list("BENCH_LATENCY_SIZES", "200")?,
            latency_runs: env_num("BENCH_LATENCY_RUNS", 3usize)?.max(1),
            latency_go_runs: env_num("BENCH_LATENCY_GO_RUNS", 1usize)?.max(1),
            timeout_secs: env_num("BENCH_TIMEOUT", 300u64)?,
            latency_timeout_secs: env_num("BENCH_LATENCY_TIMEOUT", 15u64)?,
            bench_dir: env_path("BENCH_DIR", repo.join(".bench")),
            ours_so: ours_so.canonicalize()?,
            go_so: go_vfs_so()?.canonicalize()?,
            runner,
            out_md: env_path("BENCH_OUT", repo.join("docs/benchmarks.md")),
            out_png: env_path("BENCH_PNG", repo.join("docs/benchmarks.png")),
            python: std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".to_string()),
            command: std::env::var("BENCH_COMMAND").unwrap_or_else(|_| "make bench".to_string()),
            t0_unix: env_num("BENCH_T0", unix_now())?,
        })
    }
}

impl Config {
    /// Whether the write suite runs `workload` (`BENCH_WRITE_WORKLOADS`; the big transaction
    /// also needs a size in `BENCH_BIGTX_MB`).
    pub fn runs_write_workload(&self, workload: WriteWorkload) -> bool {
        (self.write_workloads.is_empty() || self.write_workloads.contains(&workload))
            && (workload != WriteWorkload::BigTx || !self.bigtx_mb.is_empty())
    }

    /// Whether `BENCH_SUITES` names `suite`.
    pub fn runs_suite(&self, suite: &str) -> bool {
        self.suites.iter().any(|s| s == suite)
    }

    /// Takes the read suite's settings of `earlier` (whose read figures a report shows).
    pub(crate) fn read_settings_of(&mut self, earlier: &Config) {
        self.sizes = earlier.sizes.clone();
        self.vacuumed_sizes = earlier.vacuumed_sizes.clone();
        self.runs = earlier.runs;
        self.latency_ms = earlier.latency_ms;
        self.latency_sizes = earlier.latency_sizes.clone();
        self.latency_runs = earlier.latency_runs;
        self.latency_go_runs = earlier.latency_go_runs;
        self.timeout_secs = earlier.timeout_secs;
        self.latency_timeout_secs = earlier.latency_timeout_secs;
    }
}
