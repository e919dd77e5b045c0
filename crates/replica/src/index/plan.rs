//! Restore plans: which LTX files, in which order, rebuild the database at a target.
//!
//! Same semantics as Litestream's `CalcRestorePlan`, so that we serve exactly what
//! `litestream restore` would produce: the newest snapshot (level 9) at or before the target,
//! then, repeatedly, the file across levels 8..0 that continues the chain (`min <= cur + 1`,
//! `max > cur`) and reaches furthest (ties: smaller min, higher level, older). A file that
//! starts after `cur + 1` while nothing bridges to it is a gap, and gaps are errors: serving the
//! state before the gap would be silently stale data.

use crate::error::{Error, Result};
use crate::store::layout::SNAPSHOT_LEVEL;
pub use crate::store::listing::FileInfo;

/// The state to rebuild.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanTarget {
    /// The newest state the files allow.
    Latest,
    /// Exactly this transaction.
    Txid(u64),
    /// The newest state whose files were all created at or before this time (ms since epoch).
    Time(i64),
}

impl PlanTarget {
    fn admits(&self, f: &FileInfo) -> bool {
        match *self {
            PlanTarget::Latest => true,
            PlanTarget::Txid(txid) => f.max_txid <= txid,
            PlanTarget::Time(ms) => f.created_ms <= ms,
        }
    }
}

/// Computes the files to apply, in order, to rebuild the database at `target`.
pub fn restore_plan(files: &[FileInfo], target: PlanTarget) -> Result<Vec<FileInfo>> {
    let snapshot = files
        .iter()
        .filter(|f| f.level == SNAPSHOT_LEVEL && target.admits(f))
        .max_by(|a, b| {
            a.max_txid
                .cmp(&b.max_txid)
                .then(b.created_ms.cmp(&a.created_ms))
        });
    let mut plan: Vec<FileInfo> = snapshot.into_iter().cloned().collect();
    let start = plan.last().map_or(0, |f| f.max_txid);
    plan.extend(extend_chain(files, start, target));
    let reached = plan.last().map_or(0, |f| f.max_txid);

    if plan.is_empty() {
        return Err(match target {
            PlanTarget::Latest => Error::Inconsistent(format!(
                "no snapshot and no file starting at TXID 1 among {} files",
                files.len()
            )),
            PlanTarget::Txid(txid) => Error::TargetUnavailable(format!(
                "transaction {txid:016x} is not available: no snapshot at or before it"
            )),
            PlanTarget::Time(ms) => Error::TargetUnavailable(format!(
                "no backup files available at or before {}",
                format_ms(ms)
            )),
        });
    }
    if plan[0].min_txid != 1 {
        return Err(Error::Inconsistent(format!(
            "the oldest file of the plan starts at TXID {:016x}, not at 1: the history before it is missing",
            plan[0].min_txid
        )));
    }
    match target {
        PlanTarget::Txid(txid) if reached != txid => {
            return Err(Error::TargetUnavailable(format!(
                "transaction {txid:016x} is not available: the files reach {reached:016x} at most without passing it (it may have been compacted away)"
            )));
        }
        _ => {}
    }
    if let Some(gap) = first_gap(files, reached, target) {
        return Err(Error::Inconsistent(format!(
            "TXID gap: the chain of files stops at {reached:016x} but level {} has a file starting at {:016x} ({:016x}-{:016x}); the files in between are missing",
            gap.level, gap.min_txid, gap.min_txid, gap.max_txid
        )));
    }
    Ok(plan)
}

/// Whether `f` (levels 0..=8) can follow a chain that ends at `cur`: it starts at or before the
/// next TXID and takes the state past `cur`.
fn continues(f: &FileInfo, cur: u64) -> bool {
    f.level < SNAPSHOT_LEVEL && f.min_txid <= cur.saturating_add(1) && f.max_txid > cur
}

/// Greedily extends a chain that currently ends at `cur` with files of levels 0..=8.
pub fn extend_chain(files: &[FileInfo], mut cur: u64, target: PlanTarget) -> Vec<FileInfo> {
    let mut out = Vec::new();
    loop {
        let next = files
            .iter()
            .filter(|f| continues(f, cur) && target.admits(f))
            .max_by(|a, b| {
                a.max_txid
                    .cmp(&b.max_txid)
                    .then(b.min_txid.cmp(&a.min_txid))
                    .then(a.level.cmp(&b.level))
                    .then(b.created_ms.cmp(&a.created_ms))
            });
        match next {
            Some(f) => {
                cur = f.max_txid;
                out.push(f.clone());
            }
            None => return out,
        }
    }
}

/// The chain from the state at `from` to exactly `to` whose files add up to the fewest bytes,
/// for callers that download whole files. `extend_chain` reaches furthest per step, which picks
/// a compaction spanning `1..=to` (the whole database) over the one small file after `from`.
/// Every file moves the chain forward, so one pass over the reachable TXIDs in ascending order
/// settles each of them for good.
pub fn cheapest_chain(files: &[FileInfo], from: u64, to: u64) -> Option<Vec<FileInfo>> {
    use std::collections::BTreeMap;
    // TXID reached -> (bytes to get there, file used to get there, TXID it continued).
    let mut best: BTreeMap<u64, (u64, Option<usize>, u64)> = BTreeMap::new();
    best.insert(from, (0, None, from));
    let mut cur = Some(from);
    while let Some(at) = cur {
        let cost = best[&at].0;
        for (i, f) in files.iter().enumerate() {
            if !continues(f, at) || f.max_txid > to {
                continue;
            }
            let c = cost.saturating_add(f.size);
            let e = best.entry(f.max_txid).or_insert((u64::MAX, None, at));
            if c < e.0 {
                *e = (c, Some(i), at);
            }
        }
        cur = best.range(at + 1..).next().map(|(k, _)| *k);
    }
    let mut out = Vec::new();
    let mut at = to;
    while at != from {
        let (_, file, prev) = *best.get(&at)?;
        out.push(files[file?].clone());
        at = prev;
    }
    out.reverse();
    Some(out)
}

/// A file admitted by `target` that lies wholly beyond the chain's end `reached`: evidence of
/// missing files.
pub fn first_gap(files: &[FileInfo], reached: u64, target: PlanTarget) -> Option<&FileInfo> {
    files
        .iter()
        .filter(|f| f.level < SNAPSHOT_LEVEL && f.max_txid > reached && target.admits(f))
        .min_by_key(|f| f.min_txid)
}

/// RFC 3339 text of a millisecond timestamp, for messages.
pub fn format_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{ms} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(level: u8, min: u64, max: u64, created: i64) -> FileInfo {
        FileInfo {
            level,
            min_txid: min,
            max_txid: max,
            size: 100,
            created_ms: created,
        }
    }

    fn ranges(plan: &[FileInfo]) -> Vec<(u8, u64, u64)> {
        plan.iter()
            .map(|f| (f.level, f.min_txid, f.max_txid))
            .collect()
    }

    #[test]
    fn snapshot_then_furthest_reaching_chain() {
        let files = vec![
            f(9, 1, 10, 10),
            f(0, 11, 11, 11),
            f(0, 12, 12, 12),
            f(1, 11, 12, 13),
            f(0, 13, 13, 14),
            f(2, 1, 12, 15),
        ];
        let plan = restore_plan(&files, PlanTarget::Latest).unwrap();
        // L1 11-12 and L2 1-12 both reach 12; the tie goes to the smaller min, L2.
        assert_eq!(ranges(&plan), vec![(9, 1, 10), (2, 1, 12), (0, 13, 13)]);
    }

    #[test]
    fn without_snapshot_starts_from_txid_one() {
        let files = vec![f(0, 1, 1, 1), f(0, 2, 2, 2), f(1, 1, 2, 3), f(0, 3, 3, 4)];
        let plan = restore_plan(&files, PlanTarget::Latest).unwrap();
        assert_eq!(ranges(&plan), vec![(1, 1, 2), (0, 3, 3)]);
    }

    #[test]
    fn cheapest_chain_prefers_few_bytes_over_reach() {
        let sized = |level, min, max, size| FileInfo {
            size,
            ..f(level, min, max, 0)
        };
        let files = vec![
            sized(2, 1, 5, 5_000_000),
            sized(1, 1, 7, 5_100_000),
            sized(0, 5, 5, 900),
            sized(0, 6, 6, 700),
            sized(0, 7, 7, 800),
            sized(1, 6, 7, 1_200),
            sized(0, 8, 8, 100),
        ];
        let chain = cheapest_chain(&files, 5, 7).unwrap();
        assert_eq!(ranges(&chain), vec![(1, 6, 7)]);
        let chain = cheapest_chain(&files, 4, 7).unwrap();
        assert_eq!(ranges(&chain), vec![(0, 5, 5), (1, 6, 7)]);
        assert_eq!(cheapest_chain(&files, 5, 5).unwrap(), vec![]);
        // Nothing ends at 9, and a file past `to` is never used.
        assert_eq!(cheapest_chain(&files, 5, 9), None);
        assert_eq!(
            ranges(&cheapest_chain(&files, 7, 8).unwrap()),
            vec![(0, 8, 8)]
        );
    }

    #[test]
    fn gaps_are_errors() {
        let files = vec![f(9, 1, 10, 1), f(0, 11, 11, 2), f(0, 13, 13, 3)];
        let err = restore_plan(&files, PlanTarget::Latest).unwrap_err();
        assert!(
            matches!(err, Error::Inconsistent(ref m) if m.contains("gap")),
            "{err}"
        );
        // A history that does not start at 1 is also an error.
        let files = vec![f(0, 5, 5, 1)];
        assert!(restore_plan(&files, PlanTarget::Latest).is_err());
    }

    #[test]
    fn txid_target_must_be_reached_exactly() {
        let files = vec![
            f(9, 1, 10, 1),
            f(0, 11, 11, 2),
            f(0, 12, 12, 3),
            f(1, 11, 20, 4),
        ];
        let plan = restore_plan(&files, PlanTarget::Txid(12)).unwrap();
        assert_eq!(ranges(&plan), vec![(9, 1, 10), (0, 11, 11), (0, 12, 12)]);
        let plan = restore_plan(&files, PlanTarget::Txid(20)).unwrap();
        assert_eq!(ranges(&plan), vec![(9, 1, 10), (1, 11, 20)]);
        assert!(matches!(
            restore_plan(&files, PlanTarget::Txid(15)),
            Err(Error::TargetUnavailable(_))
        ));
    }

    #[test]
    fn time_target_uses_files_created_until_then() {
        let files = vec![
            f(9, 1, 10, 100),
            f(0, 11, 11, 200),
            f(0, 12, 12, 300),
            f(9, 1, 12, 400),
        ];
        assert_eq!(
            ranges(&restore_plan(&files, PlanTarget::Time(250)).unwrap()),
            vec![(9, 1, 10), (0, 11, 11)]
        );
        assert_eq!(
            ranges(&restore_plan(&files, PlanTarget::Time(1000)).unwrap()),
            vec![(9, 1, 12)]
        );
        assert!(matches!(
            restore_plan(&files, PlanTarget::Time(50)),
            Err(Error::TargetUnavailable(_))
        ));
    }
}
