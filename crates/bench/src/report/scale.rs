//! The scale suite's part of the report (issue #14): a table per size, ours ÷ Go at every
//! size, how each figure grows with the number of pages, and the log-log chart
//! (`docs/benchmarks-scale.png`, drawn by `scripts/bench-scale-chart.py`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;
use serde::Serialize;

use super::format::{fmt_duration, fmt_ms, fmt_ratio, mb, table_head};
use crate::config::Config;
use crate::scale::live::COMMITS_PER_SEC;
use crate::scale::{ScaleOutput, ScaleRecord, ScaleResults, ScaleWorkload};
use crate::spec::Target;

/// The ceiling for the resident index, bytes per page.
const INDEX_TARGET_BPP: f64 = 8.0;

/// What a figure is.
#[derive(Clone, Copy, PartialEq)]
enum Unit {
    Ms,
    Secs,
    Bytes,
}

/// A row of the tables: a figure of one workload's output.
struct Row {
    label: &'static str,
    short: &'static str,
    workload: ScaleWorkload,
    unit: Unit,
    get: fn(&ScaleOutput) -> Option<f64>,
}

const ROWS: [Row; 11] = [
    Row {
        label: "load + open + first query",
        short: "open",
        workload: ScaleWorkload::Follow,
        unit: Unit::Ms,
        get: |o| Some(o.open_ms),
    },
    Row {
        label: "RSS after open",
        short: "rss_open",
        workload: ScaleWorkload::Follow,
        unit: Unit::Bytes,
        get: |o| Some(o.rss_after_open_kb as f64 * 1024.0),
    },
    Row {
        label: "peak RSS up to the first answer (`VmHWM`)",
        short: "hwm_open",
        workload: ScaleWorkload::Follow,
        unit: Unit::Bytes,
        get: |o| o.hwm_after_open_kb.map(|kb| kb as f64 * 1024.0),
    },
    Row {
        label: "resident page map after open (`index_bytes`)",
        short: "index_open",
        workload: ScaleWorkload::Follow,
        unit: Unit::Bytes,
        get: |o| o.index_after_open.map(|b| b as f64),
    },
    Row {
        label: "point read of a row 7 from the end, cold",
        short: "deep_read",
        workload: ScaleWorkload::Follow,
        unit: Unit::Ms,
        get: |o| o.deep_read_ms,
    },
    Row {
        label: "CPU over the follow (user + system)",
        short: "follow_cpu",
        workload: ScaleWorkload::Follow,
        unit: Unit::Secs,
        get: |o| (o.follow_secs > 0.0).then_some(o.follow_cpu_secs),
    },
    Row {
        label: "RSS over the follow, peak",
        short: "follow_rss_peak",
        workload: ScaleWorkload::Follow,
        unit: Unit::Bytes,
        get: |o| (o.follow_secs > 0.0).then_some(o.follow_rss_peak_kb as f64 * 1024.0),
    },
    Row {
        label: "RSS at the end of the follow",
        short: "follow_rss_end",
        workload: ScaleWorkload::Follow,
        unit: Unit::Bytes,
        get: |o| (o.follow_secs > 0.0).then_some(o.follow_rss_end_kb as f64 * 1024.0),
    },
    Row {
        label: "resident page map at the end of the follow",
        short: "index_end",
        workload: ScaleWorkload::Follow,
        unit: Unit::Bytes,
        get: |o| o.index_follow_end.map(|b| b as f64),
    },
    Row {
        label: "hydration: open to complete",
        short: "hydrate",
        workload: ScaleWorkload::Hydrate,
        unit: Unit::Ms,
        get: |o| o.hydrate_ms,
    },
    Row {
        label: "hydration: peak RSS",
        short: "hydrate_rss",
        workload: ScaleWorkload::Hydrate,
        unit: Unit::Bytes,
        get: |o| o.hydrate_ms.map(|_| o.vmhwm_kb as f64 * 1024.0),
    },
];

fn fmt_value(unit: Unit, v: f64, pages: u32) -> String {
    match unit {
        Unit::Ms => fmt_ms(v),
        Unit::Secs => format!("{v:.2} s"),
        Unit::Bytes => {
            // A page map's few bytes a page need the decimal that the ≤ 8 B/page target turns on.
            let bpp = v / f64::from(pages);
            let digits = usize::from(bpp < 10.0);
            format!("{} MB ({bpp:.digits$} B/page)", mb(v as u64))
        }
    }
}

/// The run of `target` and `workload` at `leaves`, if any.
fn record(s: &ScaleResults, leaves: u64, target: Target, w: ScaleWorkload) -> Option<&ScaleRecord> {
    s.records
        .iter()
        .find(|r| r.leaves == leaves && r.target == target && r.workload == w)
}

/// The figure of `row`, or why there is none.
fn figure(s: &ScaleResults, leaves: u64, target: Target, row: &Row) -> Result<f64, String> {
    let r = record(s, leaves, target, row.workload).ok_or_else(|| "—".to_string())?;
    if r.skipped.is_some() {
        return Err("skipped (see below)".to_string());
    }
    if let Some(secs) = r.timed_out_secs {
        return Err(format!("killed after {secs} s"));
    }
    if r.error.is_some() {
        return Err("failed (see below)".to_string());
    }
    r.output
        .as_ref()
        .and_then(|o| (row.get)(o))
        .ok_or_else(|| "—".to_string())
}

fn cell(s: &ScaleResults, leaves: u64, pages: u32, target: Target, row: &Row) -> String {
    match figure(s, leaves, target, row) {
        Ok(v) => fmt_value(row.unit, v, pages),
        Err(e) => e,
    }
}

fn ratio_cell(s: &ScaleResults, leaves: u64, row: &Row) -> String {
    match (
        figure(s, leaves, Target::Ours, row),
        figure(s, leaves, Target::Go, row),
    ) {
        (Ok(a), Ok(b)) if b > 0.0 => format!("**{}**", fmt_ratio(a / b)),
        _ => "—".to_string(),
    }
}

/// `1M`, `8M`, `26M`, `10k`.
fn size_label(leaves: u64) -> String {
    if leaves >= 1_000_000 && leaves.is_multiple_of(100_000) {
        format!("{}M", leaves as f64 / 1e6)
    } else if leaves >= 1000 && leaves.is_multiple_of(1000) {
        format!("{}k", leaves / 1000)
    } else {
        leaves.to_string()
    }
}

/// The header's line about the suite.
pub(super) fn summary(s: &ScaleResults, carried: bool) -> String {
    let sizes: Vec<String> = s.datasets.iter().map(|d| size_label(d.leaves)).collect();
    let hydrate: Vec<String> = s.hydrate_leaves.iter().map(|l| size_label(*l)).collect();
    format!(
        "`BENCH_SCALE_PAGES={} BENCH_SCALE_FOLLOW_SECS={} BENCH_SCALE_HYDRATE={}`, run {} on {}, \
         took {}{}",
        sizes.join(","),
        s.follow_secs,
        hydrate.join(","),
        s.date,
        s.code,
        fmt_duration(s.secs_taken),
        if carried {
            "; carried over (`BENCH_SUITES=scale make bench` reruns it)"
        } else {
            ""
        }
    )
}

/// The section.
pub(super) fn section(s: &ScaleResults) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "{}", super::splice::BEGIN);
    let _ = writeln!(
        md,
        "## Scale: large databases following a live primary (issue #14)\n"
    );
    let _ = writeln!(
        md,
        "One table of N rows, one 4 KiB leaf each, written straight into an LTX \
         snapshot in a `file://` replica; a live primary appends level-0 files at \
         {COMMITS_PER_SEC} commits/s of {} pages each. One process per VFS and size: load + open + \
         first query, a point read near the end of the file, then a follow of {:.0} s re-querying \
         every 100 ms. Run {} on {}, took {}. How, below the tables.\n",
        s.pages_per_commit,
        s.follow_secs,
        s.date,
        s.code,
        fmt_duration(s.secs_taken)
    );
    let _ = writeln!(
        md,
        "![log-log, ours and Go by pages](benchmarks-scale.png)\n"
    );
    ratios(&mut md, s);
    growth(&mut md, s);
    for d in &s.datasets {
        let _ = writeln!(
            md,
            "### {} rows: {} pages, {:.1} GB as a file, {} MB snapshot (written in {})\n",
            size_label(d.leaves),
            d.total_pages,
            d.db_bytes as f64 / 1e9,
            mb(d.ltx_bytes),
            fmt_duration(d.gen_secs)
        );
        let head = table_head(
            "",
            [
                (" our VFS |".to_string(), "---:|"),
                (" Go VFS |".to_string(), "---:|"),
                (" ours ÷ Go |".to_string(), "---:|"),
            ],
        );
        let _ = writeln!(md, "{head}");
        for row in &ROWS {
            if record(s, d.leaves, Target::Ours, row.workload).is_none()
                && record(s, d.leaves, Target::Go, row.workload).is_none()
            {
                continue;
            }
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                row.label,
                cell(s, d.leaves, d.total_pages, Target::Ours, row),
                cell(s, d.leaves, d.total_pages, Target::Go, row),
                ratio_cell(s, d.leaves, row)
            );
        }
        let seen = |t: Target| {
            record(s, d.leaves, t, ScaleWorkload::Follow)
                .and_then(|r| {
                    r.output
                        .as_ref()
                        .map(|o| (o.last_commit_seen, r.commits_written))
                })
                .filter(|(_, w)| *w > 0)
                .map_or("—".to_string(), |(seen, w)| format!("{seen} of {w}"))
        };
        let _ = writeln!(
            md,
            "| last commit seen at the end of the follow | {} | {} | |\n",
            seen(Target::Ours),
            seen(Target::Go)
        );
    }
    notes(&mut md, s);
    let _ = writeln!(md, "How the scale figures are made:\n");
    md.push_str(&super::method::scale_suite());
    let _ = writeln!(md, "{}", super::splice::END);
    md
}

/// Ours ÷ Go at every size.
fn ratios(md: &mut String, s: &ScaleResults) {
    let _ = writeln!(md, "### Ours ÷ Go at every size\n");
    let head = table_head(
        "",
        s.datasets
            .iter()
            .map(|d| (format!(" {} rows |", size_label(d.leaves)), "---:|")),
    );
    let _ = writeln!(md, "{head}");
    for row in &ROWS {
        let cells: Vec<String> = s
            .datasets
            .iter()
            .map(|d| ratio_cell(s, d.leaves, row))
            .collect();
        if cells.iter().all(|c| c == "—") {
            continue;
        }
        let _ = writeln!(md, "| {} | {} |", row.label, cells.join(" | "));
    }
    let _ = writeln!(md);
}

/// The exponent k of `figure ∝ pages^k` between the smallest and the largest size measured.
fn exponent(s: &ScaleResults, target: Target, row: &Row) -> Option<f64> {
    let points: Vec<(f64, f64)> = s
        .datasets
        .iter()
        .filter_map(|d| {
            figure(s, d.leaves, target, row)
                .ok()
                .filter(|v| *v > 0.0)
                .map(|v| (f64::from(d.total_pages), v))
        })
        .collect();
    let (first, last) = (points.first()?, points.last()?);
    (last.0 > first.0).then(|| (last.1 / first.1).ln() / (last.0 / first.0).ln())
}

/// How each figure grows with the number of pages.
fn growth(md: &mut String, s: &ScaleResults) {
    let _ = writeln!(
        md,
        "### How each figure grows with the number of pages\n\n\
         k in figure ∝ pages^k between the smallest and the largest size measured: 1 grows with \
         the database, 0 does not. Bytes per page is the figure ÷ pages. The issue's target of \
         ≤ {INDEX_TARGET_BPP:.0} B/page is for the resident index alone: the page map rows, which \
         our VFS reports in `litestream_stats` (`index_bytes`: the compact page indexes of the \
         version's files and the map of pages changed since its base); RSS also holds SQLite's \
         cache, our page cache, the runtime and the extension.\n"
    );
    let mut head_cells: Vec<(String, &'static str)> = s
        .datasets
        .iter()
        .map(|d| (format!(" {} rows |", size_label(d.leaves)), "---:|"))
        .collect();
    head_cells.push((" k |".to_string(), "---:|"));
    let _ = writeln!(md, "{}", table_head("", head_cells));
    for row in &ROWS {
        for target in [Target::Ours, Target::Go] {
            let cells: Vec<String> = s
                .datasets
                .iter()
                .map(|d| match figure(s, d.leaves, target, row) {
                    Ok(v) => fmt_value(row.unit, v, d.total_pages),
                    Err(_) => "—".to_string(),
                })
                .collect();
            if cells.iter().all(|c| c == "—") {
                continue;
            }
            let k = exponent(s, target, row).map_or("—".to_string(), |k| format!("{k:.2}"));
            let _ = writeln!(
                md,
                "| {}, {} | {} | {k} |",
                row.label,
                target.label(),
                cells.join(" | ")
            );
        }
    }
    let _ = writeln!(md);
}

/// Skipped and failed runs, with their reasons.
fn notes(md: &mut String, s: &ScaleResults) {
    let mut lines = Vec::new();
    for r in &s.records {
        let what = format!(
            "{} rows, {}, {}",
            size_label(r.leaves),
            r.target.label(),
            match r.workload {
                ScaleWorkload::Follow => "open and follow",
                ScaleWorkload::Hydrate => "hydration",
            }
        );
        if let Some(why) = &r.skipped {
            lines.push(format!("- {what}: **skipped**, {why}."));
        } else if let Some(e) = &r.error {
            lines.push(format!("- {what}: **failed**: `{}`", e.replace('`', "'")));
        }
    }
    if !lines.is_empty() {
        let _ = writeln!(md, "Runs not measured:\n\n{}\n", lines.join("\n"));
    }
}

#[derive(Serialize)]
struct Series {
    target: &'static str,
    values: Vec<Option<f64>>,
}

#[derive(Serialize)]
struct Panel {
    title: &'static str,
    unit: &'static str,
    key: &'static str,
    series: Vec<Series>,
}

#[derive(Serialize)]
struct ChartData {
    title: String,
    pages: Vec<u32>,
    index_target_bpp: f64,
    panels: Vec<Panel>,
}

/// `benchmarks-scale.png` beside the report's chart.
pub(super) fn png_path(config: &Config) -> PathBuf {
    let stem = config
        .out_png
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "benchmarks".into());
    config.out_png.with_file_name(format!("{stem}-scale.png"))
}

/// Writes the chart's data (`scale-chart.json`) and draws it; a chart that cannot be drawn is
/// said and skipped.
pub(super) fn draw(s: &ScaleResults, config: &Config) -> Result<()> {
    let pages: Vec<u32> = s.datasets.iter().map(|d| d.total_pages).collect();
    // Per VFS, the figure of `row` at each size, through `f(figure, pages)`.
    let series = |row: &Row, f: &dyn Fn(f64, f64) -> f64| -> Vec<Series> {
        [Target::Ours, Target::Go]
            .iter()
            .map(|&t| Series {
                target: t.label(),
                values: s
                    .datasets
                    .iter()
                    .map(|d| {
                        let v = figure(s, d.leaves, t, row).ok();
                        v.map(|v| f(v, f64::from(d.total_pages)))
                    })
                    .collect(),
            })
            .collect()
    };
    let mut panels: Vec<Panel> = ROWS
        .iter()
        .filter(|r| {
            !matches!(
                r.short,
                "follow_rss_end" | "hydrate_rss" | "index_open" | "index_end" | "hwm_open"
            )
        })
        .map(|r| Panel {
            title: r.label,
            unit: match r.unit {
                Unit::Ms => "ms",
                Unit::Secs => "s",
                Unit::Bytes => "MB",
            },
            key: r.short,
            series: match r.unit {
                Unit::Bytes => series(r, &|v, _| v / 1e6),
                _ => series(r, &|v, _| v),
            },
        })
        .collect();
    // Bytes per page after open, RSS and our page map, with the index target.
    let by_short = |short: &str| ROWS.iter().find(|r| r.short == short);
    let mut bpp_series = by_short("rss_open").map_or_else(Vec::new, |r| series(r, &|v, p| v / p));
    if let Some(r) = by_short("index_open") {
        bpp_series.extend(
            series(r, &|v, p| v / p)
                .into_iter()
                .filter(|x| x.target == Target::Ours.label())
                .map(|x| Series {
                    target: "our page map",
                    values: x.values,
                }),
        );
    }
    let bpp = Panel {
        title: "bytes per page after open (RSS, and our page map)",
        unit: "B/page",
        key: "bpp",
        series: bpp_series,
    };
    panels.insert(2, bpp);
    let chart = ChartData {
        title: format!("litestream VFS at scale, {}", s.date),
        pages,
        index_target_bpp: INDEX_TARGET_BPP,
        panels,
    };
    let json = config.bench_dir.join("scale-chart.json");
    std::fs::write(&json, serde_json::to_string_pretty(&chart)?)?;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench-scale-chart.py");
    let png = png_path(config);
    match Command::new(&config.python)
        .arg(&script)
        .arg(&json)
        .arg(&png)
        .status()
    {
        Ok(st) if st.success() => eprintln!("bench: scale chart in {}", png.display()),
        Ok(st) => eprintln!("bench: the scale chart script failed ({st}); no scale chart"),
        Err(e) => eprintln!(
            "bench: {} {}: {e}; no scale chart",
            config.python,
            script.display()
        ),
    }
    Ok(())
}
