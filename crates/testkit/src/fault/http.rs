//! HTTP/1.1 messages read off the proxy's sockets: a read buffer over a stream, from which
//! whole heads and bodies are taken as [`crate::http::message`] (httparse) recognises them.
//!
//! The proxy does not run hyper's server and client connections, although both are compiled
//! in: they own the socket and re-frame every message, while the proxy must forward the
//! client's request bytes unchanged (SigV4 signs them) and inject faults below HTTP: promise a
//! full `Content-Length` and close mid-body, reset the TCP connection (`SO_LINGER` 0), hold a
//! request and close without an answer. So only hyper's parser, httparse, is used.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::http::message::{parse_chunked, Framing, RequestHead, ResponseHead};

/// Largest request or response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// A byte stream with a read buffer.
pub(super) struct Conn<S> {
    pub(super) io: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + Unpin> Conn<S> {
    pub(super) fn new(io: S) -> Self {
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

    /// Removes and returns the first `n` buffered bytes.
    fn take(&mut self, n: usize) -> Vec<u8> {
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }

    /// Reads until `parse` recognises a complete item at the start of the buffer (failing once
    /// more than `limit` bytes are buffered without one), then takes its bytes. `None` at a
    /// clean end of stream (nothing buffered).
    async fn read_parsed<T>(
        &mut self,
        limit: usize,
        parse: impl Fn(&[u8]) -> io::Result<Option<(usize, T)>>,
    ) -> io::Result<Option<(Vec<u8>, T)>> {
        loop {
            if let Some((len, item)) = parse(&self.buf)? {
                return Ok(Some((self.take(len), item)));
            }
            if self.buf.len() > limit {
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

    /// The next request head, raw and parsed; `None` at a clean end of stream.
    pub(super) async fn read_request_head(&mut self) -> io::Result<Option<(Vec<u8>, RequestHead)>> {
        self.read_parsed(MAX_HEAD, RequestHead::parse).await
    }

    /// The next response head; the end of stream is an error.
    pub(super) async fn read_response_head(&mut self) -> io::Result<ResponseHead> {
        let head = self.read_parsed(MAX_HEAD, ResponseHead::parse).await?;
        head.map(|(_, head)| head)
            .ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
    }

    /// A body with the given framing: `(raw bytes as sent, decoded payload)`.
    pub(super) async fn read_body(&mut self, framing: Framing) -> io::Result<(Vec<u8>, Vec<u8>)> {
        match framing {
            Framing::None => Ok((Vec::new(), Vec::new())),
            Framing::Length(n) => {
                while self.buf.len() < n {
                    if self.fill().await? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                let b = self.take(n);
                Ok((b.clone(), b))
            }
            Framing::Chunked => self
                .read_parsed(usize::MAX, parse_chunked)
                .await?
                .ok_or_else(|| io::ErrorKind::UnexpectedEof.into()),
            Framing::UntilClose => {
                while self.fill().await? > 0 {}
                let b = std::mem::take(&mut self.buf);
                Ok((b.clone(), b))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn messages_are_taken_whole_from_the_stream() {
        let chunked = b"4\r\nWiki\r\n5;e=1\r\npedia\r\n0\r\n\r\n";
        let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        wire.extend_from_slice(chunked);
        wire.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n");
        block_on(async {
            let mut conn = Conn::new(wire.as_slice());
            let head = conn.read_response_head().await.unwrap();
            let (raw, body) = conn.read_body(head.framing("GET").unwrap()).await.unwrap();
            assert_eq!(
                (raw.as_slice(), body.as_slice()),
                (&chunked[..], &b"Wikipedia"[..])
            );
            let next = conn.read_response_head().await.unwrap();
            assert_eq!(next.framing("GET").unwrap(), Framing::None);
            assert!(conn.read_response_head().await.is_err(), "head cut short");
        });
        let wire = b"PUT /k HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        block_on(async {
            let mut conn = Conn::new(&wire[..]);
            let (raw, head) = conn.read_request_head().await.unwrap().unwrap();
            assert_eq!(raw, &wire[..wire.len() - 3]);
            let framing = head.framing().unwrap();
            assert_eq!(conn.read_body(framing).await.unwrap().1, b"abc");
            assert!(
                conn.read_request_head().await.unwrap().is_none(),
                "clean end"
            );
        });
    }
}
