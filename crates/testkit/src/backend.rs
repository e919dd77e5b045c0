//! Every kind of storage Litestream replicates to, behind one type, so that one set of tests
//! runs against each: local files, S3 ([`S3Server`]), GCS ([`FakeGcs`]) and Azure
//! ([`Azurite`]). [`Backend::start`] starts the server (or emulator) with a bucket named
//! `bucket`; [`Backend::target`] names a replica in it; [`Backend::through`] names the same
//! replica through a [`FaultProxy`] in front of the server, for our engine (the Go tools always
//! go straight to the server).

use std::net::SocketAddr;

use anyhow::Result;

use crate::azurite::Azurite;
use crate::fault::FaultProxy;
use crate::gcs::FakeGcs;
use crate::golitestream::ReplicaTarget;
use crate::s3::S3Server;

/// The kinds of storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A local directory.
    File,
    /// S3 (s3s-fs on 127.0.0.1).
    S3,
    /// Google Cloud Storage (fake-gcs-server behind its front).
    Gcs,
    /// Azure Blob Storage (Azurite).
    Azure,
}

enum Server {
    File,
    S3(S3Server),
    Gcs(FakeGcs),
    Azure(Azurite),
}

/// A running backend with a bucket (or container, or directory) named `bucket`.
pub struct Backend {
    server: Server,
    dir: tempfile::TempDir,
}

impl Backend {
    /// Starts a backend of `kind`.
    pub fn start(kind: Kind) -> Result<Backend> {
        let dir = tempfile::tempdir()?;
        let server = match kind {
            Kind::File => Server::File,
            Kind::S3 => {
                let root = dir.path().join("s3");
                std::fs::create_dir_all(&root)?;
                let s = S3Server::start(&root)?;
                s.create_bucket("bucket")?;
                Server::S3(s)
            }
            Kind::Gcs => {
                let g = FakeGcs::start()?;
                g.create_bucket("bucket")?;
                Server::Gcs(g)
            }
            Kind::Azure => {
                let a = Azurite::start()?;
                a.create_container("bucket")?;
                Server::Azure(a)
            }
        };
        Ok(Backend { server, dir })
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self.server {
            Server::File => Kind::File,
            Server::S3(_) => Kind::S3,
            Server::Gcs(_) => Kind::Gcs,
            Server::Azure(_) => Kind::Azure,
        }
    }

    /// A replica at `path` of the bucket.
    pub fn target(&self, path: &str) -> Result<ReplicaTarget> {
        Ok(match &self.server {
            Server::File => ReplicaTarget::file(&self.dir.path().join("files").join(path))?,
            Server::S3(s) => ReplicaTarget::s3(s, "bucket", path),
            Server::Gcs(g) => ReplicaTarget::gcs(g, "bucket", path),
            Server::Azure(a) => ReplicaTarget::abs(a, "bucket", path),
        })
    }

    /// The address of the server, for a [`FaultProxy`] in front of it (`None` for files).
    pub fn addr(&self) -> Option<SocketAddr> {
        match &self.server {
            Server::File => None,
            Server::S3(s) => Some(s.addr()),
            Server::Gcs(g) => Some(g.addr()),
            Server::Azure(a) => Some(a.addr()),
        }
    }

    /// `target` as reached through `proxy` (started in front of [`Backend::addr`]): give its
    /// URL to our engine, and the original target to the Go tools.
    pub fn through(&self, proxy: &FaultProxy, target: &ReplicaTarget) -> ReplicaTarget {
        let via = proxy.endpoint();
        let mut t = target.clone();
        match &mut t {
            ReplicaTarget::File { .. } => {}
            ReplicaTarget::S3 { endpoint, .. } | ReplicaTarget::Gcs { endpoint, .. } => {
                *endpoint = via
            }
            ReplicaTarget::Abs { endpoint, .. } => {
                // Azurite's endpoint carries the account in its path.
                let path = endpoint
                    .split_once("://")
                    .and_then(|(_, rest)| rest.split_once('/'))
                    .map(|(_, p)| p.to_string())
                    .unwrap_or_default();
                *endpoint = format!("{via}/{path}");
            }
        }
        t
    }

    /// The S3 server, for tests that read its request counters.
    pub fn s3(&self) -> Option<&S3Server> {
        match &self.server {
            Server::S3(s) => Some(s),
            _ => None,
        }
    }

    /// The GCS emulator, for what its front counted.
    pub fn gcs(&self) -> Option<&FakeGcs> {
        match &self.server {
            Server::Gcs(g) => Some(g),
            _ => None,
        }
    }

    /// Azurite, for its SAS tokens.
    pub fn azurite(&self) -> Option<&Azurite> {
        match &self.server {
            Server::Azure(a) => Some(a),
            _ => None,
        }
    }
}
