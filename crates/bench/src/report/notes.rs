//! Why a read target is not met, told from the run's own figures.

use std::fmt::Write as _;

use super::aggregate::{median, ratio, Agg, Fig};
use super::format::{fmt_ms, fmt_ratio};
use crate::driver::Results;
use crate::gen::DatasetId;
use crate::spec::{Metric, Target};

/// Where the time of our load + open + first query goes, from the run's own figures.
pub(super) fn open_note(agg: &Agg, size: DatasetId, lat: u64) -> Option<String> {
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
pub(super) fn layout_note(
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
pub(super) fn spread_note(agg: &Agg, size: DatasetId, metric: Metric, max: f64) -> Option<String> {
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
