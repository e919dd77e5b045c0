//! A storage emulator run as a child process on 127.0.0.1: started on a free port, waited for
//! until it accepts connections, killed (by its own handle) when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A running emulator process.
#[derive(Debug)]
pub struct Process {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Process {
    /// Spawns `cmd` (given its working directory `dir`, which the process owns until dropped),
    /// logging to `dir/NAME.log`, and waits until `port` on 127.0.0.1 accepts connections.
    pub fn spawn(
        name: &'static str,
        mut cmd: Command,
        dir: tempfile::TempDir,
        port: u16,
    ) -> Result<Process> {
        let log = dir.path().join(format!("{name}.log"));
        let out =
            std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("spawn {name}: {cmd:?}"))?;
        let mut p = Process {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = p.child.try_wait()? {
                bail!("{name} exited at start ({status}): {}", p.log_text());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(p);
            }
            if Instant::now() > deadline {
                bail!(
                    "{name} did not listen on 127.0.0.1:{port}: {}",
                    p.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The repository's `target/` directory, where the npm packages of the tests are installed.
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

/// A file that `scripts/setup.sh` installs, or an error saying how to install it.
pub fn installed(path: PathBuf, what: &str) -> Result<PathBuf> {
    if path.is_file() {
        Ok(path)
    } else {
        bail!(
            "{what} is not installed ({} is missing): run scripts/setup.sh (make test does)",
            path.display()
        )
    }
}
