//! The targets for the read suite, judged on the run's figures; and [`Verdict`], which
//! the write suite's targets use too.

use super::aggregate::{median, ratio, Agg, Fig};
use super::format::{fmt_fig, fmt_ms, fmt_opt_ratio, fmt_ratio, mb};
use super::notes::{layout_note, open_note, spread_note};
use crate::driver::Results;
use crate::gen::DatasetId;
use crate::spec::{Metric, Target};

/// Our VFS's default cache budget (`LITESTREAM_CACHE_SIZE`), which the benchmark leaves as is.
const CACHE_BUDGET_MB: f64 = 64.0;
/// The size the targets are judged on, when it was run.
const TARGET_SIZE_MB: u32 = 200;

/// One target of an issue, judged.
pub(crate) struct Verdict {
    pub(crate) what: String,
    pub(crate) figure: String,
    pub(crate) met: Option<bool>,
    /// Why it is not met, from the figures of the run (printed only when it is not).
    pub(crate) why: Option<String>,
}

impl Verdict {
    pub(crate) fn new(what: impl Into<String>, figure: String, met: Option<bool>) -> Verdict {
        Verdict {
            what: what.into(),
            figure,
            met,
            why: None,
        }
    }

    pub(crate) fn with_why(self, why: Option<String>) -> Verdict {
        Verdict { why, ..self }
    }

    /// The status column of a targets table.
    pub(crate) fn status(&self) -> &'static str {
        match self.met {
            Some(true) => "met",
            Some(false) => "**not met**",
            None => "n/a",
        }
    }
}

/// How many of `verdicts` are met, of how many that could be judged.
pub(crate) fn tally(verdicts: &[Verdict]) -> (usize, usize) {
    (
        verdicts.iter().filter(|v| v.met == Some(true)).count(),
        verdicts.iter().filter(|v| v.met.is_some()).count(),
    )
}

/// The dataset the targets are judged on (200 MB, or the largest grown size), and its
/// vacuumed twin when it was run.
pub(super) fn judged(results: &Results) -> Vec<DatasetId> {
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

/// The kinds of target, on one dataset without added latency.
struct Judge<'a> {
    results: &'a Results,
    agg: &'a Agg,
    size: DatasetId,
}

impl Judge<'_> {
    fn fig(&self, target: Target, metric: Metric) -> Fig {
        self.agg.cell(self.size, 0, target, metric).fig()
    }

    /// ours ÷ `other` (Go or local) of the median times ≤ `max`.
    fn ratio_vs(&self, metric: Metric, other: Target, what: &str, max: f64) -> Verdict {
        let (o, g) = (self.fig(Target::Ours, metric), self.fig(other, metric));
        let r = ratio(o, g);
        let name = if other == Target::Go { "Go" } else { "local" };
        Verdict::new(
            what,
            format!(
                "ours {} ÷ {name} {} = {}",
                fmt_fig(o),
                fmt_fig(g),
                fmt_opt_ratio(r)
            ),
            r.map(|(x, p)| x <= max && p != "> "),
        )
    }

    fn time_ratio(&self, metric: Metric, what: &str, max: f64) -> Verdict {
        self.ratio_vs(metric, Target::Go, what, max)
    }

    /// Bytes the server sent during ours's `metric` ≤ `max` × the database file.
    fn bytes_vs_db(&self, metric: Metric, what: &str, max: f64) -> Verdict {
        let size = self.size;
        let db_bytes = self
            .results
            .datasets
            .iter()
            .find(|d| d.size_mb == size.size_mb && d.vacuumed == size.vacuumed)
            .map(|d| d.db_bytes)
            .unwrap_or(0);
        let o = self.agg.cell(size, 0, Target::Ours, metric).req();
        let g = self.agg.cell(size, 0, Target::Go, metric).req();
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
        Verdict::new(what, figure, met)
    }

    /// ours ÷ Go of the GETs during `metric` ≤ `max`.
    fn get_ratio(&self, metric: Metric, what: &str, max: f64) -> Verdict {
        let o = self.agg.cell(self.size, 0, Target::Ours, metric).req();
        let g = self.agg.cell(self.size, 0, Target::Go, metric).req();
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
        Verdict::new(what, figure, met)
    }
}

/// The read targets on `size`, in the order of the report.
pub(super) fn verdicts(results: &Results, agg: &Agg, size: DatasetId) -> Vec<Verdict> {
    let j = Judge { results, agg, size };
    let mut v = open_verdicts(&j);
    v.extend(scan_verdicts(&j));
    v.extend(rss_verdicts(&j));
    v.extend(time_travel_verdicts(&j));
    v.extend(extension_verdicts(&j));
    v.extend(hydration_verdicts(&j));
    v
}

/// Opening, with and without added latency.
fn open_verdicts(j: &Judge) -> Vec<Verdict> {
    let (agg, size) = (j.agg, j.size);
    let lat = j
        .results
        .passes
        .iter()
        .find(|p| p.dataset == size && p.latency_ms > 0)
        .map(|p| p.latency_ms);
    let first = j
        .time_ratio(Metric::Open, "load + open + first query ≤ 0.1× Go", 0.1)
        .with_why(open_note(agg, size, 0));
    let with_latency = match lat {
        Some(lat) => {
            let cell = agg.cell(size, lat, Target::Ours, Metric::Open);
            Verdict::new(
                format!("load + open + first query ≤ 150 ms with +{lat} ms"),
                format!("ours {}", fmt_fig(cell.fig())),
                cell.med().map(|m| m <= 150.0),
            )
            .with_why(open_note(agg, size, lat))
        }
        None => Verdict::new(
            "load + open + first query ≤ 150 ms with +20 ms",
            "no latency pass on this size".to_string(),
            None,
        ),
    };
    vec![first, with_latency]
}

/// Point lookups and the cold scans.
fn scan_verdicts(j: &Judge) -> Vec<Verdict> {
    let count_note = layout_note(
        j.results,
        j.agg,
        j.size,
        Metric::Count,
        "items_category_created",
    );
    let scan_note = layout_note(j.results, j.agg, j.size, Metric::ScanDocs, "docs");
    vec![
        j.time_ratio(
            Metric::PointCold,
            "1000 cold point lookups ≤ 0.7× Go's time",
            0.7,
        ),
        j.get_ratio(
            Metric::PointCold,
            "1000 cold point lookups ≤ Go's GETs",
            1.0,
        ),
        j.ratio_vs(
            Metric::PointWarm,
            Target::Local,
            "1000 warm point lookups ≤ 2× local",
            2.0,
        ),
        j.time_ratio(Metric::Count, "count(*) cold ≤ 0.1× Go's time", 0.1)
            .with_why(count_note.clone()),
        j.get_ratio(Metric::Count, "count(*) cold ≤ 0.05× Go's GETs", 0.05)
            .with_why(count_note),
        j.time_ratio(
            Metric::ScanDocs,
            "full docs scan cold ≤ 0.1× Go's time",
            0.1,
        )
        .with_why(scan_note.clone()),
        j.get_ratio(
            Metric::ScanDocs,
            "full docs scan cold ≤ 0.05× Go's GETs",
            0.05,
        )
        .with_why(scan_note),
    ]
}

/// Peak RSS against Go's and against the cache budget.
fn rss_verdicts(j: &Judge) -> Vec<Verdict> {
    let o = j.agg.peak_rss_mb(j.size, 0, Target::Ours);
    let g = j.agg.peak_rss_mb(j.size, 0, Target::Go);
    let (figure, met) = match (o, g) {
        (Some(o), Some(g)) => (
            format!("ours {o:.0} MB ÷ Go {g:.0} MB = {}", fmt_ratio(o / g)),
            Some(o / g <= 0.25),
        ),
        _ => ("not measured".to_string(), None),
    };
    let limit = CACHE_BUDGET_MB + 32.0;
    vec![
        Verdict::new("peak RSS ≤ 0.25× Go (worst workload)", figure, met),
        Verdict::new(
            format!(
                "peak RSS ≤ cache budget + 32 MB = {limit:.0} MB (worst workload, default {CACHE_BUDGET_MB:.0} MB cache)"
            ),
            o.map(|o| format!("ours {o:.0} MB"))
                .unwrap_or_else(|| "not measured".to_string()),
            o.map(|o| o <= limit),
        ),
    ]
}

fn time_travel_verdicts(j: &Judge) -> Vec<Verdict> {
    let o = j
        .agg
        .cell(j.size, 0, Target::Ours, Metric::TimeTravel)
        .req();
    vec![
        j.time_ratio(Metric::TimeTravel, "time-travel switch ≤ 0.1× Go", 0.1)
            .with_why(spread_note(j.agg, j.size, Metric::TimeTravel, 0.1)),
        Verdict::new(
            "time-travel switch: no HEAD requests",
            o.map(|(o, _)| format!("ours {} HEAD, {} LIST, {} GET", o.head, o.list, o.gets()))
                .unwrap_or_else(|| "not measured".to_string()),
            o.map(|(o, _)| o.head == 0),
        ),
    ]
}

/// The extension's size and load time.
fn extension_verdicts(j: &Judge) -> Vec<Verdict> {
    let bytes = j.results.so_bytes.0;
    let load = j
        .agg
        .load_ms
        .get(&(j.size, 0, Target::Ours))
        .and_then(|v| median(v));
    vec![
        Verdict::new(
            "release .so ≤ 10 MB",
            format!("{} MB ({bytes} bytes)", mb(bytes)),
            Some(bytes <= 10_000_000),
        ),
        Verdict::new(
            "load_extension ≤ 10 ms",
            load.map(|l| format!("{} (median of every run)", fmt_ms(l)))
                .unwrap_or_else(|| "not measured".to_string()),
            load.map(|l| l <= 10.0),
        ),
    ]
}

/// Issue #5: hydration.
fn hydration_verdicts(j: &Judge) -> Vec<Verdict> {
    vec![
        j.time_ratio(
            Metric::HydrateReady,
            "hydration: open to 100 % ≤ 0.5× Go",
            0.5,
        ),
        j.bytes_vs_db(
            Metric::HydrateReady,
            "hydration: bytes downloaded ≤ 1.05× the database",
            1.05,
        ),
        j.ratio_vs(
            Metric::HydratedPoint,
            Target::Local,
            "hydration: 1000 point lookups after ≤ 1.5× local (cold)",
            1.5,
        ),
        j.bytes_vs_db(
            Metric::HydrateReopen,
            "hydration: reopen with a valid file downloads < 10 % of the database",
            0.1,
        ),
    ]
}
