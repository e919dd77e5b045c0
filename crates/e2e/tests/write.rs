//! Write mode against the real tools: what our VFS writes, the Go `litestream restore` reads
//! back identically (new databases and replicas Go made); a writer killed with SIGKILL never
//! loses an acknowledged commit; two writers racing on one replica never overwrite an object.
//!
//! `LITESTREAM_CRASH_TRIALS` (default 6) and `LITESTREAM_RACE_ROUNDS` (default 3) set how many
//! crash trials and race rounds run; the seed is printed (`LITESTREAM_CRASH_SEED` replays).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use e2e::{
    dump, go_restore, integrity, load_extension, open_vfs, open_vfs_rw, snapshot, uri_encode,
};
use rusqlite::Connection;
use testkit::golitestream::{ReplicaTarget, ReplicateOpts, Replicator};
use testkit::{PrimaryDb, S3Server};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A fresh S3 server on 127.0.0.1 with a bucket, and the replica `path` in it: the
/// temporary directory (the server's files are under `<dir>/s3`), the server's root, the server
/// and the target.
fn s3_replica(path: &str) -> Result<(tempfile::TempDir, PathBuf, S3Server, ReplicaTarget)> {
    let dir = tempfile::tempdir()?;
    let s3_root = dir.path().join("s3");
    std::fs::create_dir_all(&s3_root)?;
    let server = S3Server::start(&s3_root)?;
    server.create_bucket("bucket")?;
    let target = ReplicaTarget::s3(&server, "bucket", path);
    Ok((dir, s3_root, server, target))
}

/// The same workload, statement by statement, on our VFS and on a plain local database:
/// schema changes, small and large transactions, rollbacks, a truncating VACUUM.
const WORKLOAD: &[&str] = &[
    "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER)",
    "CREATE INDEX items_n ON items(n)",
    "INSERT INTO items(name, n) VALUES ('first', 1)",
    "INSERT INTO items(name, n) VALUES ('second', 2)",
    "BEGIN; INSERT INTO items(name, n) SELECT printf('%.*c', 100 + value % 700, 'x'), value FROM (WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < 20000) SELECT value FROM s); COMMIT",
    "BEGIN; DELETE FROM items; ROLLBACK",
    "BEGIN; UPDATE items SET n = n * 2 WHERE id % 3 = 0; SAVEPOINT s; DELETE FROM items WHERE id < 5000; ROLLBACK TO s; RELEASE s; COMMIT",
    "ALTER TABLE items ADD COLUMN note TEXT DEFAULT 'none'",
    "CREATE TABLE other(k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID",
    "INSERT INTO other SELECT 'k' || value, zeroblob(value % 5000) FROM (WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < 300) SELECT value FROM s)",
    "DROP INDEX items_n",
    "DELETE FROM items WHERE id > 3000",
    "VACUUM",
    "INSERT INTO items(name, n, note) VALUES ('after vacuum', 7, 'yes')",
    "UPDATE other SET v = X'00ff' WHERE k = 'k7'",
];

#[test]
fn writes_restore_with_go_identically() -> Result<()> {
    load_extension()?;
    let (dir, _s3_root, _server, target) = s3_replica("db/new")?;
    let url = target.url();
    let buffer = dir.path().join("app.buffer");
    let extra = format!(
        "&sync_interval=100ms&buffer_path={}",
        uri_encode(&buffer.display().to_string())
    );
    let ours = open_vfs_rw("app.db", &url, &extra)?;
    let local = Connection::open(dir.path().join("reference.db"))?;
    // A reader in the same process sees each commit at once.
    let reader = open_vfs("app.db", &url, "")?;
    for sql in WORKLOAD {
        ours.execute_batch(sql)
            .with_context(|| format!("ours: {sql}"))?;
        local
            .execute_batch(sql)
            .with_context(|| format!("local: {sql}"))?;
        let want: i64 = local.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        let got: i64 = reader.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        assert_eq!(got, want, "the in-process reader after {sql}");
    }
    let want = snapshot(&local)?;
    assert_eq!(snapshot(&reader)?, want, "in-process reader");
    let size_before: i64 = ours.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    drop(reader);
    drop(ours);

    // Close uploaded everything: the Go tools restore exactly the reference database.
    let restored = go_restore(&target, dir.path(), "restored.db")?;
    assert_eq!(integrity(&restored)?, "ok");
    assert_eq!(
        snapshot(&restored)?,
        want,
        "litestream restore of what we wrote"
    );
    let size_after: i64 = restored.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    assert_eq!(
        size_after, size_before,
        "the VACUUM's truncation reached the replica"
    );

    // And a fresh reader of ours (its own replica object) reads the same.
    let fresh = open_vfs("app.db", &format!("{url}&fresh=1"), "")?;
    assert_eq!(snapshot(&fresh)?, want, "a fresh reader");
    Ok(())
}

#[test]
fn writes_on_top_of_a_replica_made_by_go() -> Result<()> {
    load_extension()?;
    let (dir, _s3_root, _server, target) = s3_replica("db/go")?;
    let primary = PrimaryDb::create(&dir.path().join("primary.db"))?;
    primary.exec(
        "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER);
         INSERT INTO items(name, n) SELECT 'go' || value, value FROM (WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < 5000) SELECT value FROM s);",
    )?;
    let mut rep = Replicator::start(primary.path(), target.clone(), ReplicateOpts::relaxed())?;
    rep.sync()?;
    primary.exec("UPDATE items SET n = -n WHERE id % 7 = 0")?;
    rep.sync()?;
    rep.stop(Duration::from_secs(10))?;
    // The reference: the primary's state, then our statements.
    let reference = dir.path().join("reference.db");
    primary.exec(&format!("VACUUM INTO '{}'", reference.display()))?;
    let local = Connection::open(&reference)?;
    local.execute_batch("PRAGMA journal_mode = DELETE")?;

    let buffer = dir.path().join("app.buffer");
    let extra = format!("&buffer_path={}", uri_encode(&buffer.display().to_string()));
    let ours = open_vfs_rw("app.db", &target.url(), &extra)?;
    for sql in [
        "INSERT INTO items(name, n) VALUES ('ours', 1)",
        "UPDATE items SET name = name || '!' WHERE id % 11 = 0",
        "DELETE FROM items WHERE id BETWEEN 100 AND 400",
        "CREATE TABLE added(x)",
        "INSERT INTO added SELECT value FROM (WITH RECURSIVE s(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM s WHERE value < 1000) SELECT value FROM s)",
    ] {
        ours.execute_batch(sql).with_context(|| format!("ours: {sql}"))?;
        local.execute_batch(sql)?;
    }
    let txid: String = ours.query_row("PRAGMA litestream_sync", [], |r| r.get(0))?;
    assert!(
        u64::from_str_radix(&txid, 16)? > 2,
        "TXID after sync: {txid}"
    );
    drop(ours);
    let restored = go_restore(&target, dir.path(), "restored.db")?;
    assert_eq!(integrity(&restored)?, "ok");
    assert_eq!(snapshot(&restored)?, snapshot(&local)?);
    Ok(())
}

/// A `vfs-writer` child and the lines it printed so far.
struct Writer {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Writer {
    fn spawn(args: &[&str]) -> Result<Writer> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vfs-writer"))
            .args(args)
            .env("LITESTREAM_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawn vfs-writer")?;
        let out = child.stdout.take().context("stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Ok(Writer {
            child,
            lines: rx,
            seen: Vec::new(),
        })
    }

    /// Waits for it to exit (bounded) and returns everything it printed.
    fn finish(mut self, limit: Duration) -> Result<Vec<String>> {
        let start = Instant::now();
        loop {
            if self.child.try_wait()?.is_some() {
                break;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                bail!(
                    "vfs-writer did not exit within {limit:?}: {:?}",
                    self.drain()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The reader thread sees EOF once the pipe closes.
        std::thread::sleep(Duration::from_millis(50));
        Ok(self.drain())
    }

    /// Waits until it has acknowledged a commit.
    fn wait_for_ack(&mut self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.drain().iter().any(|l| l.starts_with("ack ")) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        bail!(
            "no commit acknowledged within {limit:?}: {:?}",
            self.drain()
        )
    }

    fn kill(mut self) -> Result<Vec<String>> {
        self.child.kill()?; // SIGKILL
        self.child.wait()?;
        std::thread::sleep(Duration::from_millis(50));
        Ok(self.drain())
    }

    fn drain(&mut self) -> Vec<String> {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        self.seen.clone()
    }
}

fn acked(lines: &[String]) -> BTreeSet<i64> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("ack "))
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

/// Opens in write mode in a child (recovering `buffer`) and returns the rows' (id, tag).
fn dump_child(url: &str, buffer: &Path) -> Result<Result<BTreeMap<i64, String>, String>> {
    let lines = Writer::spawn(&["dump", url, &buffer.display().to_string()])?
        .finish(Duration::from_secs(60))?;
    if let Some(e) = lines.iter().find(|l| l.starts_with("openerr")) {
        return Ok(Err(e.clone()));
    }
    if !lines.iter().any(|l| l == "closed") {
        bail!("dump did not close cleanly: {lines:?}");
    }
    Ok(Ok(lines
        .iter()
        .filter_map(|l| l.strip_prefix("id "))
        .filter_map(|l| {
            let (id, tag) = l.split_once(' ')?;
            Some((id.parse().ok()?, tag.to_string()))
        })
        .collect()))
}

/// A tiny deterministic generator, so a failing trial can be replayed from its seed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn kill_9_never_loses_an_acknowledged_commit() -> Result<()> {
    load_extension()?;
    let trials = env_u64("LITESTREAM_CRASH_TRIALS", 6);
    let seed = env_u64(
        "LITESTREAM_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64,
    );
    println!("crash: seed={seed} trials={trials} (LITESTREAM_CRASH_SEED replays)");
    let mut rng = Lcg(seed);
    let (dir, _s3_root, _server, target) = s3_replica("db/crash")?;
    let url = target.url();
    let buffer = dir.path().join("writer.buffer");
    let mut all_acked = BTreeSet::new();
    let mut next_id = 1i64;
    let mut kills_with_pending = 0;
    for trial in 0..trials {
        let interval = ["1s", "100ms", "0"][rng.next(3) as usize];
        let run_ms = 100 + rng.next(900);
        let w = Writer::spawn(&[
            "stream",
            &url,
            &buffer.display().to_string(),
            &next_id.to_string(),
            "100000",
            interval,
            "crash",
        ])?;
        std::thread::sleep(Duration::from_millis(run_ms));
        let lines = w.kill()?;
        if let Some(e) = lines
            .iter()
            .find(|l| l.starts_with("openerr") || l.starts_with("err "))
        {
            bail!("trial {trial}: the writer failed before the kill: {e}");
        }
        let acks = acked(&lines);
        let attempted_max = next_id + acks.len() as i64 + 1;
        // What a reopen (in a new process, recovering the buffer) sees.
        let rows = dump_child(&url, &buffer)?
            .map_err(|e| anyhow::anyhow!("trial {trial}: reopen failed: {e}"))?;
        let ids: BTreeSet<i64> = rows.keys().copied().collect();
        let lost: Vec<_> = all_acked
            .union(&acks)
            .filter(|i| !ids.contains(i))
            .collect();
        assert!(
            lost.is_empty(),
            "trial {trial} (seed {seed}, interval {interval}, killed after {run_ms} ms): acknowledged commits lost: {lost:?}"
        );
        // At most the one commit in flight at the kill may be there without its ack.
        let unacked: Vec<_> = ids
            .iter()
            .filter(|i| !all_acked.contains(*i) && !acks.contains(*i))
            .collect();
        assert!(
            unacked.len() <= 1
                && unacked
                    .iter()
                    .all(|i| **i >= next_id && **i <= attempted_max),
            "trial {trial}: rows nobody acknowledged: {unacked:?}"
        );
        if interval != "0" && !acks.is_empty() {
            kills_with_pending += 1;
        }
        all_acked.extend(acks);
        all_acked.extend(unacked.into_iter().copied().collect::<Vec<_>>());
        next_id = ids.iter().max().copied().unwrap_or(0) + 1;
        println!(
            "crash: trial {trial}: interval {interval}, killed after {run_ms} ms, {} rows",
            ids.len()
        );
    }
    assert!(
        !all_acked.is_empty(),
        "no commit was acknowledged in any trial"
    );
    // The last reopen closed cleanly, which uploads: Go restores every acknowledged commit.
    let restored = go_restore(&target, dir.path(), "restored.db")?;
    assert_eq!(integrity(&restored)?, "ok");
    let ids: BTreeSet<i64> = restored
        .prepare("SELECT id FROM t")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    assert_eq!(ids, all_acked, "litestream restore after {trials} kills");
    println!(
        "crash: seed={seed} trials={trials} acknowledged={} lost=0 kills_with_commits_not_uploaded={kills_with_pending}",
        all_acked.len()
    );
    Ok(())
}

fn objects_under(root: &Path) -> Result<usize> {
    let mut n = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            } else if e.path().extension().is_some_and(|x| x == "ltx") {
                n += 1;
            }
        }
    }
    Ok(n)
}

#[test]
fn two_writers_race_and_nothing_is_overwritten() -> Result<()> {
    load_extension()?;
    let rounds = env_u64("LITESTREAM_RACE_ROUNDS", 3);
    let (dir, s3_root, server, target) = s3_replica("db/race")?;
    let url = target.url();
    let mut expected: BTreeMap<i64, String> = BTreeMap::new();
    let mut conflicts = 0;
    for round in 0..rounds as i64 {
        let buffers: Vec<PathBuf> = ["a", "b"]
            .iter()
            .map(|w| dir.path().join(format!("{w}{round}.buffer")))
            .collect();
        let writers: Vec<Writer> = (0..2)
            .map(|w| {
                let first = 1_000_000 * (round + 1) + 100_000 * w;
                Writer::spawn(&[
                    "stream",
                    &url,
                    &buffers[w as usize].display().to_string(),
                    &first.to_string(),
                    "400",
                    "50ms",
                    &format!("w{w}r{round}"),
                ])
            })
            .collect::<Result<_>>()?;
        let outputs: Vec<Vec<String>> = writers
            .into_iter()
            .map(|w| w.finish(Duration::from_secs(120)))
            .collect::<Result<_>>()?;
        // A writer that lost keeps what it could not upload: reopening its buffer fails, names
        // where the commits were set aside, and overwrites nothing.
        let mut fenced = Vec::new();
        for (w, lines) in outputs.iter().enumerate() {
            let errs: Vec<&String> = lines.iter().filter(|l| l.starts_with("err ")).collect();
            if let Some(e) = errs.iter().find(|l| !l.contains("ReadOnly")) {
                bail!("round {round} writer {w}: an error other than SQLITE_READONLY: {e}");
            }
            if let Some(e) = lines.iter().find(|l| l.starts_with("openerr")) {
                bail!("round {round} writer {w}: {e}");
            }
            match dump_child(&url, &buffers[w])? {
                Err(e) => {
                    assert!(e.contains("kept in"), "round {round} writer {w}: {e}");
                    fenced.push(w);
                }
                Ok(_) => assert!(
                    errs.is_empty(),
                    "round {round} writer {w} was refused ({errs:?}) but its buffer reopens"
                ),
            }
        }
        conflicts += fenced.len();
        // No object was ever overwritten: every successful PUT created a key of its own.
        let stats = server.stats();
        let objects = objects_under(&s3_root.join("bucket"))?;
        assert_eq!(
            stats.put_ok as usize, objects,
            "round {round}: {} successful PUTs for {objects} objects: something was overwritten ({stats:?})",
            stats.put_ok
        );
        let restored = go_restore(&target, dir.path(), &format!("round{round}.db"))?;
        assert_eq!(integrity(&restored)?, "ok", "round {round}");
        let rows: BTreeMap<i64, String> = restored
            .prepare("SELECT id, tag FROM t")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (w, lines) in outputs.iter().enumerate() {
            let tag = format!("w{w}r{round}");
            let acks = acked(lines);
            let present: BTreeSet<i64> = rows
                .iter()
                .filter(|(_, t)| **t == tag)
                .map(|(i, _)| *i)
                .collect();
            assert!(
                present.is_subset(&acks),
                "round {round} writer {w}: rows in the replica that it never acknowledged"
            );
            if !fenced.contains(&w) {
                assert_eq!(
                    present, acks,
                    "round {round} writer {w} was never refused, closed cleanly, and must be whole in the replica"
                );
                expected.extend(acks.iter().map(|i| (*i, tag.clone())));
            }
        }
        for (id, tag) in &rows {
            if let Some(t) = expected.get(id) {
                assert_eq!(t, tag);
            }
        }
        println!(
            "race: round {round}: refused writers {fenced:?}, {} rows, {} objects, {} PUTs refused by the conditional create",
            rows.len(),
            objects,
            stats.put_precondition_failed
        );
    }
    assert!(
        conflicts > 0,
        "the writers never collided in {rounds} rounds"
    );
    Ok(())
}

/// Runs `script` in the `sqlite3` shell with the Go VFS loaded, on `target`.
fn go_vfs_shell(target: &ReplicaTarget, dir: &Path, script: &str) -> Result<String> {
    let so = testkit::golitestream::go_vfs_so()?;
    let file = dir.join("go-vfs.sql");
    std::fs::write(
        &file,
        format!(
            ".load {}\n.open file:app.db?vfs=litestream\n{script}\n",
            so.display()
        ),
    )?;
    let mut cmd = Command::new("sh");
    testkit::golitestream::sanitize_env(&mut cmd);
    cmd.envs(target.go_vfs_env())
        .arg("-c")
        .arg("exec sqlite3 -batch < \"$1\" 2>&1")
        .arg("sh")
        .arg(&file);
    let out = testkit::golitestream::run_bounded(&mut cmd, Duration::from_secs(60))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn the_writer_compacts_and_the_replica_stays_readable() -> Result<()> {
    load_extension()?;
    let (dir, s3_root, _server, target) = s3_replica("db/compacted")?;
    let url = target.url();
    let extra = format!(
        "&sync_interval=100ms&compaction_levels={}&snapshot_interval=3s&l0_retention=1s&buffer_path={}",
        uri_encode("1s,2s"),
        uri_encode(&dir.path().join("app.buffer").display().to_string())
    );
    let ours = open_vfs_rw("app.db", &url, &extra)?;
    ours.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")?;
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_secs(7) {
        n += 1;
        ours.execute(
            "INSERT INTO t(v) VALUES (printf('%.*c', 50 + ?1 % 400, 'v'))",
            [n],
        )?;
        if n % 50 == 0 {
            ours.execute("DELETE FROM t WHERE id % 7 = ?1 % 7", [n])?;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let want = snapshot(&ours)?;
    let sync: String = ours.query_row("PRAGMA litestream_sync", [], |r| r.get(0))?;
    // Levels 1, 2 and 9 were written, and level 0 was pruned behind level 1.
    let levels: BTreeMap<String, usize> = {
        let mut m = BTreeMap::new();
        for e in std::fs::read_dir(s3_root.join("bucket/db/compacted"))? {
            let e = e?;
            m.insert(
                e.file_name().to_string_lossy().to_string(),
                std::fs::read_dir(e.path())?.count(),
            );
        }
        m
    };
    println!("compaction: {n} commits, TXID {sync}, files per level {levels:?}");
    for level in ["0001", "0002", "0009"] {
        assert!(
            levels.get(level).copied().unwrap_or(0) > 0,
            "no file at level {level}: {levels:?}"
        );
    }
    let txid = u64::from_str_radix(&sync, 16)?;
    assert!(
        (levels.get("0000").copied().unwrap_or(0) as u64) < txid / 2,
        "level 0 was not pruned: {levels:?} for TXID {txid}"
    );
    drop(ours);
    let restored = go_restore(&target, dir.path(), "restored.db")?;
    assert_eq!(integrity(&restored)?, "ok");
    assert_eq!(snapshot(&restored)?, want, "litestream restore");
    let fresh = open_vfs("app.db", &format!("{url}&fresh=1"), "")?;
    assert_eq!(snapshot(&fresh)?, want, "a fresh reader of ours");
    let go_rows = go_vfs_shell(
        &target,
        dir.path(),
        "SELECT count(*), sum(length(v)) FROM t;",
    )?;
    let ours_rows: String =
        fresh.query_row("SELECT count(*) || '|' || sum(length(v)) FROM t", [], |r| {
            r.get(0)
        })?;
    assert_eq!(
        go_rows, ours_rows,
        "the Go VFS reads what the writer compacted"
    );
    Ok(())
}

/// Chaos with our own writer: a `vfs-writer` process commits through the fault proxy (5 % of
/// its requests fail in every way the proxy knows, so some PUTs succeed upstream while the
/// writer sees an error, and its retry meets its own file) while reader threads read the same
/// replica through the proxy. Every state a reader sees must be a prefix of the writer's
/// acknowledged commits, the same through the table and through the index; once the faults
/// stop, the writer's close uploads everything and `litestream restore` has every acknowledged
/// commit. `LITESTREAM_CHAOS_SECONDS` (default 8 here) and `LITESTREAM_CHAOS_SEED`.
#[test]
fn our_writer_under_faults_loses_nothing_and_readers_see_whole_states() -> Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use testkit::fault::{FaultConfig, FaultProxy};

    load_extension()?;
    let seconds = env_u64("LITESTREAM_CHAOS_SECONDS", 8);
    let seed = env_u64(
        "LITESTREAM_CHAOS_SEED",
        0x5eed_0000 + std::process::id() as u64,
    );
    println!("writer chaos: seed={seed} seconds={seconds}");
    let (dir, _s3_root, server, target) = s3_replica("db/chaos")?;
    let proxy = FaultProxy::start(server.addr())?;
    let url = target.url().replace(&server.endpoint(), &proxy.endpoint());
    let buffer = dir.path().join("writer.buffer");

    // The table exists before the readers start.
    let init = Writer::spawn(&[
        "stream",
        &url,
        &buffer.display().to_string(),
        "1",
        "1",
        "100ms",
        "w",
    ])?
    .finish(Duration::from_secs(60))?;
    anyhow::ensure!(acked(&init).len() == 1, "initial commit: {init:?}");
    let mut writer = Writer::spawn(&[
        "stream",
        &url,
        &buffer.display().to_string(),
        "2",
        "1000000",
        "100ms",
        "w",
    ])?;
    // Faults start once the writer has opened: write mode assumes that a listing is not stale
    // (S3, GCS, Azure and local files list consistently), and the proxy's stale LISTs would make
    // it start from an old state. (It would then be fenced at its first upload, keeping its
    // commits; docs/write-mode.md says so.)
    writer.wait_for_ack(Duration::from_secs(30))?;
    proxy.set_faults(FaultConfig::chaos(seed, 0.05));

    // Readers: (count, max id, count through the index), or an allowed error.
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<(i64, i64, i64)>>> = Arc::default();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let (stop, seen, errors) = (stop.clone(), seen.clone(), errors.clone());
            let url = format!("{url}&reader={r}");
            std::thread::spawn(move || {
                let mut conn = None;
                while !stop.load(Ordering::Relaxed) {
                    if conn.is_none() {
                        conn = open_vfs("app.db", &url, "&poll_interval=100ms").ok();
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    let c = conn.as_ref().expect("opened");
                    let r = c.query_row(
                        "SELECT count(*), max(id), (SELECT count(*) FROM t INDEXED BY t_tag WHERE tag >= '') FROM t",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    );
                    match r {
                        Ok(v) => seen.lock().unwrap().push(v),
                        Err(e) => match e.sqlite_error_code() {
                            Some(rusqlite::ErrorCode::DatabaseBusy)
                            | Some(rusqlite::ErrorCode::SystemIoFailure) => {}
                            _ => errors.lock().unwrap().push(e.to_string()),
                        },
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    let faults = proxy.stats();
    proxy.set_faults(FaultConfig::none());
    // Let a few clean uploads happen, then stop the writer gracefully... by killing it: its
    // buffer holds whatever was not uploaded, and a reopen (below) uploads it.
    std::thread::sleep(Duration::from_millis(500));
    let lines = writer.kill()?;
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("reader panicked");
    }
    let errs: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("err ") || l.starts_with("openerr"))
        .collect();
    anyhow::ensure!(
        errs.is_empty(),
        "the writer failed under 5 % faults: {errs:?}"
    );
    let mut all: BTreeSet<i64> = acked(&init);
    all.extend(acked(&lines));
    let rows = dump_child(&url, &buffer)?.map_err(|e| anyhow::anyhow!("reopen: {e}"))?;
    let ids: BTreeSet<i64> = rows.keys().copied().collect();
    let lost: Vec<_> = all.difference(&ids).collect();
    assert!(lost.is_empty(), "acknowledged commits lost: {lost:?}");

    let seen = seen.lock().unwrap().clone();
    let unexpected = errors.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "readers got unexpected errors: {unexpected:?}"
    );
    let mut wrong = 0;
    for &(count, max, via_index) in &seen {
        // Ids are committed in order, one per transaction: a whole state holds exactly the ids
        // up to its largest.
        let want = ids.range(..=max).count() as i64;
        if count != want || via_index != count {
            wrong += 1;
            eprintln!("wrong state: count {count}, max {max}, via index {via_index}, want {want}");
        }
    }
    let restored = go_restore(&target, dir.path(), "restored.db")?;
    assert_eq!(integrity(&restored)?, "ok");
    let restored_ids: BTreeSet<i64> = restored
        .prepare("SELECT id FROM t")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    assert_eq!(restored_ids, ids, "litestream restore after the reopen");
    println!(
        "writer chaos: seed={seed} acknowledged={} lost=0 reads={} wrong={wrong} proxy_requests={} faults_injected={} (500 {} / 503 {} / SlowDown {} / resets {} / stalls {} / truncated {} / stale lists {})",
        all.len(),
        seen.len(),
        faults.requests,
        faults.injected(),
        faults.http_500,
        faults.http_503,
        faults.slow_down,
        faults.resets,
        faults.timeouts,
        faults.truncated,
        faults.stale_lists,
    );
    assert_eq!(
        wrong, 0,
        "readers saw states that are not a prefix of the commits"
    );
    assert!(seen.len() >= 50, "too few reads: {}", seen.len());
    assert!(faults.injected() > 0, "no fault was injected");
    Ok(())
}

/// Runs a sqlite3 shell in write mode on `url` with `buffer`, returning once it holds the
/// buffer (it has printed `ready`); it keeps it until killed.
fn shell_writer_holding(url: &str, buffer: &Path) -> Result<Child> {
    let mut child = Command::new("sqlite3")
        .arg("-batch")
        .arg("-cmd")
        .arg(format!(".load {}", e2e::extension_path()?.display()))
        .arg(":memory:")
        .env_remove("LITESTREAM_REPLICA_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    use std::io::Write;
    child.stdin.take().context("stdin")?.write_all(
        format!(
            ".open file:app.db?vfs=litestream&write_enabled=true&replica_url={}&buffer_path={}\nSELECT 'ready' FROM t LIMIT 1;\n.shell sleep 60\n",
            uri_encode(url),
            uri_encode(&buffer.display().to_string())
        )
        .as_bytes(),
    )?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    ensure_line(&line, "ready")?;
    Ok(child)
}

fn ensure_line(line: &str, want: &str) -> Result<()> {
    if line.trim() != want {
        bail!("expected {want:?}, got {line:?}");
    }
    Ok(())
}

fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?)
}

fn assert_read_only(conn: &Connection, sql: &str) {
    let err = conn.execute(sql, []).unwrap_err();
    assert_eq!(
        e2e::sqlite_code(&err),
        Some(rusqlite::ErrorCode::ReadOnly),
        "{sql}: {err}"
    );
}

fn switch(conn: &Connection, on: u8) -> rusqlite::Result<String> {
    conn.query_row(
        &format!("PRAGMA litestream_write_enabled = {on}"),
        [],
        |r| r.get(0),
    )
}

#[test]
fn write_mode_switches_on_an_open_connection() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let target = ReplicaTarget::file(&dir.path().join("replica"))?;
    let url = target.url();
    let buffer = dir.path().join("app.buffer");
    // The replica is made by another process (the sqlite3 shell in write mode).
    e2e::shell_write(
        &url,
        &buffer,
        "CREATE TABLE t(x); INSERT INTO t VALUES (1);",
    )?;

    // Connections as an application opens them (read-write flags), without write mode.
    let extra = format!(
        "&buffer_path={}&poll_interval=100ms",
        uri_encode(&buffer.display().to_string())
    );
    let conn = e2e::open_vfs_app("app.db", &url, &extra)?;
    let other = open_vfs("app.db", &url, &extra)?;
    assert_eq!(switch(&conn, 0)?, "0");
    assert_read_only(&conn, "INSERT INTO t VALUES (2)");

    // Refused inside a transaction, while travelling in time, and while another process
    // holds the buffer; the connection stays a reader each time.
    conn.execute_batch("BEGIN; SELECT count(*) FROM t;")?;
    let err = switch(&conn, 1).unwrap_err().to_string();
    assert!(err.contains("COMMIT or ROLLBACK first"), "{err}");
    conn.execute_batch("COMMIT")?;
    let txid: String = conn.query_row("PRAGMA litestream_txid", [], |r| r.get(0))?;
    conn.query_row(
        &format!("PRAGMA litestream_txid = '{txid}'"),
        [],
        |_| Ok(()),
    )?;
    let err = switch(&conn, 1).unwrap_err().to_string();
    assert!(err.contains("litestream_time = 'latest'"), "{err}");
    conn.query_row("PRAGMA litestream_time = 'latest'", [], |_| Ok(()))?;
    let mut holder = shell_writer_holding(&url, &buffer)?;
    let err = switch(&conn, 1).unwrap_err().to_string();
    holder.kill()?;
    holder.wait()?;
    assert!(
        err.contains("another process is writing through the buffer"),
        "{err}"
    );
    assert_eq!(
        conn.query_row("PRAGMA litestream_write_enabled", [], |r| r
            .get::<_, String>(0))?,
        "0"
    );

    // On: writes go through the buffer and up; the other connection reads them at once.
    assert_eq!(switch(&conn, 1)?, "1");
    conn.execute_batch("INSERT INTO t VALUES (2); INSERT INTO t VALUES (3);")?;
    assert_eq!(count(&other)?, 3);
    let stats: String = conn.query_row("PRAGMA litestream_stats", [], |r| r.get(0))?;
    assert!(stats.contains(&buffer.display().to_string()), "{stats}");

    // Off: what is pending is uploaded, the buffer is released (another process writes
    // through it), and the connection follows the replica again.
    assert_eq!(switch(&conn, 0)?, "0");
    assert_read_only(&conn, "INSERT INTO t VALUES (4)");
    e2e::shell_write(&url, &buffer, "INSERT INTO t VALUES (10);")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&conn)? != 4 {
        assert!(
            Instant::now() < deadline,
            "the other process's row never arrived"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // On again, on top of the other writer's TXID, and off.
    assert_eq!(switch(&conn, 1)?, "1");
    conn.execute("INSERT INTO t VALUES (5)", [])?;
    assert_eq!(switch(&conn, 0)?, "0");
    drop((conn, other));
    let restored = go_restore(&target, dir.path(), "restored.db")?;
    assert_eq!(
        dump(&restored, "SELECT x FROM t ORDER BY x")?,
        [1, 2, 3, 5, 10]
            .iter()
            .map(|x| vec![format!("Integer({x})")])
            .collect::<Vec<_>>()
    );
    Ok(())
}
