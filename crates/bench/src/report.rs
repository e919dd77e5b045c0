//! Aggregation (min/median/max per target and metric), the targets of the issue, the Markdown
//! report and the chart.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::process::Command;

use anyhow::{Context, Result};
use serde::Serialize;
use testkit::RequestStats;

use crate::driver::{unix_now, Config, Results};
use crate::gen::DatasetId;
use crate::spec::{Metric, Target, Workload};

/// Our VFS's default cache budget (`LITESTREAM_CACHE_SIZE`), which the benchmark leaves as is.
const CACHE_BUDGET_MB: f64 = 64.0;
/// The size the targets are judged on, when it was run.
const TARGET_SIZE_MB: u32 = 200;

/// All runs of one (size, latency, target, metric).
#[derive(Debug, Default, Clone)]
struct Cell {
    ms: Vec<f64>,
    requests: Vec<RequestStats>,
    /// Killed runs: seconds, and the counters of the whole process by then.
    killed: Vec<(u64, RequestStats)>,
    rss_kb: Vec<u64>,
    answers: BTreeSet<(u64, String)>,
    errors: Vec<String>,
}

/// A figure: measured (min, median, max), or only a lower bound (the runs were killed).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fig {
    None,
    Measured { min: f64, med: f64, max: f64 },
    AtLeast(f64),
}

pub(crate) fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| {
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    })
}

fn median_u64(v: &[u64]) -> Option<u64> {
    median(&v.iter().map(|x| *x as f64).collect::<Vec<_>>()).map(|m| m.round() as u64)
}

impl Cell {
    fn fig(&self) -> Fig {
        if let Some(med) = median(&self.ms) {
            let min = self.ms.iter().copied().fold(f64::INFINITY, f64::min);
            let max = self.ms.iter().copied().fold(0.0, f64::max);
            Fig::Measured { min, med, max }
        } else if let Some(secs) = self.killed.iter().map(|k| k.0).min() {
            Fig::AtLeast(secs as f64 * 1000.0)
        } else {
            Fig::None
        }
    }

    fn med(&self) -> Option<f64> {
        match self.fig() {
            Fig::Measured { med, .. } => Some(med),
            _ => None,
        }
    }

    /// Field-wise medians of the measured sections' counters; for killed runs, the whole
    /// process's counters (a lower bound).
    fn req(&self) -> Option<(RequestStats, bool)> {
        let (src, bound): (Vec<RequestStats>, bool) = if !self.requests.is_empty() {
            (self.requests.clone(), false)
        } else if !self.killed.is_empty() {
            (self.killed.iter().map(|k| k.1).collect(), true)
        } else {
            return None;
        };
        let f = |g: fn(&RequestStats) -> u64| {
            median_u64(&src.iter().map(g).collect::<Vec<_>>()).unwrap_or(0)
        };
        Some((
            RequestStats {
                get: f(|r| r.get),
                get_range: f(|r| r.get_range),
                head: f(|r| r.head),
                list: f(|r| r.list),
                put: f(|r| r.put),
                put_ok: f(|r| r.put_ok),
                put_precondition_failed: f(|r| r.put_precondition_failed),
                delete: f(|r| r.delete),
                other: f(|r| r.other),
                bytes_out: f(|r| r.bytes_out),
                bytes_in: f(|r| r.bytes_in),
                latency_us: src.first().map(|r| r.latency_us).unwrap_or(0),
            },
            bound,
        ))
    }

    fn rss_mb(&self) -> Option<f64> {
        median_u64(&self.rss_kb).map(|kb| kb as f64 / 1024.0)
    }
}

type Key = (DatasetId, u64, Target, Metric);

struct Agg {
    cells: BTreeMap<Key, Cell>,
    /// `load_extension` times by (size, latency, target).
    load_ms: BTreeMap<(DatasetId, u64, Target), Vec<f64>>,
    /// Opening the database (after loading), in the `open` workload, by (size, latency, target).
    open_ms: BTreeMap<(DatasetId, u64, Target), Vec<f64>>,
}

impl Agg {
    fn new(results: &Results) -> Agg {
        let mut cells: BTreeMap<Key, Cell> = BTreeMap::new();
        let mut load_ms: BTreeMap<(DatasetId, u64, Target), Vec<f64>> = BTreeMap::new();
        let mut open_ms: BTreeMap<(DatasetId, u64, Target), Vec<f64>> = BTreeMap::new();
        for r in &results.records {
            let metrics: Vec<Metric> = Metric::ALL
                .iter()
                .copied()
                .filter(|m| m.workload() == r.workload)
                .collect();
            for (i, metric) in metrics.iter().enumerate() {
                let cell = cells
                    .entry((r.dataset, r.latency_ms, r.target, *metric))
                    .or_default();
                // A killed run bounds only the section it was in: the first one without a figure.
                let measured = r.output.as_ref().map_or(0, |o| o.measures.len());
                if let (Some(secs), true) = (r.timed_out_secs, i == measured) {
                    cell.killed.push((secs, r.process_requests));
                }
                if let Some(e) = &r.error {
                    cell.errors.push(e.clone());
                }
            }
            let Some(out) = &r.output else { continue };
            if let Some(l) = out.load_ms {
                load_ms
                    .entry((r.dataset, r.latency_ms, r.target))
                    .or_default()
                    .push(l);
            }
            if let (Some(o), Workload::Open) = (out.open_ms, r.workload) {
                open_ms
                    .entry((r.dataset, r.latency_ms, r.target))
                    .or_default()
                    .push(o);
            }
            for m in &out.measures {
                let cell = cells
                    .entry((r.dataset, r.latency_ms, r.target, m.metric))
                    .or_default();
                cell.ms.push(m.ms);
                if let Some(req) = m.requests {
                    cell.requests.push(req);
                }
                cell.answers.insert((m.rows, m.checksum.clone()));
            }
            if out.error.is_none() {
                for metric in &metrics {
                    if let Some(cell) = cells.get_mut(&(r.dataset, r.latency_ms, r.target, *metric))
                    {
                        cell.rss_kb.push(out.vmhwm_kb);
                    }
                }
            }
        }
        Agg {
            cells,
            load_ms,
            open_ms,
        }
    }

    fn cell(&self, size: DatasetId, lat: u64, target: Target, metric: Metric) -> Cell {
        // Local SQLite never touches S3: in a latency pass, show its figures without latency;
        // and a hydrated file compares with local SQLite's cold reads.
        let (lat, metric) = match (target, metric.local_equivalent()) {
            (Target::Local, Some(m)) => (0, m),
            (Target::Local, None) => return Cell::default(),
            _ => (lat, metric),
        };
        self.cells
            .get(&(size, lat, target, metric))
            .cloned()
            .unwrap_or_default()
    }

    /// Max over metrics of the median peak RSS.
    fn peak_rss_mb(&self, size: DatasetId, lat: u64, target: Target) -> Option<f64> {
        Metric::ALL
            .iter()
            .filter_map(|m| self.cell(size, lat, target, *m).rss_mb())
            .reduce(f64::max)
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

/// A number of milliseconds, in `seconds` or in milliseconds, without the unit.
pub(crate) fn num(ms: f64, seconds: bool) -> String {
    let v = if seconds { ms / 1000.0 } else { ms };
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A duration with its unit: `4.00 ms`, `560 ms`, `22.2 s`.
pub(crate) fn fmt_ms(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{} s", num(ms, true))
    } else {
        format!("{} ms", num(ms, false))
    }
}

fn fmt_fig(f: Fig) -> String {
    match f {
        Fig::None => "—".to_string(),
        Fig::Measured { min, med, max } => {
            let seconds = med >= 10_000.0;
            let unit = if seconds { "s" } else { "ms" };
            format!(
                "**{} {unit}** ({}–{})",
                num(med, seconds),
                num(min, seconds),
                num(max, seconds)
            )
        }
        Fig::AtLeast(ms) => format!("> {} (killed)", fmt_ms(ms)),
    }
}

pub(crate) fn fmt_ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}×")
    } else if r >= 0.095 {
        format!("{r:.2}×")
    } else if r >= 0.0095 {
        format!("{r:.3}×")
    } else {
        format!("{r:.4}×")
    }
}

/// ours ÷ other, with "<"/">" when a side is only a bound.
fn ratio(ours: Fig, other: Fig) -> Option<(f64, &'static str)> {
    match (ours, other) {
        (Fig::Measured { med: a, .. }, Fig::Measured { med: b, .. }) if b > 0.0 => {
            Some((a / b, ""))
        }
        (Fig::Measured { med: a, .. }, Fig::AtLeast(b)) if b > 0.0 => Some((a / b, "< ")),
        (Fig::AtLeast(a), Fig::Measured { med: b, .. }) if b > 0.0 => Some((a / b, "> ")),
        _ => None,
    }
}

fn fmt_opt_ratio(r: Option<(f64, &'static str)>) -> String {
    r.map(|(v, p)| format!("{p}{}", fmt_ratio(v)))
        .unwrap_or_else(|| "—".to_string())
}

fn mb(bytes: u64) -> String {
    let m = bytes as f64 / 1e6;
    if m >= 100.0 {
        format!("{m:.0}")
    } else if m >= 1.0 {
        format!("{m:.1}")
    } else {
        format!("{m:.2}")
    }
}

fn fmt_req(r: Option<(RequestStats, bool)>) -> [String; 4] {
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

pub(crate) fn fmt_duration(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{secs:.1} s")
    }
}

fn pass_title(size: DatasetId, lat: u64) -> String {
    if lat == 0 {
        size.label()
    } else {
        format!("{}, +{lat} ms per request", size.label())
    }
}

// ---------------------------------------------------------------------------------------------
// Machine
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Targets of the issue
// ---------------------------------------------------------------------------------------------

struct Verdict {
    what: String,
    figure: String,
    met: Option<bool>,
    /// Why it is not met, from the figures of the run (printed only when it is not).
    why: Option<String>,
}

impl Verdict {
    fn new(what: &str, figure: String, met: Option<bool>) -> Verdict {
        Verdict {
            what: what.to_string(),
            figure,
            met,
            why: None,
        }
    }
}

/// The dataset the targets are judged on (200 MB, or the largest grown size), and its
/// vacuumed twin when it was run.
fn judged(results: &Results) -> Vec<DatasetId> {
    let size_mb = if results.config.sizes.contains(&TARGET_SIZE_MB) {
        TARGET_SIZE_MB
    } else {
        results.config.sizes.iter().copied().max().unwrap_or(0)
    };
    let mut out = vec![DatasetId {
        size_mb,
        vacuumed: false,
    }];
    if results.config.vacuumed_sizes.contains(&size_mb) {
        out.push(DatasetId {
            size_mb,
            vacuumed: true,
        });
    }
    out
}

/// Sets the explanation of the last verdict pushed.
fn set_why(v: &mut [Verdict], why: Option<String>) {
    if let Some(last) = v.last_mut() {
        last.why = why;
    }
}

/// Where the time of our load + open + first query goes, from the run's own figures.
fn open_note(agg: &Agg, size: DatasetId, lat: u64) -> Option<String> {
    let key = (size, lat, Target::Ours);
    let load = median(agg.load_ms.get(&key)?)?;
    let open = median(agg.open_ms.get(&key)?)?;
    let cell = agg.cell(size, lat, Target::Ours, Metric::Open);
    let total = cell.med()?;
    let (req, _) = cell.req()?;
    let mut s = format!(
        "of our {} (medians), `load_extension` takes {}, opening the database {} (one LIST, then \
         the headers and page indexes of the plan's files, fetched in parallel), and the first \
         query the rest, {}: SQLite asks for one page at a time (page 1, then the `items` b-tree \
         from its root down to a leaf), so each page read is a GET that waits for the one \
         before. {} LIST + {} GETs in all.",
        fmt_ms(total),
        fmt_ms(load),
        fmt_ms(open),
        fmt_ms((total - load - open).max(0.0)),
        req.list,
        req.gets()
    );
    if lat > 0 {
        let _ = write!(
            s,
            " With +{lat} ms per request, every one of those steps (LIST, index, each page on \
             the path) costs a full round trip."
        );
    }
    Some(s)
}

/// Why a cold scan costs the GETs it does: how the b-tree's leaves lie in the file.
fn layout_note(
    results: &Results,
    agg: &Agg,
    size: DatasetId,
    metric: Metric,
    btree: &str,
) -> Option<String> {
    let layout = |ds: DatasetId| {
        results
            .layouts
            .iter()
            .find(|(d, _)| *d == ds)
            .and_then(|(_, l)| l.iter().find(|b| b.name == btree))
    };
    let b = layout(size)?;
    let (req, _) = agg.cell(size, 0, Target::Ours, metric).req()?;
    let mut s = format!(
        "the `{btree}` b-tree's {} leaf pages lie in {} runs of consecutive page numbers, in key \
         order (median gap {} pages; see the layout table). Read-ahead by page number helps only \
         within a run; the B-tree prefetch then fetches the rest of each interior page's \
         children in the background, one GET for frames up to 64 KiB apart in the file, so \
         leaves further apart still take a GET each: this scan made {} GETs.",
        b.leaves,
        b.leaf_runs,
        b.median_gap,
        req.gets()
    );
    let twin = DatasetId {
        vacuumed: true,
        ..size
    };
    if let (false, Some(tb)) = (size.vacuumed, layout(twin)) {
        let (o, g) = (
            agg.cell(twin, 0, Target::Ours, metric),
            agg.cell(twin, 0, Target::Go, metric),
        );
        if let (Some((oq, _)), Some((gq, _)), Some((r, p))) =
            (o.req(), g.req(), ratio(o.fig(), g.fig()))
        {
            let _ = write!(
                s,
                " On the vacuumed twin, where the same b-tree is {} run(s), the same code made {} \
                 GETs ({} of Go's) in {p}{} of Go's time.",
                tb.leaf_runs,
                oq.gets(),
                fmt_ratio(oq.gets() as f64 / gq.gets().max(1) as f64),
                fmt_ratio(r)
            );
        }
    }
    Some(s)
}

/// For a time ratio just over its limit: the spread of our runs against the limit.
fn spread_note(agg: &Agg, size: DatasetId, metric: Metric, max: f64) -> Option<String> {
    let (o, g) = (
        agg.cell(size, 0, Target::Ours, metric).fig(),
        agg.cell(size, 0, Target::Go, metric).fig(),
    );
    match (o, g) {
        (Fig::Measured { min, max: hi, .. }, Fig::Measured { med, .. }) => Some(format!(
            "the limit is {} ({max} × Go's median); our runs took {}–{}, so the verdict turns on \
             the noise of this machine (see the load average above).",
            fmt_ms(med * max),
            fmt_ms(min),
            fmt_ms(hi)
        )),
        _ => None,
    }
}

fn verdicts(results: &Results, agg: &Agg, size: DatasetId) -> Vec<Verdict> {
    let lat = results
        .passes
        .iter()
        .find(|p| p.dataset == size && p.latency_ms > 0)
        .map(|p| p.latency_ms);
    let c = |t, m| agg.cell(size, 0, t, m);
    let mut v = Vec::new();

    // ours ÷ `other` (Go or local) of the median times ≤ `max`.
    let ratio_vs = |v: &mut Vec<Verdict>, metric: Metric, other: Target, what: &str, max: f64| {
        let (o, g) = (c(Target::Ours, metric).fig(), c(other, metric).fig());
        let r = ratio(o, g);
        let name = if other == Target::Go { "Go" } else { "local" };
        v.push(Verdict {
            why: None,
            what: what.to_string(),
            figure: format!(
                "ours {} ÷ {name} {} = {}",
                fmt_fig(o),
                fmt_fig(g),
                fmt_opt_ratio(r)
            ),
            met: r.map(|(x, p)| x <= max && p != "> "),
        });
    };
    let time_ratio = |v: &mut Vec<Verdict>, metric: Metric, what: &str, max: f64| {
        ratio_vs(v, metric, Target::Go, what, max)
    };
    // Bytes the server sent during ours's `metric` ≤ `max` × the database file.
    let db_bytes = results
        .datasets
        .iter()
        .find(|d| d.size_mb == size.size_mb && d.vacuumed == size.vacuumed)
        .map(|d| d.db_bytes)
        .unwrap_or(0);
    let bytes_vs_db = |v: &mut Vec<Verdict>, metric: Metric, what: &str, max: f64| {
        let o = c(Target::Ours, metric).req();
        let g = c(Target::Go, metric).req();
        let (figure, met) = match o {
            Some((o, _)) if db_bytes > 0 => {
                let r = o.bytes_out as f64 / db_bytes as f64;
                let go = g
                    .map(|(g, _)| format!(" (Go: {} MB)", mb(g.bytes_out)))
                    .unwrap_or_default();
                (
                    format!(
                        "ours {} MB ÷ database {} MB = {}{go}",
                        mb(o.bytes_out),
                        mb(db_bytes),
                        fmt_ratio(r)
                    ),
                    Some(r <= max),
                )
            }
            _ => ("not measured".to_string(), None),
        };
        v.push(Verdict::new(what, figure, met));
    };
    let get_ratio = |v: &mut Vec<Verdict>, metric: Metric, what: &str, max: f64| {
        let o = c(Target::Ours, metric).req();
        let g = c(Target::Go, metric).req();
        let (figure, met) = match (o, g) {
            (Some((o, _)), Some((g, gb))) if g.gets() > 0 => {
                let r = o.gets() as f64 / g.gets() as f64;
                (
                    format!(
                        "ours {} GETs ÷ Go {}{} GETs = {}",
                        o.gets(),
                        if gb { "≥ " } else { "" },
                        g.gets(),
                        fmt_ratio(r)
                    ),
                    Some(r <= max),
                )
            }
            _ => ("not measured".to_string(), None),
        };
        v.push(Verdict::new(what, figure, met));
    };

    time_ratio(
        &mut v,
        Metric::Open,
        "load + open + first query ≤ 0.1× Go",
        0.1,
    );
    set_why(&mut v, open_note(agg, size, 0));
    match lat {
        Some(lat) => {
            let f = agg.cell(size, lat, Target::Ours, Metric::Open).fig();
            let med = agg.cell(size, lat, Target::Ours, Metric::Open).med();
            v.push(Verdict {
                why: None,
                what: format!("load + open + first query ≤ 150 ms with +{lat} ms"),
                figure: format!("ours {}", fmt_fig(f)),
                met: med.map(|m| m <= 150.0),
            });
            set_why(&mut v, open_note(agg, size, lat));
        }
        None => v.push(Verdict {
            why: None,
            what: "load + open + first query ≤ 150 ms with +20 ms".to_string(),
            figure: "no latency pass on this size".to_string(),
            met: None,
        }),
    }
    time_ratio(
        &mut v,
        Metric::PointCold,
        "1000 cold point lookups ≤ 0.7× Go's time",
        0.7,
    );
    get_ratio(
        &mut v,
        Metric::PointCold,
        "1000 cold point lookups ≤ Go's GETs",
        1.0,
    );
    ratio_vs(
        &mut v,
        Metric::PointWarm,
        Target::Local,
        "1000 warm point lookups ≤ 2× local",
        2.0,
    );
    let count_note = layout_note(results, agg, size, Metric::Count, "items_category_created");
    time_ratio(&mut v, Metric::Count, "count(*) cold ≤ 0.1× Go's time", 0.1);
    set_why(&mut v, count_note.clone());
    get_ratio(
        &mut v,
        Metric::Count,
        "count(*) cold ≤ 0.05× Go's GETs",
        0.05,
    );
    set_why(&mut v, count_note);
    time_ratio(
        &mut v,
        Metric::ScanDocs,
        "full docs scan cold ≤ 0.1× Go's time",
        0.1,
    );
    let scan_note = layout_note(results, agg, size, Metric::ScanDocs, "docs");
    set_why(&mut v, scan_note.clone());
    get_ratio(
        &mut v,
        Metric::ScanDocs,
        "full docs scan cold ≤ 0.05× Go's GETs",
        0.05,
    );
    set_why(&mut v, scan_note);
    {
        let o = agg.peak_rss_mb(size, 0, Target::Ours);
        let g = agg.peak_rss_mb(size, 0, Target::Go);
        let (figure, met) = match (o, g) {
            (Some(o), Some(g)) => (
                format!("ours {o:.0} MB ÷ Go {g:.0} MB = {}", fmt_ratio(o / g)),
                Some(o / g <= 0.25),
            ),
            _ => ("not measured".to_string(), None),
        };
        v.push(Verdict {
            why: None,
            what: "peak RSS ≤ 0.25× Go (worst workload)".to_string(),
            figure,
            met,
        });
        let limit = CACHE_BUDGET_MB + 32.0;
        v.push(Verdict {
            why: None,
            what: format!(
                "peak RSS ≤ cache budget + 32 MB = {limit:.0} MB (worst workload, default {CACHE_BUDGET_MB:.0} MB cache)"
            ),
            figure: o
                .map(|o| format!("ours {o:.0} MB"))
                .unwrap_or_else(|| "not measured".to_string()),
            met: o.map(|o| o <= limit),
        });
    }
    time_ratio(
        &mut v,
        Metric::TimeTravel,
        "time-travel switch ≤ 0.1× Go",
        0.1,
    );
    set_why(&mut v, spread_note(agg, size, Metric::TimeTravel, 0.1));
    {
        let o = c(Target::Ours, Metric::TimeTravel).req();
        v.push(Verdict {
            why: None,
            what: "time-travel switch: no HEAD requests".to_string(),
            figure: o
                .map(|(o, _)| format!("ours {} HEAD, {} LIST, {} GET", o.head, o.list, o.gets()))
                .unwrap_or_else(|| "not measured".to_string()),
            met: o.map(|(o, _)| o.head == 0),
        });
    }
    {
        let bytes = results.so_bytes.0;
        v.push(Verdict {
            why: None,
            what: "release .so ≤ 10 MB".to_string(),
            figure: format!("{} MB ({bytes} bytes)", mb(bytes)),
            met: Some(bytes <= 10_000_000),
        });
        let load = agg
            .load_ms
            .get(&(size, 0, Target::Ours))
            .and_then(|v| median(v));
        v.push(Verdict {
            why: None,
            what: "load_extension ≤ 10 ms".to_string(),
            figure: load
                .map(|l| format!("{} (median of every run)", fmt_ms(l)))
                .unwrap_or_else(|| "not measured".to_string()),
            met: load.map(|l| l <= 10.0),
        });
    }
    // Issue #5: hydration.
    time_ratio(
        &mut v,
        Metric::HydrateReady,
        "hydration: open to 100 % ≤ 0.5× Go",
        0.5,
    );
    bytes_vs_db(
        &mut v,
        Metric::HydrateReady,
        "hydration: bytes downloaded ≤ 1.05× the database",
        1.05,
    );
    ratio_vs(
        &mut v,
        Metric::HydratedPoint,
        Target::Local,
        "hydration: 1000 point lookups after ≤ 1.5× local (cold)",
        1.5,
    );
    bytes_vs_db(
        &mut v,
        Metric::HydrateReopen,
        "hydration: reopen with a valid file downloads < 10 % of the database",
        0.1,
    );
    v
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct ChartGroup {
    name: String,
    vs_go: Vec<Option<f64>>,
    vs_go_bound: Vec<bool>,
    vs_local: Vec<Option<f64>>,
}

#[derive(Serialize)]
struct ChartData {
    title: String,
    metrics: Vec<String>,
    /// The ceiling for ours ÷ Go / ours ÷ local, per metric.
    target_go: Vec<Option<f64>>,
    target_local: Vec<Option<f64>>,
    groups: Vec<ChartGroup>,
}

/// The time targets as ratios: (ours ÷ Go, ours ÷ local).
fn ratio_targets(m: Metric) -> (Option<f64>, Option<f64>) {
    match m {
        Metric::Open | Metric::Count | Metric::ScanDocs | Metric::TimeTravel => (Some(0.1), None),
        Metric::PointCold => (Some(0.7), None),
        Metric::PointWarm => (None, Some(2.0)),
        Metric::HydrateReady => (Some(0.5), None),
        Metric::HydratedPoint => (None, Some(1.5)),
        Metric::Range | Metric::Consecutive | Metric::HydrateReopen => (None, None),
    }
}

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

/// Writes the Markdown report and the chart.
pub fn write(results: &Results, config: &Config) -> Result<()> {
    let agg = Agg::new(results);
    let mut md = String::new();
    let judged = judged(results);
    let all_verdicts: Vec<Vec<Verdict>> = judged
        .iter()
        .map(|ds| verdicts(results, &agg, *ds))
        .collect();

    let has_read = !results.passes.is_empty();
    // The chart first: its data is the ratio tables.
    let mut chart = ChartData {
        title: format!("litestream VFS benchmark, {}", utc_now()),
        metrics: Metric::ALL.iter().map(|m| m.label().to_string()).collect(),
        target_go: Metric::ALL.iter().map(|m| ratio_targets(*m).0).collect(),
        target_local: Metric::ALL.iter().map(|m| ratio_targets(*m).1).collect(),
        groups: results
            .passes
            .iter()
            .map(|p| {
                let (size, lat) = (p.dataset, p.latency_ms);
                let go: Vec<Option<(f64, &str)>> = Metric::ALL
                    .iter()
                    .map(|m| {
                        ratio(
                            agg.cell(size, lat, Target::Ours, *m).fig(),
                            agg.cell(size, lat, Target::Go, *m).fig(),
                        )
                    })
                    .collect();
                ChartGroup {
                    name: pass_title(size, lat),
                    vs_go: go.iter().map(|r| r.map(|r| r.0)).collect(),
                    vs_go_bound: go
                        .iter()
                        .map(|r| r.is_some_and(|r| !r.1.is_empty()))
                        .collect(),
                    vs_local: Metric::ALL
                        .iter()
                        .map(|m| {
                            ratio(
                                agg.cell(size, lat, Target::Ours, *m).fig(),
                                agg.cell(size, lat, Target::Local, *m).fig(),
                            )
                            .map(|r| r.0)
                        })
                        .collect(),
                }
            })
            .collect(),
    };
    if !has_read {
        chart.metrics.clear();
        chart.target_go.clear();
        chart.target_local.clear();
    }
    if let Some(w) = &results.write {
        // Write rows below the read rows: the read groups have no bar there, and the write
        // groups none in the read rows.
        let rows = crate::write_report::chart_rows(w);
        let n_read = chart.metrics.len();
        let n_write = rows.labels.len();
        for g in &mut chart.groups {
            g.vs_go.extend(std::iter::repeat_n(None, n_write));
            g.vs_go_bound.extend(std::iter::repeat_n(false, n_write));
            g.vs_local.extend(std::iter::repeat_n(None, n_write));
        }
        chart.metrics.extend(rows.labels);
        chart.target_go.extend(rows.target_go);
        chart
            .target_local
            .extend(std::iter::repeat_n(None, n_write));
        for g in rows.groups {
            let pad = || std::iter::repeat_n(None, n_read);
            chart.groups.push(ChartGroup {
                name: g.name,
                vs_go: pad().chain(g.vs_go).collect(),
                vs_go_bound: vec![false; n_read + n_write],
                vs_local: pad().chain(g.vs_local).collect(),
            });
        }
    }
    let chart_json = config.bench_dir.join("chart.json");
    std::fs::write(&chart_json, serde_json::to_string_pretty(&chart)?)?;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench-chart.py");
    let chart_status = Command::new(&config.python)
        .arg(&script)
        .arg(&chart_json)
        .arg(&config.out_png)
        .status()
        .with_context(|| format!("run {} {}", config.python, script.display()));
    match chart_status {
        Ok(s) if s.success() => eprintln!("bench: chart in {}", config.out_png.display()),
        Ok(s) => eprintln!("bench: the chart script failed ({s}); the report has no chart"),
        Err(e) => eprintln!("bench: {e:#}; the report has no chart"),
    }

    let total = unix_now() - config.t0_unix;
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
    let settings = format!(
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
    );
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
                crate::write_report::summary(w, results.write_carried)
            );
        }
        None => {
            let _ = writeln!(md, "- **Write suite:** not run yet (`BENCH_SUITES=write`)");
        }
    }
    let write_processes = results.write.as_ref().map_or(0, |w| w.records.len());
    let _ = writeln!(
        md,
        "- **Took:** {} in all (build, datasets, {} processes, report){}",
        fmt_duration(total),
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
    if has_read {
        let _ = writeln!(md, "- **Read passes:** {}", pass_list.join("; "));
    }
    let _ = writeln!(
        md,
        "- **Extensions:** ours `{}` ({} MB), Go `{}` 0.5.17 ({} MB)\n",
        config
            .ours_so
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        mb(results.so_bytes.0),
        config
            .go_so
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        mb(results.so_bytes.1)
    );
    let _ = writeln!(
        md,
        "![ours ÷ Go and ours ÷ local, medians, log scale](benchmarks.png)\n"
    );

    let read_met = all_verdicts[0]
        .iter()
        .filter(|v| v.met == Some(true))
        .count();
    let read_judged = all_verdicts[0].iter().filter(|v| v.met.is_some()).count();
    if has_read {
        // Targets.
        let _ = writeln!(
            md,
            "## Targets of the issue ({}, medians of the same run)\n",
            judged[0].label()
        );
        let mut head = String::from("| target |");
        let mut rule = String::from("|---|");
        for ds in &judged {
            let _ = write!(head, " {} | |", ds.label());
            rule.push_str("---|---|");
        }
        let _ = writeln!(md, "{head}\n{rule}");
        for (i, v) in all_verdicts[0].iter().enumerate() {
            let mut row = format!("| {} |", v.what);
            for vs in &all_verdicts {
                let v = &vs[i];
                let status = match v.met {
                    Some(true) => "met",
                    Some(false) => "**not met**",
                    None => "n/a",
                };
                let _ = write!(row, " {} | {status} |", v.figure);
            }
            let _ = writeln!(md, "{row}");
        }
        let _ = writeln!(
            md,
            "\n{read_met} of {read_judged} targets met on {}.",
            judged[0].label()
        );
        // Why the targets that are not met are not, with the figures of this run.
        let mut notes: Vec<(Vec<&str>, &str)> = Vec::new();
        for v in &all_verdicts[0] {
            if let (Some(false), Some(why)) = (v.met, &v.why) {
                match notes.iter_mut().find(|n| n.1 == why.as_str()) {
                    Some(n) => n.0.push(&v.what),
                    None => notes.push((vec![&v.what], why)),
                }
            }
        }
        if !notes.is_empty() {
            let _ = writeln!(md, "\nWhy, on {}:\n", judged[0].label());
            for (whats, why) in notes {
                let _ = writeln!(md, "- **{}**: {why}", whats.join("; "));
            }
            md.push('\n');
        }
        if let Some(vac) = all_verdicts.get(1) {
            let met_v = vac.iter().filter(|v| v.met == Some(true)).count();
            let judged_v = vac.iter().filter(|v| v.met.is_some()).count();
            let _ = writeln!(
            md,
            "On the vacuumed twin (contiguous pages; not what the issue's targets are judged on): \
             {met_v} of {judged_v}."
        );
        }
        md.push('\n');

        // Ratios at a glance.
        let _ = writeln!(md, "## Ratios (medians; below 1 means ours is faster)\n");
        let mut head = String::from("| workload |");
        let mut rule = String::from("|---|");
        for p in &results.passes {
            let t = pass_title(p.dataset, p.latency_ms);
            let _ = write!(head, " {t}: ours ÷ Go | {t}: ours ÷ local |");
            rule.push_str("---:|---:|");
        }
        let _ = writeln!(md, "{head}\n{rule}");
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
    let mut write_met = (0, 0);
    if let Some(w) = &results.write {
        let (section, met, judged) = crate::write_report::section(w);
        md.push_str(&section);
        write_met = (met, judged);
    }

    // Raw figures per pass.
    let mut all_same = true;
    for p in &results.passes {
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
        let _ = writeln!(
            md,
            "| workload | local SQLite | our VFS | Go VFS | ours ÷ Go | ours ÷ local | answers |\n\
             |---|---:|---:|---:|---:|---:|---|"
        );
        for m in Metric::ALL {
            let o = agg.cell(size, lat, Target::Ours, m);
            let g = agg.cell(size, lat, Target::Go, m);
            let l = agg.cell(size, lat, Target::Local, m);
            let (answers, same) = answers_check(results, &agg, size, lat, m);
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
        for w in crate::spec::Workload::ALL {
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
        let agg_ref = &agg;
        let errors: Vec<String> = Target::ALL
            .iter()
            .flat_map(|t| {
                Metric::ALL.iter().flat_map(move |m| {
                    agg_ref
                        .cell(size, lat, *t, *m)
                        .errors
                        .into_iter()
                        .map(move |e| format!("{} {}: {e}", t.label(), m.name()))
                })
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(md, "\nErrors:\n");
            for e in errors {
                let _ = writeln!(md, "- `{}`", e.replace('`', "'"));
            }
        }
        md.push('\n');
    }
    if !all_same {
        let _ = writeln!(
            md,
            "**Some answers differ between targets: see the `answers` columns.**\n"
        );
    }

    if has_read {
        // Extensions.
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
            let fig = if loads.is_empty() {
                Fig::None
            } else {
                Fig::Measured {
                    min: loads.iter().copied().fold(f64::INFINITY, f64::min),
                    med: median(&loads).unwrap_or(0.0),
                    max: loads.iter().copied().fold(0.0, f64::max),
                }
            };
            let _ = writeln!(
                md,
                "| {} | {} MB | {} |",
                t.label(),
                mb(bytes),
                fmt_fig(fig)
            );
        }
        md.push('\n');

        // Datasets.
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
    md.push_str(METHOD);
    if results.write.is_some() {
        md.push_str(&crate::write_report::method());
    }
    md.push_str(KNOBS);
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
        "bench: report in {} (read: {}; write: {}; took {})",
        config.out_md.display(),
        suite(has_read, (read_met, read_judged)),
        suite(results.write.is_some(), write_met),
        fmt_duration(total)
    );
    Ok(())
}

fn join(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

const METHOD: &str = "## Method

- **Data** (deterministic, `crates/bench/src/gen.rs`): `items(id INTEGER PRIMARY KEY, sku, \
category, price, qty, created_at)` with an index on `(category, created_at)`, ~4 000 rows per MB; \
`docs(id, item_id, title, body)` with ~600-byte bodies, ~790 rows per MB. Both tables and the \
index grow together, as in a database that was written over time, so their pages interleave.
- **Replica:** the real Go `litestream replicate` 0.5.17 uploads the bulk-loaded database to \
testkit's S3 server (s3s-fs on 127.0.0.1, TCP_NODELAY) with compaction levels 4 s / 8 s / 16 s, \
then a write stream of ~20 small transactions a second (5 item updates and one new doc each) runs \
for 24 s with a quiet point 4 s in, whose time is the time-travel target. Generation ends when \
level 3 holds the last transaction; the replica then has a start-up snapshot (L9), L3, L2, L1 \
and L0 files. `litestream restore` of it is the local SQLite target, checked against the primary; \
`litestream restore -timestamp` at the quiet point is checked against what the primary held then.
- **Targets:** our VFS (`target/release/liblitestream_vfs.so`), the Go VFS (`litestream-vfs.so` \
from PyPI `litestream-vfs==0.5.17`), both loaded with `load_extension` (entry point \
`sqlite3_litestreamvfs_init`) into a small rusqlite program (`bench-runner`, bundled SQLite) and \
opened as `file:app.db?vfs=litestream` read-only with the same environment \
(`LITESTREAM_REPLICA_URL=s3://bench/app?endpoint=…&region=us-east-1&force-path-style=true`, test \
credentials, no `AWS_CA_BUNDLE`, default cache and poll settings); and local SQLite on the \
restored file (already in the OS page cache: the limit, not a cold disk).
- **Runs:** one fresh process per (run, workload, target); the order of the targets rotates from \
run to run. Every workload but the first is measured after an unmeasured load + open + schema \
read. Request counts come from the S3 server's counters, read by the runner just before and \
after its measured section (so they include the VFS's own background polling in that window).
- **Workloads:** (1) load extension + open + one point query, timed from before \
`load_extension`; (2) 1000 random point lookups by id (the same ids for every target), then the \
same 1000 again in the same process (warm); (3) `category = ? AND created_at` in a window \
holding ~250 rows, through the index then a rowid lookup per row; (4) 10 000 consecutive ids; \
(5) `count(*)` on items (SQLite counts the smaller b-tree, the `(category, created_at)` index); \
(6) `count(*), sum(length(body))` over docs; (7) `PRAGMA litestream_time` \
to the quiet point, read the docs the stream added, `PRAGMA litestream_time = 'latest'`, read \
them again (n/a for local SQLite).
- **Hydration** (issue #5; VFS targets, no latency pass): (8) with `LITESTREAM_HYDRATION_PATH` \
(and `LITESTREAM_HYDRATION_ENABLED=true`, which the Go VFS needs) on an empty path: load + open + \
first query + polling `PRAGMA litestream_hydration_progress` every 5 ms until it says 100, then \
the 1000 point lookups in the same process, compared with local SQLite's cold lookups; (9) a \
fresh process on the file (and sidecar) that run left: load + open + until ready + the 1000 \
lookups. Our VFS reports 100 only once the file serves reads. The Go VFS reports the progress of \
its restore stream (pages compacted ÷ pages) and switches to the file a moment after the last \
page is written, so for it the runner also waits until the file has the database's size; the \
few GETs that may still show in its \"1000 point lookups after\" row are reads from before the \
switch, and its time to 100 % is, if anything, slightly early (in its favour). On a resumed \
file the Go VFS reports no progress at all, so (9) does not wait on it. Bytes are those the \
server sent during the measured section (open and index reads included).
- **Answers:** every measured section returns a row count and a checksum of every value; they \
must equal local SQLite's (for time travel, what the primary held at the target time, then at \
the end).
- **Latency pass:** the same workloads through testkit's fault-injecting proxy (`FaultProxy`, \
the layer the fault tests use), configured to add the latency before every response and no \
fault. Fewer \
runs (see the settings), local SQLite is not rerun, hydration is not run, and runs are killed \
after `BENCH_LATENCY_TIMEOUT` seconds (a killed target and workload is not run again): 1000 cold \
point lookups cost ~1000 GETs one after another in both VFS (SQLite asks for one page at a time), \
and the cold scans are one request per page for the Go VFS and, on the interleaved layout, for \
our `count(*)`; at +20 ms each those take minutes, so they show as a lower bound \"> N s (killed)\" \
with the requests counted by then.
- **Layout:** by default the bulk load interleaves the pages of `items`, its index and `docs` \
(see the layout table above), as in a database that grew over time. `BENCH_VACUUMED_SIZES` (default \
`200`) adds a dataset that was `VACUUM`ed before replication, where every b-tree is one run of \
consecutive pages: the best case for read-ahead. The issue's targets are judged on the grown \
database.
- **Peak RSS** is the runner's `VmHWM`, so it includes the runner and SQLite's own page cache \
(~2 MB) and, for the Go VFS, the resident part of its 84 MB Go runtime.
";

const KNOBS: &str = "
Environment knobs: `BENCH_SIZES` (MB, e.g. `10,200,1000`), `BENCH_VACUUMED_SIZES`, `BENCH_RUNS`, `BENCH_LATENCY_MS`, \
`BENCH_LATENCY_SIZES`, `BENCH_LATENCY_RUNS`, `BENCH_LATENCY_GO_RUNS`, `BENCH_TIMEOUT`, \
`BENCH_LATENCY_TIMEOUT`, `BENCH_DIR`; for the write suite `BENCH_WRITE_SIZES` (default `200` when \
200 is among the sizes), `BENCH_WRITE_RUNS`, `BENCH_WRITE_SECS`, `BENCH_WRITE_LOAD_SECS`, \
`BENCH_WRITE_SAMPLES`, `BENCH_WRITE_TIMEOUT`; `BENCH_SUITES` (`read`, `write`, default both: a \
suite left out keeps its figures from the last run); `BENCH_REPORT_ONLY=1 make bench` rewrites \
this report from the last run's results.
";

#[cfg(test)]
mod tests;
