//! Standalone S3 test server (s3s-fs with request counters), for benchmarks and manual runs.
//!
//! ```text
//! s3-server --root DIR [--port N] [--latency-ms N] [--bucket NAME]...
//! ```
//!
//! Prints exactly one line, `listening http://127.0.0.1:PORT`, on stdout once it accepts
//! connections, then serves until killed. Credentials: `testkit::s3::ACCESS_KEY` /
//! `SECRET_KEY`, region `us-east-1`. Counters: `GET /__stats`, `POST /__stats/reset`;
//! latency: `POST /__latency?ms=N`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use testkit::s3::S3Server;

struct Args {
    root: PathBuf,
    port: u16,
    latency_ms: u64,
    buckets: Vec<String>,
}

const USAGE: &str =
    "usage: s3-server --root DIR [--port N (0 = random)] [--latency-ms N] [--bucket NAME]...";

fn parse_args() -> Result<Args> {
    let mut root = None;
    let mut port = 0u16;
    let mut latency_ms = 0u64;
    let mut buckets = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--root" => root = Some(PathBuf::from(value()?)),
            "--port" => port = value()?.parse().context("--port")?,
            "--latency-ms" => latency_ms = value()?.parse().context("--latency-ms")?,
            "--bucket" => buckets.push(value()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let root = root.with_context(|| format!("--root is required\n{USAGE}"))?;
    Ok(Args {
        root,
        port,
        latency_ms,
        buckets,
    })
}

fn main() -> Result<()> {
    let args = parse_args()?;
    std::fs::create_dir_all(&args.root)
        .with_context(|| format!("create root {}", args.root.display()))?;
    let server = S3Server::start_on(&args.root, args.port)?;
    server.set_latency(Duration::from_millis(args.latency_ms));
    for bucket in &args.buckets {
        server.create_bucket(bucket)?;
    }
    // The one line a parent process waits for; flush because stdout is a pipe there.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening {}", server.endpoint()).context("write to stdout")?;
    stdout.flush().context("flush stdout")?;
    drop(stdout);
    server.wait();
    Ok(())
}
