//! The scale suite's cached replicas: `<bench dir>/scale-v<VERSION>-<leaves>/replica/` in the
//! file:// layout of Litestream 0.5 (`ltx/9/0000000000000001-0000000000000001.ltx`, the
//! snapshot; `ltx/0/…` the live primary's commits), and `meta.json`, written last.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::pages::Layout;
use super::snapshot;

/// Bump when the pages or the layout change: the cache key.
pub const VERSION: u32 = 1;

/// What is known about a generated scale database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleMeta {
    /// [`VERSION`] that made it.
    pub version: u32,
    /// Rows of `t`, one per leaf (what `BENCH_SCALE_PAGES` asks for).
    pub leaves: u64,
    /// Pages of the database, interior pages and the lock page included.
    pub total_pages: u32,
    /// Bytes of the database file it stands for.
    pub db_bytes: u64,
    /// Bytes of the snapshot.
    pub ltx_bytes: u64,
    /// Seconds the snapshot took to write.
    pub gen_secs: f64,
}

/// A scale replica ready for the suite.
#[derive(Debug, Clone)]
pub struct ScaleDataset {
    /// The replica's directory (a `file://` URL's path).
    pub replica: PathBuf,
    /// Its layout.
    pub layout: Layout,
    /// What is known about it.
    pub meta: ScaleMeta,
    /// Whether this run generated it.
    pub generated_now: bool,
}

/// The replica of `leaves` rows under `bench_dir`, written unless cached.
pub fn ensure(bench_dir: &Path, leaves: u64) -> Result<ScaleDataset> {
    let layout = Layout::new(leaves)?;
    let dir = bench_dir.join(format!("scale-v{VERSION}-{leaves}"));
    let replica = dir.join("replica");
    let meta_path = dir.join("meta.json");
    if let Some(meta) = std::fs::read(&meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<ScaleMeta>(&b).ok())
        .filter(|m| m.version == VERSION && m.leaves == leaves)
    {
        eprintln!(
            "bench: scale replica of {leaves} rows cached in {}",
            dir.display()
        );
        return Ok(ScaleDataset {
            replica,
            layout,
            meta,
            generated_now: false,
        });
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    let snapshots = replica.join("ltx").join("9");
    std::fs::create_dir_all(&snapshots)?;
    eprintln!(
        "bench: writing the scale snapshot of {leaves} rows ({} pages, {:.1} GB as a file) in {}",
        layout.total_pages,
        layout.db_bytes() as f64 / 1e9,
        dir.display()
    );
    let t = Instant::now();
    let ltx_bytes = snapshot::write(
        &snapshots.join(ltx::format_filename(1, 1)),
        &layout,
        crate::config::unix_now() as i64 * 1000,
    )?;
    let meta = ScaleMeta {
        version: VERSION,
        leaves,
        total_pages: layout.total_pages,
        db_bytes: layout.db_bytes(),
        ltx_bytes,
        gen_secs: t.elapsed().as_secs_f64(),
    };
    std::fs::write(&meta_path, serde_json::to_string_pretty(&meta)?)?;
    eprintln!(
        "bench:   {:.0} MB snapshot in {:.0} s",
        meta.ltx_bytes as f64 / 1e6,
        meta.gen_secs
    );
    Ok(ScaleDataset {
        replica,
        layout,
        meta,
        generated_now: true,
    })
}
