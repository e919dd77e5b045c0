//! The write suite's one big transaction (issue #14) in the report: a table per size (peak RSS,
//! the insert, COMMIT, the upload and the close; ours, Go and their ratio, local SQLite as the
//! reference), a verdict line against the peak RSS, and those verdicts for the targets
//! table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::bigtx::{rows, ROW_BYTES, RSS_LIMIT_MB};
use crate::report::aggregate::{median, Fig};
use crate::report::format::{fmt_ms, fmt_ratio, fmt_spread_ms, mb};
use crate::report::verdict::Verdict;
use crate::spec::Target;
use crate::write::{WriteResults, WriteWorkload};

/// Longest error text shown in a table cell, characters.
const ERROR_CHARS: usize = 300;

/// Every run of one (size, target).
#[derive(Debug, Default, Clone)]
pub(in crate::report) struct Runs {
    pub(in crate::report) runs: usize,
    /// Runs that committed, were uploaded (VFS) and closed without an error.
    pub(in crate::report) ok: usize,
    /// Peak RSS of the runs that committed, MB.
    pub(in crate::report) rss_mb: Vec<f64>,
    pub(in crate::report) insert_ms: Vec<f64>,
    pub(in crate::report) commit_ms: Vec<f64>,
    pub(in crate::report) upload_ms: Vec<f64>,
    /// COMMIT and the upload after it, for the runs with both.
    pub(in crate::report) visible_ms: Vec<f64>,
    pub(in crate::report) close_ms: Vec<f64>,
    pub(in crate::report) puts: Vec<f64>,
    pub(in crate::report) bytes_in: Vec<f64>,
    /// `litestream restore`: (rows restored, rows committed), or why it failed.
    pub(in crate::report) checks: Vec<Result<(i64, i64), String>>,
    pub(in crate::report) errors: Vec<String>,
    pub(in crate::report) killed: Vec<u64>,
}

impl Runs {
    /// The highest peak RSS of the runs, MB.
    fn worst_rss(&self) -> Option<f64> {
        self.rss_mb.iter().copied().reduce(f64::max)
    }
}

/// The runs of the big transaction by (size, target).
pub(in crate::report) fn aggregate(w: &WriteResults) -> BTreeMap<(u32, Target), Runs> {
    let mut out: BTreeMap<(u32, Target), Runs> = BTreeMap::new();
    for r in &w.records {
        let (WriteWorkload::BigTx, Some(size)) = (r.workload, r.mb) else {
            continue;
        };
        let x = out.entry((size, r.target)).or_default();
        x.runs += 1;
        x.killed.extend(r.timed_out_secs);
        if let Some(e) = &r.error {
            x.errors.push(format!("run {}: {e}", r.run + 1));
        }
        let Some(o) = &r.output else { continue };
        let committed = o.commit_ms.is_some();
        if let Some(res) = &r.restored {
            let n = if committed { o.rows as i64 } else { 0 };
            x.checks.push(res.clone().map(|restored| (restored, n)));
        }
        if !committed {
            continue;
        }
        x.rss_mb.push(o.vmhwm_kb as f64 / 1024.0);
        x.insert_ms.extend(o.insert_ms);
        x.commit_ms.extend(o.commit_ms);
        x.upload_ms.extend(o.upload_ms);
        x.visible_ms
            .extend(o.commit_ms.zip(o.upload_ms).map(|(c, u)| c + u));
        if o.close_ms > 0.0 {
            x.close_ms.push(o.close_ms);
        }
        if let Some(req) = &o.requests {
            x.puts.push(req.put as f64);
            x.bytes_in.push(req.bytes_in as f64);
        }
        let uploaded = !r.target.is_vfs() || o.upload_ms.is_some();
        if r.error.is_none() && r.timed_out_secs.is_none() && uploaded {
            x.ok += 1;
        }
    }
    out
}

/// A row of a size's table: its label, the runs' figures, and whether local SQLite has them.
type Figure = (&'static str, fn(&Runs) -> &Vec<f64>, bool);

/// The sizes to report: those asked for, then any other the records hold.
fn sizes(w: &WriteResults, runs: &BTreeMap<(u32, Target), Runs>) -> Vec<u32> {
    let mut v = w.bigtx_mb.clone();
    for &(size, _) in runs.keys() {
        if !v.contains(&size) {
            v.push(size);
        }
    }
    v
}

/// A time: `12.3 s` for one run, `**12.3 s** (11.0–13.1)` for several, `—` for none.
fn time(v: &[f64]) -> String {
    match Fig::of(v) {
        Fig::Measured { med, .. } if v.len() == 1 => fmt_ms(med),
        Fig::Measured { min, med, max } => fmt_spread_ms(min, med, max),
        _ => "—".to_string(),
    }
}

/// Megabytes, as [`time`] does times.
fn megabytes(v: &[f64]) -> String {
    match Fig::of(v) {
        Fig::Measured { med, .. } if v.len() == 1 => format!("{med:.0} MB"),
        Fig::Measured { min, med, max } => format!("**{med:.0} MB** ({min:.0}–{max:.0})"),
        _ => "—".to_string(),
    }
}

/// ours ÷ Go of the medians, or `—`.
fn ratio(ours: &[f64], go: &[f64]) -> String {
    match (median(ours), median(go)) {
        (Some(o), Some(g)) if g > 0.0 => fmt_ratio(o / g),
        _ => "—".to_string(),
    }
}

/// An error fit for a table cell: one line, no `|` or backquote, at most [`ERROR_CHARS`].
pub(in crate::report) fn cell_text(e: &str) -> String {
    let one: String = e
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
        .replace('`', "'");
    if one.chars().count() > ERROR_CHARS {
        one.chars().take(ERROR_CHARS).collect::<String>() + "…"
    } else {
        one
    }
}

/// `1 of 1 ok`, or what went wrong: the timeout, the errors' text.
fn outcome(x: &Runs) -> String {
    if x.runs == 0 {
        return "not run".to_string();
    }
    let mut s = format!("{} of {} ok", x.ok, x.runs);
    if let Some(secs) = x.killed.first() {
        let _ = write!(s, "; killed after {secs} s");
    }
    for e in &x.errors {
        let _ = write!(s, "; **failed**: {}", cell_text(e));
    }
    s
}

/// The restore checks: `all rows (1 checked)` or what differed.
fn checks(x: &Runs) -> String {
    if x.checks.is_empty() {
        return "—".to_string();
    }
    let bad: Vec<String> = x
        .checks
        .iter()
        .filter_map(|c| match c {
            Ok((restored, committed)) if restored == committed => None,
            Ok((restored, committed)) => {
                Some(format!("restored {restored} rows of {committed} committed"))
            }
            Err(e) => Some(format!("restore failed: {}", cell_text(e))),
        })
        .collect();
    if bad.is_empty() {
        format!("all rows ({} checked)", x.checks.len())
    } else {
        format!("**{}**", bad.join("; "))
    }
}

/// Whether ours met the target at `size`, and the figure that says so; None when ours
/// did not run there.
fn judge(ours: &Runs, go: &Runs) -> Option<(bool, String)> {
    if ours.runs == 0 {
        return None;
    }
    let rss = |x: &Runs| match x.worst_rss() {
        Some(m) => format!("{m:.0} MB"),
        None if x.runs == 0 => "not run".to_string(),
        None => match x.killed.first() {
            Some(secs) => format!("killed after {secs} s"),
            None => "failed".to_string(),
        },
    };
    let figure = format!(
        "ours {} at most over {} run(s) (Go {})",
        rss(ours),
        ours.runs,
        rss(go)
    );
    let met = ours.ok == ours.runs && ours.worst_rss().is_some_and(|m| m <= RSS_LIMIT_MB);
    Some((met, figure))
}

fn what(size: u32) -> String {
    format!(
        "new database, one {size} MB transaction: COMMIT and upload with peak RSS ≤ {RSS_LIMIT_MB:.0} \
         MB (issue #14)"
    )
}

/// The target at every size run, for the targets table.
pub(in crate::report) fn verdicts(w: &WriteResults) -> Vec<Verdict> {
    let runs = aggregate(w);
    let empty = Runs::default();
    let get = |size, t| runs.get(&(size, t)).unwrap_or(&empty);
    sizes(w, &runs)
        .into_iter()
        .filter_map(|size| {
            let (ours, go) = (get(size, Target::Ours), get(size, Target::Go));
            let (met, figure) = judge(ours, go)?;
            let why = (!met).then(|| {
                if ours.ok < ours.runs {
                    format!("ours: {}.", outcome(ours))
                } else {
                    format!(
                        "peak RSS per run (MB): {}.",
                        ours.rss_mb
                            .iter()
                            .map(|m| format!("{m:.0}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            });
            Some(Verdict::new(what(size), figure, Some(met)).with_why(why))
        })
        .collect()
}

/// The part of the write section about the big transaction (nothing when it did not run).
pub(in crate::report) fn section(md: &mut String, w: &WriteResults) {
    let runs = aggregate(w);
    let sizes = sizes(w, &runs);
    if sizes.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "### Write mode, one big transaction on a new database (issue #14)\n\n\
         One transaction inserts rows of {ROW_BYTES} random bytes (incompressible) into a new \
         table, `COMMIT`s, waits until its object is in the store, and closes; {} run(s) per \
         size and target, each in a fresh process (timeout {} s). Peak RSS is the runner's \
         `VmHWM`, so it includes our cache budget. Times are medians (min–max) when there are \
         several runs.\n",
        w.bigtx_runs, w.bigtx_timeout_secs
    );
    let empty = Runs::default();
    let get = |size, t| runs.get(&(size, t)).unwrap_or(&empty);
    for size in sizes {
        let (o, g, l) = (
            get(size, Target::Ours),
            get(size, Target::Go),
            get(size, Target::Local),
        );
        let _ = writeln!(
            md,
            "#### {size} MB in one transaction ({} rows)\n\n\
             | | our VFS | Go VFS | ours ÷ Go | local SQLite |\n\
             |---|---:|---:|---:|---:|",
            rows(size)
        );
        let _ = writeln!(
            md,
            "| runs | {} | {} | | {} |",
            outcome(o),
            outcome(g),
            outcome(l)
        );
        let figures: [Figure; 6] = [
            ("peak RSS (`VmHWM`)", |x| &x.rss_mb, true),
            ("`BEGIN` + `INSERT`", |x| &x.insert_ms, true),
            ("`COMMIT`", |x| &x.commit_ms, true),
            (
                "end of `COMMIT` → object in the store",
                |x| &x.upload_ms,
                false,
            ),
            ("`COMMIT` → object in the store", |x| &x.visible_ms, false),
            ("close", |x| &x.close_ms, true),
        ];
        for (k, (label, f, local)) in figures.into_iter().enumerate() {
            let fmt = |v: &[f64]| if k == 0 { megabytes(v) } else { time(v) };
            let _ = writeln!(
                md,
                "| {label} | {} | {} | {} | {} |",
                fmt(f(o)),
                fmt(f(g)),
                ratio(f(o), f(g)),
                if local { fmt(f(l)) } else { "n/a".to_string() }
            );
        }
        let uploaded = |x: &Runs| match (median(&x.puts), median(&x.bytes_in)) {
            (Some(p), Some(b)) => format!("{p:.0} PUT, {} MB", mb(b as u64)),
            _ => "—".to_string(),
        };
        let _ = writeln!(
            md,
            "| uploaded (PUT requests, MB received by the store) | {} | {} | {} | n/a |",
            uploaded(o),
            uploaded(g),
            ratio(&o.bytes_in, &g.bytes_in)
        );
        let _ = writeln!(
            md,
            "| replica restored | {} | {} | | n/a |\n",
            checks(o),
            checks(g)
        );
        match judge(o, g) {
            Some((met, figure)) => {
                let _ = writeln!(
                    md,
                    "Target: peak RSS ≤ {RSS_LIMIT_MB:.0} MB, our cache budget included, with \
                     the COMMIT uploaded: **{}**: {figure}.\n",
                    if met { "met" } else { "not met" }
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "Target: peak RSS ≤ {RSS_LIMIT_MB:.0} MB: our VFS did not run.\n"
                );
            }
        }
    }
}
