//! The driver: datasets, the S3 server, one runner process per (run, workload, target) for the
//! read passes, the write suite ([`crate::write`]), then the report.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use testkit::fault::{FaultConfig, FaultProxy};
use testkit::golitestream::{run_bounded, sanitize_env, ReplicaTarget};
use testkit::{RequestStats, S3Server};

use crate::config::{unix_now, Config, SUITES};
use crate::gen::{self, Dataset, DatasetId, BUCKET, REPLICA_PATH};
use crate::report;
use crate::scale::ScaleResults;
use crate::spec::{runner_result, RunSpec, RunnerOutput, RunnerResult, Target, Workload};
use crate::write::WriteResults;

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
    /// The scale suite's figures (None: never run).
    #[serde(default)]
    pub scale: Option<ScaleResults>,
    /// Whether [`Results::scale`] comes from an earlier run (`BENCH_SUITES` without `scale`).
    #[serde(default)]
    pub scale_carried: bool,
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
        let _ = std::fs::remove_file(logs.join(format!("{}-scale.log", t.name())));
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
        scale: None,
        scale_carried: false,
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
    } else if let Some(e) = &earlier {
        results.write_carried = e.write.is_some();
        results.write = e.write.clone();
    }
    if config.runs_suite("scale") {
        results.scale = Some(crate::scale::suite::run_suite(
            &config,
            &logs,
            results.code.clone(),
            report::utc_now(),
        )?);
    } else if let Some(e) = earlier {
        results.scale_carried = e.scale.is_some();
        results.scale = e.scale;
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
    let process_ms = t.elapsed().as_secs_f64() * 1000.0;
    let RunnerResult {
        output,
        timed_out_secs: timed_out,
        error,
    } = runner_result(&out, timeout_secs, |o: &RunnerOutput| o.error.clone())?;
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
