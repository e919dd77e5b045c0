//! The report of synthetic results against stored copies (`crates/bench/testdata/`), so that a
//! change to the report code that changes the document shows. The bench library is not tested
//! by `cargo test --workspace`; run `cargo test --release -p bench --lib`. After a deliberate
//! change to the document, `BENCH_BLESS=1 cargo test --release -p bench --lib` rewrites the
//! copies, to be reviewed in the diff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use testkit::RequestStats;

use crate::config::{unix_now, Config};
use crate::driver::{PassInfo, Results, RunRecord};
use crate::gen::{BtreeLayout, DatasetId, Meta};
use crate::scale::dataset::ScaleMeta;
use crate::scale::{ScaleOutput, ScaleRecord, ScaleResults, ScaleWorkload};
use crate::spec::{DataParams, Measure, Metric, Rng, RunnerOutput, Target, Workload};
use crate::write::{WriteDb, WriteOutput, WriteRecord, WriteResults, WriteWorkload};

fn config(dir: &Path) -> Config {
    Config {
        sizes: vec![10, 200],
        vacuumed_sizes: vec![200],
        runs: 3,
        latency_ms: 20,
        latency_sizes: vec![200],
        latency_runs: 2,
        latency_go_runs: 1,
        timeout_secs: 300,
        latency_timeout_secs: 15,
        suites: vec!["read".into(), "write".into()],
        write_sizes: vec![200],
        write_runs: 3,
        write_secs: 1.2,
        write_load_secs: 5.0,
        write_samples: 3,
        write_timeout_secs: 60,
        write_workloads: Vec::new(),
        bigtx_mb: vec![500, 2000],
        bigtx_runs: 1,
        bigtx_timeout_secs: 600,
        scale_pages: vec![1_000_000, 8_000_000, 26_000_000],
        scale_follow_secs: 600.0,
        scale_hydrate: vec![8_000_000],
        scale_timeout_secs: 2400,
        bench_dir: dir.to_path_buf(),
        ours_so: PathBuf::from("/x/liblitestream_vfs.so"),
        go_so: PathBuf::from("/y/litestream-vfs.so"),
        runner: PathBuf::from("/x/bench-runner"),
        out_md: dir.join("benchmarks.md"),
        out_png: dir.join("benchmarks.png"),
        // No chart: the report says so and goes on.
        python: "/nonexistent/python3".into(),
        command: "make bench".into(),
        t0_unix: unix_now(),
    }
}

fn meta(id: DatasetId) -> Meta {
    Meta {
        version: 7,
        size_mb: id.size_mb,
        vacuumed: id.vacuumed,
        data: DataParams {
            n_items: i64::from(id.size_mb) * 4000,
            base_docs: i64::from(id.size_mb) * 790,
            lookup_seed: 1,
            first_query_id: 42,
            range_category: "cat-07".into(),
            range_lo: "2024-02-01".into(),
            range_hi: "2024-02-02".into(),
            consecutive_start: 1000,
            tt_time: "2025-01-01T00:00:04Z".into(),
        },
        n_docs: i64::from(id.size_mb) * 790 + 480,
        db_bytes: u64::from(id.size_mb) * 1_000_000 + 12_288,
        page_size: 4096,
        levels: BTreeMap::from([(0, (12, 48_000)), (1, (3, 900_000)), (9, (1, 9_000_000))]),
        replica_bytes: u64::from(id.size_mb) * 400_000,
        final_txid: "00000000000001f4".into(),
        stream_txs: 480,
        tt_expected: "tt-expected".into(),
        gen_secs: 95.5,
        generated_at: "2025-01-01 10:00 UTC".into(),
    }
}

fn layout(id: DatasetId) -> Vec<BtreeLayout> {
    let runs = |n: u64| if id.vacuumed { 1 } else { n };
    ["docs", "items", "items_category_created"]
        .iter()
        .zip([3000, 900, 400])
        .map(|(name, pages)| BtreeLayout {
            name: name.to_string(),
            pages: pages * u64::from(id.size_mb) / 10,
            leaves: pages * u64::from(id.size_mb) / 11,
            leaf_runs: runs(pages * u64::from(id.size_mb) / 30),
            median_gap: if id.vacuumed { 1 } else { 3 },
        })
        .collect()
}

/// Requests of a section: few for ours, many for Go, none for local SQLite.
fn requests(rng: &mut Rng, target: Target) -> Option<RequestStats> {
    let scale = match target {
        Target::Ours => 10,
        Target::Go => 400,
        Target::Local => return None,
    };
    Some(RequestStats {
        get: rng.below(scale),
        get_range: rng.below(scale),
        head: rng.below(3),
        list: rng.below(3),
        bytes_out: rng.below(scale * 300_000),
        latency_us: 20_000,
        ..RequestStats::default()
    })
}

fn ms(rng: &mut Rng, target: Target) -> f64 {
    let (lo, hi) = match target {
        Target::Ours => (2, 30_000),
        Target::Go => (20, 200_000),
        Target::Local => (1, 3_000),
    };
    rng.range(lo, hi) as f64 / 10.0
}

/// One runner process of the read suite, with the run's oddities: killed runs in the latency
/// pass, a failed run, an answer that differs.
fn read_record(
    rng: &mut Rng,
    pass: &PassInfo,
    target: Target,
    workload: Workload,
    run: usize,
) -> RunRecord {
    let metrics: Vec<Metric> = Metric::ALL
        .iter()
        .copied()
        .filter(|m| m.workload() == workload)
        .collect();
    let killed_at = match (pass.latency_ms, target, workload) {
        (20, Target::Go, Workload::Count | Workload::ScanDocs) => Some(0),
        (20, Target::Go, Workload::Point) => Some(1),
        _ => None,
    };
    let n_measured = killed_at.unwrap_or(metrics.len());
    let error = (pass.dataset.size_mb == 10 && target == Target::Go && workload == Workload::Range)
        .then(|| "no such table: `items`".to_string());
    let measures = metrics[..n_measured]
        .iter()
        .map(|&metric| {
            let differs = run == 1 && target == Target::Ours && metric == Metric::Consecutive;
            Measure {
                metric,
                ms: ms(rng, target),
                rows: if metric == Metric::Open { 1 } else { 1000 },
                checksum: match (metric, differs) {
                    (Metric::TimeTravel, _) => "tt-expected".into(),
                    (_, true) => "other".into(),
                    _ => format!("sum-{}", metric.name()),
                },
                requests: requests(rng, target),
            }
        })
        .collect();
    let output = (n_measured > 0 || killed_at.is_none()).then(|| RunnerOutput {
        load_ms: target.is_vfs().then(|| rng.range(10, 900) as f64 / 100.0),
        open_ms: target.is_vfs().then(|| rng.range(10, 9000) as f64 / 10.0),
        measures,
        vmhwm_kb: 1024 * rng.below(300),
        error: error.clone(),
    });
    RunRecord {
        dataset: pass.dataset,
        latency_ms: pass.latency_ms,
        target,
        workload,
        run,
        output,
        timed_out_secs: killed_at.map(|_| pass.timeout_secs),
        process_requests: requests(rng, target).unwrap_or_default(),
        process_ms: 1234.5,
        error,
    }
}

fn read_suite(rng: &mut Rng, results: &mut Results) {
    let ids = [(10, false), (200, false), (200, true)]
        .map(|(size_mb, vacuumed)| DatasetId { size_mb, vacuumed });
    for id in ids {
        results.datasets.push(meta(id));
        results.layouts.push((id, layout(id)));
        let latencies: &[u64] = if id == ids[1] { &[0, 20] } else { &[0] };
        for &latency_ms in latencies {
            let pass = PassInfo {
                dataset: id,
                latency_ms,
                runs: if latency_ms == 0 {
                    [3, 3, 3]
                } else {
                    [2, 1, 0]
                },
                timeout_secs: if latency_ms == 0 { 300 } else { 15 },
                secs: 100.0 + rng.below(500) as f64,
            };
            for (i, target) in Target::ALL.into_iter().enumerate() {
                for run in 0..pass.runs[i] {
                    for workload in Workload::ALL {
                        if workload.applies_to(target) && !(latency_ms > 0 && workload.hydrates()) {
                            let r = read_record(rng, &pass, target, workload, run);
                            results.records.push(r);
                        }
                    }
                }
            }
            results.passes.push(pass);
        }
    }
}

fn write_output(rng: &mut Rng, target: Target, workload: WriteWorkload) -> WriteOutput {
    let per_tx = match target {
        Target::Ours => 900,
        Target::Go => 300,
        Target::Local => 20_000,
    };
    let txs = rng.below(per_tx) + per_tx;
    let mut o = WriteOutput {
        load_ms: target.is_vfs().then(|| rng.range(10, 900) as f64 / 100.0),
        open_ms: Some(rng.range(10, 9000) as f64 / 10.0),
        ms: 1200.0,
        txs,
        rows: txs,
        requests: requests(rng, target),
        final_rows: Some(0),
        close_ms: rng.range(1, 30_000) as f64 / 10.0,
        vmhwm_kb: 1024 * rng.below(200),
        ..WriteOutput::default()
    };
    match workload {
        WriteWorkload::BatchFull | WriteWorkload::BatchOff => o.rows = txs * 1000,
        WriteWorkload::CommitVisible => {
            o.visible_ms = (0..3).map(|_| rng.range(50, 2500) as f64).collect();
        }
        WriteWorkload::UploadRate => {
            o.ms = 5000.0;
            o.upload_at_ms = (1..=5)
                .map(|k| k as f64 * 1000.0 + rng.below(600) as f64)
                .collect();
        }
        WriteWorkload::OpenWrite => o.ms = ms(rng, target),
        WriteWorkload::TxFull | WriteWorkload::TxOff | WriteWorkload::BigTx => {}
    }
    o
}

/// One write run, with the suite's oddities: a killed run, failures before and after the
/// measured section, commits that never showed, restores that differ or fail.
fn write_record(
    rng: &mut Rng,
    db: WriteDb,
    target: Target,
    workload: WriteWorkload,
    run: usize,
) -> WriteRecord {
    let base = if db == WriteDb::New { 0 } else { 800_000 };
    let mut output = Some(write_output(rng, target, workload));
    let mut timed_out_secs = None;
    let mut error = None;
    let mut restored = None;
    if let Some(o) = &mut output {
        o.final_rows = Some(base + o.rows as i64);
        if target.is_vfs() && (db == WriteDb::New || run == 0) {
            restored = Some(Ok(base + o.rows as i64));
        }
        match (db, target, workload, run) {
            (WriteDb::New, Target::Go, WriteWorkload::TxFull, 2) => {
                o.ms = 0.0;
                error = Some("database disk image is malformed".to_string());
                restored = Some(Err("integrity_check: `bad`".to_string()));
            }
            (WriteDb::New, Target::Ours, WriteWorkload::BatchOff, 1) => {
                error = Some("close: upload failed".to_string());
                restored = Some(Ok(base + o.rows as i64 - 1000));
            }
            (WriteDb::New, Target::Go, WriteWorkload::UploadRate, 0) => {
                o.final_rows = None;
                error = Some("disk I/O error".to_string());
            }
            (WriteDb::New, Target::Go, WriteWorkload::CommitVisible, 1) => o.visible_timeouts = 1,
            (WriteDb::Replica(_), Target::Go, WriteWorkload::BatchFull, _) => {
                timed_out_secs = Some(60);
                error = None;
            }
            _ => {}
        }
    }
    if timed_out_secs.is_some() {
        output = None;
        restored = None;
    }
    WriteRecord {
        db,
        target,
        workload,
        run,
        output,
        timed_out_secs,
        mb: None,
        process_ms: 1500.0,
        process_requests: RequestStats::default(),
        restored,
        error,
    }
}

pub(super) fn write_suite(rng: &mut Rng) -> WriteResults {
    let mut records = Vec::new();
    for db in [WriteDb::New, WriteDb::Replica(200)] {
        for target in Target::ALL {
            for workload in WriteWorkload::ALL {
                if workload.applies_to(target, db) {
                    for run in 0..3 {
                        records.push(write_record(rng, db, target, workload, run));
                    }
                }
            }
        }
    }
    records.extend(super::tests_bigtx::records(rng));
    WriteResults {
        runs: 3,
        secs: 1.2,
        load_secs: 5.0,
        samples: 3,
        sizes: vec![200],
        timeout_secs: 60,
        workloads: Vec::new(),
        bigtx_mb: vec![500, 2000],
        bigtx_runs: 1,
        bigtx_timeout_secs: 600,
        interval_ms: 1000,
        base_rows: vec![(200, 800_000)],
        date: "2025-01-02 11:00 UTC".into(),
        code: "commit 1234567".into(),
        secs_taken: 321.0,
        records,
        sync_floor_us: vec![310.0, 290.0, 330.0],
    }
}

fn results(config: &Config) -> Results {
    let mut rng = Rng::new(13);
    let mut results = Results {
        config: config.clone(),
        datasets: Vec::new(),
        gen_secs: 0.0,
        passes: Vec::new(),
        records: Vec::new(),
        so_bytes: (7_654_321, 84_000_000),
        code: "commit abcdef0".into(),
        layouts: Vec::new(),
        read_from: None,
        write: None,
        write_carried: false,
        scale: None,
        scale_carried: false,
    };
    read_suite(&mut rng, &mut results);
    results.write = Some(write_suite(&mut rng));
    results
}

/// The parts of the report that depend on the machine and the clock, replaced by a mark.
fn normalize(text: &str) -> String {
    text.lines()
        .map(|l| {
            for prefix in ["- **Date:** ", "- **Machine:** ", "  \"title\": "] {
                if l.starts_with(prefix) {
                    return format!("{prefix}…");
                }
            }
            match (l.strip_prefix("- **Took:** "), l.find(" in all")) {
                (Some(_), Some(i)) => format!("- **Took:** …{}", &l[i..]),
                _ => l.to_string(),
            }
        })
        .map(|l| l + "\n")
        .collect()
}

/// Writes the report of `results` and compares it and the chart's data with the stored copies
/// named `name`.
fn check(name: &str, results: &Results, config: &Config) {
    crate::report::write(results, config).expect("write the report");
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    for (file, ext) in [
        (&config.out_md, "md"),
        (&config.bench_dir.join("chart.json"), "json"),
    ] {
        let got = normalize(&std::fs::read_to_string(file).expect("read the output"));
        let stored = testdata.join(format!("report-{name}.{ext}"));
        if std::env::var_os("BENCH_BLESS").is_some() {
            std::fs::create_dir_all(&testdata).expect("testdata dir");
            std::fs::write(&stored, &got).expect("write the stored copy");
        }
        let want = std::fs::read_to_string(&stored).expect("read the stored copy");
        assert!(
            got == want,
            "{} differs from {}",
            file.display(),
            stored.display()
        );
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bench-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn both_suites() {
    let dir = scratch("both");
    let config = config(&dir);
    check("both", &results(&config), &config);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn read_carried_over_no_write_suite() {
    let dir = scratch("read");
    let config = config(&dir);
    let mut results = results(&config);
    results.read_from = Some("the run of 2025-01-01 09:00 UTC (commit 7654321)".into());
    results.write = None;
    results.gen_secs = 321.5;
    check("read", &results, &config);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn write_suite_carried_over_no_read_suite() {
    let dir = scratch("write");
    let config = config(&dir);
    let mut results = results(&config);
    results.passes.clear();
    results.records.clear();
    results.datasets.clear();
    results.layouts.clear();
    results.write_carried = true;
    check("write", &results, &config);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The scale suite at 1 M, 8 M and 26 M rows: ours grows little, Go about linearly; Go's
/// 26 M run skipped for memory, Go's hydration failed.
fn scale_suite(rng: &mut Rng) -> ScaleResults {
    let sizes = [1_000_000u64, 8_000_000, 26_000_000];
    let datasets: Vec<ScaleMeta> = sizes
        .iter()
        .map(|&leaves| ScaleMeta {
            version: 1,
            leaves,
            total_pages: (leaves + leaves / 359 + 2) as u32,
            db_bytes: (leaves + leaves / 359 + 2) * 4096,
            ltx_bytes: leaves * 41,
            gen_secs: leaves as f64 / 200_000.0,
        })
        .collect();
    let mut records = Vec::new();
    for d in &datasets {
        let pages = u64::from(d.total_pages);
        for target in [Target::Ours, Target::Go] {
            let (bpp, open_ms) = match target {
                Target::Go => (400, pages as f64 / 500.0),
                _ => (6, 100.0 + rng.below(20) as f64),
            };
            let rss = 20_000 + pages * bpp / 1024;
            let follow = ScaleOutput {
                open_ms,
                rss_after_open_kb: rss,
                deep_read_ms: Some(rng.range(5, 50) as f64 / 10.0),
                follow_secs: 600.0,
                follow_cpu_secs: rng.range(50, 300) as f64 / 100.0,
                follow_rss_peak_kb: rss + rng.below(5000),
                follow_rss_end_kb: rss + 100,
                follow_queries: 12_000,
                last_commit_seen: 5_990,
                vmhwm_kb: rss + 5000,
                hwm_after_open_kb: Some(rss + pages * 3 / 1024),
                index_after_open: (target == Target::Ours).then_some(pages * 2 + 4096),
                index_follow_end: (target == Target::Ours).then_some(pages * 2 + 90_000),
                ..ScaleOutput::default()
            };
            let skipped = (target == Target::Go && d.leaves == 26_000_000)
                .then(|| "needs about 12.6 GB and 10.2 GB are available".to_string());
            records.push(ScaleRecord {
                leaves: d.leaves,
                total_pages: d.total_pages,
                target,
                workload: ScaleWorkload::Follow,
                output: skipped.is_none().then_some(follow),
                skipped,
                timed_out_secs: None,
                commits_written: 6_000,
                process_secs: 700.0,
                error: None,
            });
            if d.leaves == 8_000_000 {
                let failed = target == Target::Go;
                records.push(ScaleRecord {
                    leaves: d.leaves,
                    total_pages: d.total_pages,
                    target,
                    workload: ScaleWorkload::Hydrate,
                    output: Some(ScaleOutput {
                        open_ms,
                        rss_after_open_kb: rss,
                        hydrate_ms: (!failed).then_some(95_000.0),
                        vmhwm_kb: rss + 9000,
                        error: failed.then(|| "disk I/O error".to_string()),
                        ..ScaleOutput::default()
                    }),
                    skipped: None,
                    timed_out_secs: None,
                    commits_written: 0,
                    process_secs: 100.0,
                    error: failed.then(|| "disk I/O error".to_string()),
                });
            }
        }
    }
    ScaleResults {
        datasets,
        follow_secs: 600.0,
        commits_per_sec: 10,
        pages_per_commit: 4,
        hydrate_leaves: vec![8_000_000],
        date: "2025-01-03 12:00 UTC".into(),
        code: "commit 7654321".into(),
        secs_taken: 4321.0,
        records,
    }
}

#[test]
fn scale_suite_with_the_others_carried_over() {
    let dir = scratch("scale");
    let config = config(&dir);
    let mut results = results(&config);
    results.read_from = Some("the run of 2025-01-01 09:00 UTC (commit 7654321)".into());
    results.write_carried = true;
    results.scale = Some(scale_suite(&mut Rng::new(14)));
    check("scale", &results, &config);
    let scale_json = std::fs::read_to_string(dir.join("scale-chart.json")).expect("scale chart");
    assert!(scale_json.contains("bytes per page"), "{scale_json}");
    assert!(scale_json.contains("our page map"), "{scale_json}");
    // Between its markers, once each: a later scale-only run can replace it in place.
    let md = std::fs::read_to_string(&config.out_md).expect("the report");
    assert_eq!(md.matches(super::splice::BEGIN).count(), 1);
    assert_eq!(md.matches(super::splice::END).count(), 1);
    assert!(md.find(super::splice::BEGIN) < md.find(super::splice::END));
    let _ = std::fs::remove_dir_all(&dir);
}
