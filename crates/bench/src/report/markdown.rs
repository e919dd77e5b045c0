//! The read suite's sections of `docs/benchmarks.md`, and the header of the whole document.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::aggregate::{ratio, Agg, Cell, Fig};
use super::format::{
    fmt_duration, fmt_fig, fmt_opt_ratio, fmt_ratio, join, mb, push_errors, table_head,
};
use super::verdict::{tally, Verdict};
use super::{machine, utc_now, write_suite};
use crate::config::Config;
use crate::driver::{PassInfo, Results};
use crate::gen::DatasetId;
use crate::spec::{Metric, Target, Workload};

pub(super) fn pass_title(size: DatasetId, lat: u64) -> String {
    if lat == 0 {
        size.label()
    } else {
        format!("{}, +{lat} ms per request", size.label())
    }
}

/// The title and the list of what was measured, where, how and how long it took.
pub(super) fn header(md: &mut String, results: &Results, config: &Config, total_secs: f64) {
    let has_read = !results.passes.is_empty();
    let load_avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let _ = writeln!(md, "# Benchmarks: reading and writing\n");
    let _ = writeln!(
        md,
        "_Written by `make bench` (crates/bench); rerun it rather than editing this file._\n"
    );
    let _ = writeln!(md, "- **Date:** {}", utc_now());
    let _ =
        writeln!(
        md,
        "- **Machine:** {}; load average at the end: {} (the machine is shared with other work, \
         so expect noise)",
        machine(),
        load_avg.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let _ = writeln!(md, "- **Command:** `{}`", config.command);
    let _ = writeln!(md, "- **Code measured:** {}", results.code);
    let settings = read_settings(config);
    match (&results.read_from, has_read) {
        (_, false) => {
            let _ = writeln!(md, "- **Read suite:** not run yet (`BENCH_SUITES=read`)");
        }
        (Some(from), true) => {
            let _ = writeln!(
                md,
                "- **Read suite:** `{settings}`, carried over from {from}; \
                 `BENCH_SUITES=read make bench` reruns it"
            );
        }
        (None, true) => {
            let _ = writeln!(md, "- **Read suite:** `{settings}`");
        }
    }
    match &results.write {
        Some(w) => {
            let _ = writeln!(
                md,
                "- **Write suite:** {}",
                write_suite::summary(w, results.write_carried)
            );
        }
        None => {
            let _ = writeln!(md, "- **Write suite:** not run yet (`BENCH_SUITES=write`)");
        }
    }
    match &results.scale {
        Some(s) => {
            let _ = writeln!(
                md,
                "- **Scale suite:** {}",
                super::scale::summary(s, results.scale_carried)
            );
        }
        None => {
            let _ = writeln!(md, "- **Scale suite:** not run yet (`BENCH_SUITES=scale`)");
        }
    }
    took(md, results, total_secs);
    extensions_line(md, results, config);
}

/// The read suite's settings, as environment variables.
fn read_settings(config: &Config) -> String {
    format!(
        "BENCH_SIZES={} BENCH_VACUUMED_SIZES={} BENCH_RUNS={} BENCH_LATENCY_MS={} BENCH_LATENCY_SIZES={} \
         BENCH_LATENCY_RUNS={} BENCH_LATENCY_GO_RUNS={} BENCH_TIMEOUT={} BENCH_LATENCY_TIMEOUT={}",
        join(&config.sizes),
        join(&config.vacuumed_sizes),
        config.runs,
        config.latency_ms,
        join(&config.latency_sizes),
        config.latency_runs,
        config.latency_go_runs,
        config.timeout_secs,
        config.latency_timeout_secs
    )
}

/// How long the whole command took, and each read pass.
fn took(md: &mut String, results: &Results, total_secs: f64) {
    let write_processes = results.write.as_ref().map_or(0, |w| w.records.len())
        + results.scale.as_ref().map_or(0, |s| s.records.len());
    let _ = writeln!(
        md,
        "- **Took:** {} in all (build, datasets, {} processes, report){}",
        fmt_duration(total_secs),
        results.records.len() + write_processes,
        if results.gen_secs > 0.0 {
            format!(
                ", of which {} generating datasets (a one-off: they are cached in `.bench/`)",
                fmt_duration(results.gen_secs)
            )
        } else {
            "; every dataset came from the cache in `.bench/`".to_string()
        }
    );
    let pass_list: Vec<String> = results
        .passes
        .iter()
        .map(|p| {
            format!(
                "{}: {}",
                pass_title(p.dataset, p.latency_ms),
                fmt_duration(p.secs)
            )
        })
        .collect();
    if !results.passes.is_empty() {
        let _ = writeln!(md, "- **Read passes:** {}", pass_list.join("; "));
    }
}

/// The extensions measured, and the chart below the header.
fn extensions_line(md: &mut String, results: &Results, config: &Config) {
    let file_name = |p: &std::path::Path| {
        p.file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let _ = writeln!(
        md,
        "- **Extensions:** ours `{}` ({} MB), Go `{}` 0.5.17 ({} MB)\n",
        file_name(&config.ours_so),
        mb(results.so_bytes.0),
        file_name(&config.go_so),
        mb(results.so_bytes.1)
    );
    let _ = writeln!(
        md,
        "![ours ÷ Go and ours ÷ local, medians, log scale](benchmarks.png)\n"
    );
}

/// The read targets on the judged dataset (and its vacuumed twin), with the reasons
/// of those not met.
pub(super) fn targets(md: &mut String, judged: &[DatasetId], all_verdicts: &[Vec<Verdict>]) {
    let _ = writeln!(
        md,
        "## Targets of the issue ({}, medians of the same run)\n",
        judged[0].label()
    );
    let head = table_head(
        "target",
        judged
            .iter()
            .map(|ds| (format!(" {} | |", ds.label()), "---|---|")),
    );
    let _ = writeln!(md, "{head}");
    for (i, v) in all_verdicts[0].iter().enumerate() {
        let mut row = format!("| {} |", v.what);
        for vs in all_verdicts {
            let v = &vs[i];
            let _ = write!(row, " {} | {} |", v.figure, v.status());
        }
        let _ = writeln!(md, "{row}");
    }
    let (read_met, read_judged) = tally(&all_verdicts[0]);
    let _ = writeln!(
        md,
        "\n{read_met} of {read_judged} targets met on {}.",
        judged[0].label()
    );
    why_not(md, judged[0], &all_verdicts[0]);
    if let Some(vac) = all_verdicts.get(1) {
        let (met_v, judged_v) = tally(vac);
        let _ = writeln!(
            md,
            "On the vacuumed twin (contiguous pages; not what the issue's targets are judged on): \
             {met_v} of {judged_v}."
        );
    }
    md.push('\n');
}

/// Why the targets that are not met are not, with the figures of this run; targets with the
/// same reason share it.
fn why_not(md: &mut String, size: DatasetId, verdicts: &[Verdict]) {
    let mut notes: Vec<(Vec<&str>, &str)> = Vec::new();
    for v in verdicts {
        if let (Some(false), Some(why)) = (v.met, &v.why) {
            match notes.iter_mut().find(|n| n.1 == why.as_str()) {
                Some(n) => n.0.push(&v.what),
                None => notes.push((vec![&v.what], why)),
            }
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(md, "\nWhy, on {}:\n", size.label());
        for (whats, why) in notes {
            let _ = writeln!(md, "- **{}**: {why}", whats.join("; "));
        }
        md.push('\n');
    }
}

/// Ratios at a glance: every metric, every pass.
pub(super) fn ratios(md: &mut String, results: &Results, agg: &Agg) {
    let _ = writeln!(md, "## Ratios (medians; below 1 means ours is faster)\n");
    let head = table_head(
        "workload",
        results.passes.iter().map(|p| {
            let t = pass_title(p.dataset, p.latency_ms);
            (
                format!(" {t}: ours ÷ Go | {t}: ours ÷ local |"),
                "---:|---:|",
            )
        }),
    );
    let _ = writeln!(md, "{head}");
    for m in Metric::ALL {
        let mut row = format!("| {} |", m.label());
        for p in &results.passes {
            let o = agg.cell(p.dataset, p.latency_ms, Target::Ours, m).fig();
            let g = agg.cell(p.dataset, p.latency_ms, Target::Go, m).fig();
            let l = agg.cell(p.dataset, p.latency_ms, Target::Local, m).fig();
            let _ = write!(
                row,
                " {} | {} |",
                fmt_opt_ratio(ratio(o, g)),
                fmt_opt_ratio(ratio(o, l))
            );
        }
        let _ = writeln!(md, "{row}");
    }
    let _ = writeln!(
        md,
        "\nIn passes with added latency, \"local\" is local SQLite without latency (it never \
         touches S3).\n"
    );
}

/// One pass's raw figures: times, requests, peak RSS, errors. Returns whether every answer
/// was the same as local SQLite's.
pub(super) fn pass(md: &mut String, results: &Results, agg: &Agg, p: &PassInfo) -> bool {
    let (size, lat) = (p.dataset, p.latency_ms);
    let _ = writeln!(
        md,
        "## {}: raw figures\n\nRuns: ours {}, Go {}, local {}; each in a fresh process, \
         killed after {} s. Times: **median** (min–max) of the measured section.\n",
        pass_title(size, lat),
        p.runs[0],
        p.runs[1],
        if lat == 0 {
            p.runs[2].to_string()
        } else {
            "— (figures of the pass without latency)".to_string()
        },
        p.timeout_secs
    );
    let all_same = pass_times(md, results, agg, size, lat);
    pass_requests(md, agg, size, lat);
    pass_rss(md, agg, size, lat);
    let errors: BTreeSet<String> = Target::ALL
        .iter()
        .flat_map(|t| {
            Metric::ALL.iter().flat_map(move |m| {
                agg.cell(size, lat, *t, *m)
                    .errors
                    .into_iter()
                    .map(move |e| format!("{} {}: {e}", t.label(), m.name()))
            })
        })
        .collect();
    push_errors(md, errors);
    md.push('\n');
    all_same
}

/// The times of a pass, with the answers' check.
fn pass_times(md: &mut String, results: &Results, agg: &Agg, size: DatasetId, lat: u64) -> bool {
    let mut all_same = true;
    let _ = writeln!(
        md,
        "| workload | local SQLite | our VFS | Go VFS | ours ÷ Go | ours ÷ local | answers |\n\
         |---|---:|---:|---:|---:|---:|---|"
    );
    for m in Metric::ALL {
        let o = agg.cell(size, lat, Target::Ours, m);
        let g = agg.cell(size, lat, Target::Go, m);
        let l = agg.cell(size, lat, Target::Local, m);
        let (answers, same) = answers_check(results, agg, size, lat, m);
        all_same &= same;
        let local = match m.local_equivalent() {
            None => "n/a".to_string(),
            Some(e) if e != m => format!("{} ({})", fmt_fig(l.fig()), e.name()),
            Some(_) => fmt_fig(l.fig()),
        };
        let _ = writeln!(
            md,
            "| {} | {local} | {} | {} | {} | {} | {answers} |",
            m.label(),
            fmt_fig(o.fig()),
            fmt_fig(g.fig()),
            fmt_opt_ratio(ratio(o.fig(), g.fig())),
            fmt_opt_ratio(ratio(o.fig(), l.fig())),
        );
    }
    all_same
}

/// Whether ours and Go returned what local SQLite did (for time travel, what the primary held).
fn answers_check(
    results: &Results,
    agg: &Agg,
    size: DatasetId,
    lat: u64,
    metric: Metric,
) -> (String, bool) {
    let reference: Option<BTreeSet<(u64, String)>> = if metric == Metric::TimeTravel {
        results
            .datasets
            .iter()
            .find(|d| d.size_mb == size.size_mb && d.vacuumed == size.vacuumed)
            .map(|d| BTreeSet::from([(2, d.tt_expected.clone())]))
    } else {
        // Hydration's first measured section ends with the first query.
        let m = if metric == Metric::HydrateReady {
            Metric::Open
        } else {
            metric
        };
        Some(agg.cell(size, 0, Target::Local, m).answers).filter(|a| !a.is_empty())
    };
    let Some(reference) = reference else {
        return ("—".to_string(), true);
    };
    let mut bad = Vec::new();
    for t in [Target::Ours, Target::Go] {
        let a = agg.cell(size, lat, t, metric).answers;
        if !a.is_empty() && a != reference {
            bad.push(t.label());
        }
    }
    if reference.len() > 1 {
        bad.push("local (not stable)");
    }
    if bad.is_empty() {
        let rows = reference.iter().next().map(|r| r.0).unwrap_or(0);
        let plural = if rows == 1 { "" } else { "s" };
        (format!("same, {rows} row{plural}"), true)
    } else {
        (format!("**DIFFERENT: {}**", bad.join(", ")), false)
    }
}

/// `["12", "1", "0", "3.4"]`: GETs, LISTs, HEADs and MB of a cell's requests, "≥" for a bound.
fn fmt_req(r: Option<(testkit::RequestStats, bool)>) -> [String; 4] {
    match r {
        None => ["—".into(), "—".into(), "—".into(), "—".into()],
        Some((r, bound)) => {
            let p = if bound { "≥ " } else { "" };
            [
                format!("{p}{}", r.gets()),
                format!("{p}{}", r.list),
                format!("{p}{}", r.head),
                format!("{p}{}", mb(r.bytes_out)),
            ]
        }
    }
}

/// The S3 requests of a pass.
fn pass_requests(md: &mut String, agg: &Agg, size: DatasetId, lat: u64) {
    let _ = writeln!(
        md,
        "\nS3 requests during the measured section (medians; \"≥\" = counted until the run \
         was killed) and response bytes:\n"
    );
    let _ = writeln!(
        md,
        "| workload | ours GET | ours LIST | ours HEAD | ours MB | Go GET | Go LIST | Go HEAD | Go MB | GETs ours ÷ Go |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for m in Metric::ALL {
        let o = agg.cell(size, lat, Target::Ours, m).req();
        let g = agg.cell(size, lat, Target::Go, m).req();
        let gr = match (o, g) {
            (Some((o, _)), Some((g, gb))) if g.gets() > 0 => format!(
                "{}{}",
                if gb { "≤ " } else { "" },
                fmt_ratio(o.gets() as f64 / g.gets() as f64)
            ),
            _ => "—".to_string(),
        };
        let [og, ol, oh, ob] = fmt_req(o);
        let [gg, gl, gh, gb] = fmt_req(g);
        let _ = writeln!(
            md,
            "| {} | {og} | {ol} | {oh} | {ob} | {gg} | {gl} | {gh} | {gb} | {gr} |",
            m.label()
        );
    }
}

/// The peak RSS of a pass, per workload.
fn pass_rss(md: &mut String, agg: &Agg, size: DatasetId, lat: u64) {
    let _ = writeln!(
        md,
        "\nPeak RSS (VmHWM of the runner process, MB, median):\n\n\
         | workload | local SQLite | our VFS | Go VFS |\n|---|---:|---:|---:|"
    );
    let rss = |c: Cell| {
        c.rss_mb()
            .map(|v| format!("{v:.0}"))
            .unwrap_or_else(|| "—".to_string())
    };
    for w in Workload::ALL {
        let m = Metric::ALL
            .iter()
            .copied()
            .find(|m| m.workload() == w)
            .unwrap_or(Metric::Open);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            w.name(),
            if !w.applies_to(Target::Local) {
                "n/a".to_string()
            } else {
                rss(agg.cell(size, lat, Target::Local, m))
            },
            rss(agg.cell(size, lat, Target::Ours, m)),
            rss(agg.cell(size, lat, Target::Go, m)),
        );
    }
}

/// The extensions' sizes and load times over every run without added latency.
pub(super) fn extensions(md: &mut String, results: &Results, agg: &Agg) {
    let _ = writeln!(
        md,
        "## Extensions\n\n| | file size | load_extension, median (min–max), all runs |\n|---|---:|---:|"
    );
    for (t, bytes) in [
        (Target::Ours, results.so_bytes.0),
        (Target::Go, results.so_bytes.1),
    ] {
        let loads: Vec<f64> = agg
            .load_ms
            .iter()
            .filter(|((_, lat, tt), _)| *lat == 0 && *tt == t)
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} MB | {} |",
            t.label(),
            mb(bytes),
            fmt_fig(Fig::of(&loads))
        );
    }
    md.push('\n');
}

/// The datasets, and how their b-trees' pages lie in the file.
pub(super) fn datasets(md: &mut String, results: &Results) {
    let _ = writeln!(
        md,
        "## Datasets\n\n| size | items | docs | database file | replica files by level | replica bytes | time-travel target | generated |\n\
         |---|---:|---:|---:|---|---:|---|---|"
    );
    for d in &results.datasets {
        let levels: Vec<String> = d
            .levels
            .iter()
            .map(|(l, (n, b))| format!("L{l}: {n} ({} MB)", mb(*b)))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} MB | {} | {} MB | {} | {} in {} |",
            DatasetId {
                size_mb: d.size_mb,
                vacuumed: d.vacuumed
            }
            .label(),
            d.data.n_items,
            d.n_docs,
            mb(d.db_bytes),
            levels.join(", "),
            mb(d.replica_bytes),
            d.data.tt_time,
            d.generated_at,
            fmt_duration(d.gen_secs)
        );
    }
    let _ = writeln!(
        md,
        "\nWhere the pages lie (the restored file, via `dbstat`): a scan in key order that \
         reads ahead only over consecutive page numbers needs at least one request per run.\n\n\
         | size | b-tree | pages | leaf pages | runs of consecutive leaf pages, key order | median gap (pages) |\n\
         |---|---|---:|---:|---:|---:|"
    );
    for (size, layout) in &results.layouts {
        for b in layout {
            let _ = writeln!(
                md,
                "| {} | `{}` | {} | {} | {} | {} |",
                size.label(),
                b.name,
                b.pages,
                b.leaves,
                b.leaf_runs,
                b.median_gap
            );
        }
    }
    md.push('\n');
}
