//! One compaction output: fetch the input files, merge them and upload the result unless its
//! key exists. Small inputs are fetched into memory; when they add up to more than
//! [`SPOOL_ABOVE`] and a spool location is given, inputs and output go through spool files on
//! local disk instead, so memory holds a few pages and the page indexes whatever their size.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;

use crate::error::{Error, Result};
use crate::index::meta::check_txids;
use crate::index::plan::FileInfo;
use crate::store::remote::Remote;
use crate::store::spool::{Spool, SPOOL_ABOVE};

/// Whole-file GETs in flight while gathering the inputs of one compaction in memory.
const FETCH_PARALLEL: usize = 4;

/// What a merge wrote: its header and size.
pub(crate) struct Merged {
    pub(crate) header: ltx::Header,
    pub(crate) size: u64,
}

enum Output {
    Memory(Vec<u8>),
    Spooled(Spool),
}

/// Merges `inputs` (stored at `keys`) into `key`. `Ok(None)` when `key` already exists:
/// someone else wrote it, and nothing was overwritten. `spool` is the path prefix of the spool
/// files, if large merges may use the local disk.
pub(crate) async fn merge(
    remote: &Remote,
    inputs: &[FileInfo],
    keys: &[Path],
    key: &Path,
    spool: Option<&std::path::Path>,
) -> Result<Option<Merged>> {
    let total: u64 = inputs.iter().map(|f| f.size).sum();
    let output = match spool.filter(|_| total > SPOOL_ABOVE) {
        Some(prefix) => merge_spooled(remote, inputs, keys, key, prefix).await?,
        None => merge_in_memory(remote, inputs, keys, key).await?,
    };
    let (header, output) = output;
    let (created, size) = match output {
        Output::Memory(bytes) => {
            let size = bytes.len() as u64;
            (remote.put_new(key, Bytes::from(bytes)).await?, size)
        }
        Output::Spooled(s) => {
            let size = s.source()?.size();
            (remote.put_new_file(key, s.path()).await?, size)
        }
    };
    Ok(created.then_some(Merged { header, size }))
}

async fn merge_in_memory(
    remote: &Remote,
    inputs: &[FileInfo],
    keys: &[Path],
    key: &Path,
) -> Result<(ltx::Header, Output)> {
    // Futures collected first, owning their key: a closure borrowing inside the stream
    // type trips the compiler's `Send` check when this runs on a spawned task.
    let fetches: Vec<_> = keys
        .iter()
        .map(|k| {
            let remote = remote.clone();
            let k = k.clone();
            async move { remote.get_whole(&k).await }
        })
        .collect();
    let bodies: Vec<Bytes> = futures::stream::iter(fetches)
        .buffered(FETCH_PARALLEL)
        .try_collect()
        .await?;
    let (inputs, keys, key) = (inputs.to_vec(), keys.to_vec(), key.clone());
    blocking(&key.clone(), move || {
        let sources: Vec<&[u8]> = bodies.iter().map(|b| &b[..]).collect();
        let (header, bytes) = merge_sources(&inputs, &keys, &key, sources, Vec::new())?;
        Ok((header, Output::Memory(bytes)))
    })
    .await
}

async fn merge_spooled(
    remote: &Remote,
    inputs: &[FileInfo],
    keys: &[Path],
    key: &Path,
    prefix: &std::path::Path,
) -> Result<(ltx::Header, Output)> {
    let path = |name: &str| {
        let mut p = prefix.as_os_str().to_owned();
        p.push(format!(".{name}"));
        PathBuf::from(p)
    };
    let mut spools = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        let mut s = Spool::create(path(&format!("compact-in-{i}")))?;
        remote.get_to_file(k, s.file_mut()).await?;
        spools.push(s);
    }
    let out = Spool::create(path("compact-out"))?;
    let (inputs, keys, key) = (inputs.to_vec(), keys.to_vec(), key.clone());
    blocking(&key.clone(), move || {
        let sources = spools
            .iter()
            .map(Spool::source)
            .collect::<Result<Vec<_>>>()?;
        let (header, _) = merge_sources(&inputs, &keys, &key, sources, out.writer())?;
        Ok((header, Output::Spooled(out)))
    })
    .await
}

/// Checks each input's header against its name, then merges the inputs into `out`.
fn merge_sources<S: ltx::FileSource, W: std::io::Write>(
    inputs: &[FileInfo],
    keys: &[Path],
    key: &Path,
    sources: Vec<S>,
    out: W,
) -> Result<(ltx::Header, W)> {
    check_headers(inputs, keys, &sources)?;
    ltx::compact_into(sources, ltx::HEADER_FLAG_NO_CHECKSUM, out)
        .map_err(|e| compaction_error(e, keys, key))
}

/// Decompressing and recompressing every page is CPU work: off the I/O threads.
async fn blocking<T: Send + 'static>(
    key: &Path,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Only a runtime shutting down cancels a blocking task.
            Err(e) => Error::Unavailable {
                op: "compact",
                key: key.to_string(),
                elapsed: Duration::ZERO,
                detail: e.to_string(),
            },
        })?
}

/// Each input's header must cover the TXIDs its name says.
fn check_headers<S: ltx::FileSource>(
    inputs: &[FileInfo],
    keys: &[Path],
    sources: &[S],
) -> Result<()> {
    let mut buf = Vec::new();
    for ((f, k), s) in inputs.iter().zip(keys).zip(sources) {
        let corrupt = |source| Error::Corrupt {
            key: k.to_string(),
            source,
        };
        let head = s
            .bytes(0, s.size().min(ltx::HEADER_SIZE as u64) as usize, &mut buf)
            .map_err(corrupt)?;
        let header = ltx::Header::decode(head).map_err(corrupt)?;
        check_txids(k, f, &header)?;
    }
    Ok(())
}

/// Maps an `ltx::compact` error to the engine's: a bad input is `Corrupt` at its key, any
/// other problem is an inconsistency of the inputs as a whole.
fn compaction_error(e: ltx::Error, keys: &[Path], out: &Path) -> Error {
    let key = |i: usize| keys.get(i).map_or_else(String::new, ToString::to_string);
    match e {
        ltx::Error::CompactInput { input, source } => Error::Corrupt {
            key: key(input),
            source: *source,
        },
        ltx::Error::NonContiguous { input, .. }
        | ltx::Error::CompactPageSize { input, .. }
        | ltx::Error::CompactTruncatedPage { input, .. }
        | ltx::Error::CompactChecksumUntracked { input } => Error::Inconsistent(format!(
            "cannot write {out}: {e} (input {input} is {})",
            key(input)
        )),
        other => Error::Inconsistent(format!(
            "cannot write {out} from {} files: {other}",
            keys.len()
        )),
    }
}
