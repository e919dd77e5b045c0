//! The unauthenticated control endpoints (`/__stats`, `/__stats/reset`, `/__latency`), served
//! in-process and called from other processes.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::body::{CountingBody, ResponseBody};
use super::stats::{RequestStats, State};

/// A JSON answer that is not counted as S3 traffic.
fn json_response(status: StatusCode, body: String) -> Response<ResponseBody> {
    let mut resp = Response::new(CountingBody::uncounted(s3s::Body::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Answers the unauthenticated control endpoints, or `None` for ordinary S3 requests.
pub(super) fn control_endpoint(
    state: &State,
    req: &Request<Incoming>,
) -> Option<Response<ResponseBody>> {
    let path = req.uri().path();
    let method = req.method();
    let stats_json = |state: &State| {
        serde_json::to_string(&state.snapshot())
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    };
    if path == "/__stats" && *method == Method::GET {
        return Some(json_response(StatusCode::OK, stats_json(state)));
    }
    if path == "/__stats/reset" && *method == Method::POST {
        state.reset();
        return Some(json_response(StatusCode::OK, stats_json(state)));
    }
    if path == "/__latency" && *method == Method::POST {
        let ms = req.uri().query().and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("ms="))
                .and_then(|v| v.parse::<u64>().ok())
        });
        return Some(match ms {
            Some(ms) => {
                state.set_latency(Duration::from_millis(ms));
                json_response(StatusCode::OK, stats_json(state))
            }
            None => json_response(
                StatusCode::BAD_REQUEST,
                "{\"error\":\"expected ?ms=N\"}".to_string(),
            ),
        });
    }
    None
}

/// Sends a bodyless request to a control endpoint of a server (possibly in another process)
/// and returns the response body.
fn control_request(endpoint: &str, method: &str, path_and_query: &str) -> Result<String> {
    let reply = crate::http::request(endpoint, method, path_and_query, &[], &[])?;
    if reply.status != 200 {
        bail!(
            "{method} {path_and_query}: HTTP {}: {}",
            reply.status,
            reply.text()
        );
    }
    Ok(reply.text())
}

/// Reads the counters of the server at `endpoint` (`GET /__stats`), e.g. an `s3-server`
/// process started by a benchmark.
pub fn remote_stats(endpoint: &str) -> Result<RequestStats> {
    let body = control_request(endpoint, "GET", "/__stats")?;
    serde_json::from_str(&body).with_context(|| format!("parse stats JSON {body:?}"))
}

/// Zeroes the counters of the server at `endpoint` (`POST /__stats/reset`).
pub fn remote_reset_stats(endpoint: &str) -> Result<()> {
    control_request(endpoint, "POST", "/__stats/reset").map(|_| ())
}

/// Sets the artificial latency of the server at `endpoint` (`POST /__latency?ms=N`).
pub fn remote_set_latency(endpoint: &str, latency: Duration) -> Result<()> {
    control_request(
        endpoint,
        "POST",
        &format!("/__latency?ms={}", latency.as_millis()),
    )
    .map(|_| ())
}
