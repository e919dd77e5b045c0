//! The write suite's rows of the chart.

use super::aggregate::{aggregate, Cell};
use super::dbs;
use super::figures::{cell_ratio, is_rate};
use super::verdict::{OPEN_VS_GO, TX_FULL_VS_GO, TX_OFF_VS_GO};
use crate::spec::Target;
use crate::write::{WriteResults, WriteWorkload};

/// The write rows of the chart: labels, the ceiling on ours ÷ Go, and per database the
/// ratios ours ÷ Go and ours ÷ local, always of times (for rates, of the time per transaction
/// or row), so that below 1 means ours is faster as in the read rows.
pub(in crate::report) struct ChartRows {
    pub labels: Vec<String>,
    pub target_go: Vec<Option<f64>>,
    pub groups: Vec<ChartRowGroup>,
}

/// One database's bars of the write rows.
pub(in crate::report) struct ChartRowGroup {
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

pub(in crate::report) fn chart_rows(w: &WriteResults) -> ChartRows {
    let cells = aggregate(w);
    let c = |db, t, wl| cells.get(db, t, wl);
    let time_ratio = |wl: WriteWorkload, o: &Cell, x: &Cell| {
        cell_ratio(o, x).map(|(r, _)| if is_rate(wl) { 1.0 / r } else { r })
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
