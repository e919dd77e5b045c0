//! Whole files between local disk and the bucket in bounded memory: an LTX file of several GB
//! is uploaded in parts and downloaded chunk by chunk, never held whole.
//!
//! A multipart upload cannot be made create-only through object_store (its completion always
//! overwrites), so a large file is assembled at a staging key and then copied to its real key
//! with a create-only copy, which keeps the single-writer fence: a hard link on local files,
//! UploadPartCopy plus a CompleteMultipartUpload with `If-None-Match: *` on S3 (see
//! `location.rs`), `x-goog-if-generation-match: 0` on GCS, `If-None-Match: *` on Azure.

use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStoreExt, PutMultipartOptions, WriteMultipart};
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::stats::Stats;
use crate::store::remote::Remote;

/// The directory (under the replica root) of multipart uploads waiting for their copy: outside
/// `ltx/` and the hex level directories, so neither our listings nor Go's `litestream` take
/// a staged object for an LTX file.
pub(crate) const STAGING_DIR: &str = ".staging";

/// Parts uploading at once. With the part being read, memory holds three parts.
const PARTS_IN_FLIGHT: usize = 2;

/// Downloaded bytes gathered before one write to the local file: writes go through the
/// blocking pool, and one hop per network chunk (often a few KiB) would cost more than the
/// write itself.
const WRITE_BATCH: usize = 1 << 20;

impl Remote {
    /// [`Remote::put_new`] of a complete local file: creates `key` with the file's bytes only if
    /// no object exists there; `Ok(false)` when it already exists (nothing was overwritten).
    /// Files up to [`Remote::single_put_max`] go in one PUT; larger ones through a multipart
    /// upload of [`Remote::part_size`] parts to a key under [`Remote::staging_prefix`], then a
    /// create-only copy to `key`, then a delete of the staging object.
    pub async fn put_new_file(&self, key: &Path, file: &std::path::Path) -> Result<bool> {
        let span = tracing::debug_span!("put_new_file", key = %key, file = %file.display());
        async {
            let (f, size) = open(file).await?;
            if size <= self.single_put_max {
                let (_, bytes) = read_part(f, size as usize, file).await?;
                let bytes = Bytes::from(bytes);
                return self.put_new(key, bytes).await;
            }
            let staging = self.staging_prefix().join(staging_name().as_str());
            self.upload_parts(&staging, f, file).await?;
            let created = self.copy_new(&staging, key).await;
            if let Err(e) = self.delete(&staging).await {
                // Harmless to readers (nothing lists the staging directory), but it costs
                // storage until a lifecycle rule or an operator removes it.
                tracing::warn!(key = %staging, error = %e, "staging object left behind");
            }
            created
        }
        .instrument(span)
        .await
    }

    /// Where [`Remote::put_new_file`] assembles large uploads.
    pub fn staging_prefix(&self) -> Path {
        self.root.clone().join(STAGING_DIR)
    }

    /// GETs the whole of `key` into `out`, from its current position, chunk by chunk: memory
    /// holds about [`WRITE_BATCH`] bytes, not the object. Returns the number of bytes written;
    /// `out`'s position ends after them.
    pub async fn get_to_file(&self, key: &Path, out: &mut File) -> Result<u64> {
        let span = tracing::debug_span!("get_to_file", key = %key);
        async {
            Stats::add(&self.stats.get_whole, 1);
            let start = Instant::now();
            let mut stream = self
                .bulk
                .get_opts(key, GetOptions::default())
                .await
                .map_err(|e| self.failed("get", key, start, e))?
                .into_stream();
            let local = || format!("(download of {key})");
            // A duplicate shares the file position with `out`, and can move to the blocking pool.
            let mut file = out.try_clone().map_err(|e| Error::Buffer {
                path: local(),
                detail: format!("cannot duplicate the file handle: {e}"),
            })?;
            let (mut batch, mut batched, mut total) = (Vec::new(), 0usize, 0u64);
            loop {
                let chunk = match stream.next().await {
                    Some(c) => c.map_err(|e| self.failed("get", key, start, e))?,
                    None => break,
                };
                Stats::add(&self.stats.bytes_read, chunk.len() as u64);
                total += chunk.len() as u64;
                batched += chunk.len();
                batch.push(chunk);
                if batched >= WRITE_BATCH {
                    file = write_all(file, std::mem::take(&mut batch), &local).await?;
                    batched = 0;
                }
            }
            if !batch.is_empty() {
                write_all(file, batch, &local).await?;
            }
            tracing::debug!(bytes = total, "downloaded");
            Ok(total)
        }
        .instrument(span)
        .await
    }

    /// Uploads the rest of `f` to `staging` in parts, at most [`PARTS_IN_FLIGHT`] at once,
    /// aborting the upload on any error.
    async fn upload_parts(&self, staging: &Path, f: File, path: &std::path::Path) -> Result<()> {
        let span =
            tracing::debug_span!("put_multipart", key = %staging, part_size = self.part_size);
        async {
            let start = Instant::now();
            Stats::add(&self.stats.put, 1);
            let upload = self
                .bulk
                .put_multipart_opts(staging, PutMultipartOptions::default())
                .await
                .map_err(|e| self.failed("put_multipart", staging, start, e))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, self.part_size.max(1));
            let mut f = f;
            let (mut parts, mut total) = (0u64, 0u64);
            loop {
                let part = match read_part(f, self.part_size.max(1), path).await {
                    Ok((back, p)) => {
                        f = back;
                        p
                    }
                    Err(e) => {
                        self.abort(w, staging).await;
                        return Err(e);
                    }
                };
                if part.is_empty() {
                    break;
                }
                // Reading the next part overlapped the uploads; now wait for a free slot.
                if let Err(e) = w.wait_for_capacity(PARTS_IN_FLIGHT).await {
                    self.abort(w, staging).await;
                    return Err(self.failed("put_part", staging, start, e));
                }
                parts += 1;
                total += part.len() as u64;
                tracing::debug!(part = parts, bytes = part.len(), "part");
                // A full part starts its upload at once; a short last part waits for `finish`.
                Stats::add(&self.stats.put, 1);
                w.put(Bytes::from(part));
            }
            // The completion; `finish` aborts the upload itself when it fails.
            Stats::add(&self.stats.put, 1);
            w.finish()
                .await
                .map_err(|e| self.failed("put_multipart", staging, start, e))?;
            Stats::add(&self.stats.bytes_written, total);
            tracing::debug!(parts, bytes = total, "staged");
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn abort(&self, w: WriteMultipart, staging: &Path) {
        Stats::add(&self.stats.delete, 1);
        if let Err(e) = w.abort().await {
            // S3 keeps the parts (and bills them) until a lifecycle rule removes them.
            tracing::warn!(key = %staging, error = %e, "could not abort the multipart upload");
        }
    }

    /// Copies `from` to `to` only if `to` does not exist: the fence of [`Remote::put_new`]
    /// for an object assembled elsewhere. Counted as one PUT (S3 sends three requests).
    async fn copy_new(&self, from: &Path, to: &Path) -> Result<bool> {
        let span = tracing::debug_span!("copy_new", from = %from, key = %to);
        let start = Instant::now();
        async {
            Stats::add(&self.stats.put, 1);
            match self.bulk.copy_if_not_exists(from, to).await {
                Ok(()) => Ok(true),
                Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                Err(e) => Err(self.failed("copy", to, start, e)),
            }
        }
        .instrument(span)
        .await
    }
}

/// A name no other upload uses: the staging object is written with overwrite semantics.
fn staging_name() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // RandomState is seeded from the OS once per process: two processes (or two hosts) that
    // agree on pid, time and sequence still draw different names.
    let mut a = std::collections::hash_map::RandomState::new().build_hasher();
    a.write_u128(nanos);
    a.write_u32(std::process::id());
    a.write_u64(seq);
    let mut b = std::collections::hash_map::RandomState::new().build_hasher();
    b.write_u64(a.finish());
    b.write_u64(seq);
    format!("{:016x}{:016x}.ltx", a.finish(), b.finish())
}

fn local_err(path: &std::path::Path, detail: String) -> Error {
    Error::Buffer {
        path: path.display().to_string(),
        detail,
    }
}

fn joined(e: tokio::task::JoinError) -> Error {
    Error::Internal(format!("local file I/O task failed: {e}"))
}

/// Opens `path` and reads its size, off the runtime's threads.
async fn open(path: &std::path::Path) -> Result<(File, u64)> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let f = File::open(&p).map_err(|e| local_err(&p, format!("cannot open: {e}")))?;
        let size = f
            .metadata()
            .map_err(|e| local_err(&p, format!("cannot stat: {e}")))?
            .len();
        Ok((f, size))
    })
    .await
    .map_err(joined)?
}

/// Reads up to `n` bytes (fewer only at the end of the file), handing the file back for the
/// next part.
async fn read_part(mut f: File, n: usize, path: &std::path::Path) -> Result<(File, Vec<u8>)> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut buf = Vec::with_capacity(n);
        (&mut f)
            .take(n as u64)
            .read_to_end(&mut buf)
            .map_err(|e| local_err(&p, format!("cannot read: {e}")))?;
        Ok((f, buf))
    })
    .await
    .map_err(joined)?
}

async fn write_all(
    mut f: File,
    batch: Vec<Bytes>,
    local: &(dyn Fn() -> String + Sync),
) -> Result<File> {
    let name = local();
    tokio::task::spawn_blocking(move || {
        for b in &batch {
            f.write_all(b).map_err(|e| {
                local_err(std::path::Path::new(&name), format!("cannot write: {e}"))
            })?;
        }
        Ok(f)
    })
    .await
    .map_err(joined)?
}
