//! The driver: datasets, the S3 server, one runner process per (run, workload, target) for the
//! read passes, the write suite ([`crate::write`]), then the report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use testkit::fault::{FaultConfig, FaultProxy};
use testkit::golitestream::{go_vfs_so, run_bounded, sanitize_env, ReplicaTarget};
use testkit::{RequestStats, S3Server};

use crate::gen::{self, Dataset, DatasetId, BUCKET, REPLICA_PATH};
use crate::report;
use crate::spec::{RunSpec, RunnerOutput, Target, Workload, RESULT_MARKER};
use crate::write::WriteResults;

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
    /// `BENCH_SUITES`: `read`, `write` or both (default `read,write`). A suite not run keeps
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
pub const SUITES: [&str; 2] = ["read", "write"];

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
            .unwrap_or_else(|_| SUITES.join(","))
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        if let Some(bad) = suites.iter().find(|s| !SUITES.contains(&s.as_str())) {
            bail!("BENCH_SUITES: unknown suite {bad:?}; use read, write or read,write");
        }
        if suites.is_empty() {
            bail!("BENCH_SUITES is empty");
        }
        let write_sizes = env_list(
            "BENCH_WRITE_SIZES",
            if sizes.contains(&200) { "200" } else { "" },
        )?;
        Ok(Config {
            suites,
            write_sizes,
            write_runs: env_num("BENCH_WRITE_RUNS", 3usize)?.max(1),
            write_secs: env_num("BENCH_WRITE_SECS", 1.2f64)?.max(0.1),
            write_load_secs: env_num("BENCH_WRITE_LOAD_SECS", 5.0f64)?.max(0.1),
            write_samples: env_num("BENCH_WRITE_SAMPLES", 3usize)?.max(1),
            write_timeout_secs: env_num("BENCH_WRITE_TIMEOUT", 60u64)?,
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

/// One runner process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// Dataset.
    pub dataset: DatasetId,
    /// Added latency.
    pub latency_ms: u64,
    /// Target.
    pub target: Target,
    /// Workload.
    pub workload: Workload,
    /// Run number (0-based).
    pub run: usize,
    /// What the runner printed (None if it was killed or printed nothing).
    pub output: Option<RunnerOutput>,
    /// Set when the runner was killed after this many seconds.
    pub timed_out_secs: Option<u64>,
    /// Server counters over the whole process (reset before the spawn).
    pub process_requests: RequestStats,
    /// Wall time of the whole process, spawn to exit, milliseconds.
    pub process_ms: f64,
    /// A failure (runner error, no result line).
    pub error: Option<String>,
}

/// A pass over one dataset at one latency.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PassInfo {
    /// Dataset.
    pub dataset: DatasetId,
    /// Added latency.
    pub latency_ms: u64,
    /// Runs of our VFS / Go VFS / local SQLite.
    pub runs: [usize; 3],
    /// Timeout per process, seconds.
    pub timeout_secs: u64,
    /// Wall time of the pass, seconds.
    pub secs: f64,
}

/// Everything a benchmark run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// Settings.
    pub config: Config,
    /// Datasets used.
    pub datasets: Vec<gen::Meta>,
    /// Seconds spent generating datasets in this run (0 when all were cached).
    pub gen_secs: f64,
    /// Passes.
    pub passes: Vec<PassInfo>,
    /// Every process run.
    pub records: Vec<RunRecord>,
    /// File sizes of the extensions: ours, Go.
    pub so_bytes: (u64, u64),
    /// The engine's code: commit, and whether the engine had uncommitted changes.
    pub code: String,
    /// Page layout of each dataset's b-trees.
    pub layouts: Vec<(DatasetId, Vec<gen::BtreeLayout>)>,
    /// When the read figures come from an earlier run (`BENCH_SUITES` without `read`): which.
    #[serde(default)]
    pub read_from: Option<String>,
    /// The write suite's figures (None: never run).
    #[serde(default)]
    pub write: Option<WriteResults>,
    /// Whether [`Results::write`] comes from an earlier run (`BENCH_SUITES` without `write`).
    #[serde(default)]
    pub write_carried: bool,
}

impl Config {
    /// Whether `BENCH_SUITES` names `suite`.
    pub fn runs_suite(&self, suite: &str) -> bool {
        self.suites.iter().any(|s| s == suite)
    }

    /// Takes the read suite's settings of `earlier` (whose read figures a report shows).
    fn read_settings_of(&mut self, earlier: &Config) {
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

/// Runs the whole benchmark and writes the report.
pub fn main() -> Result<()> {
    let config = Config::from_env()?;
    if std::env::var_os("BENCH_REPORT_ONLY").is_some() {
        return report_only(config);
    }
    std::fs::create_dir_all(&config.bench_dir)?;
    let logs = config.bench_dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    for t in [Target::Ours, Target::Go] {
        let _ = std::fs::remove_file(logs.join(format!("{}.log", t.name())));
        let _ = std::fs::remove_file(logs.join(format!("{}-write.log", t.name())));
    }
    eprintln!(
        "bench: suites {}; sizes {:?} MB, {} runs; latency pass +{} ms on {:?} MB; write suite \
         on a new database and {:?} MB; ours {}, Go {}",
        config.suites.join(","),
        config.sizes,
        config.runs,
        config.latency_ms,
        config.latency_sizes,
        config.write_sizes,
        config.ours_so.display(),
        config.go_so.display()
    );

    // A suite not run now keeps the figures of the last run, so that the report stays whole.
    let json_path = config.bench_dir.join("results.json");
    let earlier: Option<Results> = if SUITES.iter().all(|s| config.runs_suite(s)) {
        None
    } else {
        std::fs::read(&json_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    };
    let mut results = Results {
        so_bytes: (
            std::fs::metadata(&config.ours_so)?.len(),
            std::fs::metadata(&config.go_so)?.len(),
        ),
        config: config.clone(),
        datasets: Vec::new(),
        gen_secs: 0.0,
        passes: Vec::new(),
        records: Vec::new(),
        code: code_version(),
        layouts: Vec::new(),
        read_from: None,
        write: None,
        write_carried: false,
    };
    if config.runs_suite("read") {
        run_read_suite(&config, &logs, &mut results)?;
    } else if let Some(e) = &earlier {
        results.datasets = e.datasets.clone();
        results.passes = e.passes.clone();
        results.records = e.records.clone();
        results.layouts = e.layouts.clone();
        results.config.read_settings_of(&e.config);
        results.read_from =
            Some(e.read_from.clone().unwrap_or_else(|| {
                format!("the run of {} ({})", modified_utc(&json_path), e.code)
            }));
    }
    if config.runs_suite("write") {
        let mut datasets = Vec::new();
        for &size_mb in &config.write_sizes {
            let t = Instant::now();
            let ds = gen::ensure(
                &config.bench_dir,
                DatasetId {
                    size_mb,
                    vacuumed: false,
                },
            )?;
            if ds.generated_now {
                results.gen_secs += t.elapsed().as_secs_f64();
            }
            datasets.push((size_mb, ds));
        }
        results.write = Some(crate::write::run_suite(
            &config,
            &datasets,
            &logs,
            results.code.clone(),
            report::utc_now(),
        )?);
    } else if let Some(e) = earlier {
        results.write_carried = e.write.is_some();
        results.write = e.write;
    }

    std::fs::write(&json_path, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("write {}", json_path.display()))?;
    eprintln!("bench: raw results in {}", json_path.display());
    // The settings of the figures shown: a carried-over read suite brings its own.
    report::write(&results, &results.config)?;
    Ok(())
}

/// The read suite: every dataset, every pass.
fn run_read_suite(config: &Config, logs: &Path, results: &mut Results) -> Result<()> {
    let ids = config
        .sizes
        .iter()
        .map(|&size_mb| DatasetId {
            size_mb,
            vacuumed: false,
        })
        .chain(config.vacuumed_sizes.iter().map(|&size_mb| DatasetId {
            size_mb,
            vacuumed: true,
        }));
    for id in ids {
        let t = Instant::now();
        let ds = gen::ensure(&config.bench_dir, id)?;
        if ds.generated_now {
            results.gen_secs += t.elapsed().as_secs_f64();
        }
        results.datasets.push(ds.meta.clone());
        results.layouts.push((id, gen::layout(&ds.restored)?));
        let server = S3Server::start(&ds.s3_root)?;
        let mut latencies = vec![0];
        if config.latency_ms > 0 && !id.vacuumed && config.latency_sizes.contains(&id.size_mb) {
            latencies.push(config.latency_ms);
        }
        for latency in latencies {
            let pass = run_pass(
                config,
                id,
                &ds,
                &server,
                latency,
                logs,
                &mut results.records,
            )?;
            results.passes.push(pass);
        }
    }
    Ok(())
}

/// The modification time of `path`, `YYYY-MM-DD HH:MM UTC`.
fn modified_utc(path: &Path) -> String {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| {
            rusqlite::Connection::open_in_memory()
                .and_then(|c| {
                    c.query_row(
                        "SELECT strftime('%Y-%m-%d %H:%M UTC', ?1, 'unixepoch')",
                        [d.as_secs() as i64],
                        |r| r.get(0),
                    )
                })
                .ok()
        })
        .unwrap_or_else(|| "an earlier date".to_string())
}

/// `BENCH_REPORT_ONLY=1`: writes the report again from the last run's `results.json` (after a
/// change to the report's wording), with that run's settings and duration.
fn report_only(config: Config) -> Result<()> {
    let json_path = config.bench_dir.join("results.json");
    let results: Results = serde_json::from_slice(
        &std::fs::read(&json_path).with_context(|| format!("read {}", json_path.display()))?,
    )?;
    let written = std::fs::metadata(&json_path)?
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    let mut original = results.config.clone();
    // "Took" runs to the moment the results were written, not to now.
    original.t0_unix += unix_now() - written;
    original.out_md = config.out_md;
    original.out_png = config.out_png;
    original.python = config.python;
    report::write(&results, &original)
}

/// `commit abc1234` plus a note when the extension's sources differ from it.
fn code_version() -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown (not a git checkout)".to_string();
    };
    let engine = [
        "status",
        "--porcelain",
        "--",
        "src",
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
        "crates/ltx",
        "crates/replica",
        "crates/vfs",
    ];
    match git(&engine) {
        Some(s) if s.is_empty() => format!("commit {commit}"),
        Some(s) => format!(
            "commit {commit} plus uncommitted changes to {}",
            s.lines()
                .map(|l| format!("`{}`", l.split_whitespace().last().unwrap_or(l)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!("commit {commit}"),
    }
}

fn run_pass(
    config: &Config,
    id: DatasetId,
    ds: &Dataset,
    server: &S3Server,
    latency_ms: u64,
    logs: &Path,
    records: &mut Vec<RunRecord>,
) -> Result<PassInfo> {
    let started = Instant::now();
    // Latency comes from the fault layer the reliability tests use, in front of the server:
    // the runners talk to the proxy, the counters are still read from the server.
    let proxy = match latency_ms {
        0 => None,
        ms => {
            let p = FaultProxy::start(server.addr())?;
            p.set_faults(FaultConfig {
                latency: Duration::from_millis(ms),
                ..FaultConfig::none()
            });
            Some(p)
        }
    };
    let replica = match &proxy {
        Some(p) => ReplicaTarget::S3 {
            endpoint: p.endpoint(),
            bucket: BUCKET.to_string(),
            path: REPLICA_PATH.to_string(),
        },
        None => ReplicaTarget::s3(server, BUCKET, REPLICA_PATH),
    };
    let (runs, timeout_secs) = if latency_ms == 0 {
        ([config.runs, config.runs, config.runs], config.timeout_secs)
    } else {
        // Local SQLite never touches S3: its figures come from the pass without latency.
        (
            [config.latency_runs, config.latency_go_runs, 0],
            config.latency_timeout_secs,
        )
    };
    let max_runs = runs.iter().copied().max().unwrap_or(0);
    eprintln!(
        "bench: {}, +{latency_ms} ms per request: {runs:?} runs (ours, Go, local)",
        id.label()
    );
    // A (target, workload) killed once is not run again: its figure is a lower bound anyway.
    let mut killed = std::collections::BTreeSet::new();
    for run in 0..max_runs {
        for workload in Workload::ALL {
            // Rotate the order of the targets from run to run.
            for k in 0..Target::ALL.len() {
                let target = Target::ALL[(k + run) % Target::ALL.len()];
                let target_runs = runs[Target::ALL.iter().position(|t| *t == target).unwrap_or(0)];
                // Hydration is measured without added latency only.
                if run >= target_runs
                    || !workload.applies_to(target)
                    || (latency_ms > 0 && workload.hydrates())
                    || killed.contains(&(target, workload))
                {
                    continue;
                }
                let hydration_path = workload.hydrates().then(|| {
                    config.bench_dir.join("hydration").join(format!(
                        "{}-{}.db",
                        id.dir_name(),
                        target.name()
                    ))
                });
                if let (Some(path), Workload::Hydrate) = (&hydration_path, workload) {
                    remove_hydration_files(path)?;
                }
                let spec = RunSpec {
                    target,
                    workload,
                    extension: match target {
                        Target::Ours => Some(config.ours_so.clone()),
                        Target::Go => Some(config.go_so.clone()),
                        Target::Local => None,
                    },
                    local_db: (target == Target::Local).then(|| ds.restored.clone()),
                    hydration_path,
                    db_bytes: ds.meta.db_bytes,
                    stats_endpoint: Some(server.endpoint()),
                    data: ds.meta.data.clone(),
                };
                server.reset_stats();
                let mut record = spawn_runner(config, &spec, &replica, logs, timeout_secs)?;
                record.process_requests = server.stats();
                record.dataset = id;
                record.latency_ms = latency_ms;
                record.run = run;
                eprintln!("bench:   run {}/{max_runs} {}", run + 1, describe(&record));
                if record.timed_out_secs.is_some() {
                    killed.insert((target, workload));
                }
                records.push(record);
            }
        }
    }
    server.set_latency(Duration::ZERO);
    Ok(PassInfo {
        dataset: id,
        latency_ms,
        runs,
        timeout_secs,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// Removes a hydration file and what either VFS keeps beside it (ours: `.litestream`, Go:
/// `.meta`), so that a [`Workload::Hydrate`] run starts from nothing.
fn remove_hydration_files(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    for suffix in ["", ".litestream", ".meta", "-journal", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("remove {}", Path::new(&p).display()))
            }
            _ => {}
        }
    }
    Ok(())
}

fn describe(r: &RunRecord) -> String {
    let mut s = format!("{:<5} {:<11}", r.target.name(), r.workload.name());
    if let Some(secs) = r.timed_out_secs {
        s.push_str(&format!(
            " killed after {secs} s ({} GETs by then)",
            r.process_requests.gets()
        ));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!(" ERROR {e}"));
    }
    if let Some(out) = &r.output {
        for m in &out.measures {
            s.push_str(&format!(" {}={:.1}ms", m.metric.name(), m.ms));
            if let Some(req) = &m.requests {
                s.push_str(&format!("[{}G {}L {}H]", req.gets(), req.list, req.head));
            }
        }
        s.push_str(&format!(" rss={}MB", out.vmhwm_kb / 1024));
    }
    s
}

/// Spawns the runner for `spec` and collects its result line.
fn spawn_runner(
    config: &Config,
    spec: &RunSpec,
    replica: &ReplicaTarget,
    logs: &Path,
    timeout_secs: u64,
) -> Result<RunRecord> {
    let mut cmd = Command::new(&config.runner);
    // Same environment for both VFS: no stray AWS_* / LITESTREAM_* (AWS_CA_BUNDLE breaks the
    // Go S3 client), the replica URL and the test credentials.
    sanitize_env(&mut cmd);
    if spec.target.is_vfs() {
        cmd.envs(replica.go_vfs_env());
        cmd.env(
            "LITESTREAM_LOG_FILE",
            logs.join(format!("{}.log", spec.target.name())),
        );
        if let Some(path) = &spec.hydration_path {
            // The Go VFS needs both; ours needs the path only.
            cmd.env("LITESTREAM_HYDRATION_ENABLED", "true");
            cmd.env("LITESTREAM_HYDRATION_PATH", path);
        }
    }
    cmd.arg(serde_json::to_string(spec)?);
    let t = Instant::now();
    let out = run_bounded(&mut cmd, Duration::from_secs(timeout_secs))?;
    let timed_out = out.timed_out.then_some(timeout_secs);
    let process_ms = t.elapsed().as_secs_f64() * 1000.0;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let output = stdout
        .lines()
        .find_map(|l| l.strip_prefix(RESULT_MARKER))
        .map(serde_json::from_str::<RunnerOutput>)
        .transpose()
        .context("parse the runner's result line")?;
    let error = match (&output, timed_out) {
        (_, Some(_)) => None,
        (Some(out), None) => out.error.clone(),
        (None, None) => Some(format!(
            "no result line; stderr: {}",
            stderr.trim().chars().take(2000).collect::<String>()
        )),
    };
    Ok(RunRecord {
        dataset: DatasetId {
            size_mb: 0,
            vacuumed: false,
        },
        latency_ms: 0,
        target: spec.target,
        workload: spec.workload,
        run: 0,
        output,
        timed_out_secs: timed_out,
        process_requests: RequestStats::default(),
        process_ms,
        error,
    })
}
