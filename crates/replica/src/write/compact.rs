//! Compaction, snapshots and retention of a replica, run by its writer.
//!
//! Same policy as Litestream 0.5.17 (`store.go`, `compactor.go`, `db.go`), so a replica this
//! writer maintains looks like one Litestream maintains and either can take over:
//! * level L (1..=8) merges the files of level L-1 that follow the newest file of level L into
//!   one file, every `levels[L-1]`;
//! * a snapshot (level 9, `1-<TXID>`) merges the latest restore plan into one file, every
//!   `snapshot_interval`, unless the newest snapshot is already at the latest TXID;
//! * retention deletes level-0 files already merged into level 1 once older than
//!   `l0_retention`, snapshots older than `snapshot_retention` (never the newest), and files of
//!   levels 1.. that end below the last deleted snapshot (never a level's newest file).
//!
//! On top of Litestream's rules, retention never deletes a file of the latest restore plan, and
//! compaction only steps over a gap in its source level when a snapshot covers the gap.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use object_store::path::Path;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::index::plan::{extend_chain, restore_plan, FileInfo, PlanTarget};
use crate::store::layout::{Layout, SNAPSHOT_LEVEL};
use crate::store::listing::list_all;
use crate::store::remote::Remote;
use crate::write::merge;

/// How often retention runs when nothing else triggers it: Litestream's
/// `DefaultL0RetentionCheckInterval` (store.go).
pub const RETENTION_CHECK_INTERVAL: Duration = Duration::from_secs(15);

/// When each step runs and what retention keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionOptions {
    /// Interval of level 1, level 2, ...: level L is compacted from level L-1 every
    /// `levels[L-1]`. At most 8 levels (level 9 holds snapshots).
    pub levels: Vec<Duration>,
    /// How often a snapshot is taken.
    pub snapshot_interval: Duration,
    /// How long snapshots are kept (the newest is always kept). Zero keeps only the newest.
    pub snapshot_retention: Duration,
    /// How long level-0 files survive after being compacted into level 1, so that readers
    /// following level 0 see them first. Zero disables their deletion (as in Litestream).
    pub l0_retention: Duration,
}

impl Default for CompactionOptions {
    /// Litestream 0.5.17's defaults: `DefaultCompactionLevels` in compaction_level.go (L1 30 s,
    /// L2 5 min, L3 1 h), `DefaultSnapshotInterval`, `DefaultSnapshotRetention` (24 h each)
    /// and `DefaultL0Retention` (5 min) in store.go.
    fn default() -> Self {
        CompactionOptions {
            levels: vec![
                Duration::from_secs(30),
                Duration::from_secs(5 * 60),
                Duration::from_secs(60 * 60),
            ],
            snapshot_interval: Duration::from_secs(24 * 60 * 60),
            snapshot_retention: Duration::from_secs(24 * 60 * 60),
            l0_retention: Duration::from_secs(5 * 60),
        }
    }
}

/// What one [`Compactor::run_due`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Files written (compactions, then the snapshot), in order.
    pub written: Vec<FileInfo>,
    /// Files deleted by retention.
    pub deleted: Vec<FileInfo>,
}

/// Compacts, snapshots and prunes one replica. Meant to be driven by its single writer.
#[derive(Debug)]
pub struct Compactor {
    remote: Remote,
    layout: Layout,
    opts: CompactionOptions,
    /// Next run of level L at index L-1; `None` until the first run.
    level_due: Vec<Option<Instant>>,
    snapshot_due: Option<Instant>,
    retention_due: Option<Instant>,
    /// Path prefix of spool files for large merges; `None` merges in memory.
    spool: Option<std::path::PathBuf>,
}

impl Compactor {
    /// A compactor writing `layout` keys under `remote`. Fails on options Litestream refuses:
    /// more than 8 levels, or a zero interval.
    pub fn new(remote: Remote, layout: Layout, opts: CompactionOptions) -> Result<Compactor> {
        if opts.levels.len() > usize::from(SNAPSHOT_LEVEL - 1) {
            return Err(Error::Config(format!(
                "{} compaction levels configured; at most {} are possible (level {SNAPSHOT_LEVEL} holds snapshots)",
                opts.levels.len(),
                SNAPSHOT_LEVEL - 1
            )));
        }
        if let Some(i) = opts.levels.iter().position(Duration::is_zero) {
            return Err(Error::Config(format!(
                "compaction level {} needs a non-zero interval",
                i + 1
            )));
        }
        if opts.snapshot_interval.is_zero() {
            return Err(Error::Config(
                "the snapshot interval must not be zero".into(),
            ));
        }
        Ok(Compactor {
            level_due: vec![None; opts.levels.len()],
            snapshot_due: None,
            retention_due: None,
            spool: None,
            remote,
            layout,
            opts,
        })
    }

    /// Lets merges whose inputs exceed a few tens of MiB go through spool files named
    /// `<prefix>.compact-…` on local disk, so that memory does not grow with the files.
    pub fn with_spool(mut self, prefix: std::path::PathBuf) -> Compactor {
        self.spool = Some(prefix);
        self
    }

    /// Runs every step that is due at `now`: configured levels from 1 up, then the snapshot,
    /// then retention (every [`RETENTION_CHECK_INTERVAL`], and after a level-1 compaction or
    /// a snapshot, as Litestream does). One LIST serves the whole run.
    ///
    /// The first run of a level or of the snapshot is skipped when the newest file at its
    /// destination is younger than its interval (a restarted writer does not redo what it
    /// just did; Litestream's `ErrCompactionTooEarly`). A step that fails stays due and its
    /// error is returned at once; the steps before it are done and logged.
    pub async fn run_due(&mut self, now: Instant) -> Result<CompactionReport> {
        let due = |t: Option<Instant>| t.is_none_or(|t| now >= t);
        let mut report = CompactionReport::default();
        let any = self.level_due.iter().any(|t| due(*t))
            || due(self.snapshot_due)
            || due(self.retention_due);
        if !any {
            return Ok(report);
        }
        let mut files = self.list().await?;
        let mut retention = due(self.retention_due);
        let now_ms = wall_ms();

        for i in 0..self.level_due.len() {
            if !due(self.level_due[i]) {
                continue;
            }
            let level = i as u8 + 1;
            let interval = self.opts.levels[i];
            if self.level_due[i].is_none() {
                if let Some(wait) = too_early(&files, level, interval, now_ms) {
                    self.level_due[i] = Some(now + wait);
                    continue;
                }
            }
            if let Some(f) = self.compact_level_in(&files, level).await? {
                // Litestream prunes level 0 right after each level-1 compaction.
                retention |= level == 1;
                files.push(as_listed(&f));
                report.written.push(f);
            }
            self.level_due[i] = Some(now + interval);
        }

        if due(self.snapshot_due) {
            let interval = self.opts.snapshot_interval;
            let wait = match self.snapshot_due {
                None => too_early(&files, SNAPSHOT_LEVEL, interval, now_ms),
                Some(_) => None,
            };
            if let Some(wait) = wait {
                self.snapshot_due = Some(now + wait);
            } else {
                if let Some(f) = self.snapshot_in(&files).await? {
                    files.push(as_listed(&f));
                    report.written.push(f);
                }
                retention = true;
                self.snapshot_due = Some(now + interval);
            }
        }

        if retention {
            report.deleted = self.retention_in(&files, wall_ms()).await?;
            self.retention_due = Some(now + RETENTION_CHECK_INTERVAL);
        }
        Ok(report)
    }

    /// Merges the level `level - 1` files that follow the newest file of `level` (1..=8) into
    /// one file at `level`. `None` when there is nothing new, or when the output key already
    /// exists (someone else wrote it; it is left as it is).
    pub async fn compact_level(&self, level: u8) -> Result<Option<FileInfo>> {
        if !(1..SNAPSHOT_LEVEL).contains(&level) {
            return Err(Error::Config(format!(
                "cannot compact into level {level}: compaction levels are 1..={}",
                SNAPSHOT_LEVEL - 1
            )));
        }
        let files = self.list().await?;
        self.compact_level_in(&files, level).await
    }

    /// Writes a snapshot (level 9, TXIDs `1..=latest`) merged from the latest restore plan.
    /// `None` when the newest snapshot is already at the latest TXID, the replica is empty,
    /// or the key already exists.
    pub async fn snapshot(&self) -> Result<Option<FileInfo>> {
        let files = self.list().await?;
        self.snapshot_in(&files).await
    }

    /// Deletes what retention allows (see the module documentation) and returns how many
    /// files went. Never a file of the latest restore plan, never the newest snapshot. Refuses
    /// (with the planner's error) to delete anything in a replica whose history is broken.
    pub async fn enforce_retention(&self) -> Result<usize> {
        let files = self.list().await?;
        Ok(self.retention_in(&files, wall_ms()).await?.len())
    }

    /// Every LTX file of the replica, in this compactor's layout.
    async fn list(&self) -> Result<Vec<FileInfo>> {
        let listing = list_all(&self.remote, &Default::default()).await?;
        match listing.layout {
            Some(l) if l != self.layout => Err(Error::Inconsistent(format!(
                "{} holds its newest files in the {l:?} key layout, not {:?} as this writer was configured",
                self.remote.display, self.layout
            ))),
            _ => Ok(listing.files),
        }
    }

    async fn compact_level_in(&self, files: &[FileInfo], level: u8) -> Result<Option<FileInfo>> {
        let span = tracing::info_span!("compact", level);
        async {
            let Some(chain) = source_chain(files, level) else {
                return Ok(None);
            };
            self.merge(level, &chain).await
        }
        .instrument(span)
        .await
    }

    async fn snapshot_in(&self, files: &[FileInfo]) -> Result<Option<FileInfo>> {
        let span = tracing::info_span!("snapshot");
        async {
            if files.is_empty() {
                return Ok(None);
            }
            let plan = restore_plan(files, PlanTarget::Latest)?;
            let latest = plan.last().map_or(0, |f| f.max_txid);
            let newest = files
                .iter()
                .filter(|f| f.level == SNAPSHOT_LEVEL)
                .map(|f| f.max_txid)
                .max()
                .unwrap_or(0);
            if newest >= latest {
                tracing::debug!(txid = latest, "newest snapshot is current");
                return Ok(None);
            }
            self.merge(SNAPSHOT_LEVEL, &plan).await
        }
        .instrument(span)
        .await
    }

    /// Merges `inputs` and uploads the result at `level` unless its key exists.
    async fn merge(&self, level: u8, inputs: &[FileInfo]) -> Result<Option<FileInfo>> {
        let (Some(first), Some(last)) = (inputs.first(), inputs.last()) else {
            return Ok(None);
        };
        let (min, max) = (first.min_txid, last.max_txid);
        let key = self.key(level, min, max);
        let keys: Vec<Path> = inputs
            .iter()
            .map(|f| self.key(f.level, f.min_txid, f.max_txid))
            .collect();
        let spool = self.spool.as_deref();
        let Some(out) = merge::merge(&self.remote, inputs, &keys, &key, spool).await? else {
            tracing::info!(%key, "output already exists; someone else wrote it, skipped");
            return Ok(None);
        };
        let size = out.size;
        let what = if level == SNAPSHOT_LEVEL {
            "snapshot written"
        } else {
            "compaction written"
        };
        tracing::info!(
            level,
            min = %format_args!("{min:016x}"),
            max = %format_args!("{max:016x}"),
            size,
            inputs = inputs.len(),
            commit = out.header.commit,
            "{what}"
        );
        Ok(Some(FileInfo {
            level,
            min_txid: min,
            max_txid: max,
            size,
            created_ms: out.header.timestamp_ms,
        }))
    }

    async fn retention_in(&self, files: &[FileInfo], now_ms: i64) -> Result<Vec<FileInfo>> {
        let span = tracing::info_span!("retention");
        async {
            let doomed = retention_candidates(files, &self.opts, now_ms)?;
            // Oldest first within each level, so an interrupted run never leaves a hole in
            // the middle of a level that readers follow.
            for (f, why) in &doomed {
                let key = self.key(f.level, f.min_txid, f.max_txid);
                self.remote.delete(&key).await?;
                tracing::info!(%key, reason = why, "deleted by retention");
            }
            Ok(doomed.into_iter().map(|(f, _)| f).collect())
        }
        .instrument(span)
        .await
    }

    fn key(&self, level: u8, min: u64, max: u64) -> Path {
        self.layout.file_key(&self.remote.root, level, min, max)
    }
}

/// The files of level `level - 1` to merge into `level`: a contiguous run that follows the
/// newest file of `level`. Like Litestream, which takes every source file from the
/// destination's max TXID + 1 on, it starts at the first source file past that point even if
/// files are missing in between, but only when a snapshot covers the missing TXIDs (retention
/// removed them); otherwise the missing files may still be on their way, and skipping them
/// would make the gap permanent.
fn source_chain(files: &[FileInfo], level: u8) -> Option<Vec<FileInfo>> {
    let src = level - 1;
    let cur = files
        .iter()
        .filter(|f| f.level == level)
        .map(|f| f.max_txid)
        .max()
        .unwrap_or(0);
    let sources: Vec<FileInfo> = files.iter().filter(|f| f.level == src).cloned().collect();
    let start = sources
        .iter()
        .filter(|f| f.max_txid > cur)
        .min_by_key(|f| f.min_txid)?;
    let mut from = cur;
    if start.min_txid > cur.saturating_add(1) {
        let snapshot = files
            .iter()
            .filter(|f| f.level == SNAPSHOT_LEVEL)
            .map(|f| f.max_txid)
            .max()
            .unwrap_or(0);
        if snapshot.saturating_add(1) < start.min_txid {
            tracing::warn!(
                level,
                after = %format_args!("{cur:016x}"),
                next = %format_args!("{:016x}", start.min_txid),
                "level {src} has no file continuing the level {level} files; waiting for the missing TXIDs"
            );
            return None;
        }
        from = start.min_txid - 1;
    }
    let chain = extend_chain(&sources, from, PlanTarget::Latest);
    (!chain.is_empty()).then_some(chain)
}

/// For a step's first run: how long to wait when the newest file at `level` is younger than
/// `interval` (by the listing's times).
fn too_early(files: &[FileInfo], level: u8, interval: Duration, now_ms: i64) -> Option<Duration> {
    let newest = files
        .iter()
        .filter(|f| f.level == level)
        .max_by_key(|f| f.max_txid)?;
    let age = u64::try_from(now_ms.saturating_sub(newest.created_ms)).unwrap_or(0);
    let age = Duration::from_millis(age);
    (age < interval).then(|| interval - age)
}

/// What retention deletes from `files` at `now_ms`, oldest first per level, with the rule
/// that removes each. Litestream 0.5.17's rules (`DB.EnforceSnapshotRetention`,
/// `Compactor.EnforceRetentionByTXID`, `DB.EnforceL0RetentionByTime`), minus any file of the
/// latest restore plan.
fn retention_candidates(
    files: &[FileInfo],
    opts: &CompactionOptions,
    now_ms: i64,
) -> Result<Vec<(FileInfo, &'static str)>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let keep: HashSet<(u8, u64, u64)> = restore_plan(files, PlanTarget::Latest)?
        .iter()
        .map(|f| (f.level, f.min_txid, f.max_txid))
        .collect();
    // Litestream walks each level in key order, which is TXID order.
    let level = |l: u8| {
        let mut v: Vec<&FileInfo> = files.iter().filter(|f| f.level == l).collect();
        v.sort_by_key(|f| (f.min_txid, f.max_txid));
        v
    };
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let mut out: Vec<(&FileInfo, &'static str)> = Vec::new();

    // Snapshots created before the cutoff go, except the newest. The floor for the levels
    // above 0 is the last deleted snapshot's TXID rather than the first kept one's, so a
    // restore that started from the deleted snapshot can still find its files (db.go).
    let snapshots = level(SNAPSHOT_LEVEL);
    let cutoff = now_ms.saturating_sub(ms(opts.snapshot_retention));
    let expired: Vec<bool> = (0..snapshots.len())
        .map(|i| snapshots[i].created_ms < cutoff && i + 1 < snapshots.len())
        .collect();
    let floor = match expired.iter().position(|e| !e) {
        Some(i) if i > 0 => snapshots[i - 1].max_txid,
        _ => 0,
    };
    out.extend(
        snapshots
            .iter()
            .zip(&expired)
            .filter(|(_, e)| **e)
            .map(|(f, _)| (*f, "snapshot retention")),
    );

    // Levels 1.. : files ending below the floor, but never a level's newest file.
    for l in 1..=opts.levels.len() as u8 {
        let files = level(l);
        let n = files.len();
        out.extend(
            files
                .iter()
                .enumerate()
                .filter(|(i, f)| f.max_txid < floor && i + 1 < n)
                .map(|(_, f)| (*f, "below the oldest retained snapshot")),
        );
    }

    // Level 0: files already in level 1 and older than the retention, stopping at the first
    // younger file so the level-0 files left stay contiguous for readers following them.
    let max_l1 = files
        .iter()
        .filter(|f| f.level == 1)
        .map(|f| f.max_txid)
        .max()
        .unwrap_or(0);
    if !opts.l0_retention.is_zero() && max_l1 > 0 {
        let cutoff = now_ms.saturating_sub(ms(opts.l0_retention));
        let l0 = level(0);
        let mut doomed: Vec<&FileInfo> = Vec::new();
        let mut all = true;
        for f in &l0 {
            if f.created_ms > cutoff {
                all = false;
                break;
            }
            if f.max_txid <= max_l1 {
                doomed.push(f);
            }
        }
        if all && doomed.last().copied() == l0.last().copied() {
            doomed.pop();
        }
        out.extend(doomed.into_iter().map(|f| (f, "compacted into level 1")));
    }

    let mut kept = 0;
    let doomed = out
        .into_iter()
        .filter(|(f, _)| {
            let needed = keep.contains(&(f.level, f.min_txid, f.max_txid));
            kept += usize::from(needed);
            !needed
        })
        .map(|(f, why)| (f.clone(), why))
        .collect();
    if kept > 0 {
        tracing::debug!(
            kept,
            "retention spared files the latest restore plan still uses"
        );
    }
    Ok(doomed)
}

/// `f` as the next LIST will show it: created when uploaded (now), not at its header's
/// timestamp, which is that of its newest input. Retention compares listing times.
fn as_listed(f: &FileInfo) -> FileInfo {
    FileInfo {
        created_ms: wall_ms(),
        ..f.clone()
    }
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(level: u8, min: u64, max: u64, created_ms: i64) -> FileInfo {
        FileInfo {
            level,
            min_txid: min,
            max_txid: max,
            size: 100,
            created_ms,
        }
    }

    fn ranges(v: &[(FileInfo, &str)]) -> Vec<(u8, u64, u64)> {
        v.iter()
            .map(|(f, _)| (f.level, f.min_txid, f.max_txid))
            .collect()
    }

    fn opts(l0_retention_ms: u64, snapshot_retention_ms: u64) -> CompactionOptions {
        CompactionOptions {
            l0_retention: Duration::from_millis(l0_retention_ms),
            snapshot_retention: Duration::from_millis(snapshot_retention_ms),
            ..CompactionOptions::default()
        }
    }

    /// Level-0 files `min..=max`, one TXID each, file `t` created at `t * 1000` ms.
    fn l0(min: u64, max: u64) -> Vec<FileInfo> {
        (min..=max).map(|t| f(0, t, t, t as i64 * 1000)).collect()
    }

    #[test]
    fn l0_files_go_once_in_level_1_and_old_enough_but_not_the_newest() {
        let mut files = l0(1, 6);
        files.push(f(1, 1, 6, 7_000));
        // All of 1..=6 are older than 1 s at 10 s; the newest level-0 file stays.
        let out = retention_candidates(&files, &opts(1_000, 3_600_000), 10_000).unwrap();
        assert_eq!(ranges(&out), (1..=5).map(|t| (0, t, t)).collect::<Vec<_>>());
        // Younger than the retention: kept. Zero retention: level 0 is never pruned.
        assert!(
            retention_candidates(&files, &opts(60_000, 3_600_000), 10_000)
                .unwrap()
                .is_empty()
        );
        assert!(retention_candidates(&files, &opts(0, 3_600_000), 10_000)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn l0_retention_stops_at_the_first_young_file_and_spares_uncompacted_ones() {
        let mut files = l0(1, 8);
        files[4].created_ms = 9_500; // TXID 5 is young; 6.. are old again.
        files.push(f(1, 1, 7, 9_000));
        let out = retention_candidates(&files, &opts(1_000, 3_600_000), 10_000).unwrap();
        // Deleting 6 and 7 would leave 5 stranded between gaps; 8 is not in level 1 yet.
        assert_eq!(ranges(&out), (1..=4).map(|t| (0, t, t)).collect::<Vec<_>>());
    }

    #[test]
    fn files_of_the_latest_restore_plan_are_never_deleted() {
        // Level 1 starts at 6: the plan is level-0 1..=5, then level 1 6-10. Litestream's
        // level-0 rule alone would delete 1..=9.
        let mut files = l0(1, 10);
        files.push(f(1, 6, 10, 11_000));
        let plan = restore_plan(&files, PlanTarget::Latest).unwrap();
        let out = retention_candidates(&files, &opts(1, 3_600_000), 100_000).unwrap();
        assert_eq!(ranges(&out), (6..=9).map(|t| (0, t, t)).collect::<Vec<_>>());
        assert!(out.iter().all(|(d, _)| !plan.contains(d)));
    }

    #[test]
    fn old_snapshots_go_and_take_older_level_files_with_them() {
        let files = vec![
            f(9, 1, 10, 1_000),
            f(9, 1, 20, 2_000),
            f(9, 1, 30, 50_000),
            f(1, 1, 5, 1),
            f(1, 6, 10, 1),
            f(1, 11, 15, 1),
            f(1, 16, 20, 1),
            f(1, 21, 25, 1),
            f(1, 26, 30, 1),
            f(2, 1, 20, 1),
            f(2, 21, 30, 1),
        ];
        let out = retention_candidates(&files, &opts(1, 10_000), 60_000).unwrap();
        // Floor = 20, the last deleted snapshot: level files ending below it go.
        assert_eq!(
            ranges(&out),
            vec![(9, 1, 10), (9, 1, 20), (1, 1, 5), (1, 6, 10), (1, 11, 15)]
        );
        // Everything expired: the newest snapshot stays, so the floor is still 20.
        let out = retention_candidates(&files, &opts(1, 0), 1_000_000).unwrap();
        assert_eq!(
            ranges(&out),
            vec![(9, 1, 10), (9, 1, 20), (1, 1, 5), (1, 6, 10), (1, 11, 15)]
        );
        // A level's newest file stays even below the floor.
        let files = vec![f(9, 1, 10, 1), f(9, 1, 30, 1), f(1, 1, 5, 1), f(1, 6, 8, 1)];
        let out = retention_candidates(&files, &opts(1, 0), 1_000_000).unwrap();
        assert_eq!(ranges(&out), vec![(9, 1, 10), (1, 1, 5)]);
        // Nothing expired: nothing at all goes.
        assert!(retention_candidates(&files, &opts(1, 10_000_000), 60_000)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_broken_history_deletes_nothing() {
        let mut files = l0(1, 3);
        files.extend(l0(5, 6));
        files.push(f(1, 1, 3, 1));
        let err = retention_candidates(&files, &opts(1, 1), 1_000_000).unwrap_err();
        assert!(matches!(err, Error::Inconsistent(_)), "{err}");
    }

    fn chain(files: &[FileInfo], level: u8) -> Option<Vec<(u8, u64, u64)>> {
        source_chain(files, level).map(|c| {
            c.iter()
                .map(|f| (f.level, f.min_txid, f.max_txid))
                .collect()
        })
    }

    #[test]
    fn a_level_takes_the_contiguous_files_after_its_newest() {
        let mut files = l0(1, 5);
        assert_eq!(chain(&files, 1), Some((1..=5).map(|t| (0, t, t)).collect()));
        files.push(f(1, 1, 3, 1));
        assert_eq!(chain(&files, 1), Some(vec![(0, 4, 4), (0, 5, 5)]));
        files.push(f(1, 4, 5, 1));
        assert_eq!(chain(&files, 1), None);
        // A later file past a gap waits for the gap to fill.
        files.extend(l0(7, 8));
        assert_eq!(chain(&files, 1), None);
        files.extend(l0(6, 6));
        assert_eq!(
            chain(&files, 1),
            Some(vec![(0, 6, 6), (0, 7, 7), (0, 8, 8)])
        );
        // Level 2 from level 1.
        assert_eq!(chain(&files, 2), Some(vec![(1, 1, 3), (1, 4, 5)]));
    }

    #[test]
    fn a_gap_in_the_source_level_is_stepped_over_only_below_a_snapshot() {
        // Level 1 files 1-10 and 11-20 were pruned below a snapshot; level 2 ends at 5.
        let mut files = vec![f(2, 1, 5, 1), f(1, 21, 25, 1), f(1, 26, 30, 1)];
        assert_eq!(chain(&files, 2), None);
        files.push(f(9, 1, 19, 1));
        assert_eq!(chain(&files, 2), None);
        files.push(f(9, 1, 20, 1));
        assert_eq!(chain(&files, 2), Some(vec![(1, 21, 25), (1, 26, 30)]));
    }

    #[test]
    fn first_runs_wait_out_the_interval_of_a_recent_file() {
        let files = vec![f(1, 1, 5, 10_000), f(1, 6, 7, 50_000)];
        let wait = too_early(&files, 1, Duration::from_secs(30), 60_000);
        assert_eq!(wait, Some(Duration::from_secs(20)));
        assert_eq!(too_early(&files, 1, Duration::from_secs(30), 90_000), None);
        assert_eq!(too_early(&files, 2, Duration::from_secs(30), 60_000), None);
    }

    #[test]
    fn options_litestream_refuses_are_refused() {
        let remote = || {
            let loc = crate::store::location::connect(
                &format!("file://{}", std::env::temp_dir().display()),
                &|_| None,
            )
            .unwrap();
            Remote::new(loc)
        };
        let with = |o: CompactionOptions| Compactor::new(remote(), Layout::Ltx, o).map(|_| ());
        assert!(with(CompactionOptions::default()).is_ok());
        let nine = CompactionOptions {
            levels: vec![Duration::from_secs(1); 9],
            ..CompactionOptions::default()
        };
        assert!(matches!(with(nine), Err(Error::Config(_))));
        let zero = CompactionOptions {
            levels: vec![Duration::from_secs(1), Duration::ZERO],
            ..CompactionOptions::default()
        };
        assert!(matches!(with(zero), Err(Error::Config(m)) if m.contains("level 2")));
        let no_snapshots = CompactionOptions {
            snapshot_interval: Duration::ZERO,
            ..CompactionOptions::default()
        };
        assert!(matches!(with(no_snapshots), Err(Error::Config(_))));
    }
}
