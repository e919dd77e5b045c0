//! HTTP/1.1 messages without I/O, on `httparse` (the parser inside hyper): request and
//! response heads, body framing (RFC 9112, section 6), and chunked bodies. The fault proxy
//! reads them off its sockets, the blocking [`request`](super::request) off a whole response.

use std::io;

/// Most header fields in one head (S3 requests carry about a dozen).
const MAX_HEADERS: usize = 128;

/// How the body of a message is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

/// Header fields in the order received, names as sent, values trimmed.
pub(crate) struct Headers(Vec<(String, String)>);

impl Headers {
    fn from_parsed(parsed: &[httparse::Header<'_>]) -> io::Result<Headers> {
        parsed
            .iter()
            .map(|h| {
                let value = std::str::from_utf8(h.value)
                    .map_err(|_| invalid("header value is not UTF-8"))?;
                Ok((h.name.to_string(), value.trim().to_string()))
            })
            .collect::<io::Result<_>>()
            .map(Headers)
    }

    /// Every field, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(String, String)> {
        self.0.iter()
    }

    /// The first value of `name` (case-insensitive).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True if the comma-separated list in `name` holds `token` (case-insensitive).
    pub(crate) fn has_token(&self, name: &str, token: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    /// Body framing from the fields; `otherwise` when they name none.
    fn framing(&self, otherwise: Framing) -> io::Result<Framing> {
        if self.has_token("transfer-encoding", "chunked") {
            return Ok(Framing::Chunked);
        }
        match self.get("content-length") {
            Some(v) => v
                .parse()
                .map(Framing::Length)
                .map_err(|_| invalid("bad content-length")),
            None => Ok(otherwise),
        }
    }
}

/// A request head.
pub(crate) struct RequestHead {
    pub(crate) method: String,
    /// Path and query, as sent.
    pub(crate) target: String,
    pub(crate) headers: Headers,
}

impl RequestHead {
    /// Parses a head at the start of `buf`: its length and itself, or `None` if incomplete.
    pub(crate) fn parse(buf: &[u8]) -> io::Result<Option<(usize, RequestHead)>> {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut fields);
        let httparse::Status::Complete(len) = req.parse(buf).map_err(parse_error)? else {
            return Ok(None);
        };
        let head = RequestHead {
            method: req.method.unwrap_or_default().to_string(),
            target: req.path.unwrap_or_default().to_string(),
            headers: Headers::from_parsed(req.headers)?,
        };
        Ok(Some((len, head)))
    }

    /// Body framing of the request (none unless the fields name one).
    pub(crate) fn framing(&self) -> io::Result<Framing> {
        self.headers.framing(Framing::None)
    }
}

/// A response head.
pub(crate) struct ResponseHead {
    /// The status line as received, without its line end, e.g. `HTTP/1.1 200 OK`.
    pub(crate) status_line: String,
    pub(crate) status: u16,
    /// True for an `HTTP/1.0` response (whose connection closes unless kept alive explicitly).
    pub(crate) http10: bool,
    pub(crate) headers: Headers,
}

impl ResponseHead {
    /// Parses a head at the start of `buf`: its length and itself, or `None` if incomplete.
    pub(crate) fn parse(buf: &[u8]) -> io::Result<Option<(usize, ResponseHead)>> {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut fields);
        let httparse::Status::Complete(len) = resp.parse(buf).map_err(parse_error)? else {
            return Ok(None);
        };
        // Forwarded as received, so the reason phrase reaches the client unchanged.
        let status_line = buf[..len]
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .find(|l| !l.is_empty())
            .unwrap_or_default();
        let head = ResponseHead {
            status_line: String::from_utf8_lossy(status_line).into_owned(),
            status: resp.code.unwrap_or_default(),
            http10: resp.version == Some(0),
            headers: Headers::from_parsed(resp.headers)?,
        };
        Ok(Some((len, head)))
    }

    /// Body framing of this response to a request with `method`.
    pub(crate) fn framing(&self, method: &str) -> io::Result<Framing> {
        let status = self.status;
        if method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
            return Ok(Framing::None);
        }
        self.headers.framing(Framing::UntilClose)
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn parse_error(e: httparse::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// The chunk-size line at the start of `buf`: its length and the chunk's size.
fn parse_chunk_size(buf: &[u8]) -> io::Result<Option<(usize, usize)>> {
    match httparse::parse_chunk_size(buf).map_err(|_| invalid("bad chunk size"))? {
        httparse::Status::Complete((len, size)) => {
            let size = usize::try_from(size).map_err(|_| invalid("chunk too large"))?;
            Ok(Some((len, size)))
        }
        httparse::Status::Partial => Ok(None),
    }
}

/// A chunked body at the start of `buf`, through its trailer fields and final blank line:
/// its length as sent and the payload; `None` if incomplete.
pub(crate) fn parse_chunked(buf: &[u8]) -> io::Result<Option<(usize, Vec<u8>)>> {
    // Find the end first, so an incomplete body (re-parsed as more arrives) copies nothing.
    let mut chunks = Vec::new();
    let mut pos = 0;
    let end = loop {
        let Some((line, size)) = parse_chunk_size(&buf[pos..])? else {
            return Ok(None);
        };
        pos += line;
        if size == 0 {
            let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match httparse::parse_headers(&buf[pos..], &mut fields).map_err(parse_error)? {
                httparse::Status::Complete((trailers, _)) => break pos + trailers,
                httparse::Status::Partial => return Ok(None),
            }
        }
        let next = size
            .checked_add(2)
            .and_then(|n| n.checked_add(pos))
            .ok_or_else(|| invalid("chunk too large"))?;
        if buf.len() < next {
            return Ok(None);
        }
        if &buf[pos + size..next] != b"\r\n" {
            return Err(invalid("chunk not followed by CRLF"));
        }
        chunks.push(pos..pos + size);
        pos = next;
    };
    let mut body = Vec::with_capacity(chunks.iter().map(|c| c.len()).sum());
    for c in chunks {
        body.extend_from_slice(&buf[c]);
    }
    Ok(Some((end, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies() {
        let body = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nx-trailer: t\r\n\r\nNEXT";
        let (len, payload) = parse_chunked(body).unwrap().unwrap();
        assert_eq!(
            (&body[len..], payload.as_slice()),
            (&b"NEXT"[..], &b"Wikipedia"[..])
        );
        for cut in 0..len {
            assert!(
                parse_chunked(&body[..cut]).unwrap().is_none(),
                "cut at {cut}"
            );
        }
        assert!(parse_chunked(b"3\r\nabcX\r\n0\r\n\r\n").is_err());
        assert!(parse_chunked(b"zz\r\n").is_err());
    }

    #[test]
    fn heads_and_framing() {
        let wire = b"HTTP/1.1 200 Very OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
        let (len, head) = ResponseHead::parse(wire).unwrap().unwrap();
        assert_eq!(&wire[len..], b"0\r\n");
        assert_eq!((head.status, head.http10), (200, false));
        assert_eq!(head.status_line, "HTTP/1.1 200 Very OK");
        assert_eq!(head.framing("GET").unwrap(), Framing::Chunked);
        assert_eq!(head.framing("HEAD").unwrap(), Framing::None);
        let (_, old) = ResponseHead::parse(b"HTTP/1.0 200 OK\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(old.http10);
        assert_eq!(old.framing("GET").unwrap(), Framing::UntilClose);

        let put = b"PUT /b/k?x=1 HTTP/1.1\r\nHost:  h \r\nContent-Length: 3\r\n\r\nabc";
        let (len, head) = RequestHead::parse(put).unwrap().unwrap();
        assert_eq!(&put[len..], b"abc");
        assert_eq!(
            (head.method.as_str(), head.target.as_str()),
            ("PUT", "/b/k?x=1")
        );
        assert_eq!(head.headers.get("HOST"), Some("h"));
        assert_eq!(head.framing().unwrap(), Framing::Length(3));
        assert!(RequestHead::parse(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").is_err());
        assert!(RequestHead::parse(b"GET / HTTP/1.1\r\nHost: h\r\n")
            .unwrap()
            .is_none());
    }
}
