//! What the proxy saw and did: counters of injected faults ([`FaultStats`]) and the log of
//! requests ([`RequestRecord`]).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of a [`FaultProxy`](super::FaultProxy).
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

/// The live counters behind [`FaultStats`], bumped by the proxy's tasks.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) forwarded: AtomicU64,
    pub(super) delayed: AtomicU64,
    pub(super) http_500: AtomicU64,
    pub(super) http_503: AtomicU64,
    pub(super) slow_down: AtomicU64,
    pub(super) resets: AtomicU64,
    pub(super) timeouts: AtomicU64,
    pub(super) truncated: AtomicU64,
    pub(super) stale_lists: AtomicU64,
    pub(super) throttled_bytes: AtomicU64,
    pub(super) upstream_errors: AtomicU64,
    pub(super) put_ok: AtomicU64,
    pub(super) put_refused: AtomicU64,
}

impl Counters {
    /// The counters now.
    pub(super) fn snapshot(&self) -> FaultStats {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FaultStats {
            requests: r(&self.requests),
            forwarded: r(&self.forwarded),
            delayed: r(&self.delayed),
            http_500: r(&self.http_500),
            http_503: r(&self.http_503),
            slow_down: r(&self.slow_down),
            resets: r(&self.resets),
            timeouts: r(&self.timeouts),
            truncated: r(&self.truncated),
            stale_lists: r(&self.stale_lists),
            throttled_bytes: r(&self.throttled_bytes),
            upstream_errors: r(&self.upstream_errors),
            put_ok: r(&self.put_ok),
            put_refused: r(&self.put_refused),
        }
    }

    /// Zeroes every counter.
    pub(super) fn reset(&self) {
        for a in [
            &self.requests,
            &self.forwarded,
            &self.delayed,
            &self.http_500,
            &self.http_503,
            &self.slow_down,
            &self.resets,
            &self.timeouts,
            &self.truncated,
            &self.stale_lists,
            &self.throttled_bytes,
            &self.upstream_errors,
            &self.put_ok,
            &self.put_refused,
        ] {
            a.store(0, Ordering::Relaxed);
        }
    }
}

/// Counts one event.
pub(super) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
