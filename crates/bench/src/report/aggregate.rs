//! The read suite's runs gathered per (dataset, latency, target, metric): min, median and max,
//! request counters, peak RSS, answers and errors.

use std::collections::{BTreeMap, BTreeSet};

use testkit::RequestStats;

use crate::driver::Results;
use crate::gen::DatasetId;
use crate::spec::{Metric, Target, Workload};

/// All runs of one (size, latency, target, metric).
#[derive(Debug, Default, Clone)]
pub(super) struct Cell {
    ms: Vec<f64>,
    requests: Vec<RequestStats>,
    /// Killed runs: seconds, and the counters of the whole process by then.
    killed: Vec<(u64, RequestStats)>,
    rss_kb: Vec<u64>,
    pub(super) answers: BTreeSet<(u64, String)>,
    pub(super) errors: Vec<String>,
}

/// A figure: measured (min, median, max), or only a lower bound (the runs were killed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Fig {
    None,
    Measured { min: f64, med: f64, max: f64 },
    AtLeast(f64),
}

impl Fig {
    /// (min, median, max) of `v`, or [`Fig::None`] when it is empty.
    pub(crate) fn of(v: &[f64]) -> Fig {
        match median(v) {
            Some(med) => Fig::Measured {
                min: v.iter().copied().fold(f64::INFINITY, f64::min),
                med,
                max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            },
            None => Fig::None,
        }
    }

    /// The median, when measured.
    pub(crate) fn med(self) -> Option<f64> {
        match self {
            Fig::Measured { med, .. } => Some(med),
            _ => None,
        }
    }
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

/// ours ÷ other of the medians, with "<"/">" when a side is only a bound.
pub(crate) fn ratio(ours: Fig, other: Fig) -> Option<(f64, &'static str)> {
    match (ours, other) {
        (Fig::Measured { med: a, .. }, Fig::Measured { med: b, .. }) if b > 0.0 => {
            Some((a / b, ""))
        }
        (Fig::Measured { med: a, .. }, Fig::AtLeast(b)) if b > 0.0 => Some((a / b, "< ")),
        (Fig::AtLeast(a), Fig::Measured { med: b, .. }) if b > 0.0 => Some((a / b, "> ")),
        _ => None,
    }
}

impl Cell {
    pub(super) fn fig(&self) -> Fig {
        match Fig::of(&self.ms) {
            Fig::None => match self.killed.iter().map(|k| k.0).min() {
                Some(secs) => Fig::AtLeast(secs as f64 * 1000.0),
                None => Fig::None,
            },
            f => f,
        }
    }

    pub(super) fn med(&self) -> Option<f64> {
        self.fig().med()
    }

    /// Field-wise medians of the measured sections' counters; for killed runs, the whole
    /// process's counters (a lower bound).
    pub(super) fn req(&self) -> Option<(RequestStats, bool)> {
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

    pub(super) fn rss_mb(&self) -> Option<f64> {
        median_u64(&self.rss_kb).map(|kb| kb as f64 / 1024.0)
    }
}

type Key = (DatasetId, u64, Target, Metric);

/// Times by (dataset, latency, target).
pub(super) type Times = BTreeMap<(DatasetId, u64, Target), Vec<f64>>;

pub(super) struct Agg {
    cells: BTreeMap<Key, Cell>,
    /// `load_extension` times by (size, latency, target).
    pub(super) load_ms: Times,
    /// Opening the database (after loading), in the `open` workload, by (size, latency, target).
    pub(super) open_ms: Times,
}

impl Agg {
    pub(super) fn new(results: &Results) -> Agg {
        let mut cells: BTreeMap<Key, Cell> = BTreeMap::new();
        let mut load_ms = Times::new();
        let mut open_ms = Times::new();
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
            let at = (r.dataset, r.latency_ms, r.target);
            if let Some(l) = out.load_ms {
                load_ms.entry(at).or_default().push(l);
            }
            if let (Some(o), Workload::Open) = (out.open_ms, r.workload) {
                open_ms.entry(at).or_default().push(o);
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

    pub(super) fn cell(&self, size: DatasetId, lat: u64, target: Target, metric: Metric) -> Cell {
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
    pub(super) fn peak_rss_mb(&self, size: DatasetId, lat: u64, target: Target) -> Option<f64> {
        Metric::ALL
            .iter()
            .filter_map(|m| self.cell(size, lat, target, *m).rss_mb())
            .reduce(f64::max)
    }
}
