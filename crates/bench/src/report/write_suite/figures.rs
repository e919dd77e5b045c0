//! How the write suite's figures read: rates with their unit, times, restore checks.

use std::fmt::Write as _;

use super::aggregate::Cell;
use crate::report::aggregate::{median, ratio, Fig};
use crate::report::format::{fmt_ms, fmt_spread_ms};
use crate::write::{WriteWorkload, VISIBLE_TIMEOUT_INTERVALS};

/// Whether the workload's figure is a rate (higher is better) rather than a time.
pub(super) fn is_rate(w: WriteWorkload) -> bool {
    !matches!(
        w,
        WriteWorkload::CommitVisible | WriteWorkload::OpenWrite | WriteWorkload::BigTx
    )
}

pub(super) fn unit(w: WriteWorkload) -> &'static str {
    match w {
        WriteWorkload::TxFull | WriteWorkload::TxOff => "tx/s",
        WriteWorkload::BatchFull | WriteWorkload::BatchOff => "rows/s",
        WriteWorkload::UploadRate => "uploads/s",
        WriteWorkload::CommitVisible | WriteWorkload::OpenWrite | WriteWorkload::BigTx => "ms",
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
pub(super) fn fmt_cell(w: WriteWorkload, c: &Cell) -> String {
    let Fig::Measured { min, med, max } = c.fig() else {
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
        fmt_spread_ms(min, med, max)
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
pub(super) fn cell_ratio(ours: &Cell, other: &Cell) -> Option<(f64, &'static str)> {
    ratio(ours.fig(), other.fig())
}

/// The `litestream restore` checks of a cell: `same, 3 checks` or what differed.
pub(super) fn fmt_checks(c: &Cell) -> Option<String> {
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

/// The time per transaction at `tx_per_s`: `63 µs` or `1.05 ms`.
pub(super) fn per_tx(tx_per_s: f64) -> String {
    let ms = 1000.0 / tx_per_s;
    if ms < 1.0 {
        format!("{:.0} µs", ms * 1000.0)
    } else {
        fmt_ms(ms)
    }
}
