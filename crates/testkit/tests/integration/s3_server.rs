//! The embedded S3 server: control endpoints, counters, latency setting, and the binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::s3::{remote_reset_stats, remote_set_latency, remote_stats, S3Server};

/// Sends an unsigned GET for an object: rejected (403) by the auth layer, but still counted.
fn unsigned_get(endpoint: &str, path: &str) {
    use std::io::{Read, Write};
    let host = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nRange: bytes=0-9\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    assert!(resp.starts_with("HTTP/1.1 403"), "unexpected: {resp}");
}

#[test]
fn stats_endpoint_returns_json_and_resets() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = S3Server::start(root.path()).expect("start server");
    server.create_bucket("bkt").expect("bucket");

    let stats = remote_stats(&server.endpoint()).expect("GET /__stats");
    assert_eq!(stats.total(), 0, "{stats:?}");

    unsigned_get(&server.endpoint(), "/bkt/some/key.ltx");
    let stats = remote_stats(&server.endpoint()).expect("GET /__stats");
    assert_eq!(stats.get_range, 1, "{stats:?}");
    assert_eq!(
        stats.total(),
        1,
        "control endpoints are not counted: {stats:?}"
    );
    assert!(
        stats.bytes_out > 0,
        "the 403 error body is counted: {stats:?}"
    );
    assert_eq!(server.stats(), stats);

    remote_reset_stats(&server.endpoint()).expect("POST /__stats/reset");
    assert_eq!(server.stats().total(), 0);
    assert_eq!(server.stats().bytes_out, 0);

    unsigned_get(&server.endpoint(), "/bkt/k");
    server.reset_stats();
    assert_eq!(remote_stats(&server.endpoint()).expect("stats").total(), 0);
}

#[test]
fn latency_setting_is_reported() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = S3Server::start(root.path()).expect("start server");
    server.set_latency(Duration::from_millis(20));
    let stats = remote_stats(&server.endpoint()).expect("stats");
    assert_eq!(stats.latency_us, 20_000);

    remote_set_latency(&server.endpoint(), Duration::from_millis(7)).expect("set latency");
    assert_eq!(server.stats().latency_us, 7_000);

    // Resetting the counters keeps the latency.
    server.reset_stats();
    assert_eq!(server.stats().latency_us, 7_000);
}

#[test]
fn binary_prints_endpoint_and_serves_stats() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_s3-server"))
        .args(["--root"])
        .arg(root.path())
        .args(["--port", "0", "--latency-ms", "3", "--bucket", "bkt"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn s3-server");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read line");
    let endpoint = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");

    let stats = remote_stats(&endpoint);
    assert!(
        root.path().join("bkt").is_dir(),
        "--bucket creates the directory"
    );
    let _ = child.kill();
    let _ = child.wait();
    let stats = stats.expect("stats");
    assert_eq!(stats.latency_us, 3_000);
    assert_eq!(stats.total(), 0);
}
