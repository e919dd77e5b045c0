//! Running a child process to completion within a time bound, with its output captured.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Output of a finished command.
#[derive(Debug)]
pub struct Output {
    /// How it exited (killed: by the signal).
    pub status: ExitStatus,
    /// Everything it wrote to standard output.
    pub stdout: Vec<u8>,
    /// Everything it wrote to standard error.
    pub stderr: Vec<u8>,
    /// Whether it was killed at the timeout.
    pub timed_out: bool,
}

/// Runs `cmd` (standard input closed) to completion, or kills it at `timeout` and says so.
/// Output is drained by threads so a chatty child cannot block on a full pipe.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {cmd:?}"))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_thread = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err_thread = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().context("wait for child")? {
            break status;
        }
        if Instant::now() >= deadline {
            // Our own child, by its handle.
            let _ = child.kill();
            timed_out = true;
            break child.wait().context("wait for killed child")?;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Ok(Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
        timed_out,
    })
}

/// Runs `cmd` to completion; a timeout is an error.
pub(super) fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let out = run_bounded(cmd, timeout)?;
    if out.timed_out {
        bail!("{cmd:?} timed out after {timeout:?}");
    }
    Ok(out)
}
