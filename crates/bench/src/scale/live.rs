//! The live primary of the scale suite: level-0 LTX files appended to the replica, each one
//! commit changing page 1 (its change counter, as a rollback-journal primary writes it), row 1
//! (whose `body` names the commit, so that a reader can tell how far it has followed) and
//! [`RANDOM_ROWS`] rows anywhere in the table. TXIDs follow the snapshot's without a gap;
//! like Litestream 0.5, the files track no database checksum, only their own.
//!
//! Appended by the generator rather than by a real database replicated beside it: the cost
//! under test is applying a small file to the page map of a *large* database, so the commits
//! must change the large database itself.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ltx::{Encoder, Header};

use super::pages::{Layout, PAGE_SIZE};
use crate::spec::Rng;

/// Rows changed by each commit besides row 1.
pub const RANDOM_ROWS: usize = 2;
/// Commits per second while following.
pub const COMMITS_PER_SEC: u64 = 10;

/// The primary's state after its last commit.
pub struct Live {
    layout: Layout,
    level0: PathBuf,
    txid: u64,
    /// Version of each row changed so far (0 = page 1's change counter).
    versions: HashMap<u64, u64>,
    rng: Rng,
}

impl Live {
    /// A primary at the snapshot (TXID 1) of the replica in `replica_dir`, whose level-0
    /// files it removes: every run follows the same commits.
    pub fn start(layout: Layout, replica_dir: &Path) -> Result<Live> {
        let level0 = replica_dir.join("ltx").join("0");
        if level0.exists() {
            std::fs::remove_dir_all(&level0).with_context(|| format!("remove {level0:?}"))?;
        }
        std::fs::create_dir_all(&level0)?;
        Ok(Live {
            layout,
            level0,
            txid: 1,
            versions: HashMap::new(),
            rng: Rng::new(0x5ca1e),
        })
    }

    /// Commits written so far.
    pub fn commits(&self) -> u64 {
        self.txid - 1
    }

    /// Writes the next commit's level-0 file.
    pub fn commit(&mut self) -> Result<()> {
        let k = self.txid; // the commit's number, from 1
        let mut rows = vec![1u64];
        while rows.len() < 1 + RANDOM_ROWS {
            let id = 2 + self.rng.below(self.layout.leaves - 1);
            if !rows.contains(&id) {
                rows.push(id);
            }
        }
        let mut changed: Vec<(u32, Option<u64>)> = rows
            .iter()
            .map(|&id| (self.layout.leaf_pgno(id), Some(id)))
            .collect();
        changed.push((1, None));
        changed.sort_unstable();

        let txid = self.txid + 1;
        let header = Header::unchecksummed(
            PAGE_SIZE as u32,
            self.layout.total_pages,
            txid,
            txid,
            now_ms(),
        );
        let mut enc = Encoder::new(header)?;
        let mut page = [0u8; PAGE_SIZE];
        for &(pgno, id) in &changed {
            self.versions.insert(id.unwrap_or(0), k);
            self.layout.page(pgno, |r| self.version(r), &mut page);
            enc.add_page(pgno, &page)?;
        }
        let bytes = enc.finish(0)?;
        self.txid = txid;
        let name = ltx::format_filename(txid, txid);
        // Renamed into place: a reader listing the directory never sees half a file.
        let tmp = self.level0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, self.level0.join(name))?;
        Ok(())
    }

    fn version(&self, id: u64) -> u64 {
        self.versions.get(&id).copied().unwrap_or(0)
    }
}

/// Commits at [`COMMITS_PER_SEC`] on a thread once `ready` exists, until stopped.
pub struct Follow {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<u64>>,
}

impl Follow {
    /// Starts the thread: it waits for the file `ready` (the reader has opened), then commits.
    pub fn start(mut live: Live, ready: PathBuf) -> Follow {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || -> Result<u64> {
            while !ready.exists() {
                if flag.load(Ordering::Relaxed) {
                    return Ok(live.commits());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let t0 = Instant::now();
            let period = Duration::from_millis(1000 / COMMITS_PER_SEC);
            while !flag.load(Ordering::Relaxed) {
                live.commit()?;
                // On a schedule, not after a fixed pause: a slow commit does not lower the rate.
                let next = period * live.commits() as u32;
                if let Some(wait) = next.checked_sub(t0.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            Ok(live.commits())
        });
        Follow { stop, thread }
    }

    /// Stops committing; returns the commits written.
    pub fn stop(self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the live primary's thread panicked"))?
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
