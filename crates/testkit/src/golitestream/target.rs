//! Where a replica lives ([`ReplicaTarget`]): its URL, the environment and YAML config the Go
//! tools need to reach it, and where 0.5.17 lays out its LTX files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::azurite::{Azurite, ACCOUNT, ACCOUNT_KEY};
use crate::gcs::FakeGcs;
use crate::s3::{S3Server, ACCESS_KEY, REGION, SECRET_KEY};

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
    pub(super) fn cli_source(&self, dir: &Path) -> Result<Vec<String>> {
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

    /// Environment for a process using the Go VFS ([`go_vfs_so`](super::go_vfs_so)) on this
    /// replica: [`ReplicaTarget::env`] plus `LITESTREAM_REPLICA_URL` = [`ReplicaTarget::url`]
    /// (the Go VFS reads its replica from that variable). Apply
    /// [`sanitize_env`](super::sanitize_env) first.
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
    pub(super) fn yaml_replica(&self, sync_interval: Duration) -> String {
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
pub(super) fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Formats a duration for Go's `time.ParseDuration` (which accepts e.g. `1500ms`, `250us`).
pub(super) fn go_duration(d: Duration) -> String {
    if d.subsec_micros().is_multiple_of(1000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}us", d.as_micros())
    }
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
