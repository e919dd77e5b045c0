//! The one big transaction in the report (issue #14): the synthetic runs the report tests of
//! `tests.rs` add to their write suite, and tests of its tables and verdicts whose expectations
//! are computed from the runs' figures.

use testkit::RequestStats;

use super::format::{fmt_ms, fmt_ratio};
use super::write_suite::{self, bigtx};
use crate::bigtx::{rows, ROW_BYTES, RSS_LIMIT_MB};
use crate::spec::{Rng, Target};
use crate::write::{WriteDb, WriteOutput, WriteRecord, WriteResults, WriteWorkload};

/// The figures of one run that committed: peak RSS (MB), then BEGIN + INSERT, COMMIT, the
/// upload (None: local SQLite, or never seen) and the close, ms.
struct Figs {
    rss_mb: u64,
    insert: f64,
    commit: f64,
    upload: Option<f64>,
    close: f64,
}

fn output(mb: u32, f: &Figs) -> WriteOutput {
    let n = rows(mb);
    WriteOutput {
        load_ms: Some(3.0),
        open_ms: Some(2.0),
        ms: f.insert + f.commit,
        txs: 1,
        rows: n,
        final_rows: Some(n as i64),
        close_ms: f.close,
        vmhwm_kb: f.rss_mb * 1024,
        insert_ms: Some(f.insert),
        commit_ms: Some(f.commit),
        upload_ms: f.upload,
        requests: f.upload.map(|_| RequestStats {
            put: 3,
            bytes_in: u64::from(mb) * 1_000_000 + 4096,
            ..RequestStats::default()
        }),
        ..WriteOutput::default()
    }
}

fn record(
    target: Target,
    mb: u32,
    run: usize,
    output: Option<WriteOutput>,
    error: Option<&str>,
) -> WriteRecord {
    let restored = output
        .as_ref()
        .filter(|_| target.is_vfs())
        .map(|o| match error {
            None => Ok(o.rows as i64),
            Some(_) => Err("restore: no snapshot available".to_string()),
        });
    WriteRecord {
        db: WriteDb::New,
        target,
        workload: WriteWorkload::BigTx,
        run,
        mb: Some(mb),
        output,
        timed_out_secs: None,
        process_ms: 1.0,
        process_requests: RequestStats::default(),
        restored,
        error: error.map(str::to_string),
    }
}

/// A run that committed.
fn ok(target: Target, mb: u32, run: usize, f: Figs) -> WriteRecord {
    record(target, mb, run, Some(output(mb, &f)), None)
}

/// Go failing to create the database, as a run of the Go VFS 0.5.17 did: no figure.
fn go_failed(mb: u32, run: usize) -> WriteRecord {
    let o = WriteOutput {
        load_ms: Some(30.0),
        vmhwm_kb: 90 * 1024,
        ..WriteOutput::default()
    };
    record(
        Target::Go,
        mb,
        run,
        Some(o),
        Some("create the table: SQL logic error"),
    )
}

/// The big-transaction runs of the report tests' write suite: at 500 MB ours within the
/// target, Go failing, local SQLite; at 2000 MB ours over the target and Go killed.
pub(super) fn records(rng: &mut Rng) -> Vec<WriteRecord> {
    let mut figs = |rss: u64, upload: bool| Figs {
        rss_mb: rss + rng.below(40),
        insert: rng.range(5_000, 60_000) as f64,
        commit: rng.range(500, 20_000) as f64,
        upload: upload.then(|| rng.range(10, 3_000) as f64),
        close: rng.range(1, 500) as f64,
    };
    let mut killed = record(Target::Go, 2000, 0, None, None);
    killed.timed_out_secs = Some(600);
    vec![
        ok(Target::Ours, 500, 0, figs(120, true)),
        go_failed(500, 0),
        ok(Target::Local, 500, 0, figs(10, false)),
        ok(Target::Ours, 2000, 0, figs(270, true)),
        killed,
        ok(Target::Local, 2000, 0, figs(10, false)),
    ]
}

fn suite(bigtx_mb: Vec<u32>, records: Vec<WriteRecord>) -> WriteResults {
    WriteResults {
        runs: 1,
        secs: 1.2,
        load_secs: 5.0,
        samples: 3,
        sizes: Vec::new(),
        timeout_secs: 60,
        workloads: vec![WriteWorkload::BigTx],
        bigtx_mb,
        bigtx_runs: 1,
        bigtx_timeout_secs: 600,
        interval_ms: 1000,
        base_rows: Vec::new(),
        date: "2025-01-02 11:00 UTC".into(),
        code: "commit 1234567".into(),
        secs_taken: 60.0,
        records,
        sync_floor_us: Vec::new(),
    }
}

fn section(w: &WriteResults) -> String {
    let mut md = String::new();
    bigtx::section(&mut md, w);
    md
}

fn assert_line(md: &str, want: &str) {
    assert!(md.lines().any(|l| l == want), "no line {want:?} in\n{md}");
}

#[test]
fn table_shows_each_figure_and_the_ratio() {
    let (o, g, l) = (
        Figs {
            rss_mb: 180,
            insert: 12_345.0,
            commit: 2_500.0,
            upload: Some(700.0),
            close: 40.0,
        },
        Figs {
            rss_mb: 900,
            insert: 20_000.0,
            commit: 9_000.0,
            upload: Some(1_500.0),
            close: 300.0,
        },
        Figs {
            rss_mb: 20,
            insert: 5_000.0,
            commit: 3_000.0,
            upload: None,
            close: 5.0,
        },
    );
    let row = |label: &str, o: f64, g: f64, l: Option<String>| {
        format!(
            "| {label} | {} | {} | {} | {} |",
            fmt_ms(o),
            fmt_ms(g),
            fmt_ratio(o / g),
            l.unwrap_or_else(|| "n/a".into())
        )
    };
    let want = [
        format!(
            "| peak RSS (`VmHWM`) | {} MB | {} MB | {} | {} MB |",
            o.rss_mb,
            g.rss_mb,
            fmt_ratio(o.rss_mb as f64 / g.rss_mb as f64),
            l.rss_mb
        ),
        row(
            "`BEGIN` + `INSERT`",
            o.insert,
            g.insert,
            Some(fmt_ms(l.insert)),
        ),
        row("`COMMIT`", o.commit, g.commit, Some(fmt_ms(l.commit))),
        row(
            "end of `COMMIT` → object in the store",
            o.upload.unwrap(),
            g.upload.unwrap(),
            None,
        ),
        row(
            "`COMMIT` → object in the store",
            o.commit + o.upload.unwrap(),
            g.commit + g.upload.unwrap(),
            None,
        ),
        row("close", o.close, g.close, Some(fmt_ms(l.close))),
        format!(
            "#### 500 MB in one transaction ({} rows)",
            500_000_000 / u64::from(ROW_BYTES)
        ),
        "| runs | 1 of 1 ok | 1 of 1 ok | | 1 of 1 ok |".to_string(),
        "| replica restored | all rows (1 checked) | all rows (1 checked) | | n/a |".to_string(),
    ];
    let met = o.rss_mb as f64 <= RSS_LIMIT_MB;
    let w = suite(
        vec![500],
        vec![
            ok(Target::Ours, 500, 0, o),
            ok(Target::Go, 500, 0, g),
            ok(Target::Local, 500, 0, l),
        ],
    );
    let md = section(&w);
    for line in &want {
        assert_line(&md, line);
    }
    assert!(md.contains(&format!(
        "with the COMMIT uploaded: **{}**",
        if met { "met" } else { "not met" }
    )));
}

#[test]
fn a_failed_go_run_shows_its_error_instead_of_figures() {
    let figs = Figs {
        rss_mb: 100,
        insert: 1_000.0,
        commit: 100.0,
        upload: Some(10.0),
        close: 1.0,
    };
    let w = suite(
        vec![500],
        vec![ok(Target::Ours, 500, 0, figs), go_failed(500, 0)],
    );
    let md = section(&w);
    let go = w.records.iter().find(|r| r.target == Target::Go).unwrap();
    let error = go.error.as_deref().unwrap();
    assert_line(
        &md,
        &format!("| runs | 1 of 1 ok | 0 of 1 ok; **failed**: run 1: {error} | | not run |"),
    );
    assert_line(&md, "| peak RSS (`VmHWM`) | 100 MB | — | — | — |");
    assert!(md.contains("restore failed: restore: no snapshot available"));
    // Ours is judged alone: Go's failure neither fails nor hides the target.
    let v = bigtx::verdicts(&w);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].met, Some(100.0 <= RSS_LIMIT_MB));
    assert!(v[0].figure.contains("(Go failed)"), "{}", v[0].figure);
}

#[test]
fn the_verdict_takes_the_worst_run_and_fails_on_any_failure() {
    let figs = |rss_mb| Figs {
        rss_mb,
        insert: 1_000.0,
        commit: 100.0,
        upload: Some(10.0),
        close: 1.0,
    };
    let under = RSS_LIMIT_MB as u64 - 6;
    let over = RSS_LIMIT_MB as u64 + 10;
    for rss in [[under, under], [under, over]] {
        let w = suite(
            vec![2000],
            rss.iter()
                .enumerate()
                .map(|(run, &m)| ok(Target::Ours, 2000, run, figs(m)))
                .collect(),
        );
        let v = bigtx::verdicts(&w);
        let worst = rss.iter().copied().max().unwrap();
        assert_eq!(v[0].met, Some(worst as f64 <= RSS_LIMIT_MB));
        assert!(v[0]
            .figure
            .starts_with(&format!("ours {worst} MB at most over 2 run(s)")));
    }
    // Within the limit, but the commit never reached the store.
    let mut lost = ok(Target::Ours, 2000, 0, figs(under));
    if let Some(o) = lost.output.as_mut() {
        o.upload_ms = None;
    }
    lost.error = Some("the transaction's object was not in the store 500 s after COMMIT".into());
    let v = bigtx::verdicts(&suite(vec![2000], vec![lost]));
    assert_eq!(v[0].met, Some(false));
    assert!(v[0].why.as_deref().unwrap().contains("not in the store"));
}

#[test]
fn error_text_fits_a_table_cell() {
    assert_eq!(bigtx::cell_text("a|b\n  `c`"), "a\\|b 'c'");
    let long = "x".repeat(1000);
    let cell = bigtx::cell_text(&long);
    assert!(cell.ends_with('…'));
    assert!(cell.chars().count() < long.len() / 2);
}

#[test]
fn the_big_transaction_leaves_the_other_figures_alone() {
    let with = super::tests::write_suite(&mut Rng::new(13));
    let mut without = with.clone();
    without
        .records
        .retain(|r| r.workload != WriteWorkload::BigTx);
    without.bigtx_mb.clear();
    let (a, met_a, judged_a) = write_suite::section(&with);
    let (b, met_b, judged_b) = write_suite::section(&without);
    let from = "Ratios of the medians";
    let head = "### Write mode, one big transaction";
    let a = &a[a.find(from).unwrap()..a.find(head).unwrap()];
    let b = &b[b.find(from).unwrap()..];
    assert_eq!(a, b);
    assert!(!b.contains(head));
    let extra = bigtx::verdicts(&with);
    assert_eq!(extra.len(), with.bigtx_mb.len());
    let (met, judged) = super::verdict::tally(&extra);
    assert_eq!((met_a, judged_a), (met_b + met, judged_b + judged));
}
