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
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Access key id accepted by the test server.
pub const ACCESS_KEY: &str = "testkit-access-key";
/// Secret access key accepted by the test server.
pub const SECRET_KEY: &str = "testkit-secret-key";
/// Region the test server pretends to be in (SigV4 scope).
pub const REGION: &str = "us-east-1";

/// Snapshot of the server's request counters.
///
/// Counted per HTTP request that reached the S3 layer (the `/__stats` and `/__latency` control
/// endpoints are not counted), whatever its response status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestStats {
    /// Object GETs without a `Range` header.
    pub get: u64,
    /// Object GETs with a `Range` header.
    pub get_range: u64,
    /// HEAD requests (objects and buckets).
    pub head: u64,
    /// Bucket listings: GET on a bucket with `list-type` or no sub-resource query.
    pub list: u64,
    /// Object PUTs, including multipart `UploadPart` and server-side copies.
    pub put: u64,
    /// Object PUTs that succeeded (2xx). With no deletions, more of these than objects in the
    /// bucket would mean an object was overwritten.
    #[serde(default)]
    pub put_ok: u64,
    /// Conditional PUTs refused because the object exists (412).
    #[serde(default)]
    pub put_precondition_failed: u64,
    /// Object deletions: `DELETE` on an object and batch `POST ?delete` (DeleteObjects).
    pub delete: u64,
    /// Everything else (bucket creation, multipart create/complete, ListBuckets, ...).
    pub other: u64,
    /// Response body bytes sent (not counting headers).
    pub bytes_out: u64,
    /// Request body bytes received, as on the wire (includes aws-chunked framing if used).
    pub bytes_in: u64,
    /// Currently configured artificial latency per response, in microseconds. Not a counter:
    /// reported so an external process can confirm its setting; reset leaves it unchanged.
    pub latency_us: u64,
}

impl RequestStats {
    /// Total number of counted requests of all kinds.
    pub fn total(&self) -> u64 {
        self.get + self.get_range + self.head + self.list + self.put + self.delete + self.other
    }

    /// All GETs of object data (ranged or not).
    pub fn gets(&self) -> u64 {
        self.get + self.get_range
    }
}

/// The kind of an S3 request, as counted in [`RequestStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Get,
    GetRange,
    Head,
    List,
    Put,
    Delete,
    Other,
}

/// Shared mutable state of a running server: counters and the latency setting.
#[derive(Default)]
struct State {
    get: AtomicU64,
    get_range: AtomicU64,
    head: AtomicU64,
    list: AtomicU64,
    put: AtomicU64,
    put_ok: AtomicU64,
    put_precondition_failed: AtomicU64,
    delete: AtomicU64,
    other: AtomicU64,
    /// Conditional creates run one at a time: s3s-fs checks existence, then writes, which two
    /// concurrent requests could both pass. Real S3 decides `If-None-Match: *` atomically.
    create_lock: tokio::sync::Mutex<()>,
    bytes_out: AtomicU64,
    bytes_in: AtomicU64,
    latency_us: AtomicU64,
}

impl State {
    fn count(&self, kind: Kind) {
        let counter = match kind {
            Kind::Get => &self.get,
            Kind::GetRange => &self.get_range,
            Kind::Head => &self.head,
            Kind::List => &self.list,
            Kind::Put => &self.put,
            Kind::Delete => &self.delete,
            Kind::Other => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> RequestStats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RequestStats {
            get: r(&self.get),
            get_range: r(&self.get_range),
            head: r(&self.head),
            list: r(&self.list),
            put: r(&self.put),
            put_ok: r(&self.put_ok),
            put_precondition_failed: r(&self.put_precondition_failed),
            delete: r(&self.delete),
            other: r(&self.other),
            bytes_out: r(&self.bytes_out),
            bytes_in: r(&self.bytes_in),
            latency_us: r(&self.latency_us),
        }
    }

    fn reset(&self) {
        for c in [
            &self.get,
            &self.get_range,
            &self.head,
            &self.list,
            &self.put,
            &self.put_ok,
            &self.put_precondition_failed,
            &self.delete,
            &self.other,
            &self.bytes_out,
            &self.bytes_in,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    fn set_latency(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.store(us, Ordering::Relaxed);
    }
}

/// Classifies a request for the counters. Path-style only: `/bucket` is a bucket, `/bucket/key`
/// an object.
fn classify(method: &Method, path: &str, query: Option<&str>, has_range: bool) -> Kind {
    let trimmed = path.trim_start_matches('/');
    let (bucket, key) = match trimmed.split_once('/') {
        Some((b, k)) => (b, k),
        None => (trimmed, ""),
    };
    let has_param = |name: &str| {
        query
            .map(|q| {
                q.split('&')
                    .any(|kv| kv.split_once('=').map_or(kv, |(k, _)| k) == name)
            })
            .unwrap_or(false)
    };
    let is_object = !bucket.is_empty() && !key.is_empty();
    let is_bucket = !bucket.is_empty() && key.is_empty();

    match *method {
        Method::HEAD => Kind::Head,
        Method::GET if is_object && has_range => Kind::GetRange,
        Method::GET if is_object => Kind::Get,
        // A plain `GET /bucket` is ListObjects v1; `?list-type=2` is v2. Other bucket GETs
        // (`?location`, `?versioning`, ...) carry a different sub-resource and are "other".
        Method::GET if is_bucket && (has_param("list-type") || no_subresource(query)) => Kind::List,
        Method::PUT if is_object => Kind::Put,
        Method::DELETE if is_object => Kind::Delete,
        Method::POST if is_bucket && has_param("delete") => Kind::Delete,
        _ => Kind::Other,
    }
}

/// True if the query only carries listing parameters (prefix, delimiter, ...), i.e. no
/// sub-resource such as `location` or `uploads`.
fn no_subresource(query: Option<&str>) -> bool {
    const LIST_PARAMS: &[&str] = &[
        "prefix",
        "delimiter",
        "marker",
        "max-keys",
        "encoding-type",
        "continuation-token",
        "start-after",
        "fetch-owner",
        "x-id",
    ];
    query.is_none_or(|q| {
        q.split('&')
            .filter(|kv| !kv.is_empty())
            .all(|kv| LIST_PARAMS.contains(&kv.split_once('=').map_or(kv, |(k, _)| k)))
    })
}

/// Which byte counter a [`CountingBody`] feeds.
#[derive(Debug, Clone, Copy)]
enum Direction {
    /// Request bodies: `bytes_in`.
    In,
    /// Response bodies: `bytes_out`.
    Out,
}

/// An HTTP body wrapper adding the size of every data frame to a byte counter.
struct CountingBody<B> {
    inner: B,
    counter: Option<(Arc<State>, Direction)>,
}

impl<B> CountingBody<B> {
    fn new(inner: B, state: Arc<State>, direction: Direction) -> Self {
        Self {
            inner,
            counter: Some((state, direction)),
        }
    }

    fn uncounted(inner: B) -> Self {
        Self {
            inner,
            counter: None,
        }
    }
}

impl<B> HttpBody for CountingBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let (Poll::Ready(Some(Ok(frame))), Some((state, direction))) = (&polled, &self.counter) {
            if let Some(data) = frame.data_ref() {
                let counter = match direction {
                    Direction::In => &state.bytes_in,
                    Direction::Out => &state.bytes_out,
                };
                counter.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // Forwarded so s3s still sees the exact Content-Length of uploads.
        self.inner.size_hint()
    }
}

type ResponseBody = CountingBody<s3s::Body>;

fn json_response(status: StatusCode, body: String) -> Response<ResponseBody> {
    let mut resp = Response::new(CountingBody::uncounted(s3s::Body::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Answers the unauthenticated control endpoints, or `None` for ordinary S3 requests.
fn control_endpoint(state: &State, req: &Request<Incoming>) -> Option<Response<ResponseBody>> {
    let path = req.uri().path();
    let method = req.method();
    let stats_json = |state: &State| {
        serde_json::to_string(&state.snapshot())
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    };
    if path == "/__stats" && *method == Method::GET {
        return Some(json_response(StatusCode::OK, stats_json(state)));
    }
    if path == "/__stats/reset" && *method == Method::POST {
        state.reset();
        return Some(json_response(StatusCode::OK, stats_json(state)));
    }
    if path == "/__latency" && *method == Method::POST {
        let ms = req.uri().query().and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("ms="))
                .and_then(|v| v.parse::<u64>().ok())
        });
        return Some(match ms {
            Some(ms) => {
                state.set_latency(Duration::from_millis(ms));
                json_response(StatusCode::OK, stats_json(state))
            }
            None => json_response(
                StatusCode::BAD_REQUEST,
                "{\"error\":\"expected ?ms=N\"}".to_string(),
            ),
        });
    }
    None
}

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
    let conditional = kind == Kind::Put
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

/// Sends a bodyless request to a control endpoint of a server (possibly in another process)
/// and returns the response body.
fn control_request(endpoint: &str, method: &str, path_and_query: &str) -> Result<String> {
    let reply = crate::http::request(endpoint, method, path_and_query, &[], &[])?;
    if reply.status != 200 {
        bail!(
            "{method} {path_and_query}: HTTP {}: {}",
            reply.status,
            reply.text()
        );
    }
    Ok(reply.text())
}

/// Reads the counters of the server at `endpoint` (`GET /__stats`), e.g. an `s3-server`
/// process started by a benchmark.
pub fn remote_stats(endpoint: &str) -> Result<RequestStats> {
    let body = control_request(endpoint, "GET", "/__stats")?;
    serde_json::from_str(&body).with_context(|| format!("parse stats JSON {body:?}"))
}

/// Zeroes the counters of the server at `endpoint` (`POST /__stats/reset`).
pub fn remote_reset_stats(endpoint: &str) -> Result<()> {
    control_request(endpoint, "POST", "/__stats/reset").map(|_| ())
}

/// Sets the artificial latency of the server at `endpoint` (`POST /__latency?ms=N`).
pub fn remote_set_latency(endpoint: &str, latency: Duration) -> Result<()> {
    control_request(
        endpoint,
        "POST",
        &format!("/__latency?ms={}", latency.as_millis()),
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_kinds() {
        let get = Method::GET;
        assert_eq!(classify(&get, "/b/k/x.ltx", None, false), Kind::Get);
        assert_eq!(classify(&get, "/b/k/x.ltx", None, true), Kind::GetRange);
        assert_eq!(
            classify(&get, "/b", Some("list-type=2&prefix=a%2F"), false),
            Kind::List
        );
        assert_eq!(classify(&get, "/b/", Some("prefix=a"), false), Kind::List);
        assert_eq!(classify(&get, "/b", None, false), Kind::List);
        assert_eq!(classify(&get, "/b", Some("location"), false), Kind::Other);
        assert_eq!(classify(&get, "/", None, false), Kind::Other);
        assert_eq!(classify(&Method::HEAD, "/b/k", None, false), Kind::Head);
        assert_eq!(classify(&Method::PUT, "/b/k", None, false), Kind::Put);
        assert_eq!(classify(&Method::PUT, "/b", None, false), Kind::Other);
        assert_eq!(classify(&Method::DELETE, "/b/k", None, false), Kind::Delete);
        assert_eq!(
            classify(&Method::POST, "/b", Some("delete"), false),
            Kind::Delete
        );
        assert_eq!(
            classify(&Method::POST, "/b/k", Some("uploads"), false),
            Kind::Other
        );
    }
}
