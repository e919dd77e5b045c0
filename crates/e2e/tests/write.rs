//! Write mode under crashes and faults, on S3: a writer killed with SIGKILL never loses an
//! acknowledged commit; our writer under injected faults loses nothing and readers see whole
//! states. What every backend must do in write mode (Go restores what we write, compaction,
//! reopening, two racing writers) is in the conformance suite (tests/conformance.rs).
//!
//! `LITESTREAM_CRASH_TRIALS` (default 6) sets how many crash trials run; the seed is printed
//! (`LITESTREAM_CRASH_SEED` replays).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{bail, Result};
use common::{acked, dump_child, env_u64, go_restore, integrity, Writer};
use e2e::{load_extension, open_vfs};
use testkit::backend::{Backend, Kind};
use testkit::golitestream::ReplicaTarget;

/// An S3 server with the replica `path` in it, and a directory for the buffers.
fn s3_replica(path: &str) -> Result<(tempfile::TempDir, Backend, ReplicaTarget)> {
    let backend = Backend::start(Kind::S3)?;
    let target = backend.target(path)?;
    Ok((tempfile::tempdir()?, backend, target))
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
    let (dir, _backend, target) = s3_replica("db/crash")?;
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
    let (dir, backend, target) = s3_replica("db/chaos")?;
    let proxy = FaultProxy::start(backend.addr().expect("an S3 server"))?;
    let url = backend.through(&proxy, &target).url();
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
