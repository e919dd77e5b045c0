//! One-shot `litestream` commands on a replica: the sanitised command itself, the listing of
//! its LTX files (`litestream ltx`) and `litestream restore`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use super::locate::litestream_bin;
use super::process::{run_with_timeout, Output};
use super::target::ReplicaTarget;

/// Default timeout for one-shot commands (`ltx`, `restore`, `sync`).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Removes environment variables that change the Go tools' behaviour behind our back:
/// `AWS_*` (notably `AWS_CA_BUNDLE`, which makes 0.5.17's S3 client fail at start, and any
/// profile/endpoint/credential settings of the host) and `LITESTREAM_*` (e.g.
/// `LITESTREAM_S3_ENDPOINT`). Also disables the EC2 metadata probe, which otherwise adds
/// seconds when credentials are missing.
pub fn sanitize_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("AWS_") || k.starts_with("LITESTREAM_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
}

/// A `Command` for the `litestream` binary with a sanitised environment plus the variables
/// `target` needs (credentials for S3).
pub fn litestream_command(target: Option<&ReplicaTarget>) -> Result<Command> {
    let mut cmd = Command::new(litestream_bin()?);
    sanitize_env(&mut cmd);
    if let Some(t) = target {
        cmd.envs(t.env());
    }
    cmd.stdin(Stdio::null());
    Ok(cmd)
}

/// Runs a litestream command and fails with its output if it exits non-zero.
pub(super) fn run_litestream(target: &ReplicaTarget, args: &[String]) -> Result<Output> {
    let mut cmd = litestream_command(Some(target))?;
    cmd.args(args);
    let out = run_with_timeout(&mut cmd, COMMAND_TIMEOUT)?;
    if !out.status.success() {
        bail!(
            "`litestream {}` failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// LTX listing
// ---------------------------------------------------------------------------------------------

/// One LTX file of a replica, as listed by `litestream ltx -json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LtxFileRow {
    /// Compaction level (0–3 with the default levels; 9 = snapshot).
    pub level: u32,
    /// First TXID in the file.
    pub min_txid: u64,
    /// Last TXID in the file.
    pub max_txid: u64,
    /// Size in bytes.
    pub size: u64,
    /// Creation time, RFC 3339 truncated to whole seconds by the Go command (the LTX header
    /// and the S3 metadata carry milliseconds).
    pub timestamp: String,
}

#[derive(Deserialize)]
struct RawLtxRow {
    level: u32,
    min_txid: String,
    max_txid: String,
    size: u64,
    #[serde(default)]
    timestamp: String,
}

fn parse_txid(s: &str) -> Result<u64> {
    u64::from_str_radix(s, 16).with_context(|| format!("bad TXID {s:?}"))
}

/// Lists all LTX files of the replica at every level, via `litestream ltx -level all -json URL`.
pub fn ltx_files(target: &ReplicaTarget) -> Result<Vec<LtxFileRow>> {
    let dir = tempfile::tempdir()?;
    let mut args = vec![
        "ltx".to_string(),
        "-level".to_string(),
        "all".to_string(),
        "-json".to_string(),
    ];
    args.extend(target.cli_source(dir.path())?);
    let out = run_litestream(target, &args)?;
    // With a URL argument the command also logs at INFO to stdout; the JSON array starts at
    // the first line that is exactly `[` (or `[]`).
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text
        .find("\n[")
        .map(|i| i + 1)
        .or_else(|| text.starts_with('[').then_some(0))
        .ok_or_else(|| anyhow!("no JSON array in `litestream ltx` output:\n{text}"))?;
    let raw: Vec<RawLtxRow> = serde_json::from_str(text[start..].trim())
        .with_context(|| format!("parse `litestream ltx` JSON:\n{text}"))?;
    raw.into_iter()
        .map(|r| {
            Ok(LtxFileRow {
                level: r.level,
                min_txid: parse_txid(&r.min_txid)?,
                max_txid: parse_txid(&r.max_txid)?,
                size: r.size,
                timestamp: r.timestamp,
            })
        })
        .collect()
}

/// Polls [`ltx_files`] every 200 ms until `done` returns true for the listing, returning that
/// listing, or fails after `timeout` with the last listing.
pub fn wait_for_ltx(
    target: &ReplicaTarget,
    timeout: Duration,
    mut done: impl FnMut(&[LtxFileRow]) -> bool,
) -> Result<Vec<LtxFileRow>> {
    let deadline = Instant::now() + timeout;
    loop {
        let files = ltx_files(target)?;
        if done(&files) {
            return Ok(files);
        }
        if Instant::now() >= deadline {
            bail!(
                "replica {} not ready after {timeout:?}; files: {files:#?}",
                target.url()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Highest TXID present in a listing (0 if empty).
pub fn max_txid(files: &[LtxFileRow]) -> u64 {
    files.iter().map(|f| f.max_txid).max().unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Restore
// ---------------------------------------------------------------------------------------------

/// Options for [`restore`]. At most one of `txid` and `timestamp`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreOpts {
    /// Restore up to this TXID, inclusive (passed as 16 hex digits: 0.5.17 rejects decimal).
    pub txid: Option<u64>,
    /// Restore to this point in time, RFC 3339 (e.g. `2026-01-02T03:04:05.678Z`). Compared
    /// against the millisecond LTX timestamps.
    pub timestamp: Option<String>,
}

/// Restores the replica into a new database file `out` with
/// `litestream restore -o OUT [-txid X | -timestamp T] URL`. `out` must not exist.
///
/// S3 targets work with a plain URL: 0.5.17 reads `endpoint`, `region` and `force-path-style`
/// from the query string and the credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`.
pub fn restore(target: &ReplicaTarget, out: &Path, opts: &RestoreOpts) -> Result<()> {
    if opts.txid.is_some() && opts.timestamp.is_some() {
        bail!("restore: give a txid or a timestamp, not both");
    }
    let mut args = vec![
        "restore".to_string(),
        "-o".to_string(),
        out.display().to_string(),
    ];
    if let Some(txid) = opts.txid {
        args.push("-txid".to_string());
        args.push(format!("{txid:016x}"));
    }
    if let Some(ts) = &opts.timestamp {
        args.push("-timestamp".to_string());
        args.push(ts.clone());
    }
    let dir = tempfile::tempdir()?;
    args.extend(target.cli_source(dir.path())?);
    run_litestream(target, &args)?;
    if !out.is_file() {
        bail!(
            "litestream restore succeeded but wrote no file at {}",
            out.display()
        );
    }
    Ok(())
}
