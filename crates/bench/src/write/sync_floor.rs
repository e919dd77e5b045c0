//! This machine's floor for a crash-safe commit: one 4 KiB `pwrite` into a preallocated file
//! plus `fdatasync`, the least a commit that survives a power cut must wait for. Measured
//! between the runs, on the disk they write to, so that the report can split a
//! `synchronous=FULL` commit into the sync and the rest from its own figures: the sync's cost
//! differs several-fold between machines (and over time on a shared one).

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

/// Syncs timed per measurement: about half a second on a disk that syncs in 400 µs.
const SYNCS: usize = 1000;
/// The region rewritten: 1 MiB, allocated and synced before timing, as the write buffer keeps
/// zeros ahead of its end.
const REGION: usize = 1 << 20;
const PAGE: usize = 4096;

/// Median µs of a 4 KiB `pwrite` + `fdatasync` over a preallocated file in `dir`.
pub fn measure(dir: &Path) -> Result<f64> {
    let path = dir.join("sync-floor.probe");
    let file =
        std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
    file.write_all_at(&vec![0u8; REGION], 0)?;
    file.sync_all()?;
    let page = [0x5au8; PAGE];
    let mut us = Vec::with_capacity(SYNCS);
    for i in 0..SYNCS {
        let t = Instant::now();
        file.write_all_at(&page, ((i * PAGE) % REGION) as u64)?;
        file.sync_data()?;
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    drop(file);
    std::fs::remove_file(&path)?;
    us.sort_by(f64::total_cmp);
    us.get(SYNCS / 2).copied().context("no sync timed")
}
