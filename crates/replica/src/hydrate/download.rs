//! Downloading: the first build of the file from the live frames of a version, resuming a file
//! from an earlier run, and catching up with whole LTX files as the replica moves on.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::hydrate::file::{local_err, Hydrator, Sidecar};
use crate::hydrate::options::HydrationState;
use crate::index::loc::{coalesce, run_span, Run};
use crate::index::meta::FileMeta;
use crate::index::plan::{cheapest_chain, FileInfo};
use crate::index::version::Version;
use crate::read::core::Core;
use crate::supervise;

/// Frames closer than this are fetched in one range (the gap is downloaded and discarded).
const COALESCE_GAP: u64 = 64 * 1024;
/// Largest single ranged GET of the build.
const MAX_RANGE: u64 = 8 * 1024 * 1024;
/// Ranged GETs in flight during a build.
const PARALLEL_GETS: usize = 6;

pub(super) async fn run(weak: Weak<Core>, hyd: Arc<Hydrator>, interval: Duration) -> Result<()> {
    supervise::fault_point("hydrator", &hyd.url);
    let Some(r) = weak.upgrade() else {
        return Ok(());
    };
    let cur = r.current.get();
    let mut held = resume(&r, &hyd, &cur).await?;
    if held.is_none() {
        build(&r, &hyd, &cur).await?;
        held = Some(cur.txid());
    }
    let mut txid = held.unwrap_or_default();
    let notify = r.current.changed();
    let interval = interval.max(Duration::from_millis(100));
    drop(r);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = notify.notified() => {}
            _ = hyd.close_signal.notified() => {}
        }
        if hyd.closed.load(Relaxed) {
            return Ok(());
        }
        let Some(r) = weak.upgrade() else {
            return Ok(());
        };
        let cur = r.current.get();
        if cur.txid() <= txid {
            continue;
        }
        match catch_up(&r, &hyd, txid, &cur).await {
            Ok(()) => txid = cur.txid(),
            Err(e) => {
                tracing::info!(error = %e, from = txid, to = cur.txid(), "hydration cannot catch up with whole files; rebuilding");
                build(&r, &hyd, &cur).await?;
                txid = cur.txid();
            }
        }
    }
}

/// Validates an existing file against the replica. Returns the TXID it holds after catching
/// up, or `None` (after logging why) when it must be rebuilt.
async fn resume(r: &Arc<Core>, hyd: &Arc<Hydrator>, cur: &Version) -> Result<Option<u64>> {
    let Some(sc) = hyd.read_sidecar() else {
        return Ok(None);
    };
    let len = hyd.file()?.metadata().map(|m| m.len()).unwrap_or(0);
    let why = if sc.url != hyd.url {
        Some(format!("it was made from another replica ({})", sc.url))
    } else if sc.page_size != cur.page_size() {
        Some(format!(
            "its page size {} differs from the replica's {}",
            sc.page_size,
            cur.page_size()
        ))
    } else if len != u64::from(sc.commit) * u64::from(sc.page_size) {
        Some(format!(
            "its size {len} does not match the {} pages its sidecar records",
            sc.commit
        ))
    } else if sc.txid > cur.txid() {
        Some(format!(
            "the replica went backwards: the file holds TXID {:016x}, the replica ends at {:016x} (restored or replaced)",
            sc.txid,
            cur.txid()
        ))
    } else {
        None
    };
    let why = match why {
        Some(w) => Some(w),
        None if !same_history(r, &sc).await => Some(format!(
            "no file of the replica ends at TXID {:016x} with the time the file recorded; the replica was replaced",
            sc.txid
        )),
        None => None,
    };
    if let Some(why) = why {
        tracing::warn!(path = %hyd.path.display(), "rebuilding the hydration file: {why}");
        return Ok(None);
    }
    hyd.mark_ready(&sc);
    if sc.txid == cur.txid() {
        tracing::info!(path = %hyd.path.display(), txid = sc.txid, "hydration file is current");
        return Ok(Some(sc.txid));
    }
    match catch_up(r, hyd, sc.txid, cur).await {
        Ok(()) => {
            tracing::info!(path = %hyd.path.display(), from = sc.txid, to = cur.txid(), "hydration file resumed");
            Ok(Some(cur.txid()))
        }
        Err(e) => {
            tracing::warn!(path = %hyd.path.display(), error = %e, "rebuilding the hydration file: it cannot be brought forward from {:016x}", sc.txid);
            Ok(None)
        }
    }
}

/// The creation time of the file that ended `v`'s state (its last applied file).
fn state_ts(v: &Version) -> i64 {
    v.files().last().map_or(0, |f| f.header.timestamp_ms)
}

/// Whether the replica still holds the history the file was made from: a file ending at the
/// recorded TXID with the recorded creation time. Compaction copies the last input's time, so a
/// level-0 file deleted by retention is matched by the compacted file that replaced it.
async fn same_history(r: &Arc<Core>, sc: &Sidecar) -> bool {
    let candidates: Vec<FileInfo> = r
        .catalog
        .files()
        .into_iter()
        .filter(|f| f.max_txid == sc.txid)
        .collect();
    for f in &candidates {
        if let Ok(ts) = r.catalog.header_ts(f).await {
            if ts == sc.ts {
                return true;
            }
        }
    }
    false
}

/// Writes every page of `v` into the file, downloading only live frames.
async fn build(r: &Arc<Core>, hyd: &Arc<Hydrator>, v: &Version) -> Result<()> {
    let lock = hyd.lock.clone();
    let _w = tokio::task::spawn_blocking(move || lock.write_arc())
        .await
        .map_err(|e| Error::Inconsistent(format!("hydration task failed: {e}")))?;
    *hyd.state.lock() = HydrationState::Building;
    hyd.txid.store(0, Relaxed);
    hyd.clear_sidecar()?;
    let page_size = v.page_size();
    hyd.file()?
        .set_len(0)
        .map_err(|e| local_err(&hyd.path, "truncate", e))?;
    // Group live pages by the file holding them, in file order.
    let mut by_file: Vec<Run> = vec![Vec::new(); v.files().len()];
    for pgno in 1..=v.commit() {
        if let Some(loc) = v.raw_loc(pgno) {
            by_file[loc.file as usize].push((pgno, loc));
        }
    }
    let total: usize = by_file.iter().map(Vec::len).sum();
    hyd.total.store(total as u64, Relaxed);
    hyd.done.store(0, Relaxed);
    let mut jobs: Vec<(Arc<FileMeta>, Run)> = Vec::new();
    for (file_no, mut pages) in by_file.into_iter().enumerate() {
        pages.sort_by_key(|(_, l)| l.offset);
        let meta = &v.files()[file_no];
        jobs.extend(
            coalesce(pages, COALESCE_GAP, MAX_RANGE)
                .into_iter()
                .map(|run| (meta.clone(), run)),
        );
    }
    futures::stream::iter(jobs.into_iter().map(|(meta, run)| {
        let remote = r.catalog.remote.clone();
        let hyd = hyd.clone();
        async move {
            hyd.check_open()?;
            let span = run_span(&run);
            let base = span.start;
            let bytes = remote.get_range(&meta.path, span).await?;
            hyd.bytes.fetch_add(bytes.len() as u64, Relaxed);
            hyd.files.fetch_add(1, Relaxed);
            tokio::task::spawn_blocking(move || {
                let mut result = Ok(());
                meta.decode_run(&bytes, base, &run, page_size, |pgno, _, page| {
                    if result.is_ok() {
                        result = hyd.write_page(pgno, &page);
                        hyd.done.fetch_add(1, Relaxed);
                    }
                })?;
                result
            })
            .await
            .map_err(|e| Error::Inconsistent(format!("hydration task failed: {e}")))?
        }
    }))
    .buffer_unordered(PARALLEL_GETS)
    .try_collect::<Vec<()>>()
    .await?;
    hyd.finish_file(v.commit(), page_size)?;
    let sc = Sidecar {
        txid: v.txid(),
        ts: state_ts(v),
        page_size,
        commit: v.commit(),
        url: hyd.url.clone(),
    };
    hyd.write_sidecar(&sc)?;
    hyd.mark_ready(&sc);
    tracing::info!(path = %hyd.path.display(), txid = v.txid(), bytes = hyd.bytes.load(Relaxed), "hydration complete");
    Ok(())
}

/// Brings the file from `from` to exactly `cur` by applying whole LTX files (checksum-verified)
/// under the exclusive lock, so no read transaction sees a half-applied state.
async fn catch_up(r: &Arc<Core>, hyd: &Arc<Hydrator>, from: u64, cur: &Version) -> Result<()> {
    let files: Vec<FileInfo> = r.catalog.files();
    let Some(chain) = cheapest_chain(&files, from, cur.txid()) else {
        return Err(Error::TargetUnavailable(format!(
            "no chain of files leads from {from:016x} to {:016x}",
            cur.txid()
        )));
    };
    let metas = r.catalog.metas_for(&chain).await?;
    let decoded = futures::future::try_join_all(metas.iter().map(|m| {
        let remote = r.catalog.remote.clone();
        let hyd = hyd.clone();
        async move {
            let bytes = remote.get_whole(&m.path).await?;
            hyd.bytes.fetch_add(bytes.len() as u64, Relaxed);
            hyd.files.fetch_add(1, Relaxed);
            ltx::decode_file(&bytes).map_err(|source| Error::Corrupt {
                key: m.path.to_string(),
                source,
            })
        }
    }))
    .await?;
    let commit = metas.last().map_or(cur.commit(), |m| m.header.commit);
    let ts = metas
        .last()
        .map_or(state_ts(cur), |m| m.header.timestamp_ms);
    let page_size = cur.page_size();
    let lock = hyd.lock.clone();
    let hyd2 = hyd.clone();
    let txid = cur.txid();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let _w = lock.write_arc();
        hyd2.clear_sidecar()?;
        hyd2.txid.store(0, Relaxed);
        for file in decoded {
            for (pgno, page) in file.pages {
                if pgno <= commit {
                    hyd2.write_page(pgno, &page)?;
                }
            }
        }
        hyd2.finish_file(commit, page_size)?;
        let sc = Sidecar {
            txid,
            ts,
            page_size,
            commit,
            url: hyd2.url.clone(),
        };
        hyd2.write_sidecar(&sc)?;
        hyd2.mark_ready(&sc);
        Ok(())
    })
    .await
    .map_err(|e| Error::Inconsistent(format!("hydration task failed: {e}")))?
}
