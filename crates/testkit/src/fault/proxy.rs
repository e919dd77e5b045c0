//! The proxy itself: the [`FaultProxy`] handle, its accept loop, and the per-connection
//! serving that forwards requests upstream and injects the drawn faults.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::config::{decide, delay, Fault, FaultConfig};
use super::http::Conn;
use super::rng::Rng;
use super::stats::{inc, Counters, FaultStats, RequestRecord};
use super::tls::{self, Downstream, TlsIdentity};
use crate::http::message::{Framing, ResponseHead};

/// Bound on every upstream step, so a stuck upstream cannot hang a test.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// Most request records kept by [`FaultProxy::requests`].
const MAX_LOG: usize = 200_000;
/// Most recorded responses kept per listing URL.
const MAX_LIST_HISTORY: usize = 16;

/// Mutable state shared by the proxy's tasks.
struct Shared {
    upstream: SocketAddr,
    config: Mutex<FaultConfig>,
    seq: AtomicU64,
    counters: Counters,
    log: Mutex<Vec<RequestRecord>>,
    lists: Mutex<HashMap<String, Vec<Vec<u8>>>>,
}

/// A running proxy. Dropping it stops it and closes every connection.
pub struct FaultProxy {
    addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts a plain-HTTP proxy on a random port of 127.0.0.1, forwarding to `upstream`
    /// (which must be a loopback address), injecting nothing until [`FaultProxy::set_faults`].
    pub fn start(upstream: SocketAddr) -> Result<FaultProxy> {
        Self::launch(upstream, None)
    }

    /// Like [`FaultProxy::start`], but clients speak HTTPS with `identity` (see
    /// [`test_ca`](super::test_ca)); the upstream is still plain HTTP.
    pub fn start_tls(upstream: SocketAddr, identity: &TlsIdentity) -> Result<FaultProxy> {
        Self::launch(upstream, Some(tls::acceptor(identity)?))
    }

    fn launch(upstream: SocketAddr, tls: Option<tokio_rustls::TlsAcceptor>) -> Result<FaultProxy> {
        if !upstream.ip().is_loopback() {
            bail!("the fault proxy only forwards to loopback addresses, not {upstream}");
        }
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).context("bind 127.0.0.1:0")?;
        listener.set_nonblocking(true).context("set_nonblocking")?;
        let addr = listener.local_addr().context("local_addr")?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("testkit-fault")
            .enable_all()
            .build()
            .context("build tokio runtime for the fault proxy")?;
        let shared = Arc::new(Shared {
            upstream,
            config: Mutex::new(FaultConfig::none()),
            seq: AtomicU64::new(0),
            counters: Counters::default(),
            log: Mutex::new(Vec::new()),
            lists: Mutex::new(HashMap::new()),
        });
        let (shutdown, rx) = watch::channel(false);
        let is_tls = tls.is_some();
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("testkit-fault-{}", addr.port()))
                .spawn(move || {
                    runtime.block_on(accept_loop(listener, shared, tls, rx));
                    runtime.shutdown_timeout(Duration::from_millis(100));
                })
                .context("spawn fault proxy thread")?
        };
        Ok(FaultProxy {
            addr,
            tls: is_tls,
            shared,
            shutdown,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT` (or `https://` for a TLS proxy).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The upstream address every request goes to.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Replaces the fault configuration; the decision stream restarts from `config.seed`.
    pub fn set_faults(&self, config: FaultConfig) {
        let mut c = self.shared.config.lock().unwrap_or_else(|e| e.into_inner());
        *c = config;
        self.shared.seq.store(0, Ordering::Relaxed);
    }

    /// The fault configuration in force.
    pub fn faults(&self) -> FaultConfig {
        self.shared
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counters since start (or the last [`FaultProxy::reset_stats`]).
    pub fn stats(&self) -> FaultStats {
        self.shared.counters.snapshot()
    }

    /// Zeroes the counters and the request log (recorded listings are kept).
    pub fn reset_stats(&self) {
        self.shared.counters.reset();
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Every request seen (up to the most recent 200,000), oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fault proxy: cannot register listener: {e}");
            return;
        }
    };
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => return,
        };
        let Ok((socket, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = socket.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve(Downstream::Plain(socket), shared).await,
                Some(acceptor) => {
                    // A client refusing our certificate ends here, which is what TLS tests
                    // expect; nothing to report.
                    if let Ok(s) = acceptor.accept(socket).await {
                        serve(Downstream::Tls(Box::new(s)), shared).await
                    }
                }
            }
        });
    }
}

/// An S3-style XML error response, complete with its head; `n` names the request.
fn error_response(status: u16, code: &str, message: &str, n: u64) -> Vec<u8> {
    let reason = match status {
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Service Unavailable",
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault-{n}</RequestId></Error>"
    );
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nx-amz-request-id: fault-{n}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves one client connection until it closes or a fault closes it.
async fn serve(downstream: Downstream, shared: Arc<Shared>) {
    let mut client = Conn::new(downstream);
    let mut upstream: Option<Conn<TcpStream>> = None;
    loop {
        let (head_raw, head) = match client.read_request_head().await {
            Ok(Some(h)) => h,
            _ => return,
        };
        let method = head.method.clone();
        let target = head.target.clone();
        let Ok(framing) = head.framing() else {
            return;
        };
        let Ok((raw_body, _)) = client.read_body(framing).await else {
            return;
        };
        let record = RequestRecord {
            method: method.clone(),
            target: target.clone(),
            host: head.headers.get("host").unwrap_or_default().to_string(),
        };
        let is_list = record.is_list();
        inc(&shared.counters.requests);
        {
            let mut log = shared.log.lock().unwrap_or_else(|e| e.into_inner());
            if log.len() >= MAX_LOG {
                log.drain(..MAX_LOG / 2);
            }
            log.push(record);
        }
        let cfg = shared
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let n = shared.seq.fetch_add(1, Ordering::Relaxed);
        let mut rng = Rng::new(cfg.seed, n);
        let mut fault = decide(&cfg, &mut rng);
        if fault == Fault::StaleList && !is_list {
            fault = Fault::None;
        }
        let wait = delay(&cfg, &mut rng);
        if !wait.is_zero() {
            inc(&shared.counters.delayed);
            tokio::time::sleep(wait).await;
        }
        let c = &shared.counters;
        let canned = match fault {
            Fault::Reset => {
                inc(&c.resets);
                client.io.abort();
                return;
            }
            Fault::Timeout => {
                inc(&c.timeouts);
                tokio::time::sleep(cfg.stall).await;
                return;
            }
            Fault::Http500 => {
                inc(&c.http_500);
                Some(error_response(
                    500,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                    n,
                ))
            }
            Fault::Http503 => {
                inc(&c.http_503);
                Some(error_response(
                    503,
                    "ServiceUnavailable",
                    "Service is unable to handle request.",
                    n,
                ))
            }
            Fault::SlowDown => {
                inc(&c.slow_down);
                Some(error_response(
                    503,
                    "SlowDown",
                    "Please reduce your request rate.",
                    n,
                ))
            }
            _ => None,
        };
        if let Some(resp) = canned {
            if client.io.write_all(&resp).await.is_err() {
                return;
            }
            if head.headers.has_token("connection", "close") {
                let _ = client.io.shutdown().await;
                return;
            }
            continue;
        }

        // Forward: one upstream connection per client connection, reopened when it breaks.
        let mut request = head_raw;
        request.extend_from_slice(&raw_body);
        let response = match forward(&shared, &mut upstream, &request, &method).await {
            Ok(r) => r,
            Err(e) => {
                inc(&c.upstream_errors);
                let resp = error_response(502, "BadGateway", &e.to_string(), n);
                let _ = client.io.write_all(&resp).await;
                return;
            }
        };
        inc(&c.forwarded);
        let Response {
            head: resp_head,
            status,
            mut body,
            close,
        } = response;
        if method == "PUT" && (200..300).contains(&status) {
            inc(&c.put_ok);
        } else if method == "PUT" && (status == 409 || status == 412) {
            inc(&c.put_refused);
        }
        if close {
            upstream = None;
        }
        if is_list && status == 200 {
            let mut lists = shared.lists.lock().unwrap_or_else(|e| e.into_inner());
            let history = lists.entry(target.clone()).or_default();
            if fault == Fault::StaleList {
                let older: Vec<&Vec<u8>> = history.iter().filter(|b| **b != body).collect();
                if !older.is_empty() {
                    let pick = (rng.next() % older.len() as u64) as usize;
                    body = older[pick].clone();
                    inc(&c.stale_lists);
                }
            } else if history.last() != Some(&body) {
                if history.len() >= MAX_LIST_HISTORY {
                    history.remove(0);
                }
                history.push(body.clone());
            }
        }
        let has_body = !matches!(resp_head.framing(&method), Ok(Framing::None));
        let mut out = format!("{}\r\n", resp_head.status_line);
        for (k, v) in resp_head.headers.iter() {
            let hop = k.eq_ignore_ascii_case("transfer-encoding")
                || (has_body && k.eq_ignore_ascii_case("content-length"));
            if !hop {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        if has_body {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        out.push_str("\r\n");
        if client.io.write_all(out.as_bytes()).await.is_err() {
            return;
        }
        let cut = if fault == Fault::Truncate && !body.is_empty() {
            inc(&c.truncated);
            Some((rng.next() % body.len() as u64) as usize)
        } else {
            None
        };
        let to_send = &body[..cut.unwrap_or(body.len())];
        if send_body(&shared, &mut client.io, to_send, cfg.bandwidth)
            .await
            .is_err()
        {
            return;
        }
        if cut.is_some() {
            let _ = client.io.flush().await;
            return;
        }
        if head.headers.has_token("connection", "close") {
            let _ = client.io.shutdown().await;
            return;
        }
    }
}

async fn send_body(
    shared: &Shared,
    io: &mut Downstream,
    body: &[u8],
    bandwidth: Option<u64>,
) -> io::Result<()> {
    let Some(bw) = bandwidth.filter(|b| *b > 0) else {
        return io.write_all(body).await;
    };
    // Chunks of 1/50 s worth of bytes, each followed by the time it may take.
    let chunk = ((bw / 50) as usize).max(1024);
    for part in body.chunks(chunk) {
        io.write_all(part).await?;
        shared
            .counters
            .throttled_bytes
            .fetch_add(part.len() as u64, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs_f64(part.len() as f64 / bw as f64)).await;
    }
    Ok(())
}

struct Response {
    head: ResponseHead,
    status: u16,
    body: Vec<u8>,
    close: bool,
}

/// Sends `request` upstream (reusing `conn` when possible, retrying once on a fresh connection
/// if a reused one turns out to be closed) and reads the whole response.
async fn forward(
    shared: &Shared,
    conn: &mut Option<Conn<TcpStream>>,
    request: &[u8],
    method: &str,
) -> io::Result<Response> {
    let reused = conn.is_some();
    match forward_once(shared, conn, request, method).await {
        Ok(r) => Ok(r),
        Err(_) if reused => {
            *conn = None;
            forward_once(shared, conn, request, method).await
        }
        Err(e) => Err(e),
    }
}

async fn forward_once(
    shared: &Shared,
    conn: &mut Option<Conn<TcpStream>>,
    request: &[u8],
    method: &str,
) -> io::Result<Response> {
    let step = async {
        if conn.is_none() {
            // The only address this proxy ever connects to.
            let s = TcpStream::connect(shared.upstream).await?;
            s.set_nodelay(true)?;
            *conn = Some(Conn::new(s));
        }
        let up = conn.as_mut().expect("connected above");
        up.io.write_all(request).await?;
        let head = up.read_response_head().await?;
        let status = head.status;
        let framing = head.framing(method)?;
        let (_, body) = up.read_body(framing).await?;
        let close = framing == Framing::UntilClose
            || head.headers.has_token("connection", "close")
            || head.http10;
        Ok(Response {
            head,
            status,
            body,
            close,
        })
    };
    match tokio::time::timeout(UPSTREAM_TIMEOUT, step).await {
        Ok(r) => {
            if r.is_err() {
                *conn = None;
            }
            r
        }
        Err(_) => {
            *conn = None;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "upstream did not answer",
            ))
        }
    }
}
