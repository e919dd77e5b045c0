//! The driver side of the scale suite: per size, the replica (cached), then for each VFS one
//! process that opens, reads and follows the live primary, and at the hydration sizes one that
//! hydrates. A run that would not fit in memory or on disk is skipped with the reason, which
//! the report shows.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;
use testkit::golitestream::{run_bounded, sanitize_env, ReplicaTarget};

use super::dataset::{self, ScaleDataset};
use super::live::{Follow, Live, COMMITS_PER_SEC, RANDOM_ROWS};
use super::{ScaleOutput, ScaleRecord, ScaleResults, ScaleSpec, ScaleWorkload};
use crate::config::Config;
use crate::spec::{runner_result, RunnerResult, Target};

/// Memory the machine keeps for everything else while a run goes on.
const MEMORY_MARGIN: u64 = 2 << 30;
/// Disk left free after a hydration file.
const DISK_MARGIN: u64 = 4 << 30;

/// Runs the scale suite.
pub fn run_suite(config: &Config, logs: &Path, code: String, date: String) -> Result<ScaleResults> {
    let started = Instant::now();
    let mut sizes = config.scale_pages.clone();
    sizes.sort_unstable();
    eprintln!(
        "bench: scale suite on {sizes:?} rows, {} s follow at {COMMITS_PER_SEC} commits/s, \
         hydration at {:?}",
        config.scale_follow_secs, config.scale_hydrate
    );
    let scratch = config.bench_dir.join("scale-run");
    let partial = config.bench_dir.join("scale-partial.json");
    let mut results = ScaleResults {
        datasets: Vec::new(),
        follow_secs: config.scale_follow_secs,
        commits_per_sec: COMMITS_PER_SEC,
        pages_per_commit: 2 + RANDOM_ROWS,
        hydrate_leaves: config.scale_hydrate.clone(),
        date,
        code,
        secs_taken: 0.0,
        records: Vec::new(),
    };
    for &leaves in &sizes {
        let ds = dataset::ensure(&config.bench_dir, leaves)?;
        results.datasets.push(ds.meta.clone());
        let mut workloads = vec![ScaleWorkload::Follow];
        if config.scale_hydrate.contains(&leaves) {
            workloads.push(ScaleWorkload::Hydrate);
        }
        for workload in workloads {
            for target in [Target::Ours, Target::Go] {
                if scratch.exists() {
                    std::fs::remove_dir_all(&scratch)?;
                }
                std::fs::create_dir_all(&scratch)?;
                let record = match guard(config, &ds, target, workload, &results.records) {
                    Some(reason) => {
                        eprintln!(
                            "bench:   scale {leaves} {} {workload:?}: SKIPPED, {reason}",
                            target.name()
                        );
                        skipped(&ds, target, workload, reason)
                    }
                    None => one_run(config, &ds, target, workload, &scratch, logs)?,
                };
                eprintln!("bench:   scale {}", describe(&record));
                results.records.push(record);
                // What is measured so far survives a run stopped before the report.
                results.secs_taken = started.elapsed().as_secs_f64();
                std::fs::write(&partial, serde_json::to_string_pretty(&results)?)?;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    results.secs_taken = started.elapsed().as_secs_f64();
    Ok(results)
}

fn skipped(
    ds: &ScaleDataset,
    target: Target,
    workload: ScaleWorkload,
    reason: String,
) -> ScaleRecord {
    ScaleRecord {
        leaves: ds.meta.leaves,
        total_pages: ds.meta.total_pages,
        target,
        workload,
        output: None,
        skipped: Some(reason),
        timed_out_secs: None,
        commits_written: 0,
        process_secs: 0.0,
        error: None,
    }
}

/// Why `target` cannot run `workload` on `ds` here, if it cannot: its memory, estimated from
/// its bytes per page and its growth over the follow at the largest smaller size measured
/// (the figures before that), must fit in what the machine has available; a
/// hydration file must fit on disk.
fn guard(
    config: &Config,
    ds: &ScaleDataset,
    target: Target,
    workload: ScaleWorkload,
    earlier: &[ScaleRecord],
) -> Option<String> {
    let pages = ds.meta.total_pages as f64;
    // (pages, RSS after open in bytes, peak over the follow ÷ after open) of the smaller sizes.
    let measured: Vec<(f64, f64, f64)> = earlier
        .iter()
        .filter(|r| {
            r.target == target && r.workload == ScaleWorkload::Follow && r.leaves < ds.meta.leaves
        })
        .filter_map(|r| r.output.as_ref().map(|o| (r.total_pages, o)))
        .filter(|(_, o)| o.rss_after_open_kb > 0)
        .map(|(p, o)| {
            let rss = o.rss_after_open_kb as f64 * 1024.0;
            let growth = (o.follow_rss_peak_kb as f64 * 1024.0 / rss).max(1.0);
            (f64::from(p), rss, growth)
        })
        .collect();
    // Extrapolated from the two largest smaller sizes (their marginal bytes per page, so that
    // the fixed part of a small run does not count per page), from one in proportion, or from
    // issue #14's figures at 2 M pages: ours ~55 B/page and 2.4x that while following, Go
    // ~400 B/page and flat.
    let (need, how) = match (measured.len(), target) {
        (n, _) if n >= 2 => {
            let ((p1, r1, _), (p2, r2, g2)) = (measured[n - 2], measured[n - 1]);
            let bpp = ((r2 - r1) / (p2 - p1)).max(1.0);
            (
                (r2 + bpp * (pages - p2)) * g2,
                format!("{bpp:.0} B/page more than at {p2:.0} pages, × {g2:.1} over the follow"),
            )
        }
        (1, _) => {
            let (p, r, g) = measured[0];
            (
                r * pages / p * g,
                format!("{:.0} B/page × {g:.1} over the follow", r / p),
            )
        }
        (_, Target::Go) => (400.0 * 1.2 * pages, "400 B/page × 1.2".to_string()),
        _ => (55.0 * 2.4 * pages, "55 B/page × 2.4".to_string()),
    };
    let need = need as u64;
    let available = mem_available();
    if need + MEMORY_MARGIN > available {
        return Some(format!(
            "needs about {:.1} GB ({how}) and {:.1} GB are available",
            need as f64 / 1e9,
            available.saturating_sub(MEMORY_MARGIN) as f64 / 1e9
        ));
    }
    if workload == ScaleWorkload::Hydrate {
        let free = free_disk(&config.bench_dir);
        if ds.meta.db_bytes + DISK_MARGIN > free {
            return Some(format!(
                "the hydration file needs {:.1} GB and the disk has {:.1} GB free",
                ds.meta.db_bytes as f64 / 1e9,
                free as f64 / 1e9
            ));
        }
    }
    None
}

fn one_run(
    config: &Config,
    ds: &ScaleDataset,
    target: Target,
    workload: ScaleWorkload,
    scratch: &Path,
    logs: &Path,
) -> Result<ScaleRecord> {
    let spec = ScaleSpec {
        target,
        workload,
        extension: match target {
            Target::Go => config.go_so.clone(),
            _ => config.ours_so.clone(),
        },
        leaves: ds.meta.leaves,
        db_bytes: ds.meta.db_bytes,
        follow_secs: config.scale_follow_secs,
        ready_path: scratch.join("ready"),
        hydration_path: (workload == ScaleWorkload::Hydrate).then(|| scratch.join("hydrated.db")),
    };
    // Every run starts from the snapshot alone: the same replica for both VFS.
    let live = Live::start(ds.layout.clone(), &ds.replica)?;
    let follow =
        (workload == ScaleWorkload::Follow).then(|| Follow::start(live, spec.ready_path.clone()));

    let mut cmd = Command::new(&config.runner);
    sanitize_env(&mut cmd);
    cmd.envs(ReplicaTarget::file(&ds.replica)?.go_vfs_env());
    cmd.env(
        "LITESTREAM_LOG_FILE",
        logs.join(format!("{}-scale.log", target.name())),
    );
    if let Some(path) = &spec.hydration_path {
        // The Go VFS needs both; ours needs the path only.
        cmd.env("LITESTREAM_HYDRATION_ENABLED", "true");
        cmd.env("LITESTREAM_HYDRATION_PATH", path);
    }
    cmd.arg("--scale").arg(serde_json::to_string(&spec)?);
    let timeout = config.scale_timeout_secs;
    let t = Instant::now();
    let out = run_bounded(&mut cmd, Duration::from_secs(timeout));
    let process_secs = t.elapsed().as_secs_f64();
    let commits_written = match follow {
        Some(f) => f.stop()?,
        None => 0,
    };
    let RunnerResult {
        output,
        timed_out_secs,
        error,
    } = runner_result(&out?, timeout, |o: &ScaleOutput| o.error.clone())?;
    Ok(ScaleRecord {
        leaves: ds.meta.leaves,
        total_pages: ds.meta.total_pages,
        target,
        workload,
        output,
        skipped: None,
        timed_out_secs,
        commits_written,
        process_secs,
        error,
    })
}

fn describe(r: &ScaleRecord) -> String {
    let mut s = format!("{} rows {:<5} {:?}", r.leaves, r.target.name(), r.workload);
    if let Some(secs) = r.timed_out_secs {
        s.push_str(&format!(" killed after {secs} s"));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!(" ERROR {e}"));
    }
    if let Some(o) = &r.output {
        s.push_str(&format!(
            " open {:.0} ms, rss {} MB ({:.0} B/page)",
            o.open_ms,
            o.rss_after_open_kb / 1024,
            o.rss_after_open_kb as f64 * 1024.0 / f64::from(r.total_pages)
        ));
        if let Some(d) = o.deep_read_ms {
            s.push_str(&format!(", deep read {d:.1} ms"));
        }
        if o.follow_secs > 0.0 {
            s.push_str(&format!(
                ", follow {:.0} s: cpu {:.2} s, rss peak {} MB end {} MB, saw {}/{} commits",
                o.follow_secs,
                o.follow_cpu_secs,
                o.follow_rss_peak_kb / 1024,
                o.follow_rss_end_kb / 1024,
                o.last_commit_seen,
                r.commits_written
            ));
        }
        if let Some(h) = o.hydrate_ms {
            s.push_str(&format!(", hydrated in {:.1} s", h / 1000.0));
        }
        s.push_str(&format!(", peak {} MB", o.vmhwm_kb / 1024));
    }
    s
}

/// `MemAvailable` of `/proc/meminfo`, bytes.
fn mem_available() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Free bytes on the file system of `dir` (`df`, which every machine has).
pub(crate) fn free_disk(dir: &Path) -> u64 {
    Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .nth(1)
                .and_then(|l| l.trim().parse().ok())
        })
        .unwrap_or(0)
}
