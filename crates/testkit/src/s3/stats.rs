//! What the server counts: the [`RequestStats`] snapshot, the live counters, and the
//! classification of a request into a kind.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::Method;
use serde::{Deserialize, Serialize};

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
pub(super) enum Kind {
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
pub(super) struct State {
    pub(super) get: AtomicU64,
    pub(super) get_range: AtomicU64,
    pub(super) head: AtomicU64,
    pub(super) list: AtomicU64,
    pub(super) put: AtomicU64,
    pub(super) put_ok: AtomicU64,
    pub(super) put_precondition_failed: AtomicU64,
    pub(super) delete: AtomicU64,
    pub(super) other: AtomicU64,
    /// Conditional creates run one at a time: s3s-fs checks existence, then writes, which two
    /// concurrent requests could both pass. Real S3 decides `If-None-Match: *` atomically.
    pub(super) create_lock: tokio::sync::Mutex<()>,
    pub(super) bytes_out: AtomicU64,
    pub(super) bytes_in: AtomicU64,
    pub(super) latency_us: AtomicU64,
}

impl State {
    pub(super) fn count(&self, kind: Kind) {
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

    pub(super) fn snapshot(&self) -> RequestStats {
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

    pub(super) fn reset(&self) {
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

    pub(super) fn set_latency(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.store(us, Ordering::Relaxed);
    }
}

/// Classifies a request for the counters. Path-style only: `/bucket` is a bucket, `/bucket/key`
/// an object.
pub(super) fn classify(method: &Method, path: &str, query: Option<&str>, has_range: bool) -> Kind {
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
