//! What this process knows of a replica's files: the listing, each file's header and page
//! index (loaded once: LTX files are immutable), header timestamps, and the shared page cache
//! that whole-file loads fill. Versions at any target are planned from here.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::index::meta::{self, FileMeta};
use crate::index::plan::{extend_chain, restore_plan, PlanTarget};
use crate::index::version::Version;
use crate::read::cache::PageCache;
use crate::read::current::Current;
use crate::store::layout::{Layout, SNAPSHOT_LEVEL};
use crate::store::listing::{list_all, FileInfo, FileKey, Listing};
use crate::store::remote::Remote;
use crate::target::Target;

#[derive(Default)]
struct Known {
    files: BTreeMap<FileKey, FileInfo>,
    metas: HashMap<FileKey, Arc<FileMeta>>,
    header_ts: HashMap<FileKey, i64>,
}

/// The files of one replica and what was loaded of them.
pub(crate) struct Catalog {
    pub(crate) remote: Remote,
    pub(crate) layout: Layout,
    /// Page cache keyed by (file id, frame offset): never stale, since files are immutable.
    pub(crate) cache: PageCache,
    /// Fetch every file whole once and check its checksum before serving pages from it.
    verify: bool,
    next_id: AtomicU64,
    known: Mutex<Known>,
}

impl Catalog {
    /// A catalog of `files` (a listing), in `layout`, with an empty cache of `cache_size` bytes.
    pub(crate) fn new(
        remote: Remote,
        layout: Layout,
        files: &[FileInfo],
        cache_size: u64,
        verify: bool,
    ) -> Catalog {
        Catalog {
            remote,
            layout,
            cache: crate::read::cache::new(cache_size),
            verify,
            next_id: AtomicU64::new(1),
            known: Mutex::new(Known {
                files: files
                    .iter()
                    .map(|f| (FileKey::from(f), f.clone()))
                    .collect(),
                ..Known::default()
            }),
        }
    }

    /// One full listing, with the header timestamps already known.
    pub(crate) async fn list(&self) -> Result<Listing> {
        let ts = self.known.lock().header_ts.clone();
        list_all(&self.remote, &ts).await
    }

    /// Every file known.
    pub(crate) fn files(&self) -> Vec<FileInfo> {
        self.known.lock().files.values().cloned().collect()
    }

    /// Adds files found by a partial listing (the follower's level-0 LIST).
    pub(crate) fn insert(&self, new: &[FileInfo]) {
        let mut known = self.known.lock();
        for f in new {
            known.files.insert(FileKey::from(f), f.clone());
        }
    }

    /// Whether any file of `v` is missing from the last listing (deleted by retention).
    pub(crate) fn lacks_any_of(&self, v: &Version) -> bool {
        let known = self.known.lock();
        v.files().iter().any(|f| !known.files.contains_key(&f.key))
    }

    /// A new process-unique file id (the first half of page-cache keys).
    pub(crate) fn next_file_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The version at `target`, planned from a fresh listing.
    pub(crate) async fn build_at(&self, target: Target, current: &Current) -> Result<Version> {
        let listing = self.list().await?;
        let mut files = listing.files;
        self.replace(&files, current);
        let plan_target = match target {
            Target::Latest => PlanTarget::Latest,
            Target::Txid(t) => PlanTarget::Txid(t),
            Target::Time(t) => {
                let ms = t.as_millisecond();
                self.refine_timestamps(&mut files, ms).await?;
                PlanTarget::Time(ms)
            }
        };
        let plan = restore_plan(&files, plan_target)?;
        let metas = self.metas_for(&plan).await?;
        Version::build(&metas)
    }

    /// Listings give last-modified times, which for compacted files come later than the LTX
    /// header's timestamp. For files that could extend a time-bounded chain but were modified
    /// after the target, read the 100-byte header to learn the real time. No HEAD requests.
    async fn refine_timestamps(&self, files: &mut [FileInfo], ms: i64) -> Result<()> {
        for _ in 0..8 {
            let target = PlanTarget::Time(ms);
            let snapshot_max = files
                .iter()
                .filter(|f| f.level == SNAPSHOT_LEVEL && f.created_ms <= ms)
                .map(|f| f.max_txid)
                .max()
                .unwrap_or(0);
            let reached = extend_chain(files, snapshot_max, target)
                .last()
                .map_or(snapshot_max, |f| f.max_txid);
            let known = self.known.lock().header_ts.clone();
            let unknown: Vec<FileInfo> = files
                .iter()
                .filter(|f| f.created_ms > ms && !known.contains_key(&FileKey::from(*f)))
                .filter(|f| {
                    if f.level == SNAPSHOT_LEVEL {
                        f.max_txid > snapshot_max
                    } else {
                        f.min_txid <= reached + 1 && f.max_txid > reached
                    }
                })
                .cloned()
                .collect();
            if unknown.is_empty() {
                return Ok(());
            }
            let heads =
                futures::future::try_join_all(unknown.iter().map(|f| self.fetch_header(f))).await?;
            let mut cat = self.known.lock();
            for (f, h) in unknown.iter().zip(heads) {
                cat.header_ts.insert(FileKey::from(f), h.timestamp_ms);
            }
            for f in files.iter_mut() {
                if let Some(ts) = cat.header_ts.get(&FileKey::from(&*f)) {
                    f.created_ms = *ts;
                }
            }
        }
        Ok(())
    }

    /// The 100-byte header of `f` (one ranged GET; no HEAD request).
    async fn fetch_header(&self, f: &FileInfo) -> Result<ltx::Header> {
        let path = self
            .layout
            .file_key(&self.remote.root, f.level, f.min_txid, f.max_txid);
        let b = self
            .remote
            .get_range(&path, 0..ltx::HEADER_SIZE as u64)
            .await?;
        ltx::Header::decode(&b).map_err(|source| Error::Corrupt {
            key: path.to_string(),
            source,
        })
    }

    /// The header timestamp of `f`, from what is already known or from its header.
    pub(crate) async fn header_ts(&self, f: &FileInfo) -> Result<i64> {
        if let Some(ts) = self.known.lock().header_ts.get(&FileKey::from(f)) {
            return Ok(*ts);
        }
        let ts = self.fetch_header(f).await?.timestamp_ms;
        self.known.lock().header_ts.insert(FileKey::from(f), ts);
        Ok(ts)
    }

    /// Header and index of each file of `plan`, loading the missing ones in parallel.
    pub(crate) async fn metas_for(&self, plan: &[FileInfo]) -> Result<Vec<Arc<FileMeta>>> {
        let missing: Vec<&FileInfo> = {
            let cat = self.known.lock();
            plan.iter()
                .filter(|f| !cat.metas.contains_key(&FileKey::from(*f)))
                .collect()
        };
        // Verification holds each file in memory while it is checked: two at a time bounds that.
        let parallel = if self.verify { 2 } else { 64 };
        // Collected first: a closure inside the stream type trips the compiler's Send check.
        let loads: Vec<_> = missing
            .iter()
            .map(|f| {
                let path = self
                    .layout
                    .file_key(&self.remote.root, f.level, f.min_txid, f.max_txid);
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                meta::load(&self.remote, f, path, id, self.verify)
            })
            .collect();
        let loaded: Vec<meta::Loaded> = futures::stream::iter(loads)
            .buffered(parallel)
            .try_collect()
            .await?;
        let mut cat = self.known.lock();
        for l in loaded {
            for (offset, page) in l.pages {
                self.cache.insert((l.meta.id, offset), page);
            }
            cat.header_ts.insert(l.meta.key, l.meta.header.timestamp_ms);
            cat.metas.insert(l.meta.key, l.meta);
        }
        plan.iter()
            .map(|f| {
                cat.metas.get(&FileKey::from(f)).cloned().ok_or_else(|| {
                    Error::Inconsistent(format!(
                        "index of level {} file {:016x}-{:016x} vanished",
                        f.level, f.min_txid, f.max_txid
                    ))
                })
            })
            .collect()
    }

    /// The files of a fresh listing replace those known.
    pub(crate) fn replace(&self, files: &[FileInfo], current: &Current) {
        let mut cat = self.known.lock();
        cat.files = files
            .iter()
            .map(|f| (FileKey::from(f), f.clone()))
            .collect();
        // Forget indexes of deleted files, except those the current version still uses.
        let in_use: Vec<FileKey> = current.get().files().iter().map(|f| f.key).collect();
        let Known {
            files,
            metas,
            header_ts,
        } = &mut *cat;
        metas.retain(|k, _| files.contains_key(k) || in_use.contains(k));
        header_ts.retain(|k, _| files.contains_key(k));
    }

    /// A file this process uploaded: its index joins the catalog and its pages the cache, so
    /// reading it back costs no request.
    pub(crate) fn adopt_uploaded(&self, info: &FileInfo, loaded: &meta::Loaded) {
        for (offset, page) in &loaded.pages {
            self.cache.insert((loaded.meta.id, *offset), page.clone());
        }
        let mut cat = self.known.lock();
        cat.files.insert(FileKey::from(info), info.clone());
        cat.header_ts
            .insert(loaded.meta.key, loaded.meta.header.timestamp_ms);
        cat.metas.insert(loaded.meta.key, loaded.meta.clone());
    }

    /// The newest TXID the replica's files reach now (one full listing); 0 when it is empty.
    pub(crate) async fn newest_txid(&self) -> Result<u64> {
        let listing = list_all(&self.remote, &HashMap::new()).await?;
        if listing.files.is_empty() {
            return Ok(0);
        }
        let plan = restore_plan(&listing.files, PlanTarget::Latest)?;
        Ok(plan.last().map_or(0, |f| f.max_txid))
    }
}
