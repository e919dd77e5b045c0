//! The report of `make bench`: `docs/benchmarks.md` and the chart, from a run's [`Results`].
//!
//! * [`aggregate`]: the read runs per (dataset, latency, target, metric): medians, bounds;
//! * [`verdict`] and [`notes`]: the read targets, and why one is not met;
//! * [`markdown`]: the header and the read suite's sections;
//! * [`write_suite`]: the write suite's part (issue #4): its cells, targets and section;
//! * [`scale`]: the scale suite's part (issue #14): its tables and log-log chart;
//! * [`chart`]: the ratios of both suites, drawn by `scripts/bench-chart.py`;
//! * [`method`]: how the figures were made; [`format`]: numbers, as both suites write them.
//!
//! `cargo test --release -p bench --lib` renders synthetic results against stored copies
//! (`crates/bench/testdata/`).

mod aggregate;
mod chart;
mod format;
mod markdown;
mod method;
mod notes;
mod scale;
mod splice;
mod verdict;
mod write_suite;

use std::fmt::Write as _;

use anyhow::{Context, Result};

use crate::config::{unix_now, Config};
use crate::driver::Results;
use aggregate::Agg;
use format::fmt_duration;
use verdict::{judged, tally, verdicts, Verdict};

/// Writes the Markdown report and the chart.
pub fn write(results: &Results, config: &Config) -> Result<()> {
    let agg = Agg::new(results);
    let judged = judged(results);
    let all_verdicts: Vec<Vec<Verdict>> = judged
        .iter()
        .map(|ds| verdicts(results, &agg, *ds))
        .collect();
    let has_read = !results.passes.is_empty();
    // The chart first: its data is the ratio tables.
    let chart = chart::data(
        results,
        &agg,
        format!("litestream VFS benchmark, {}", utc_now()),
    );
    if chart.has_groups() {
        chart::draw(&chart, config)?;
    }
    if let Some(s) = &results.scale {
        scale::draw(s, config)?;
    }

    let total = unix_now() - config.t0_unix;
    if let Some(doc) = spliced(results, config) {
        std::fs::write(&config.out_md, doc)
            .with_context(|| format!("write {}", config.out_md.display()))?;
        eprintln!(
            "bench: scale section put into {} (its read and write sections kept: no earlier \
             results.json to carry them from; took {})",
            config.out_md.display(),
            fmt_duration(total)
        );
        return Ok(());
    }
    let mut md = String::new();
    markdown::header(&mut md, results, config, total);
    if has_read {
        markdown::targets(&mut md, &judged, &all_verdicts);
        markdown::ratios(&mut md, results, &agg);
    }
    let mut write_met = (0, 0);
    if let Some(w) = &results.write {
        let (section, met, judged) = write_suite::section(w);
        md.push_str(&section);
        write_met = (met, judged);
    }
    if let Some(s) = &results.scale {
        md.push_str(&scale::section(s));
    }
    let mut all_same = true;
    for p in &results.passes {
        all_same &= markdown::pass(&mut md, results, &agg, p);
    }
    if !all_same {
        let _ = writeln!(
            md,
            "**Some answers differ between targets: see the `answers` columns.**\n"
        );
    }
    if has_read {
        markdown::extensions(&mut md, results, &agg);
        markdown::datasets(&mut md, results);
    }
    md.push_str(method::METHOD);
    if results.write.is_some() {
        md.push_str(&method::write_suite());
    }
    md.push_str(method::KNOBS);
    let _ = writeln!(
        md,
        "\nRaw per-run data of this report: `.bench/results.json` (not committed).\n"
    );

    if let Some(dir) = config.out_md.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&config.out_md, md)
        .with_context(|| format!("write {}", config.out_md.display()))?;
    let suite = |ran: bool, (met, judged): (usize, usize)| {
        if ran {
            format!("{met} of {judged} targets met")
        } else {
            "not run".to_string()
        }
    };
    eprintln!(
        "bench: report in {} (read: {}; write: {}; scale: {}; took {})",
        config.out_md.display(),
        suite(has_read, tally(&all_verdicts[0])),
        suite(results.write.is_some(), write_met),
        if results.scale.is_some() {
            "see its section"
        } else {
            "not run"
        },
        fmt_duration(total)
    );
    Ok(())
}

/// The existing report with this run's scale section, when only the scale suite has figures
/// and the report in place has others ([`splice`]).
fn spliced(results: &Results, config: &Config) -> Option<String> {
    let s = results.scale.as_ref()?;
    if !results.passes.is_empty() || results.write.is_some() {
        return None;
    }
    let existing = std::fs::read_to_string(&config.out_md).ok()?;
    let line = scale::summary(s, results.scale_carried);
    splice::splice(&existing, &scale::section(s), &line)
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    format!("{cpus} CPUs ({model}), {mem_gib:.1} GiB RAM, Linux {kernel}")
}

pub(crate) fn utc_now() -> String {
    rusqlite::Connection::open_in_memory()
        .and_then(|c| {
            c.query_row("SELECT strftime('%Y-%m-%d %H:%M UTC', 'now')", [], |r| {
                r.get(0)
            })
        })
        .unwrap_or_else(|_| "unknown date".to_string())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_bigtx;
