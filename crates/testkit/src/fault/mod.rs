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

mod config;
mod http;
mod proxy;
mod rng;
mod stats;
mod tls;

pub use config::FaultConfig;
pub use proxy::FaultProxy;
pub use stats::{FaultStats, RequestRecord};
pub use tls::{test_ca, TlsIdentity};

#[cfg(test)]
mod tests;
