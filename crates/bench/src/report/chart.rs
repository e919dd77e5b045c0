//! The chart: the ratio tables of both suites as JSON, drawn by `scripts/bench-chart.py`.

use std::process::Command;

use anyhow::{Context, Result};
use serde::Serialize;

use super::aggregate::{ratio, Agg};
use super::markdown::pass_title;
use super::write_suite;
use crate::config::Config;
use crate::driver::{PassInfo, Results};
use crate::spec::{Metric, Target};

#[derive(Serialize)]
struct ChartGroup {
    name: String,
    vs_go: Vec<Option<f64>>,
    vs_go_bound: Vec<bool>,
    vs_local: Vec<Option<f64>>,
}

#[derive(Serialize)]
pub(super) struct ChartData {
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

/// One read pass's bars.
fn read_group(agg: &Agg, p: &PassInfo) -> ChartGroup {
    let (size, lat) = (p.dataset, p.latency_ms);
    let vs = |m: Metric, other: Target| {
        ratio(
            agg.cell(size, lat, Target::Ours, m).fig(),
            agg.cell(size, lat, other, m).fig(),
        )
    };
    let go: Vec<Option<(f64, &str)>> = Metric::ALL.iter().map(|m| vs(*m, Target::Go)).collect();
    ChartGroup {
        name: pass_title(size, lat),
        vs_go: go.iter().map(|r| r.map(|r| r.0)).collect(),
        vs_go_bound: go
            .iter()
            .map(|r| r.is_some_and(|r| !r.1.is_empty()))
            .collect(),
        vs_local: Metric::ALL
            .iter()
            .map(|m| vs(*m, Target::Local).map(|r| r.0))
            .collect(),
    }
}

/// The chart's data: the read rows (when the read suite ran), then the write rows.
pub(super) fn data(results: &Results, agg: &Agg, title: String) -> ChartData {
    let mut chart = ChartData {
        title,
        metrics: Metric::ALL.iter().map(|m| m.label().to_string()).collect(),
        target_go: Metric::ALL.iter().map(|m| ratio_targets(*m).0).collect(),
        target_local: Metric::ALL.iter().map(|m| ratio_targets(*m).1).collect(),
        groups: results.passes.iter().map(|p| read_group(agg, p)).collect(),
    };
    if results.passes.is_empty() {
        chart.metrics.clear();
        chart.target_go.clear();
        chart.target_local.clear();
    }
    if let Some(w) = &results.write {
        // Write rows below the read rows: the read groups have no bar there, and the write
        // groups none in the read rows.
        let rows = write_suite::chart_rows(w);
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
    chart
}

impl ChartData {
    /// Whether there is anything to draw (no read or write figures: the chart is left as is).
    pub(super) fn has_groups(&self) -> bool {
        !self.groups.is_empty()
    }
}

/// Writes the chart's data to `chart.json` and draws it; a chart that cannot be drawn is said
/// and skipped (the report goes on without it).
pub(super) fn draw(chart: &ChartData, config: &Config) -> Result<()> {
    let chart_json = config.bench_dir.join("chart.json");
    std::fs::write(&chart_json, serde_json::to_string_pretty(chart)?)?;
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
    Ok(())
}
