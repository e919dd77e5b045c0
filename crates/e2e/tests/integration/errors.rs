//! Bad configuration (against a real S3 server, and of GCS and Azure): each case fails the open
//! with a message that names the problem, after no request or a bounded number of them (counted
//! by the servers, or as object_store reports its retries), and no secret ever appears in what
//! the user sees. Nothing here asserts how long a failure took: the machines are shared.

use std::time::Duration;

use anyhow::Result;
use e2e::shell;
use testkit::S3Server;

const SECRET: &str = "s3cr3t-never-shown";

fn open_error(url: &str, env: &[(&str, &str)]) -> Result<String> {
    let script = ".open file:app.db?vfs=litestream\nSELECT 1;\n";
    let mut env = env.to_vec();
    env.push(("LITESTREAM_REPLICA_URL", url));
    let out = shell(script, &env)?;
    assert!(!out.contains(SECRET), "a secret leaked: {out}");
    assert!(
        !out.contains("SQL logic error"),
        "bare SQL logic error: {out}"
    );
    Ok(out)
}

#[test]
fn s3_misconfigurations_say_what_is_wrong() -> Result<()> {
    let root = tempfile::tempdir()?;
    let server = S3Server::start(root.path())?;
    server.create_bucket("present")?;
    let ep = server.endpoint();

    let out = open_error(
        &format!("s3://absent/db?endpoint={ep}&region=us-east-1"),
        &[],
    )?;
    assert!(out.contains("bucket or container not found"), "{out}");

    let out = open_error(
        &format!("s3://present/db?endpoint={ep}&region=us-east-1"),
        &[
            ("AWS_ACCESS_KEY_ID", "wrong-key"),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    )?;
    assert!(out.contains("access denied"), "{out}");

    let out = open_error(
        &format!("s3://present/db?endpoint={ep}&region=us-east-1"),
        &[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")],
    )?;
    assert!(
        out.contains("missing S3 credentials") && out.contains("AWS_ACCESS_KEY_ID"),
        "{out}"
    );

    let out = open_error(
        &format!("s3://present/db?endpoint={ep}&region=us-east-1"),
        &[],
    )?;
    assert!(out.contains("is empty"), "{out}");

    // A closed port on loopback: refused at once, retried within a bounded budget.
    let out = open_error(
        "s3://present/db?endpoint=http://127.0.0.1:9&region=us-east-1",
        &[],
    )?;
    assert!(out.contains("object storage unavailable"), "{out}");
    Ok(())
}

#[test]
fn credentials_never_reach_the_log() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("litestream.log");
    let log_s = log.display().to_string();
    let out = open_error(
        "s3://bucket/db?endpoint=http://127.0.0.1:9&region=us-east-1",
        &[
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("LITESTREAM_LOG_FILE", &log_s),
            ("LITESTREAM_LOG_LEVEL", "debug"),
        ],
    )?;
    assert!(out.contains("cannot open"), "{out}");
    let text = std::fs::read_to_string(&log)?;
    assert!(
        text.contains("cannot open"),
        "the log records the failure: {text}"
    );
    assert!(!text.contains(SECRET), "the log leaked the secret");
    Ok(())
}

/// Like `open_error` against `server`: also how many requests reached it.
fn counted_open_error(server: &S3Server, url: &str, env: &[(&str, &str)]) -> Result<(String, u64)> {
    server.reset_stats();
    let out = open_error(url, env)?;
    Ok((out, server.stats().total()))
}

/// The retry budget object_store reports with a request that failed after retries ("after N
/// retries, max_retries: 4"): the open gave up after at most the configured retries.
fn assert_bounded_retries(out: &str) {
    assert!(
        out.contains("max_retries: 4"),
        "no retry budget named: {out}"
    );
    let retries: u32 = out
        .split(", after ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no retry count: {out}"));
    assert!(retries <= 4, "{out}");
}

#[test]
fn garbage_urls_and_unknown_schemes_fail_at_once() -> Result<()> {
    for (url, needle) in [
        ("not a url", "cannot parse replica URL"),
        ("relative/dir", "cannot parse replica URL"),
        ("s3:///path", "has no bucket"),
        ("s3://", "has no bucket"),
        ("ftp://host/x", "unsupported replica URL scheme \"ftp\""),
        ("sftp://host/x", "unsupported replica URL scheme \"sftp\""),
        (
            "webdav://host/x",
            "unsupported replica URL scheme \"webdav\"",
        ),
        ("file://otherhost/x", "names host"),
        ("file:///nonexistent/litestream-replica", "is empty"),
        (
            "s3://b/p?endpoint=http://127.0.0.1:9&force-path-style=maybe",
            "true or false",
        ),
    ] {
        let out = open_error(url, &[])?;
        assert!(
            out.contains("cannot open") && out.contains(needle),
            "{url}: {out}"
        );
    }
    // No URL at all.
    let out = shell(".open file:app.db?vfs=litestream\nSELECT 1;\n", &[])?;
    assert!(out.contains("no replica URL"), "{out}");
    Ok(())
}

#[test]
fn wrong_or_partial_credentials_say_so() -> Result<()> {
    let root = tempfile::tempdir()?;
    let server = S3Server::start(root.path())?;
    server.create_bucket("present")?;
    let url = format!(
        "s3://present/db?endpoint={}&region=us-east-1",
        server.endpoint()
    );
    // The right key id with a wrong secret: the signature does not match. A refusal is final:
    // one request, no retries.
    let (out, requests) = counted_open_error(&server, &url, &[("AWS_SECRET_ACCESS_KEY", SECRET)])?;
    assert!(out.contains("access denied"), "{out}");
    assert_eq!(requests, 1, "{out}");
    // A key id without a secret, and the LITESTREAM_ spellings.
    let (out, requests) = counted_open_error(&server, &url, &[("AWS_SECRET_ACCESS_KEY", "")])?;
    assert!(
        out.contains("missing S3 credentials") && out.contains("AWS_SECRET_ACCESS_KEY"),
        "{out}"
    );
    assert_eq!(requests, 0, "refused before any request: {out}");
    let (out, requests) = counted_open_error(
        &server,
        &url,
        &[
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
            ("LITESTREAM_ACCESS_KEY_ID", "nobody"),
            ("LITESTREAM_SECRET_ACCESS_KEY", SECRET),
        ],
    )?;
    assert!(out.contains("access denied"), "{out}");
    assert_eq!(requests, 1, "{out}");
    Ok(())
}

/// A listener on 127.0.0.1 that accepts connections and never answers; its thread returns
/// how many it accepted.
fn blackhole() -> Result<(
    std::net::SocketAddr,
    std::thread::JoinHandle<usize>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
)> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut held = Vec::new();
        while !flag.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        held.len()
    });
    Ok((addr, thread, stop))
}

#[test]
fn closed_port_fails_after_bounded_retries() -> Result<()> {
    // Connection refused each time; the open gives up within the retry budget.
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = l.local_addr()?.port();
    drop(l);
    let out = open_error(
        &format!("s3://bucket/db?endpoint=http://127.0.0.1:{port}&region=us-east-1"),
        &[],
    )?;
    assert!(
        out.contains("object storage unavailable") && out.contains("list"),
        "{out}"
    );
    assert_bounded_retries(&out);
    Ok(())
}

#[test]
fn blackholed_endpoint_fails_after_bounded_attempts() -> Result<()> {
    // The read timeout ends each attempt that gets no answer, and the retry budget the open:
    // at most one connection per attempt (the first and 4 retries).
    let (addr, thread, stop) = blackhole()?;
    let r = open_error(
        &format!("s3://bucket/db?endpoint=http://{addr}&region=us-east-1"),
        &[],
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let connections = thread.join().expect("blackhole thread");
    let out = r?;
    assert!(out.contains("object storage unavailable"), "{out}");
    assert!(
        (1..=5).contains(&connections),
        "{connections} connections: {out}"
    );
    Ok(())
}

#[test]
fn gcs_and_azure_without_credentials_fail_at_once_naming_them() -> Result<()> {
    // No credential source at all (and a HOME without gcloud's file): no metadata service is
    // asked, the message names what to set.
    let home = tempfile::tempdir()?;
    let home = home.path().display().to_string();
    let out = open_error(
        "gs://bucket/db",
        &[
            ("HOME", &home),
            ("GOOGLE_APPLICATION_CREDENTIALS", ""),
            ("STORAGE_EMULATOR_HOST", ""),
        ],
    )?;
    assert!(
        out.contains("no GCS credentials") && out.contains("GOOGLE_APPLICATION_CREDENTIALS"),
        "{out}"
    );
    let out = open_error(
        "abs://acct@container/db",
        &[("LITESTREAM_AZURE_ACCOUNT_KEY", "")],
    )?;
    assert!(
        out.contains("no Azure credentials") && out.contains("LITESTREAM_AZURE_ACCOUNT_KEY"),
        "{out}"
    );
    let out = open_error("abs://container/db", &[])?;
    assert!(out.contains("no Azure storage account"), "{out}");
    Ok(())
}

#[test]
fn no_metadata_service_is_probed_with_an_explicit_endpoint() -> Result<()> {
    let root = tempfile::tempdir()?;
    let server = S3Server::start(root.path())?;
    server.create_bucket("present")?;
    let proxy = testkit::fault::FaultProxy::start(server.addr())?;
    let url = format!(
        "s3://present/db?endpoint={}&region=us-east-1",
        proxy.endpoint()
    );
    // With an explicit endpoint and no credentials the open fails without any request, and
    // without AWS_EC2_METADATA_DISABLED (shell() does not set it).
    let out = open_error(
        &url,
        &[
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
            ("AWS_EC2_METADATA_DISABLED", ""),
        ],
    )?;
    assert!(out.contains("missing S3 credentials"), "{out}");
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());

    // With credentials, through the fault proxy: every request goes to the configured endpoint
    // and bucket. Under strace (when installed), the process connects to nothing else at all.
    let out = open_error(&url, &[])?;
    assert!(out.contains("is empty"), "{out}");
    let seen = proxy.requests();
    assert!(!seen.is_empty());
    for r in &seen {
        assert_eq!(r.host, proxy.addr().to_string(), "{r:?}");
        assert!(r.path().starts_with("/present"), "{r:?}");
    }
    let strace = std::process::Command::new("strace").arg("-V").output();
    if strace.is_ok_and(|o| o.status.success()) {
        let dir = tempfile::tempdir()?;
        let trace = dir.path().join("trace");
        let so = e2e::extension_path()?;
        let out = std::process::Command::new("strace")
            .args(["-f", "-e", "trace=connect", "-o"])
            .arg(&trace)
            .args(["sqlite3", "-batch", "-cmd"])
            .arg(format!(".load {}", so.display()))
            .arg(":memory:")
            .arg(".open file:app.db?vfs=litestream")
            .env("LITESTREAM_REPLICA_URL", &url)
            .env("AWS_ACCESS_KEY_ID", testkit::s3::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", testkit::s3::SECRET_KEY)
            .env_remove("AWS_EC2_METADATA_DISABLED")
            .env_remove("AWS_CA_BUNDLE")
            .output()?;
        let text = std::fs::read_to_string(&trace)?;
        let inet: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("connect(") && l.contains("AF_INET"))
            .collect();
        assert!(!inet.is_empty(), "no connection traced: {text}\n{out:?}");
        let port = format!("sin_port=htons({})", proxy.addr().port());
        for l in &inet {
            assert!(
                l.contains(&port) && l.contains("127.0.0.1"),
                "a connection to something else than the endpoint: {l}"
            );
        }
        println!(
            "strace: {} connect() calls, all to {}",
            inet.len(),
            proxy.addr()
        );
    } else {
        println!("strace not installed: the connect() check was skipped");
    }
    Ok(())
}
