//! The write suite's part of the report (issue #4): its line in the header, its section
//! (targets, ratios, raw figures) and its rows of the chart.

mod aggregate;
pub(in crate::report) mod bigtx;
mod chart;
mod figures;
mod verdict;

use std::fmt::Write as _;

use testkit::RequestStats;

pub(super) use chart::chart_rows;

use super::aggregate::median;
use super::format::{fmt_duration, fmt_ms, fmt_opt_ratio, join, push_errors, table_head};
use super::verdict::tally;
use crate::spec::Target;
use crate::write::{WriteDb, WriteResults, WriteWorkload};
use aggregate::{aggregate, Cells};
use figures::{cell_ratio, fmt_cell, fmt_checks, unit};

/// The databases of the suite, in report order.
fn dbs(w: &WriteResults) -> Vec<WriteDb> {
    std::iter::once(WriteDb::New)
        .chain(w.sizes.iter().map(|&mb| WriteDb::Replica(mb)))
        .collect()
}

/// What the top of the report says about the write suite.
pub(super) fn summary(w: &WriteResults, carried: bool) -> String {
    let from = if carried {
        format!(
            ", carried over from the run of {} ({}); `BENCH_SUITES=write make bench` reruns it",
            w.date, w.code
        )
    } else {
        String::new()
    };
    let only = if w.workloads.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = w.workloads.iter().map(|wl| wl.name()).collect();
        format!(" BENCH_WRITE_WORKLOADS={}", names.join(","))
    };
    format!(
        "`BENCH_WRITE_SIZES={} BENCH_WRITE_RUNS={} BENCH_WRITE_SECS={} BENCH_WRITE_LOAD_SECS={} \
         BENCH_WRITE_SAMPLES={} BENCH_WRITE_TIMEOUT={} BENCH_BIGTX_MB={} BENCH_BIGTX_RUNS={} \
         BENCH_BIGTX_TIMEOUT={}{only}`, {} processes, {}{from}",
        join(&w.sizes),
        w.runs,
        w.secs,
        w.load_secs,
        w.samples,
        w.timeout_secs,
        join(&w.bigtx_mb),
        w.bigtx_runs,
        w.bigtx_timeout_secs,
        w.records.len(),
        fmt_duration(w.secs_taken)
    )
}

/// The "Write mode" section of the report; and how many of its targets were met, of how many.
pub(super) fn section(w: &WriteResults) -> (String, usize, usize) {
    let cells = aggregate(w);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Write mode (issue #4)\n\nOur VFS and the Go VFS with `LITESTREAM_WRITE_ENABLED=true` \
         and an upload interval of {} (both VFS's default), on a new database{}; local SQLite \
         on a file where a file makes sense. Medians (min–max) of {} run(s), each in a fresh \
         process on its own copy of the replica (see the method below).\n",
        fmt_ms(w.interval_ms as f64),
        if w.sizes.is_empty() {
            " only (`BENCH_WRITE_SIZES` was empty)".to_string()
        } else {
            w.sizes
                .iter()
                .map(|mb| format!(" and on the {mb} MB replica"))
                .collect::<String>()
        },
        w.runs
    );
    let (met, judged) = targets(&mut md, w, &cells);
    let dbs = dbs(w);
    ratios(&mut md, &cells, &dbs);
    for &db in &dbs {
        raw_figures(&mut md, &cells, db);
        requests(&mut md, &cells, db);
        push_errors(
            &mut md,
            Target::ALL.iter().flat_map(|&t| {
                let cells = &cells;
                WriteWorkload::ALL.iter().flat_map(move |&wl| {
                    cells
                        .get(db, t, wl)
                        .errors
                        .iter()
                        .map(move |e| format!("{} {}: {e}", t.label(), wl.name()))
                })
            }),
        );
        md.push('\n');
    }
    bigtx::section(&mut md, w);
    (md, met, judged)
}

/// The targets table and the reasons of those not met; how many were met, of how many.
fn targets(md: &mut String, w: &WriteResults, cells: &Cells) -> (usize, usize) {
    let verdicts = verdict::verdicts(w, cells);
    let _ = writeln!(md, "| target | figure | |\n|---|---|---|");
    for v in &verdicts {
        let _ = writeln!(md, "| {} | {} | {} |", v.what, v.figure, v.status());
    }
    let (met, judged) = tally(&verdicts);
    let _ = writeln!(md, "\n{met} of {judged} write targets met.");
    let mut notes = verdicts
        .iter()
        .filter_map(|v| Some((&v.what, v.why.as_ref()?)).filter(|_| v.met == Some(false)))
        .peekable();
    if notes.peek().is_some() {
        let _ = writeln!(md, "\nWhy:\n");
        for (what, why) in notes {
            let _ = writeln!(md, "- **{what}**: {why}");
        }
    }
    md.push('\n');
    (met, judged)
}

/// Ratios of the medians, every workload on every database.
fn ratios(md: &mut String, cells: &Cells, dbs: &[WriteDb]) {
    let _ = writeln!(
        md,
        "Ratios of the medians. For rates (tx/s, rows/s, uploads/s) above 1 means ours does \
         more; for times below 1 means ours is faster.\n"
    );
    let head = table_head(
        "workload",
        dbs.iter().map(|db| {
            let t = db.label();
            (
                format!(" {t}: ours ÷ Go | {t}: ours ÷ local |"),
                "---:|---:|",
            )
        }),
    );
    let _ = writeln!(md, "{head}");
    for wl in WriteWorkload::ALL {
        let mut row = format!("| {} ({}) |", wl.label(), unit(wl));
        for &db in dbs {
            let o = cells.get(db, Target::Ours, wl);
            let _ = write!(
                row,
                " {} | {} |",
                fmt_opt_ratio(cell_ratio(o, cells.get(db, Target::Go, wl))),
                fmt_opt_ratio(cell_ratio(o, cells.get(db, Target::Local, wl)))
            );
        }
        let _ = writeln!(md, "{row}");
    }
    md.push('\n');
}

/// The figures of every workload on `db`, and the restore checks.
fn raw_figures(md: &mut String, cells: &Cells, db: WriteDb) {
    let _ = writeln!(
        md,
        "### Write mode, {}: raw figures\n\n\
         | workload | local SQLite | our VFS | Go VFS | ours ÷ Go | ours ÷ local | replica restored: ours | Go |\n\
         |---|---:|---:|---:|---:|---:|---|---|",
        db.label()
    );
    for wl in WriteWorkload::ALL {
        if !wl.applies_to(Target::Ours, db) {
            continue;
        }
        let (o, g, l) = (
            cells.get(db, Target::Ours, wl),
            cells.get(db, Target::Go, wl),
            cells.get(db, Target::Local, wl),
        );
        let local = if wl.applies_to(Target::Local, db) {
            fmt_cell(wl, l)
        } else {
            "n/a".to_string()
        };
        let _ = writeln!(
            md,
            "| {} | {local} | {} | {} | {} | {} | {} | {} |",
            wl.label(),
            fmt_cell(wl, o),
            fmt_cell(wl, g),
            fmt_opt_ratio(cell_ratio(o, g)),
            fmt_opt_ratio(cell_ratio(o, l)),
            fmt_checks(o).unwrap_or_else(|| "—".into()),
            fmt_checks(g).unwrap_or_else(|| "—".into()),
        );
    }
}

/// Requests, closing and peak RSS of every workload on `db`.
fn requests(md: &mut String, cells: &Cells, db: WriteDb) {
    let _ = writeln!(
        md,
        "\nRequests during the measured section (medians per run; PUT = uploads), closing \
         the connection (the VFS uploads what is still pending), peak RSS:\n\n\
         | workload | ours PUT | ours GET | ours LIST | ours close | ours RSS MB | Go PUT | Go GET | Go LIST | Go close | Go RSS MB |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let n = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.0}"));
    for wl in WriteWorkload::ALL {
        if !wl.applies_to(Target::Ours, db) {
            continue;
        }
        let mut row = format!("| {} |", wl.label());
        for t in [Target::Ours, Target::Go] {
            let x = cells.get(db, t, wl);
            let rss_mb: Vec<f64> = x.rss_kb.iter().map(|k| *k as f64 / 1024.0).collect();
            let _ = write!(
                row,
                " {} | {} | {} | {} | {} |",
                n(x.req_med(|r| r.put)),
                n(x.req_med(RequestStats::gets)),
                n(x.req_med(|r| r.list)),
                median(&x.close_ms).map_or("—".to_string(), fmt_ms),
                n(median(&rss_mb)),
            );
        }
        let _ = writeln!(md, "{row}");
    }
}
