//! Bad configuration against a real S3 server: each case fails the open quickly with a message
//! that names the problem, and no secret ever appears in what the user sees.

use std::time::{Duration, Instant};

use anyhow::Result;
use e2e::shell;
use testkit::S3Server;

const SECRET: &str = "s3cr3t-never-shown";

fn open_error(url: &str, env: &[(&str, &str)]) -> Result<String> {
    let script = ".open file:app.db?vfs=litestream\nSELECT 1;\n";
    let mut env = env.to_vec();
    env.push(("LITESTREAM_REPLICA_URL", url));
    let start = Instant::now();
    let out = shell(script, &env)?;
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "open took {:?}",
        start.elapsed()
    );
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
