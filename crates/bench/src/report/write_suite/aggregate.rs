//! The write suite's runs gathered per (database, target, workload).

use std::collections::BTreeMap;

use testkit::RequestStats;

use crate::report::aggregate::{median, Fig};
use crate::spec::Target;
use crate::write::{WriteDb, WriteResults, WriteWorkload};

/// All runs of one (database, target, workload).
#[derive(Debug, Default, Clone)]
pub(super) struct Cell {
    /// Per run: the workload's figure (tx/s, rows/s, uploads/s; for opening, ms).
    pub(super) values: Vec<f64>,
    /// Every commit-to-visible sample of every run, ms.
    pub(super) visible: Vec<f64>,
    pub(super) visible_timeouts: u64,
    /// Per run of the upload workload: the times without a new object while writing, ms.
    pub(super) gaps: Vec<Vec<f64>>,
    /// Per run of the upload workload that failed while writing: when, ms into the writes.
    pub(super) failed_after_ms: Vec<f64>,
    /// Runs whose measured section completed but that failed after it (counting the rows,
    /// closing): their figures count, and the errors are listed.
    pub(super) failed_later: usize,
    /// Runs that failed before the end of their measured section: no figure.
    pub(super) failed: usize,
    pub(super) requests: Vec<RequestStats>,
    pub(super) close_ms: Vec<f64>,
    pub(super) load_ms: Vec<f64>,
    pub(super) open_ms: Vec<f64>,
    pub(super) rss_kb: Vec<u64>,
    /// `litestream restore` checks, or why the restore failed.
    pub(super) checks: Vec<Result<Check, String>>,
    pub(super) errors: Vec<String>,
    pub(super) killed: Vec<u64>,
}

impl Cell {
    /// (min, median, max) of the per-run figures; for COMMIT → visible, of every sample.
    pub(super) fn fig(&self) -> Fig {
        Fig::of(if self.values.is_empty() {
            &self.visible
        } else {
            &self.values
        })
    }

    pub(super) fn med(&self) -> Option<f64> {
        self.fig().med()
    }

    /// The longest gap of every run: the worst, and the gaps of that run.
    pub(super) fn worst_gaps(&self) -> Option<(f64, &Vec<f64>)> {
        self.gaps
            .iter()
            .filter_map(|g| g.iter().copied().reduce(f64::max).map(|m| (m, g)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// Median of one request counter.
    pub(super) fn req_med(&self, f: fn(&RequestStats) -> u64) -> Option<f64> {
        median(
            &self
                .requests
                .iter()
                .map(|r| f(r) as f64)
                .collect::<Vec<_>>(),
        )
    }
}

/// A `litestream restore` of a run's replica, against what the run committed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Check {
    /// Rows of `items` in the restored database.
    pub(super) restored: i64,
    /// Rows before the run plus those it committed.
    pub(super) committed: i64,
    /// Rows the run's connection counted at the end (None if that failed).
    pub(super) counted: Option<i64>,
}

type Key = (WriteDb, Target, WriteWorkload);

/// Every cell of the suite; an empty one where nothing ran.
pub(super) struct Cells {
    cells: BTreeMap<Key, Cell>,
    empty: Cell,
}

impl Cells {
    pub(super) fn get(&self, db: WriteDb, target: Target, workload: WriteWorkload) -> &Cell {
        self.cells
            .get(&(db, target, workload))
            .unwrap_or(&self.empty)
    }
}

/// Gathers the runs of `w`.
pub(super) fn aggregate(w: &WriteResults) -> Cells {
    let mut cells: BTreeMap<Key, Cell> = BTreeMap::new();
    for r in &w.records {
        // The big transaction has its own figures ([`super::bigtx`]).
        if r.workload == WriteWorkload::BigTx {
            continue;
        }
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
            WriteWorkload::BigTx => {}
        }
        if let Some(req) = o.requests {
            cell.requests.push(req);
        }
        cell.close_ms.push(o.close_ms);
        cell.load_ms.extend(o.load_ms);
        cell.open_ms.extend(o.open_ms);
        cell.rss_kb.push(o.vmhwm_kb);
    }
    Cells {
        cells,
        empty: Cell::default(),
    }
}
