//! The write suite's part of the report (issue #4): its targets, ratios and raw figures, its
//! method, and its rows of the chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use testkit::RequestStats;

use crate::report::{fmt_duration, fmt_ms, fmt_ratio, median, num};
use crate::spec::Target;
use crate::write::{
    WriteDb, WriteResults, WriteWorkload, BATCH_ROWS, SQL_INSERT, VISIBLE_TIMEOUT_INTERVALS,
};

/// Issue #4: our single-row tx/s with `synchronous=OFF` ≥ this × Go's.
const TX_OFF_VS_GO: f64 = 2.0;
/// Issue #4: our single-row tx/s at the default `synchronous=FULL` ≥ this × Go's.
const TX_FULL_VS_GO: f64 = 1.0;
/// Issue #4: COMMIT → object in the store ≤ this × the upload interval (1.5 s at 1 s).
const VISIBLE_INTERVALS: f64 = 1.5;
/// Issue #4, "an upload in every interval under load": the longest time without a new
/// object while writing ≤ this × the interval. A writer that uploads at every tick leaves
/// gaps of one interval plus an upload; one that skips a tick leaves two intervals.
const GAP_INTERVALS: f64 = 1.5;
/// Issue #4: load + open in write mode + first write ≤ this × Go's time.
const OPEN_VS_GO: f64 = 0.1;

/// All runs of one (database, target, workload).
#[derive(Debug, Default, Clone)]
struct Cell {
    /// Per run: the workload's figure (tx/s, rows/s, uploads/s; for opening, ms).
    values: Vec<f64>,
    /// Every commit-to-visible sample of every run, ms.
    visible: Vec<f64>,
    visible_timeouts: u64,
    /// Per run of the upload workload: the times without a new object while writing, ms.
    gaps: Vec<Vec<f64>>,
    /// Per run of the upload workload that failed while writing: when, ms into the writes.
    failed_after_ms: Vec<f64>,
    /// Runs whose measured section completed but that failed after it (counting the rows,
    /// closing): their figures count, and the errors are listed.
    failed_later: usize,
    /// Runs that failed before the end of their measured section: no figure.
    failed: usize,
    requests: Vec<RequestStats>,
    close_ms: Vec<f64>,
    load_ms: Vec<f64>,
    open_ms: Vec<f64>,
    rss_kb: Vec<u64>,
    /// `litestream restore` checks, or why the restore failed.
    checks: Vec<Result<Check, String>>,
    errors: Vec<String>,
    killed: Vec<u64>,
}

impl Cell {
    /// (min, median, max) of the per-run figures; for COMMIT → visible, of every sample.
    fn fig(&self) -> Option<(f64, f64, f64)> {
        spread(if self.values.is_empty() {
            &self.visible
        } else {
            &self.values
        })
    }

    fn med(&self) -> Option<f64> {
        self.fig().map(|f| f.1)
    }

    /// The longest gap of every run: the worst, and the gaps of that run.
    fn worst_gaps(&self) -> Option<(f64, &Vec<f64>)> {
        self.gaps
            .iter()
            .filter_map(|g| g.iter().copied().reduce(f64::max).map(|m| (m, g)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// Median of one request counter.
    fn req_med(&self, f: fn(&RequestStats) -> u64) -> Option<f64> {
        median(
            &self
                .requests
                .iter()
                .map(|r| f(r) as f64)
                .collect::<Vec<_>>(),
        )
    }
}

fn spread(v: &[f64]) -> Option<(f64, f64, f64)> {
    let med = median(v)?;
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((min, med, max))
}

/// A `litestream restore` of a run's replica, against what the run committed.
#[derive(Debug, Clone, Copy)]
struct Check {
    /// Rows of `items` in the restored database.
    restored: i64,
    /// Rows before the run plus those it committed.
    committed: i64,
    /// Rows the run's connection counted at the end (None if that failed).
    counted: Option<i64>,
}

type Key = (WriteDb, Target, WriteWorkload);

fn aggregate(w: &WriteResults) -> BTreeMap<Key, Cell> {
    let mut cells: BTreeMap<Key, Cell> = BTreeMap::new();
    for r in &w.records {
        let cell = cells.entry((r.db, r.target, r.workload)).or_default();
        if let Some(secs) = r.timed_out_secs {
            cell.killed.push(secs);
        }
        if let Some(e) = &r.error {
            cell.errors.push(format!("run {}: {e}", r.run + 1));
        }
        let Some(o) = &r.output else { continue };
        let base = match r.db {
            WriteDb::New => 0,
            WriteDb::Replica(mb) => w
                .base_rows
                .iter()
                .find(|(m, _)| *m == mb)
                .map_or(0, |(_, n)| *n),
        };
        if let Some(res) = &r.restored {
            let committed = base + o.rows as i64;
            cell.checks.push(res.clone().map(|restored| Check {
                restored,
                committed,
                counted: o.final_rows,
            }));
        }
        // A run that failed before the end of its measured section has no figure, except the
        // upload count, which stops at the failure (and says so).
        if o.ms <= 0.0 {
            cell.failed += usize::from(r.error.is_some());
            continue;
        }
        if r.error.is_some() {
            if r.workload == WriteWorkload::UploadRate && o.final_rows.is_none() {
                cell.failed_after_ms.push(o.ms);
            } else {
                cell.failed_later += 1;
            }
        }
        let secs = o.ms / 1000.0;
        match r.workload {
            WriteWorkload::TxFull | WriteWorkload::TxOff => {
                cell.values.push(o.txs as f64 / secs);
            }
            WriteWorkload::BatchFull | WriteWorkload::BatchOff => {
                cell.values.push(o.rows as f64 / secs);
            }
            WriteWorkload::CommitVisible => {
                cell.visible.extend(o.visible_ms.iter().copied());
                cell.visible_timeouts += o.visible_timeouts;
            }
            WriteWorkload::UploadRate => {
                cell.values.push(o.upload_at_ms.len() as f64 / secs);
                let mut points = vec![0.0];
                points.extend(o.upload_at_ms.iter().copied());
                points.push(o.ms);
                cell.gaps
                    .push(points.windows(2).map(|p| p[1] - p[0]).collect());
            }
            WriteWorkload::OpenWrite => cell.values.push(o.ms),
        }
        if let Some(req) = o.requests {
            cell.requests.push(req);
        }
        cell.close_ms.push(o.close_ms);
        cell.load_ms.extend(o.load_ms);
        cell.open_ms.extend(o.open_ms);
        cell.rss_kb.push(o.vmhwm_kb);
    }
    cells
}

/// Whether the workload's figure is a rate (higher is better) rather than a time.
fn is_rate(w: WriteWorkload) -> bool {
    !matches!(w, WriteWorkload::CommitVisible | WriteWorkload::OpenWrite)
}

fn unit(w: WriteWorkload) -> &'static str {
    match w {
        WriteWorkload::TxFull | WriteWorkload::TxOff => "tx/s",
        WriteWorkload::BatchFull | WriteWorkload::BatchOff => "rows/s",
        WriteWorkload::UploadRate => "uploads/s",
        WriteWorkload::CommitVisible | WriteWorkload::OpenWrite => "ms",
    }
}

/// A rate, digits grouped by thousands: `12 077`, `245`, `0.80`.
fn rate(v: f64) -> String {
    if v >= 1000.0 {
        let digits = format!("{:.0}", v);
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(' ');
            }
            out.push(c);
        }
        out
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// `**12 077 tx/s** (11 900–12 300)` or `**832 ms** (171–836)`.
fn fmt_cell(w: WriteWorkload, c: &Cell) -> String {
    let Some((min, med, max)) = c.fig() else {
        return if !c.killed.is_empty() {
            format!("killed after {} s", c.killed[0])
        } else if c.failed > 0 {
            format!("failed in {} run(s) (see the errors)", c.failed)
        } else {
            "—".to_string()
        };
    };
    let mut s = if is_rate(w) {
        format!(
            "**{} {}** ({}–{})",
            rate(med),
            unit(w),
            rate(min),
            rate(max)
        )
    } else {
        let secs = med >= 10_000.0;
        format!(
            "**{} {}** ({}–{})",
            num(med, secs),
            if secs { "s" } else { "ms" },
            num(min, secs),
            num(max, secs)
        )
    };
    if c.visible_timeouts > 0 {
        let _ = write!(
            s,
            "; {} commit(s) not in the store after {} intervals",
            c.visible_timeouts, VISIBLE_TIMEOUT_INTERVALS
        );
    }
    if c.failed > 0 {
        let _ = write!(
            s,
            "; {} run(s) failed before the end (see the errors)",
            c.failed
        );
    }
    if c.failed_later > 0 {
        let _ = write!(
            s,
            "; then failed in {} of {} runs (see the errors)",
            c.failed_later,
            c.values.len().max(c.failed_later)
        );
    }
    if !c.failed_after_ms.is_empty() {
        let _ = write!(
            s,
            "; writes failed after {} in {} of {} runs",
            fmt_ms(median(&c.failed_after_ms).unwrap_or(0.0)),
            c.failed_after_ms.len(),
            c.values.len()
        );
    }
    s
}

/// ours ÷ other of the medians.
fn ratio(ours: &Cell, other: &Cell) -> Option<f64> {
    match (ours.med(), other.med()) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn fmt_opt_ratio(r: Option<f64>) -> String {
    r.map(fmt_ratio).unwrap_or_else(|| "—".to_string())
}

/// The `litestream restore` checks of a cell: `same, 3 checks` or what differed.
fn fmt_checks(c: &Cell) -> Option<String> {
    if c.checks.is_empty() {
        return None;
    }
    let bad: Vec<String> = c
        .checks
        .iter()
        .filter_map(|ch| match ch {
            Ok(c) if c.restored == c.committed && c.counted.is_none_or(|n| n == c.committed) => {
                None
            }
            Ok(c) => Some(format!(
                "restored {} rows of {} committed{}",
                c.restored,
                c.committed,
                c.counted
                    .map(|n| format!(" (the connection counted {n})"))
                    .unwrap_or_default()
            )),
            Err(e) => Some(format!("restore failed: {}", e.replace('`', "'"))),
        })
        .collect();
    Some(if bad.is_empty() {
        format!("all rows ({} checked)", c.checks.len())
    } else {
        format!("**{}**", bad.join("; "))
    })
}

/// The replica the targets are judged on: 200 MB when it was run, else the largest.
fn judged_replica(w: &WriteResults) -> Option<WriteDb> {
    if w.sizes.contains(&200) {
        Some(WriteDb::Replica(200))
    } else {
        w.sizes.iter().copied().max().map(WriteDb::Replica)
    }
}

/// The databases of the suite, in report order.
fn dbs(w: &WriteResults) -> Vec<WriteDb> {
    std::iter::once(WriteDb::New)
        .chain(w.sizes.iter().map(|&mb| WriteDb::Replica(mb)))
        .collect()
}

struct Verdict {
    what: String,
    figure: String,
    met: Option<bool>,
    why: Option<String>,
}

/// The time per transaction at `tx_per_s`: `63 µs` or `1.05 ms`.
fn per_tx(tx_per_s: f64) -> String {
    let ms = 1000.0 / tx_per_s;
    if ms < 1.0 {
        format!("{:.0} µs", ms * 1000.0)
    } else {
        fmt_ms(ms)
    }
}

fn verdicts(w: &WriteResults, cells: &BTreeMap<Key, Cell>) -> Vec<Verdict> {
    let empty = Cell::default();
    let c = |db, t, wl| cells.get(&(db, t, wl)).unwrap_or(&empty);
    let interval = w.interval_ms as f64;
    let mut v = Vec::new();
    let mut tx_dbs = vec![WriteDb::New];
    tx_dbs.extend(judged_replica(w));
    for db in tx_dbs {
        for (wl, floor) in [
            (WriteWorkload::TxOff, TX_OFF_VS_GO),
            (WriteWorkload::TxFull, TX_FULL_VS_GO),
        ] {
            let (o, g) = (c(db, Target::Ours, wl), c(db, Target::Go, wl));
            let r = ratio(o, g);
            let what = format!(
                "{}: single-row tx/s, synchronous={} ≥ {}× Go",
                db.label(),
                wl.synchronous(),
                floor
            );
            let why = match (o.med(), g.med()) {
                (Some(om), Some(gm)) => {
                    let mut s = format!(
                        "a commit takes ours {} and Go {} (medians); during the measured \
                         seconds ours made {} uploads (PUTs) and Go {} (median per run)",
                        per_tx(om),
                        per_tx(gm),
                        o.req_med(|r| r.put).unwrap_or(0.0),
                        g.req_med(|r| r.put).unwrap_or(0.0)
                    );
                    if let (WriteWorkload::TxFull, Some(off)) =
                        (wl, c(db, Target::Ours, WriteWorkload::TxOff).med())
                    {
                        let _ = write!(
                            s,
                            "; ours takes {} with synchronous=OFF, so the fsync of the write \
                             buffer costs about {} per commit",
                            per_tx(off),
                            per_tx(1.0 / (1.0 / om - 1.0 / off).max(1e-12))
                        );
                    }
                    Some(s + ".")
                }
                _ => None,
            };
            v.push(Verdict {
                what,
                figure: format!(
                    "ours {} ÷ Go {} = {}",
                    fmt_cell(wl, o),
                    fmt_cell(wl, g),
                    fmt_opt_ratio(r)
                ),
                met: r.map(|r| r >= floor),
                why,
            });
        }
    }

    // COMMIT → visible, every sample.
    {
        let wl = WriteWorkload::CommitVisible;
        let (o, g) = (
            c(WriteDb::New, Target::Ours, wl),
            c(WriteDb::New, Target::Go, wl),
        );
        let limit = VISIBLE_INTERVALS * interval;
        let worst = spread(&o.visible).map(|f| f.2);
        v.push(Verdict {
            what: format!(
                "COMMIT → object in the store ≤ {} at the {} interval (every commit)",
                fmt_ms(limit),
                fmt_ms(interval)
            ),
            figure: format!(
                "ours {}, worst {} (Go {})",
                fmt_cell(wl, o),
                worst.map(fmt_ms).unwrap_or_else(|| "—".into()),
                fmt_cell(wl, g)
            ),
            met: worst.map(|m| m <= limit && o.visible_timeouts == 0),
            why: Some(format!(
                "ours, every sample (ms): {}.",
                o.visible
                    .iter()
                    .map(|m| format!("{m:.0}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        });
    }

    // An upload in every interval.
    {
        let wl = WriteWorkload::UploadRate;
        let (o, g) = (
            c(WriteDb::New, Target::Ours, wl),
            c(WriteDb::New, Target::Go, wl),
        );
        let limit = GAP_INTERVALS * interval;
        let worst = o.worst_gaps();
        let go_worst = g
            .worst_gaps()
            .map(|(m, _)| format!(", longest gap {}", fmt_ms(m)))
            .unwrap_or_default();
        v.push(Verdict {
            what: format!(
                "an upload in every interval under continuous writes (longest time without a \
                 new object ≤ {})",
                fmt_ms(limit)
            ),
            figure: format!(
                "ours {}, longest gap {} (Go {}{go_worst})",
                fmt_cell(wl, o),
                worst.map(|(m, _)| fmt_ms(m)).unwrap_or_else(|| "—".into()),
                fmt_cell(wl, g)
            ),
            met: worst.map(|(m, _)| m <= limit),
            why: worst.map(|(_, gaps)| {
                format!(
                    "the gaps of our worst run, from the first commit to the end of the writes \
                     (ms): {}.",
                    gaps.iter()
                        .map(|m| format!("{m:.0}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
        });
    }

    // Opening in write mode on the large replica.
    if let Some(db) = judged_replica(w) {
        let wl = WriteWorkload::OpenWrite;
        let (o, g) = (c(db, Target::Ours, wl), c(db, Target::Go, wl));
        let r = ratio(o, g);
        let split = |name: &str, x: &Cell| -> Option<String> {
            let total = x.med()?;
            let load = median(&x.load_ms)?;
            let open = median(&x.open_ms)?;
            Some(format!(
                "{name} {}: `load_extension` {}, open {} ({} LIST, {} GETs), first write {}",
                fmt_ms(total),
                fmt_ms(load),
                fmt_ms(open),
                x.req_med(|r| r.list).unwrap_or(0.0),
                x.req_med(RequestStats::gets).unwrap_or(0.0),
                fmt_ms((total - load - open).max(0.0))
            ))
        };
        v.push(Verdict {
            what: format!(
                "{}: load + open in write mode + first write ≤ {}× Go",
                db.label(),
                OPEN_VS_GO
            ),
            figure: format!(
                "ours {} ÷ Go {} = {}",
                fmt_cell(wl, o),
                fmt_cell(wl, g),
                fmt_opt_ratio(r)
            ),
            met: r.map(|r| r <= OPEN_VS_GO),
            why: split("ours", o)
                .zip(split("Go", g))
                .map(|(a, b)| format!("medians: {a}; {b}.")),
        });
    }
    v
}

/// What the top of the report says about the write suite.
pub(crate) fn summary(w: &WriteResults, carried: bool) -> String {
    let from = if carried {
        format!(
            ", carried over from the run of {} ({}); `BENCH_SUITES=write make bench` reruns it",
            w.date, w.code
        )
    } else {
        String::new()
    };
    format!(
        "`BENCH_WRITE_SIZES={} BENCH_WRITE_RUNS={} BENCH_WRITE_SECS={} BENCH_WRITE_LOAD_SECS={} \
         BENCH_WRITE_SAMPLES={} BENCH_WRITE_TIMEOUT={}`, {} processes, {}{from}",
        w.sizes
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        w.runs,
        w.secs,
        w.load_secs,
        w.samples,
        w.timeout_secs,
        w.records.len(),
        fmt_duration(w.secs_taken)
    )
}

/// The "Write mode" section of the report; and how many of its targets were met, of how many.
pub(crate) fn section(w: &WriteResults) -> (String, usize, usize) {
    let cells = aggregate(w);
    let empty = Cell::default();
    let c = |db, t, wl| cells.get(&(db, t, wl)).unwrap_or(&empty);
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

    // Targets.
    let verdicts = verdicts(w, &cells);
    let _ = writeln!(md, "| target | figure | |\n|---|---|---|");
    for v in &verdicts {
        let status = match v.met {
            Some(true) => "met",
            Some(false) => "**not met**",
            None => "n/a",
        };
        let _ = writeln!(md, "| {} | {} | {status} |", v.what, v.figure);
    }
    let met = verdicts.iter().filter(|v| v.met == Some(true)).count();
    let judged = verdicts.iter().filter(|v| v.met.is_some()).count();
    let _ = writeln!(md, "\n{met} of {judged} write targets met.");
    let notes: Vec<&Verdict> = verdicts
        .iter()
        .filter(|v| v.met == Some(false) && v.why.is_some())
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(md, "\nWhy:\n");
        for v in notes {
            let _ = writeln!(md, "- **{}**: {}", v.what, v.why.as_deref().unwrap_or(""));
        }
    }
    md.push('\n');

    // Ratios.
    let dbs = dbs(w);
    let _ = writeln!(
        md,
        "Ratios of the medians. For rates (tx/s, rows/s, uploads/s) above 1 means ours does \
         more; for times below 1 means ours is faster.\n"
    );
    let mut head = String::from("| workload |");
    let mut rule = String::from("|---|");
    for db in &dbs {
        let _ = write!(head, " {0}: ours ÷ Go | {0}: ours ÷ local |", db.label());
        rule.push_str("---:|---:|");
    }
    let _ = writeln!(md, "{head}\n{rule}");
    for wl in WriteWorkload::ALL {
        let mut row = format!("| {} ({}) |", wl.label(), unit(wl));
        for &db in &dbs {
            let o = c(db, Target::Ours, wl);
            let _ = write!(
                row,
                " {} | {} |",
                fmt_opt_ratio(ratio(o, c(db, Target::Go, wl))),
                fmt_opt_ratio(ratio(o, c(db, Target::Local, wl)))
            );
        }
        let _ = writeln!(md, "{row}");
    }
    md.push('\n');

    // Raw figures per database.
    for &db in &dbs {
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
                c(db, Target::Ours, wl),
                c(db, Target::Go, wl),
                c(db, Target::Local, wl),
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
                fmt_opt_ratio(ratio(o, g)),
                fmt_opt_ratio(ratio(o, l)),
                fmt_checks(o).unwrap_or_else(|| "—".into()),
                fmt_checks(g).unwrap_or_else(|| "—".into()),
            );
        }
        let _ = writeln!(
            md,
            "\nRequests during the measured section (medians per run; PUT = uploads), closing \
             the connection (the VFS uploads what is still pending), peak RSS:\n\n\
             | workload | ours PUT | ours GET | ours LIST | ours close | ours RSS MB | Go PUT | Go GET | Go LIST | Go close | Go RSS MB |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for wl in WriteWorkload::ALL {
            if !wl.applies_to(Target::Ours, db) {
                continue;
            }
            let mut row = format!("| {} |", wl.label());
            for t in [Target::Ours, Target::Go] {
                let x = c(db, t, wl);
                let n = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.0}"));
                let _ = write!(
                    row,
                    " {} | {} | {} | {} | {} |",
                    n(x.req_med(|r| r.put)),
                    n(x.req_med(RequestStats::gets)),
                    n(x.req_med(|r| r.list)),
                    median(&x.close_ms).map_or("—".to_string(), fmt_ms),
                    n(median(
                        &x.rss_kb
                            .iter()
                            .map(|k| *k as f64 / 1024.0)
                            .collect::<Vec<_>>()
                    )),
                );
            }
            let _ = writeln!(md, "{row}");
        }
        let mut errors: Vec<String> = Vec::new();
        for t in Target::ALL {
            for wl in WriteWorkload::ALL {
                for e in &c(db, t, wl).errors {
                    errors.push(format!("{} {}: {e}", t.label(), wl.name()));
                }
            }
        }
        if !errors.is_empty() {
            let _ = writeln!(md, "\nErrors:\n");
            for e in errors {
                let _ = writeln!(md, "- `{}`", e.replace('`', "'"));
            }
        }
        md.push('\n');
    }
    (md, met, judged)
}

/// The write suite's bullets of the method.
pub(crate) fn method() -> String {
    format!(
        "- **Write mode** (issue #4): both VFS with `LITESTREAM_WRITE_ENABLED=true`, \
`LITESTREAM_SYNC_INTERVAL` set to the default interval, their own `LITESTREAM_BUFFER_PATH`, on \
the same S3 server; local SQLite on a file in a rollback journal (`journal_mode=DELETE`, what the \
VFS runs in). Every run is a fresh process on its own store: an empty bucket for a new database, \
or the cached replica recreated with hard links (the server writes an object to a temporary file \
and renames it into place, and writers only add objects, so no run changes what another sees); \
local SQLite gets a copy of the restored file. Each write is `{SQL_INSERT}` with deterministic \
values (an `items` row and its `(category, created_at)` index entry). On a new database the \
schema (the same table and index) is created by a first connection that is closed, and so \
uploaded, before the measured one opens: the Go VFS 0.5.17 fails every statement with \"database \
disk image is malformed\" when the connection that created a database writes again after its \
first upload. On a replica the pages the inserts change (both ends of each category's run in the \
index, the table's last leaf) are read before the timed part, whose figures are thus mostly those \
of writing, not of fetching cold pages (the read suite's subject); when a leaf splits, SQLite \
still reads its neighbours, which shows as GETs in both VFS. Workloads: single-row autocommit \
transactions, and transactions of {BATCH_ROWS} \
rows, for `BENCH_WRITE_SECS` each, with `synchronous=FULL` (SQLite's default) and \
`synchronous=OFF`; COMMIT → object in the store: `BENCH_WRITE_SAMPLES` single commits on a new \
database with nothing pending, the k-th (k + ½)/samples of an interval after the previous one \
showed (so they fall across the upload cycle), each timed from the start of the COMMIT until a \
new LTX file is under the replica's prefix on the server's disk (polled every millisecond; an \
object is there once complete), given up after {VISIBLE_TIMEOUT_INTERVALS} intervals; uploads \
under continuous writes: single-row commits without pause for `BENCH_WRITE_LOAD_SECS`, then the \
LTX files whose modification time falls in that window (no polling competes with the writes), \
judged on the longest time without one, from the first commit to the last; opening: \
`load_extension` + open in write mode + one autocommit insert, all measured, on the replica. \
Throughput is counted while writing; what a VFS leaves pending is uploaded when the connection \
closes, shown apart (\"close\"). After every run on a new database, and after the first \
single-row and batched run on a replica, `litestream restore` rebuilds the database from the \
store, checks its integrity and compares its `items` rows with those before the run plus those \
the run committed (and with what the writer's connection counted at the end); a run that failed \
is checked too, for what it committed before failing.\n"
    )
}

/// The write rows of the chart: labels, the ceiling on ours ÷ Go, and per database the
/// ratios ours ÷ Go and ours ÷ local, always of times (for rates, of the time per transaction
/// or row), so that below 1 means ours is faster as in the read rows.
pub(crate) struct ChartRows {
    pub labels: Vec<String>,
    pub target_go: Vec<Option<f64>>,
    pub groups: Vec<ChartRowGroup>,
}

/// One database's bars of the write rows.
pub(crate) struct ChartRowGroup {
    pub name: String,
    pub vs_go: Vec<Option<f64>>,
    pub vs_local: Vec<Option<f64>>,
}

/// The workloads the chart shows (the upload count has no time to compare).
const CHART_WORKLOADS: [WriteWorkload; 6] = [
    WriteWorkload::TxFull,
    WriteWorkload::TxOff,
    WriteWorkload::BatchFull,
    WriteWorkload::BatchOff,
    WriteWorkload::CommitVisible,
    WriteWorkload::OpenWrite,
];

pub(crate) fn chart_rows(w: &WriteResults) -> ChartRows {
    let cells = aggregate(w);
    let empty = Cell::default();
    let c = |db, t, wl| cells.get(&(db, t, wl)).unwrap_or(&empty);
    let time_ratio = |wl: WriteWorkload, o: &Cell, x: &Cell| {
        ratio(o, x).map(|r| if is_rate(wl) { 1.0 / r } else { r })
    };
    ChartRows {
        labels: CHART_WORKLOADS
            .iter()
            .map(|wl| match wl {
                WriteWorkload::TxFull | WriteWorkload::TxOff => {
                    format!("write: {} (time per tx)", wl.label())
                }
                WriteWorkload::BatchFull | WriteWorkload::BatchOff => {
                    format!("write: {} (time per row)", wl.label())
                }
                _ => format!("write: {}", wl.label()),
            })
            .collect(),
        target_go: CHART_WORKLOADS
            .iter()
            .map(|wl| match wl {
                WriteWorkload::TxOff => Some(1.0 / TX_OFF_VS_GO),
                WriteWorkload::TxFull => Some(1.0 / TX_FULL_VS_GO),
                WriteWorkload::OpenWrite => Some(OPEN_VS_GO),
                _ => None,
            })
            .collect(),
        groups: dbs(w)
            .into_iter()
            .map(|db| {
                let o = |wl| c(db, Target::Ours, wl);
                ChartRowGroup {
                    name: format!("write, {}", db.label()),
                    vs_go: CHART_WORKLOADS
                        .iter()
                        .map(|&wl| time_ratio(wl, o(wl), c(db, Target::Go, wl)))
                        .collect(),
                    vs_local: CHART_WORKLOADS
                        .iter()
                        .map(|&wl| time_ratio(wl, o(wl), c(db, Target::Local, wl)))
                        .collect(),
                }
            })
            .collect(),
    }
}
