//! Golden tests: every `sql-tests/NAME.sql` runs through the system `sqlite3` shell with the
//! built extension loaded, against a replica the Go `litestream replicate` wrote from
//! `sql-tests/_seed.sql` (TXID 1) and `sql-tests/_seed2.sql` (TXID 2). Output must equal
//! `sql-tests/NAME.expected`; `UPDATE_GOLDEN=1` rewrites the expected files.

use std::path::PathBuf;

use anyhow::{Context, Result};
use testkit::golitestream::{ReplicaTarget, ReplicateOpts, Replicator};
use testkit::PrimaryDb;

#[test]
fn sql_tests() -> Result<()> {
    let dir_sql = e2e::repo_root().join("sql-tests");
    let tmp = tempfile::tempdir()?;
    let replica = tmp.path().join("replica");
    let primary = PrimaryDb::create(&tmp.path().join("app.db"))?;
    primary.exec(&std::fs::read_to_string(dir_sql.join("_seed.sql"))?)?;
    let target = ReplicaTarget::file(&replica)?;
    let mut rep = Replicator::start(primary.path(), target.clone(), ReplicateOpts::default())?;
    let first = rep.sync()?.txid;
    assert_eq!(first, 1, "the seed is one snapshot at TXID 1");
    primary.exec(&std::fs::read_to_string(dir_sql.join("_seed2.sql"))?)?;
    assert_eq!(rep.sync()?.txid, 2, "the second seed is TXID 2");
    rep.stop(std::time::Duration::from_secs(5))?;

    let url = target.url();
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&dir_sql)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('_'))
        .collect();
    scripts.sort();
    assert!(!scripts.is_empty(), "no sql-tests found");
    let update = std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for script in &scripts {
        let sql = std::fs::read_to_string(script)?;
        let buffer = tmp.path().join("write.buffer").display().to_string();
        let got = e2e::shell(
            &sql,
            &[
                ("LITESTREAM_REPLICA_URL", &url),
                ("LITESTREAM_BUFFER_PATH", &buffer),
            ],
        )?
        .replace(&replica.display().to_string(), "$REPLICA");
        let expected_path = script.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &got)?;
            continue;
        }
        let want = std::fs::read_to_string(&expected_path).with_context(|| {
            format!(
                "{} (run with UPDATE_GOLDEN=1 to create it)",
                expected_path.display()
            )
        })?;
        if got != want {
            failures.push(format!(
                "== {}\n-- expected\n{want}\n-- got\n{got}",
                script.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden test(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}
