//! A fault-injecting HTTP/1.1 proxy in front of an object-storage server (normally
//! [`crate::S3Server`]), for reliability tests of the clients that read through it.
//!
//! [`FaultProxy`] listens on a random port of `127.0.0.1` (plain HTTP, or HTTPS with a
//! certificate from [`test_ca`]) and forwards every request to the one upstream address it was
//! given, which must be a loopback address: it never connects anywhere else. `TCP_NODELAY` is
//! set on both sides. Per request it can, according to [`FaultConfig`] (changeable at runtime
//! with [`FaultProxy::set_faults`]):
//!
//! * add latency plus uniform jitter, and cap the bandwidth of response bodies;
//! * answer `500 InternalError`, `503 ServiceUnavailable` or `503 SlowDown` (S3's XML error
//!   bodies) without forwarding;
//! * reset the connection (close it, with `SO_LINGER 0` on plain TCP, without any response);
//! * stall: hold the request for [`FaultConfig::stall`], then close without a response;
//! * truncate a response body: send the full `Content-Length`, part of the body, then close;
//! * serve a stale listing: answer a LIST with a response previously recorded for the same URL.
//!
//! Decisions come from a SplitMix64 stream seeded with [`FaultConfig::seed`] and the request's
//! sequence number since the last `set_faults`, so a failing run can be replayed with its seed
//! (exactly so for sequential clients; with concurrent clients the same sequence of faults is
//! dealt out, though possibly to other requests). [`FaultProxy::stats`] counts each injected
//! fault, so a test can assert that faults really happened, and [`FaultProxy::requests`] logs
//! every request line seen (method, target, `Host`), so a test can assert what was asked for.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Largest request or response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Bound on every upstream step, so a stuck upstream cannot hang a test.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// Most request records kept by [`FaultProxy::requests`].
const MAX_LOG: usize = 200_000;
/// Most recorded responses kept per listing URL.
const MAX_LIST_HISTORY: usize = 16;

/// What the proxy injects. Rates are probabilities per request in `0.0..=1.0`; their sum should
/// stay below 1. [`Default`] injects nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Seed of the fault decisions.
    pub seed: u64,
    /// Latency added before every response.
    pub latency: Duration,
    /// Uniform jitter around `latency` (`latency ± jitter`, never below zero).
    pub jitter: Duration,
    /// Cap on response body bytes per second, per connection (`None`: unlimited).
    pub bandwidth: Option<u64>,
    /// Rate of `500 InternalError` answers.
    pub http_500: f64,
    /// Rate of `503 ServiceUnavailable` answers.
    pub http_503: f64,
    /// Rate of `503 SlowDown` answers (S3 throttling).
    pub slow_down: f64,
    /// Rate of connections closed without a response.
    pub reset: f64,
    /// Rate of requests held for `stall`, then closed without a response.
    pub timeout: f64,
    /// How long a stalled request is held.
    pub stall: Duration,
    /// Rate of responses whose body is cut short (the `Content-Length` promises more).
    pub truncate: f64,
    /// Rate of LIST requests answered with an older recorded response for the same URL (drawn
    /// from the same stream as the other faults; other requests drawing it get no fault).
    pub stale_list: f64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            seed: 0,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            bandwidth: None,
            http_500: 0.0,
            http_503: 0.0,
            slow_down: 0.0,
            reset: 0.0,
            timeout: 0.0,
            stall: Duration::from_secs(2),
            truncate: 0.0,
            stale_list: 0.0,
        }
    }
}

impl FaultConfig {
    /// No faults: a transparent proxy.
    pub fn none() -> Self {
        FaultConfig::default()
    }

    /// Every kind of fault: `rate` in total spread evenly over the six faults any request can
    /// get (500, 503, SlowDown, reset, stall, truncated body), plus stale answers to 10 % of
    /// the LIST requests, 2 ms ± 2 ms of latency and a 50 MB/s bandwidth cap per connection.
    /// Stalls last 1 s.
    pub fn chaos(seed: u64, rate: f64) -> Self {
        let each = rate / 6.0;
        FaultConfig {
            seed,
            latency: Duration::from_millis(2),
            jitter: Duration::from_millis(2),
            bandwidth: Some(50 << 20),
            http_500: each,
            http_503: each,
            slow_down: each,
            reset: each,
            timeout: each,
            stall: Duration::from_secs(1),
            truncate: each,
            stale_list: 0.10,
        }
    }
}

/// Counters of a [`FaultProxy`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Requests received from clients.
    pub requests: u64,
    /// Requests forwarded upstream.
    pub forwarded: u64,
    /// Responses delayed by latency/jitter.
    pub delayed: u64,
    /// `500 InternalError` answers injected.
    pub http_500: u64,
    /// `503 ServiceUnavailable` answers injected.
    pub http_503: u64,
    /// `503 SlowDown` answers injected.
    pub slow_down: u64,
    /// Connections closed without a response.
    pub resets: u64,
    /// Requests stalled, then closed without a response.
    pub timeouts: u64,
    /// Response bodies cut short.
    pub truncated: u64,
    /// LIST requests answered with an older, different recorded response.
    pub stale_lists: u64,
    /// Response body bytes sent under the bandwidth cap.
    pub throttled_bytes: u64,
    /// Upstream failures (answered `502`); not injected faults.
    pub upstream_errors: u64,
    /// PUTs the upstream answered with 2xx: with no deletions, more of these than objects
    /// would mean an object was overwritten.
    pub put_ok: u64,
    /// PUTs the upstream refused with 409 or 412 (a conditional create of an existing key).
    pub put_refused: u64,
}

impl FaultStats {
    /// Number of faults injected (latency and bandwidth are not counted as faults).
    pub fn injected(&self) -> u64 {
        self.http_500
            + self.http_503
            + self.slow_down
            + self.resets
            + self.timeouts
            + self.truncated
            + self.stale_lists
    }
}

/// One request as the proxy saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The request target: path and query, as sent.
    pub target: String,
    /// The `Host` header.
    pub host: String,
}

impl RequestRecord {
    /// The path, percent-decoded, without the query.
    pub fn path(&self) -> String {
        percent_decode(self.target.split('?').next().unwrap_or_default())
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }

    /// True for a bucket listing: a `GET` on `/bucket` with `list-type` or `prefix` (S3, and
    /// GCS's XML API), or with `comp=list` (Azure, whose path may start with the account).
    pub fn is_list(&self) -> bool {
        let path = self.path();
        let trimmed = path.trim_start_matches('/');
        self.method == "GET"
            && (self.query_param("comp").as_deref() == Some("list")
                || !trimmed.trim_end_matches('/').contains('/')
                    && (self.query_param("list-type").is_some()
                        || self.query_param("prefix").is_some()))
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A server identity for [`FaultProxy::start_tls`]: a certificate chain and its key, DER.
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    /// The server certificate first, then its issuers.
    pub chain: Vec<Vec<u8>>,
    /// PKCS#8 private key.
    pub key: Vec<u8>,
}

/// A throwaway certificate authority and a server certificate it signed for `127.0.0.1` and
/// `localhost`. Returns the CA certificate as PEM (for `AWS_CA_BUNDLE`) and the server
/// identity.
pub fn test_ca() -> Result<(String, TlsIdentity)> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.distinguished_name
        .push(DnType::CommonName, "testkit fault-proxy CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "testkit fault proxy");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate()?;
    let cert = leaf.signed_by(&leaf_key, &ca)?;
    Ok((
        ca.pem(),
        TlsIdentity {
            chain: vec![cert.der().to_vec(), ca.der().to_vec()],
            key: leaf_key.serialize_der(),
        },
    ))
}

/// Mutable state shared by the proxy's tasks.
struct Shared {
    upstream: SocketAddr,
    config: Mutex<FaultConfig>,
    seq: AtomicU64,
    counters: Counters,
    log: Mutex<Vec<RequestRecord>>,
    lists: Mutex<HashMap<String, Vec<Vec<u8>>>>,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    forwarded: AtomicU64,
    delayed: AtomicU64,
    http_500: AtomicU64,
    http_503: AtomicU64,
    slow_down: AtomicU64,
    resets: AtomicU64,
    timeouts: AtomicU64,
    truncated: AtomicU64,
    stale_lists: AtomicU64,
    throttled_bytes: AtomicU64,
    upstream_errors: AtomicU64,
    put_ok: AtomicU64,
    put_refused: AtomicU64,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
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

    /// Like [`FaultProxy::start`], but clients speak HTTPS with `identity` (see [`test_ca`]);
    /// the upstream is still plain HTTP.
    pub fn start_tls(upstream: SocketAddr, identity: &TlsIdentity) -> Result<FaultProxy> {
        use tokio_rustls::rustls;
        let chain = identity
            .chain
            .iter()
            .map(|c| rustls::pki_types::CertificateDer::from(c.clone()))
            .collect();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(identity.key.clone()),
        );
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("TLS server certificate")?;
        Self::launch(
            upstream,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
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
        let c = &self.shared.counters;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FaultStats {
            requests: r(&c.requests),
            forwarded: r(&c.forwarded),
            delayed: r(&c.delayed),
            http_500: r(&c.http_500),
            http_503: r(&c.http_503),
            slow_down: r(&c.slow_down),
            resets: r(&c.resets),
            timeouts: r(&c.timeouts),
            truncated: r(&c.truncated),
            stale_lists: r(&c.stale_lists),
            throttled_bytes: r(&c.throttled_bytes),
            upstream_errors: r(&c.upstream_errors),
            put_ok: r(&c.put_ok),
            put_refused: r(&c.put_refused),
        }
    }

    /// Zeroes the counters and the request log (recorded listings are kept).
    pub fn reset_stats(&self) {
        let c = &self.shared.counters;
        for a in [
            &c.requests,
            &c.forwarded,
            &c.delayed,
            &c.http_500,
            &c.http_503,
            &c.slow_down,
            &c.resets,
            &c.timeouts,
            &c.truncated,
            &c.stale_lists,
            &c.throttled_bytes,
            &c.upstream_errors,
            &c.put_ok,
            &c.put_refused,
        ] {
            a.store(0, Ordering::Relaxed);
        }
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

/// A client connection, plain or TLS.
enum Downstream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Downstream {
    /// Makes the coming close an abortive one (RST) where possible.
    fn abort(&self) {
        let tcp = match self {
            Downstream::Plain(s) => s,
            Downstream::Tls(s) => s.get_ref().0,
        };
        let _ = tcp.set_zero_linger();
    }
}

impl AsyncRead for Downstream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Downstream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Downstream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Downstream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            Downstream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Downstream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Downstream::Plain(s) => Pin::new(s).poll_flush(cx),
            Downstream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Downstream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Downstream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A byte stream with a read buffer, for parsing HTTP/1.1 messages.
struct Conn<S> {
    io: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(io: S) -> Self {
        Conn {
            io,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes into the buffer; 0 at end of stream.
    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.io.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// The next message head (through the blank line); `None` at a clean end of stream.
    async fn read_head(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                let rest = self.buf.split_off(pos + 4);
                return Ok(Some(std::mem::replace(&mut self.buf, rest)));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
            }
            if self.fill().await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    async fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(pos) = find(&self.buf, b"\r\n") {
                let rest = self.buf.split_off(pos + 2);
                return Ok(std::mem::replace(&mut self.buf, rest));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    async fn read_n(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        let rest = self.buf.split_off(n);
        Ok(std::mem::replace(&mut self.buf, rest))
    }

    /// A body with the given framing: `(raw bytes as sent, decoded payload)`.
    async fn read_body(&mut self, framing: Framing) -> io::Result<(Vec<u8>, Vec<u8>)> {
        match framing {
            Framing::None => Ok((Vec::new(), Vec::new())),
            Framing::Length(n) => {
                let b = self.read_n(n).await?;
                Ok((b.clone(), b))
            }
            Framing::Chunked => {
                let mut raw = Vec::new();
                let mut body = Vec::new();
                loop {
                    let line = self.read_line().await?;
                    raw.extend_from_slice(&line);
                    let text = String::from_utf8_lossy(&line);
                    let size = text.trim().split(';').next().unwrap_or_default();
                    let size = usize::from_str_radix(size.trim(), 16).map_err(|_| {
                        io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")
                    })?;
                    if size == 0 {
                        // Trailers, then the final blank line.
                        loop {
                            let t = self.read_line().await?;
                            raw.extend_from_slice(&t);
                            if t == b"\r\n" {
                                return Ok((raw, body));
                            }
                        }
                    }
                    let data = self.read_n(size + 2).await?;
                    raw.extend_from_slice(&data);
                    body.extend_from_slice(&data[..size]);
                }
            }
            Framing::UntilClose => {
                while self.fill().await? > 0 {}
                let b = std::mem::take(&mut self.buf);
                Ok((b.clone(), b))
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

/// A parsed message head.
struct Head {
    first_line: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(raw: &[u8]) -> io::Result<Head> {
        let text = std::str::from_utf8(raw)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "head is not UTF-8"))?;
        let mut lines = text.split("\r\n");
        let first_line = lines.next().unwrap_or_default().to_string();
        let headers = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Ok(Head {
            first_line,
            headers,
        })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    /// Body framing from the headers; `otherwise` when they name none.
    fn framing(&self, otherwise: Framing) -> io::Result<Framing> {
        if self.has_token("transfer-encoding", "chunked") {
            return Ok(Framing::Chunked);
        }
        match self.get("content-length") {
            Some(v) => v
                .parse()
                .map(Framing::Length)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad content-length")),
            None => Ok(otherwise),
        }
    }

    /// Body framing of a request.
    fn request_framing(&self) -> io::Result<Framing> {
        self.framing(Framing::None)
    }

    /// Body framing of a response to a request with `method`.
    fn response_framing(&self, method: &str, status: u16) -> io::Result<Framing> {
        if method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
            return Ok(Framing::None);
        }
        self.framing(Framing::UntilClose)
    }
}

/// SplitMix64: small, seedable, good enough to deal out faults.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, seq: u64) -> Rng {
        let mut r = Rng(seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0.0..1.0`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Http500,
    Http503,
    SlowDown,
    Reset,
    Timeout,
    Truncate,
    StaleList,
}

fn decide(cfg: &FaultConfig, rng: &mut Rng) -> Fault {
    let u = rng.unit();
    let mut acc = 0.0;
    for (rate, fault) in [
        (cfg.http_500, Fault::Http500),
        (cfg.http_503, Fault::Http503),
        (cfg.slow_down, Fault::SlowDown),
        (cfg.reset, Fault::Reset),
        (cfg.timeout, Fault::Timeout),
        (cfg.truncate, Fault::Truncate),
        (cfg.stale_list, Fault::StaleList),
    ] {
        acc += rate.max(0.0);
        if u < acc {
            return fault;
        }
    }
    Fault::None
}

fn delay(cfg: &FaultConfig, rng: &mut Rng) -> Duration {
    let base = cfg.latency.as_secs_f64();
    let jitter = cfg.jitter.as_secs_f64();
    let d = base + jitter * (2.0 * rng.unit() - 1.0);
    Duration::from_secs_f64(d.max(0.0))
}

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
        let head_raw = match client.read_head().await {
            Ok(Some(h)) => h,
            _ => return,
        };
        let Ok(head) = Head::parse(&head_raw) else {
            return;
        };
        let mut parts = head.first_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let Ok(framing) = head.request_framing() else {
            return;
        };
        let Ok((raw_body, _)) = client.read_body(framing).await else {
            return;
        };
        let record = RequestRecord {
            method: method.clone(),
            target: target.clone(),
            host: head.get("host").unwrap_or_default().to_string(),
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
            if head.has_token("connection", "close") {
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
        let has_body = !matches!(
            resp_head.response_framing(&method, status),
            Ok(Framing::None)
        );
        let mut out = format!("{}\r\n", resp_head.first_line);
        for (k, v) in &resp_head.headers {
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
        if head.has_token("connection", "close") {
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
    head: Head,
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
        let raw = up
            .read_head()
            .await?
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let head = Head::parse(&raw)?;
        let status: u16 = head
            .first_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
        let framing = head.response_framing(method, status)?;
        let (_, body) = up.read_body(framing).await?;
        let close = framing == Framing::UntilClose
            || head.has_token("connection", "close")
            || head.first_line.starts_with("HTTP/1.0");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_seeded() {
        let cfg = FaultConfig::chaos(42, 0.5);
        let run = |seed| {
            let cfg = FaultConfig {
                seed,
                ..cfg.clone()
            };
            (0..200)
                .map(|n| decide(&cfg, &mut Rng::new(cfg.seed, n)))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        let faults = run(42).iter().filter(|f| **f != Fault::None).count();
        assert!(
            (60..140).contains(&faults),
            "{faults} faults of 200 at 50 %"
        );
    }

    #[test]
    fn request_records() {
        let r = RequestRecord {
            method: "GET".into(),
            target: "/bucket?list-type=2&prefix=db%2Fapp%2F".into(),
            host: "127.0.0.1:1".into(),
        };
        assert!(r.is_list());
        assert_eq!(r.query_param("prefix").as_deref(), Some("db/app/"));
        let g = RequestRecord {
            method: "GET".into(),
            target: "/bucket/db/app/0000/x.ltx".into(),
            host: String::new(),
        };
        assert!(!g.is_list());
        assert_eq!(g.path(), "/bucket/db/app/0000/x.ltx");
    }

    /// A loopback upstream answering every request `200` with body `reply-<n>` (or 100 KB of
    /// `x` for `/big`), counting the requests it saw.
    fn fake_upstream() -> (SocketAddr, Arc<AtomicU64>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let count = Arc::clone(&count);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut out = stream;
                    loop {
                        let mut first = String::new();
                        if reader.read_line(&mut first).unwrap_or(0) == 0 {
                            return;
                        }
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                                break;
                            }
                        }
                        let n = count.fetch_add(1, Ordering::Relaxed);
                        let body = if first.contains("/big") {
                            vec![b'x'; 100_000]
                        } else {
                            format!("reply-{n}").into_bytes()
                        };
                        let head =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                        if out
                            .write_all(head.as_bytes())
                            .and_then(|_| out.write_all(&body))
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        (addr, seen)
    }

    /// One request with `Connection: close`: (status, declared length, body, elapsed).
    fn get(proxy: &FaultProxy, target: &str) -> (Option<u16>, Option<usize>, Vec<u8>, Duration) {
        use std::io::{Read, Write};
        let start = std::time::Instant::now();
        let mut s = std::net::TcpStream::connect(proxy.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let elapsed = start.elapsed();
        let Some(end) = find(&raw, b"\r\n\r\n") else {
            return (None, None, raw, elapsed);
        };
        let head = Head::parse(&raw[..end + 4]).unwrap();
        let status = head
            .first_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok());
        let len = head.get("content-length").and_then(|v| v.parse().ok());
        (status, len, raw[end + 4..].to_vec(), elapsed)
    }

    #[test]
    fn injects_each_fault_kind() {
        let (up, seen) = fake_upstream();
        let proxy = FaultProxy::start(up).unwrap();
        let (status, len, body, _) = get(&proxy, "/b/k");
        assert_eq!(
            (status, len, body.as_slice()),
            (Some(200), Some(7), &b"reply-0"[..])
        );

        let only = |f: fn(&mut FaultConfig)| {
            let mut c = FaultConfig::none();
            f(&mut c);
            proxy.set_faults(c);
        };
        only(|c| c.http_500 = 1.0);
        let (status, _, body, _) = get(&proxy, "/b/k");
        assert_eq!(status, Some(500));
        assert!(String::from_utf8_lossy(&body).contains("<Code>InternalError</Code>"));
        only(|c| c.http_503 = 1.0);
        assert_eq!(get(&proxy, "/b/k").0, Some(503));
        only(|c| c.slow_down = 1.0);
        let (status, _, body, _) = get(&proxy, "/b/k");
        assert_eq!(status, Some(503));
        assert!(String::from_utf8_lossy(&body).contains("<Code>SlowDown</Code>"));
        assert_eq!(
            seen.load(Ordering::Relaxed),
            1,
            "canned answers are not forwarded"
        );

        only(|c| c.reset = 1.0);
        let (status, _, body, _) = get(&proxy, "/b/k");
        assert_eq!((status, body.len()), (None, 0));
        only(|c| {
            c.timeout = 1.0;
            c.stall = Duration::from_millis(300);
        });
        let (status, _, _, took) = get(&proxy, "/b/k");
        assert!(
            status.is_none() && took >= Duration::from_millis(300),
            "{took:?}"
        );

        only(|c| c.truncate = 1.0);
        let (status, len, body, _) = get(&proxy, "/big");
        assert_eq!((status, len), (Some(200), Some(100_000)));
        assert!(body.len() < 100_000);

        // Listings: two different answers recorded, then a stale one served.
        proxy.set_faults(FaultConfig::none());
        let list = "/b?list-type=2&prefix=db%2F";
        let first = get(&proxy, list).2;
        let second = get(&proxy, list).2;
        assert_ne!(first, second);
        only(|c| c.stale_list = 1.0);
        let (status, _, stale, _) = get(&proxy, list);
        assert_eq!(status, Some(200));
        assert!(stale == first || stale == second, "{stale:?}");
        assert_ne!(get(&proxy, "/b/k").2, first, "objects are never stale");

        only(|c| {
            c.latency = Duration::from_millis(150);
            c.bandwidth = Some(400_000);
        });
        let (status, _, body, took) = get(&proxy, "/big");
        assert_eq!((status, body.len()), (Some(200), 100_000));
        assert!(took >= Duration::from_millis(150 + 200), "{took:?}");

        let s = proxy.stats();
        assert_eq!(
            (
                s.http_500,
                s.http_503,
                s.slow_down,
                s.resets,
                s.timeouts,
                s.truncated
            ),
            (1, 1, 1, 1, 1, 1),
            "{s:?}"
        );
        assert!(
            s.stale_lists >= 1 && s.delayed >= 1 && s.throttled_bytes >= 100_000,
            "{s:?}"
        );
        assert_eq!(s.upstream_errors, 0);
        assert_eq!(s.injected(), 6 + s.stale_lists);
        assert!(proxy.requests().iter().all(|r| r.host == "x"));
    }

    #[test]
    fn refuses_non_loopback_upstreams() {
        let err = FaultProxy::start("192.0.2.1:80".parse().unwrap()).unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
    }
}
