//! Every request the engine sends to object storage goes through here: one place for tracing
//! spans, request counters and error classification.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
};
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::stats::Stats;
use crate::store::location::Location;

/// Default of [`Remote::single_put_max`].
pub const SINGLE_PUT_MAX: u64 = 64 << 20;

/// Default of [`Remote::part_size`]: above S3's 5 MiB minimum (also GCS's), and three parts
/// (two in flight, one being read) stay within the memory a single PUT may take.
pub const PART_SIZE: usize = 16 << 20;

/// A replica location plus its request counters.
#[derive(Clone, Debug)]
pub struct Remote {
    pub(super) store: Arc<dyn ObjectStore>,
    /// The store for bulk transfers (see [`Location::bulk`]).
    pub(super) bulk: Arc<dyn ObjectStore>,
    /// Prefix of the database's files.
    pub root: Path,
    /// URL for messages.
    pub display: String,
    /// Request counters.
    pub stats: Arc<Stats>,
    /// Largest file [`Remote::put_new_file`] sends in one PUT, read whole into memory; larger
    /// ones go through a multipart upload.
    pub single_put_max: u64,
    /// Part size of multipart uploads. Every part but the last must be at least 5 MiB on S3
    /// and GCS; Azure and local files take any size.
    pub part_size: usize,
}

impl Remote {
    /// Wraps a connected location.
    pub fn new(loc: Location) -> Remote {
        Remote {
            store: loc.store,
            bulk: loc.bulk,
            root: loc.root,
            display: loc.display,
            stats: Arc::default(),
            single_put_max: SINGLE_PUT_MAX,
            part_size: PART_SIZE,
        }
    }

    /// Lists every object below `prefix` whose key sorts after `offset` (S3 start-after).
    pub async fn list(&self, prefix: &Path, offset: Option<&Path>) -> Result<Vec<ObjectMeta>> {
        let span =
            tracing::debug_span!("list", prefix = %prefix, offset = ?offset.map(|o| o.as_ref()));
        let start = Instant::now();
        async {
            Stats::add(&self.stats.list, 1);
            let stream = match offset {
                Some(o) => self.store.list_with_offset(Some(prefix), o),
                None => self.store.list(Some(prefix)),
            };
            let mut out: Vec<ObjectMeta> = stream.try_collect().await.map_err(|e| {
                Stats::add(&self.stats.errors, 1);
                Error::from_store("list", prefix.as_ref(), start.elapsed(), e)
            })?;
            // Azurite ignores Azure's `startFrom`, and a server that ignores its start-after
            // would otherwise hand the poller files it has already applied.
            if let Some(o) = offset {
                out.retain(|m| m.location > *o);
            }
            // S3 pages listings by 1000 keys; count each page as the request it was.
            Stats::add(&self.stats.list, (out.len() / 1000) as u64);
            tracing::debug!(n = out.len(), "listed");
            Ok(out)
        }
        .instrument(span)
        .await
    }

    /// GETs bytes `range` of `key`.
    pub async fn get_range(&self, key: &Path, range: Range<u64>) -> Result<Bytes> {
        let span =
            tracing::debug_span!("get_range", key = %key, start = range.start, end = range.end);
        self.get(key, GetRange::Bounded(range))
            .instrument(span)
            .await
    }

    /// GETs the last `n` bytes of `key`, an object of `size` bytes (or all of it if it is
    /// shorter), as a bounded range: Azure Blob Storage has no suffix range ("the last N
    /// bytes"), and the size is known from the listing wherever the engine needs a tail.
    pub async fn get_tail(&self, key: &Path, size: u64, n: u64) -> Result<Bytes> {
        let span = tracing::debug_span!("get_tail", key = %key, size, n);
        self.get(key, GetRange::Bounded(size.saturating_sub(n)..size))
            .instrument(span)
            .await
    }

    /// The size of `key`, from a HEAD request: for the one place that needs an object's tail
    /// without a listing at hand.
    pub async fn size_of(&self, key: &Path) -> Result<u64> {
        let span = tracing::debug_span!("head", key = %key);
        let start = Instant::now();
        async {
            Stats::add(&self.stats.head, 1);
            let meta = self
                .store
                .head(key)
                .await
                .map_err(|e| self.failed("head", key, start, e))?;
            Ok(meta.size)
        }
        .instrument(span)
        .await
    }

    /// GETs a whole object.
    pub async fn get_whole(&self, key: &Path) -> Result<Bytes> {
        let span = tracing::debug_span!("get_whole", key = %key);
        Stats::add(&self.stats.get_whole, 1);
        self.fetch(key, GetOptions::default())
            .instrument(span)
            .await
    }

    /// PUTs `bytes` at `key` only if no object exists there (`If-None-Match: *` on S3 and
    /// Azure, `x-goog-if-generation-match: 0` on GCS, an atomic link on local files): the fence
    /// of a single writer. `Ok(false)` when the key already exists: someone else created it,
    /// and nothing was overwritten.
    pub async fn put_new(&self, key: &Path, bytes: Bytes) -> Result<bool> {
        let span = tracing::debug_span!("put_new", key = %key, bytes = bytes.len());
        let start = Instant::now();
        async {
            Stats::add(&self.stats.put, 1);
            let n = bytes.len() as u64;
            let opts = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            match self
                .store
                .put_opts(key, PutPayload::from(bytes), opts)
                .await
            {
                Ok(_) => {
                    Stats::add(&self.stats.bytes_written, n);
                    Ok(true)
                }
                Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                Err(e) => Err(self.failed("put", key, start, e)),
            }
        }
        .instrument(span)
        .await
    }

    /// Deletes `key`; a key already gone is not an error.
    pub async fn delete(&self, key: &Path) -> Result<()> {
        let span = tracing::debug_span!("delete", key = %key);
        let start = Instant::now();
        async {
            Stats::add(&self.stats.delete, 1);
            match self.store.delete(key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.failed("delete", key, start, e)),
            }
        }
        .instrument(span)
        .await
    }

    async fn get(&self, key: &Path, range: GetRange) -> Result<Bytes> {
        Stats::add(&self.stats.get_range, 1);
        self.fetch(
            key,
            GetOptions {
                range: Some(range),
                ..Default::default()
            },
        )
        .await
    }

    async fn fetch(&self, key: &Path, opts: GetOptions) -> Result<Bytes> {
        let start = Instant::now();
        let r = self.store.get_opts(key, opts).await;
        let bytes = match r {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        }
        .map_err(|e| self.failed("get", key, start, e))?;
        Stats::add(&self.stats.bytes_read, bytes.len() as u64);
        Ok(bytes)
    }

    pub(super) fn failed(
        &self,
        op: &'static str,
        key: &Path,
        start: Instant,
        e: object_store::Error,
    ) -> Error {
        Stats::add(&self.stats.errors, 1);
        let err = Error::from_store(op, key.as_ref(), start.elapsed(), e);
        tracing::warn!(key = %key, error = %err, "request failed");
        err
    }
}
