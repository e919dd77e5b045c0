//! What the proxy injects ([`FaultConfig`]) and the per-request draw of one fault from it.

use std::time::Duration;

use super::rng::Rng;

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

/// The fault dealt to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    None,
    Http500,
    Http503,
    SlowDown,
    Reset,
    Timeout,
    Truncate,
    StaleList,
}

/// Draws the request's fault: one uniform number against the cumulative rates.
pub(super) fn decide(cfg: &FaultConfig, rng: &mut Rng) -> Fault {
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

/// The latency to add to one request: `latency ± jitter`, never negative.
pub(super) fn delay(cfg: &FaultConfig, rng: &mut Rng) -> Duration {
    let base = cfg.latency.as_secs_f64();
    let jitter = cfg.jitter.as_secs_f64();
    let d = base + jitter * (2.0 * rng.unit() - 1.0);
    Duration::from_secs_f64(d.max(0.0))
}
