//! One blocking HTTP/1.1 request over a `TcpStream` (`Connection: close`): enough for control
//! endpoints and for setting up emulators (creating buckets and containers), without an HTTP
//! client dependency.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{bail, Context, Result};

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
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| {
            format!(
                "malformed HTTP response: {:?}",
                String::from_utf8_lossy(&raw)
            )
        })?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body)?;
    }
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

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("truncated chunk size")?;
        let size = std::str::from_utf8(&b[..eol])?
            .split(';')
            .next()
            .unwrap_or_default();
        let n = usize::from_str_radix(size.trim(), 16).context("bad chunk size")?;
        if n == 0 {
            return Ok(out);
        }
        let data = b.get(eol + 2..eol + 2 + n).context("truncated chunk")?;
        out.extend_from_slice(data);
        b = b.get(eol + 4 + n..).context("truncated chunk")?;
    }
}

/// A port on 127.0.0.1 that was free a moment ago, for a server that must be told its port.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunked_bodies_are_joined() {
        let b = super::dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(b, b"abcde");
    }
}
