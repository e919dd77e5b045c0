//! One blocking HTTP/1.1 request over a `TcpStream` (`Connection: close`): enough for control
//! endpoints and for setting up emulators (creating buckets and containers), without an HTTP
//! client dependency. [`message`] parses HTTP/1.1 for it and for the fault proxy.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{bail, Context, Result};

pub(crate) mod message;

/// A response: status code and body (a chunked body is decoded).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `method target` to `endpoint` (`http://HOST:PORT`) with extra `headers` and `body`.
pub fn request(
    endpoint: &str,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<Reply> {
    let host = endpoint
        .strip_prefix("http://")
        .with_context(|| format!("endpoint {endpoint:?} is not http://HOST:PORT"))?
        .split('/')
        .next()
        .unwrap_or_default();
    let mut stream =
        std::net::TcpStream::connect(host).with_context(|| format!("connect to {host}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .context("set read timeout")?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .with_context(|| format!("send {method} {target}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("read response to {method} {target}"))?;
    let malformed = || {
        format!(
            "malformed HTTP response: {:?}",
            String::from_utf8_lossy(&raw)
        )
    };
    let (len, head) = message::ResponseHead::parse(&raw)
        .with_context(malformed)?
        .with_context(malformed)?;
    let mut body = raw[len..].to_vec();
    if head.headers.has_token("transfer-encoding", "chunked") {
        body = message::parse_chunked(&body)
            .with_context(malformed)?
            .with_context(malformed)?
            .1;
    }
    let status = head.status;
    Ok(Reply { status, body })
}

/// Like [`request`], failing unless the status is 2xx.
pub fn request_ok(
    endpoint: &str,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<Reply> {
    let r = request(endpoint, method, target, headers, body)?;
    if !(200..300).contains(&r.status) {
        bail!("{method} {target}: HTTP {}: {}", r.status, r.text());
    }
    Ok(r)
}

/// A port on 127.0.0.1 that was free a moment ago, for a server that must be told its port.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}
