//! A body wrapper that counts the bytes flowing through it, in either direction.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::stats::State;

/// Which byte counter a [`CountingBody`] feeds.
#[derive(Debug, Clone, Copy)]
pub(super) enum Direction {
    /// Request bodies: `bytes_in`.
    In,
    /// Response bodies: `bytes_out`.
    Out,
}

/// An HTTP body wrapper adding the size of every data frame to a byte counter.
pub(super) struct CountingBody<B> {
    inner: B,
    counter: Option<(Arc<State>, Direction)>,
}

impl<B> CountingBody<B> {
    pub(super) fn new(inner: B, state: Arc<State>, direction: Direction) -> Self {
        Self {
            inner,
            counter: Some((state, direction)),
        }
    }

    pub(super) fn uncounted(inner: B) -> Self {
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

/// The body of every response: counted unless a control endpoint answered.
pub(super) type ResponseBody = CountingBody<s3s::Body>;
