//! A running `litestream replicate` daemon ([`Replicator`]) and the config it is given.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::cli::{litestream_command, max_txid, run_litestream, wait_for_ltx, LtxFileRow};
use super::target::{go_duration, yaml_str, ReplicaTarget};

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
    /// The database should already exist in WAL mode (see
    /// [`PrimaryDb::create`](crate::PrimaryDb::create)). Returns once the control socket
    /// answers, i.e. the daemon has parsed the config and opened the database; use
    /// [`Replicator::sync`] or [`wait_for_ltx`] to wait for uploads.
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
