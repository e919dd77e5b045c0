//! How the report writes numbers: durations, ratios, megabytes, and the lists both suites share.

use std::fmt::Write as _;

use super::aggregate::Fig;

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

/// Times, unit chosen by the median: `**832 ms** (171–836)` or `**22.2 s** (20.1–25.0)`.
pub(crate) fn fmt_spread_ms(min: f64, med: f64, max: f64) -> String {
    let seconds = med >= 10_000.0;
    let unit = if seconds { "s" } else { "ms" };
    format!(
        "**{} {unit}** ({}–{})",
        num(med, seconds),
        num(min, seconds),
        num(max, seconds)
    )
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

/// A ratio with its prefix (`"< "`, `"> "` when a side is only a bound), or `—`.
pub(crate) fn fmt_opt_ratio(r: Option<(f64, &'static str)>) -> String {
    r.map(|(v, p)| format!("{p}{}", fmt_ratio(v)))
        .unwrap_or_else(|| "—".to_string())
}

/// Bytes in MB, to three significant digits or so.
pub(crate) fn mb(bytes: u64) -> String {
    let m = bytes as f64 / 1e6;
    if m >= 100.0 {
        format!("{m:.0}")
    } else if m >= 1.0 {
        format!("{m:.1}")
    } else {
        format!("{m:.2}")
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

/// `10,200`: a list of sizes as the settings take it.
pub(crate) fn join(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// The errors of a part of the report, as a list (nothing when there are none).
pub(crate) fn push_errors(md: &mut String, errors: impl IntoIterator<Item = String>) {
    let mut errors = errors.into_iter().peekable();
    if errors.peek().is_none() {
        return;
    }
    let _ = writeln!(md, "\nErrors:\n");
    for e in errors {
        let _ = writeln!(md, "- `{}`", e.replace('`', "'"));
    }
}

/// A figure of the read suite: `**832 ms** (171–836)`, `> 15.0 s (killed)` or `—`.
pub(crate) fn fmt_fig(f: Fig) -> String {
    match f {
        Fig::None => "—".to_string(),
        Fig::Measured { min, med, max } => fmt_spread_ms(min, med, max),
        Fig::AtLeast(ms) => format!("> {} (killed)", fmt_ms(ms)),
    }
}

/// The heading and rule of a table: its first column, then per group of columns their heading
/// cells (each `" … |"`) and rule cells (`"---|"` or `"---:|"`).
pub(crate) fn table_head(
    first: &str,
    groups: impl IntoIterator<Item = (String, &'static str)>,
) -> String {
    let mut head = format!("| {first} |");
    let mut rule = String::from("|---|");
    for (cells, rules) in groups {
        head.push_str(&cells);
        rule.push_str(rules);
    }
    format!("{head}\n{rule}")
}
