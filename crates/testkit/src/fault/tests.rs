//! The proxy against a fake upstream: seeded decisions, request records, and every kind of
//! fault seen from a raw client socket.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::config::{decide, Fault};
use super::rng::Rng;
use super::{FaultConfig, FaultProxy, RequestRecord};
use crate::http::message::ResponseHead;

#[test]
fn decisions_are_seeded() {
    let cfg = FaultConfig::chaos(42, 0.5);
    let run = |seed| {
        let cfg = FaultConfig {
            seed,
            ..cfg.clone()
        };
        (0..200)
            .map(|n| decide(&cfg, &mut Rng::new(cfg.seed, n)))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
    let faults = run(42).iter().filter(|f| **f != Fault::None).count();
    assert!(
        (60..140).contains(&faults),
        "{faults} faults of 200 at 50 %"
    );
}

#[test]
fn request_records() {
    let r = RequestRecord {
        method: "GET".into(),
        target: "/bucket?list-type=2&prefix=db%2Fapp%2F".into(),
        host: "127.0.0.1:1".into(),
    };
    assert!(r.is_list());
    assert_eq!(r.query_param("prefix").as_deref(), Some("db/app/"));
    let g = RequestRecord {
        method: "GET".into(),
        target: "/bucket/db/app/0000/x.ltx".into(),
        host: String::new(),
    };
    assert!(!g.is_list());
    assert_eq!(g.path(), "/bucket/db/app/0000/x.ltx");
}

/// A loopback upstream answering every request `200` with body `reply-<n>` (or 100 KB of
/// `x` for `/big`), counting the requests it saw.
fn fake_upstream() -> (SocketAddr, Arc<AtomicU64>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let count = Arc::clone(&count);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                loop {
                    let mut first = String::new();
                    if reader.read_line(&mut first).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                    }
                    let n = count.fetch_add(1, Ordering::Relaxed);
                    let body = if first.contains("/big") {
                        vec![b'x'; 100_000]
                    } else {
                        format!("reply-{n}").into_bytes()
                    };
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                    if out
                        .write_all(head.as_bytes())
                        .and_then(|_| out.write_all(&body))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// One request with `Connection: close`: (status, declared length, body, elapsed).
fn get(proxy: &FaultProxy, target: &str) -> (Option<u16>, Option<usize>, Vec<u8>, Duration) {
    use std::io::{Read, Write};
    let start = std::time::Instant::now();
    let mut s = std::net::TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let elapsed = start.elapsed();
    let Some((end, head)) = ResponseHead::parse(&raw).unwrap() else {
        return (None, None, raw, elapsed);
    };
    let len = head
        .headers
        .get("content-length")
        .and_then(|v| v.parse().ok());
    (Some(head.status), len, raw[end..].to_vec(), elapsed)
}

#[test]
fn injects_each_fault_kind() {
    let (up, seen) = fake_upstream();
    let proxy = FaultProxy::start(up).unwrap();
    let (status, len, body, _) = get(&proxy, "/b/k");
    assert_eq!(
        (status, len, body.as_slice()),
        (Some(200), Some(7), &b"reply-0"[..])
    );

    let only = |f: fn(&mut FaultConfig)| {
        let mut c = FaultConfig::none();
        f(&mut c);
        proxy.set_faults(c);
    };
    only(|c| c.http_500 = 1.0);
    let (status, _, body, _) = get(&proxy, "/b/k");
    assert_eq!(status, Some(500));
    assert!(String::from_utf8_lossy(&body).contains("<Code>InternalError</Code>"));
    only(|c| c.http_503 = 1.0);
    assert_eq!(get(&proxy, "/b/k").0, Some(503));
    only(|c| c.slow_down = 1.0);
    let (status, _, body, _) = get(&proxy, "/b/k");
    assert_eq!(status, Some(503));
    assert!(String::from_utf8_lossy(&body).contains("<Code>SlowDown</Code>"));
    assert_eq!(
        seen.load(Ordering::Relaxed),
        1,
        "canned answers are not forwarded"
    );

    only(|c| c.reset = 1.0);
    let (status, _, body, _) = get(&proxy, "/b/k");
    assert_eq!((status, body.len()), (None, 0));
    only(|c| {
        c.timeout = 1.0;
        c.stall = Duration::from_millis(300);
    });
    let (status, _, _, took) = get(&proxy, "/b/k");
    assert!(
        status.is_none() && took >= Duration::from_millis(300),
        "{took:?}"
    );

    only(|c| c.truncate = 1.0);
    let (status, len, body, _) = get(&proxy, "/big");
    assert_eq!((status, len), (Some(200), Some(100_000)));
    assert!(body.len() < 100_000);

    // Listings: two different answers recorded, then a stale one served.
    proxy.set_faults(FaultConfig::none());
    let list = "/b?list-type=2&prefix=db%2F";
    let first = get(&proxy, list).2;
    let second = get(&proxy, list).2;
    assert_ne!(first, second);
    only(|c| c.stale_list = 1.0);
    let (status, _, stale, _) = get(&proxy, list);
    assert_eq!(status, Some(200));
    assert!(stale == first || stale == second, "{stale:?}");
    assert_ne!(get(&proxy, "/b/k").2, first, "objects are never stale");

    only(|c| {
        c.latency = Duration::from_millis(150);
        c.bandwidth = Some(400_000);
    });
    let (status, _, body, took) = get(&proxy, "/big");
    assert_eq!((status, body.len()), (Some(200), 100_000));
    assert!(took >= Duration::from_millis(150 + 200), "{took:?}");

    let s = proxy.stats();
    assert_eq!(
        (
            s.http_500,
            s.http_503,
            s.slow_down,
            s.resets,
            s.timeouts,
            s.truncated
        ),
        (1, 1, 1, 1, 1, 1),
        "{s:?}"
    );
    assert!(
        s.stale_lists >= 1 && s.delayed >= 1 && s.throttled_bytes >= 100_000,
        "{s:?}"
    );
    assert_eq!(s.upstream_errors, 0);
    assert_eq!(s.injected(), 6 + s.stale_lists);
    assert!(proxy.requests().iter().all(|r| r.host == "x"));
}

#[test]
fn refuses_non_loopback_upstreams() {
    let err = FaultProxy::start("192.0.2.1:80".parse().unwrap()).unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}
