//! An S3-compatible HTTP server for tests and benchmarks.
//!
//! [`S3Server`] embeds `s3s-fs` 0.14.1 (objects stored as plain files under a root directory, one
//! directory per bucket) behind a small hyper layer that
//!
//! * sets `TCP_NODELAY` on every accepted socket: without it each small response stalls ~40 ms
//!   (Nagle's algorithm meeting the client's delayed ACK), which would swamp any latency figure;
//! * counts requests by kind and body bytes in both directions ([`RequestStats`]);
//! * optionally sleeps before every S3 response, to mimic the round-trip time of real S3;
//! * answers `GET /__stats` (JSON of [`RequestStats`]), `POST /__stats/reset` and
//!   `POST /__latency?ms=N` before authentication, so an external process (a benchmark driving
//!   the `s3-server` binary) can read the counters and tune the latency.
//!
//! Requests must be signed (SigV4) with [`ACCESS_KEY`] / [`SECRET_KEY`]; the region is
//! [`REGION`]. Only path-style addressing is supported (`http://127.0.0.1:PORT/bucket/key`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::sync::watch;

mod body;
mod control;
mod stats;

use body::{CountingBody, Direction, ResponseBody};
use control::control_endpoint;
pub use control::{remote_reset_stats, remote_set_latency, remote_stats};
pub use stats::RequestStats;
use stats::{classify, Kind, State};

/// Access key id accepted by the test server.
pub const ACCESS_KEY: &str = "testkit-access-key";
/// Secret access key accepted by the test server.
pub const SECRET_KEY: &str = "testkit-secret-key";
/// Region the test server pretends to be in (SigV4 scope).
pub const REGION: &str = "us-east-1";

/// Serves one request: a control endpoint, or S3 through s3s-fs, counted and delayed.
async fn handle(
    state: Arc<State>,
    service: S3Service,
    req: Request<Incoming>,
) -> std::result::Result<Response<ResponseBody>, s3s::HttpError> {
    if let Some(resp) = control_endpoint(&state, &req) {
        return Ok(resp);
    }

    let kind = classify(
        req.method(),
        req.uri().path(),
        req.uri().query(),
        req.headers().contains_key(hyper::header::RANGE),
    );
    state.count(kind);

    let counted_in = {
        let state = Arc::clone(&state);
        req.map(move |body| {
            s3s::Body::http_body_unsync(CountingBody::new(body, state, Direction::In))
        })
    };
    // s3s-fs checks `If-None-Match: *` and then writes, two steps; S3 decides atomically. So
    // conditional writes (a PUT, or the CompleteMultipartUpload of a create-only copy, a
    // `POST ?uploadId`) run one at a time.
    let completes = counted_in.method() == hyper::Method::POST
        && counted_in
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p.starts_with("uploadId=")));
    let conditional = (kind == Kind::Put || completes)
        && counted_in
            .headers()
            .contains_key(hyper::header::IF_NONE_MATCH);
    let resp = if conditional {
        let _one = state.create_lock.lock().await;
        service.call(counted_in).await?
    } else {
        service.call(counted_in).await?
    };
    if kind == Kind::Put {
        if resp.status().is_success() {
            state.put_ok.fetch_add(1, Ordering::Relaxed);
        } else if resp.status() == StatusCode::PRECONDITION_FAILED {
            state
                .put_precondition_failed
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    let latency = state.latency_us.load(Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_micros(latency)).await;
    }
    Ok(resp.map(|body| CountingBody::new(body, Arc::clone(&state), Direction::Out)))
}

/// A running S3 server on `127.0.0.1`. Dropping it stops the server and joins its thread.
pub struct S3Server {
    addr: SocketAddr,
    root: PathBuf,
    state: Arc<State>,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for S3Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Server")
            .field("addr", &self.addr)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl S3Server {
    /// Starts a server on a random free port of 127.0.0.1, storing objects under `root`
    /// (which must exist; bucket `b` is the directory `root/b`).
    pub fn start(root: &Path) -> Result<S3Server> {
        Self::start_on(root, 0)
    }

    /// Like [`S3Server::start`] but on a given port (0 = pick a free one).
    pub fn start_on(root: &Path, port: u16) -> Result<S3Server> {
        let root = root
            .canonicalize()
            .with_context(|| format!("S3 root directory {} does not exist", root.display()))?;
        let fs = s3s_fs::FileSystem::new(&root)
            .map_err(|e| anyhow!("s3s-fs init on {}: {e:?}", root.display()))?;
        let service = {
            let mut builder = S3ServiceBuilder::new(fs);
            builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            builder.build()
        };

        // Bind synchronously so that the port is known (and listening) when `start` returns.
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .with_context(|| format!("bind 127.0.0.1:{port}"))?;
        listener
            .set_nonblocking(true)
            .context("set listener non-blocking")?;
        let addr = listener.local_addr().context("listener local_addr")?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("testkit-s3")
            .enable_all()
            .build()
            .context("build tokio runtime for S3 server")?;

        let state = Arc::new(State::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let thread = {
            let state = Arc::clone(&state);
            std::thread::Builder::new()
                .name(format!("testkit-s3-{}", addr.port()))
                .spawn(move || {
                    runtime.block_on(accept_loop(listener, service, state, shutdown_rx));
                    // Connections still open are tasks of this runtime: dropping them closes
                    // the sockets. Do not wait for idle keep-alive clients.
                    runtime.shutdown_timeout(Duration::from_millis(100));
                })
                .context("spawn S3 server thread")?
        };

        Ok(S3Server {
            addr,
            root,
            state,
            shutdown,
            thread: Some(thread),
        })
    }

    /// Base URL of the server, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The (canonical) root directory holding the buckets.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates bucket `name` by creating its directory (s3s-fs maps buckets to directories).
    /// Succeeds if it already exists. Returns the bucket directory.
    pub fn create_bucket(&self, name: &str) -> Result<PathBuf> {
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("create bucket directory {}", dir.display()))?;
        Ok(dir)
    }

    /// Path of the file that stores `key` in `bucket`.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    /// Current counters.
    pub fn stats(&self) -> RequestStats {
        self.state.snapshot()
    }

    /// Zeroes the counters (the latency setting is kept).
    pub fn reset_stats(&self) {
        self.state.reset();
    }

    /// Adds `latency` before every S3 response (not the control endpoints). Zero disables it.
    pub fn set_latency(&self, latency: Duration) {
        self.state.set_latency(latency);
    }

    /// Blocks until the server thread exits, which only happens on drop; for the binary.
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    service: S3Service,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("testkit S3 server: cannot register listener: {e}");
            return;
        }
    };
    loop {
        let accepted = tokio::select! {
            res = listener.accept() => res,
            _ = shutdown.changed() => return,
        };
        let (socket, _) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // Transient (EMFILE, ECONNABORTED): back off briefly instead of spinning.
                eprintln!("testkit S3 server: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Without TCP_NODELAY every small response waits ~40 ms for the client's delayed ACK.
        if let Err(e) = socket.set_nodelay(true) {
            eprintln!("testkit S3 server: set_nodelay failed: {e}");
        }
        let service = service.clone();
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                handle(Arc::clone(&state), service.clone(), req)
            });
            // Errors here are client disconnects and malformed requests: nothing to do.
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(socket), svc)
                .await;
        });
    }
}
