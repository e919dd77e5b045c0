//! Builds replicas on disk with our own LTX encoder: deterministic content, any layout, any
//! history shape (gaps, corruption, compaction) on demand.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const PAGE_SIZE: u32 = 4096;

/// Waits for a condition a background task should bring about; `within` only guards against a
/// hang.
pub fn eventually(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The content of page `pgno` as written by transaction `txid`: incompressible, so file sizes
/// (and with them whole-file versus ranged reads) are predictable.
pub fn page(pgno: u32, txid: u64) -> Vec<u8> {
    let mut p = vec![0u8; PAGE_SIZE as usize];
    let mut x = (u64::from(pgno) << 32 | txid) ^ 0x9E37_79B9_7F4A_7C15;
    for b in p.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    p[..4].copy_from_slice(&pgno.to_be_bytes());
    p[4..12].copy_from_slice(&txid.to_be_bytes());
    p
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Hex,
    Ltx,
}

pub struct ReplicaDir {
    pub root: PathBuf,
    pub layout: Layout,
}

impl ReplicaDir {
    pub fn new(root: &Path, layout: Layout) -> ReplicaDir {
        std::fs::create_dir_all(root).unwrap();
        ReplicaDir {
            root: root.to_path_buf(),
            layout,
        }
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.root.display())
    }

    pub fn path(&self, level: u8, min: u64, max: u64) -> PathBuf {
        let dir = match self.layout {
            Layout::Hex => self.root.join(format!("{level:04x}")),
            Layout::Ltx => self.root.join("ltx").join(level.to_string()),
        };
        dir.join(ltx::format_filename(min, max))
    }

    /// Writes an LTX file holding `pages` (pgno, content txid) with database size `commit`.
    pub fn write(
        &self,
        level: u8,
        min: u64,
        max: u64,
        commit: u32,
        pages: &[(u32, u64)],
        ts_ms: i64,
    ) -> PathBuf {
        let header = ltx::Header::unchecksummed(PAGE_SIZE, commit, min, max, ts_ms);
        let mut enc = ltx::Encoder::new(header).unwrap();
        let mut sorted = pages.to_vec();
        sorted.sort();
        for (pgno, txid) in sorted {
            enc.add_page(pgno, &page(pgno, txid)).unwrap();
        }
        let bytes = enc.finish(0).unwrap();
        let path = self.path(level, min, max);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }

    /// A snapshot at `txid` of a database of `n` pages, all written by `content_txid`.
    pub fn snapshot(&self, level: u8, txid: u64, n: u32, content_txid: u64, ts_ms: i64) -> PathBuf {
        let pages: Vec<(u32, u64)> = (1..=n).map(|p| (p, content_txid)).collect();
        self.write(level, 1, txid, n, &pages, ts_ms)
    }
}
