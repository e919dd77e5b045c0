//! Damaged replicas, read through the built extension from the real S3 server on 127.0.0.1.
//!
//! The replicas are written with our own LTX encoder from a real SQLite database
//! ([`EncodedHistory`]: a ~300 KB snapshot read with ranged GETs, small level-0 files read whole
//! and checksum-verified, and one level-0 file larger than 64 KiB), or by the Go `litestream`
//! 0.5.17, then damaged on disk: bit flips in page frames, in the page index and in the header,
//! truncated files, a wrong file checksum, a file whose name disagrees with its header, a file
//! missing from the middle of the chain.
//!
//! Each case is opened under a fresh key prefix and read completely (every row, then
//! `PRAGMA integrity_check`). The promise: an error, or exactly the rows of the TXID the
//! connection reports; never differing rows. Errors must name the damaged object's key, in the
//! open error or in the log (`LITESTREAM_LOG_FILE`); a `SQLITE_CORRUPT` from SQLite itself means
//! the VFS served damaged bytes without noticing, and counts as a failure.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Result;
use e2e::{dump, open_vfs, EncodedHistory, ROWS_SQL};
use rusqlite::ErrorCode;
use testkit::golitestream::{ReplicaTarget, ReplicateOpts, Replicator};
use testkit::{PrimaryDb, S3Server};

fn history() -> &'static EncodedHistory {
    static H: OnceLock<EncodedHistory> = OnceLock::new();
    H.get_or_init(|| EncodedHistory::build(6).expect("history builds"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// The rows of the reported TXID.
    Correct,
    /// The open failed, naming the damaged key (or the TXID gap).
    OpenErrorNamed,
    /// A read failed with SQLITE_IOERR/BUSY and the log names the damaged key.
    ReadErrorNamed,
    /// The open failed without naming what is damaged.
    OpenErrorUnnamed,
    /// A read failed, and the log does not name the damaged key.
    ReadErrorUnnamed,
    /// SQLite found the damage itself (`SQLITE_CORRUPT`, or integrity_check not ok): the VFS
    /// served damaged bytes.
    SqliteCorrupt,
    /// Rows that differ from the reported TXID's.
    Wrong,
}

impl Outcome {
    fn acceptable(self) -> bool {
        matches!(
            self,
            Outcome::Correct | Outcome::OpenErrorNamed | Outcome::ReadErrorNamed
        )
    }
}

struct Lab {
    server: S3Server,
    _root: tempfile::TempDir,
    next: std::sync::atomic::AtomicUsize,
    /// More URI parameters for every open.
    extra: &'static str,
}

impl Lab {
    fn new() -> Result<Lab> {
        Self::with(" ")
    }

    /// A lab whose opens check the file checksum of every file (`verify=true`).
    fn verifying() -> Result<Lab> {
        Self::with("&verify=true")
    }

    fn with(extra: &'static str) -> Result<Lab> {
        crate::log_path();
        let root = tempfile::tempdir()?;
        let server = S3Server::start(root.path())?;
        server.create_bucket("bucket")?;
        Ok(Lab {
            server,
            _root: root,
            next: 0.into(),
            extra: extra.trim(),
        })
    }

    fn url(&self, prefix: &str) -> String {
        format!(
            "s3://bucket/{prefix}?endpoint={}&region=us-east-1&force-path-style=true",
            self.server.endpoint()
        )
    }

    /// Writes `files` under a fresh prefix, opens it and reads everything, then removes them:
    /// the test server's LIST reads every object of the bucket, so hundreds of finished cases
    /// left in place would make it slow enough to time out.
    fn case(&self, label: &str, files: &[(String, Vec<u8>)]) -> Result<(Outcome, String)> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("{label}-{n:04}");
        let dir = self.server.root().join("bucket").join(&prefix);
        let outcome = self.try_case(&prefix, &dir, files);
        let _ = std::fs::remove_dir_all(&dir);
        outcome
    }

    fn try_case(
        &self,
        prefix: &str,
        dir: &std::path::Path,
        files: &[(String, Vec<u8>)],
    ) -> Result<(Outcome, String)> {
        for (key, bytes) in files {
            let p = dir.join(key);
            std::fs::create_dir_all(p.parent().unwrap())?;
            std::fs::write(&p, bytes)?;
        }
        let key_marker = format!("{prefix}/");
        let conn = match open_vfs(
            "app.db",
            &self.url(prefix),
            &format!("&poll_interval=0&cache_size=1MB{}", self.extra),
        ) {
            Ok(c) => c,
            Err(e) => {
                let msg = e.to_string();
                let named = msg.contains(&key_marker) || msg.contains("TXID gap");
                let o = if named {
                    Outcome::OpenErrorNamed
                } else {
                    Outcome::OpenErrorUnnamed
                };
                return Ok((o, msg));
            }
        };
        // The latest state, then (time travel) the state of each damaged file's TXID.
        let pristine = &history().files;
        let damaged = pristine
            .iter()
            .filter(|f| !files.contains(f))
            .filter_map(|(k, _)| ltx::parse_filename(k.rsplit('/').next()?))
            .map(|(_, max)| Some(max));
        let mut worst: Option<(Outcome, String)> = None;
        for target in std::iter::once(None).chain(damaged) {
            let got = read_at(&conn, target, &key_marker);
            if worst.as_ref().is_none_or(|w| got.0 > w.0) {
                worst = Some(got);
            }
        }
        Ok(worst.expect("read at least once"))
    }
}

/// Reads every row and runs integrity_check at `target` (or the latest state).
fn read_at(
    conn: &rusqlite::Connection,
    target: Option<u64>,
    key_marker: &str,
) -> (Outcome, String) {
    let pragma = match target {
        Some(t) => format!("PRAGMA litestream_txid = '{t:016x}'"),
        None => "PRAGMA litestream_txid = 'latest'".to_string(),
    };
    if let Err(e) = conn.query_row(&pragma, [], |_| Ok(())) {
        let msg = e.to_string();
        return if msg.contains(key_marker) {
            (Outcome::ReadErrorNamed, msg)
        } else {
            (Outcome::ReadErrorUnnamed, format!("{pragma}: {msg}"))
        };
    }
    let read = (|| -> rusqlite::Result<(u64, Vec<Vec<String>>, String)> {
        conn.execute_batch("BEGIN")?;
        let rows = dump(conn, ROWS_SQL)?;
        let txid: String = conn.query_row("SELECT litestream_txid()", [], |r| r.get(0))?;
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        conn.execute_batch("COMMIT")?;
        Ok((u64::from_str_radix(&txid, 16).unwrap_or(0), rows, check))
    })();
    match read {
        Ok((txid, rows, check)) => {
            let want = history().rows_at(txid);
            if want != Some(&rows) || target.is_some_and(|t| t != txid) {
                (Outcome::Wrong, format!("txid {txid:016x}: rows differ"))
            } else if check != "ok" {
                (
                    Outcome::SqliteCorrupt,
                    format!("txid {txid:016x}: integrity_check: {check}"),
                )
            } else {
                (Outcome::Correct, format!("txid {txid:016x}"))
            }
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            match e.sqlite_error_code() {
                Some(ErrorCode::SystemIoFailure | ErrorCode::DatabaseBusy) => {
                    // The log line is written before SQLite sees the error code.
                    let log = std::fs::read_to_string(crate::log_path()).unwrap_or_default();
                    if log.contains(key_marker) {
                        (Outcome::ReadErrorNamed, e.to_string())
                    } else {
                        (Outcome::ReadErrorUnnamed, e.to_string())
                    }
                }
                _ => (Outcome::SqliteCorrupt, format!("{target:?}: {e}")),
            }
        }
    }
}

/// A damaged replica: what was done, and its files (key, bytes).
type Case = (String, Vec<(String, Vec<u8>)>);

/// Flips bit `pos % 8` of byte `pos` of `key` in a copy of the history.
fn flipped(key: &str, pos: usize) -> Vec<(String, Vec<u8>)> {
    let mut files = history().files.clone();
    let f = files
        .iter_mut()
        .find(|(k, _)| k == key)
        .expect("key exists");
    f.1[pos] ^= 1 << (pos % 8);
    files
}

fn key_of(txid: u64) -> String {
    history()
        .files
        .iter()
        .find(|(k, _)| k.ends_with(&format!("{txid:016x}.ltx")))
        .map(|(k, _)| k.clone())
        .expect("file for txid")
}

fn bytes_of(key: &str) -> &'static [u8] {
    &history().files.iter().find(|(k, _)| k == key).unwrap().1
}

/// Runs `cases`, prints a summary, and returns the tally and the unacceptable outcomes.
fn run(
    lab: &Lab,
    label: &str,
    cases: Vec<Case>,
) -> Result<(BTreeMap<Outcome, usize>, Vec<String>)> {
    let mut tally = BTreeMap::new();
    let mut bad = Vec::new();
    for (what, files) in cases {
        let (o, detail) = lab.case(label, &files)?;
        *tally.entry(o).or_insert(0) += 1;
        if !o.acceptable() {
            bad.push(format!("{what}: {o:?}: {detail}"));
        }
    }
    println!("corruption {label}: {tally:?}");
    for b in bad.iter().take(20) {
        println!("  {b}");
    }
    Ok((tally, bad))
}

fn assert_all_acceptable(label: &str, bad: &[String]) {
    assert!(
        bad.is_empty(),
        "{label}: {} unacceptable outcomes:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn pristine_history_reads_back() -> Result<()> {
    let lab = Lab::new()?;
    let (o, detail) = lab.case("pristine", &history().files)?;
    assert_eq!(o, Outcome::Correct, "{detail}");
    assert!(detail.contains("0000000000000006"), "{detail}");
    // The sizes the other tests rely on: a ranged snapshot and TXID 3, whole small files.
    assert!(bytes_of(&key_of(1)).len() > 64 * 1024);
    assert!(bytes_of(&key_of(3)).len() > 64 * 1024);
    assert!(bytes_of(&key_of(2)).len() < 64 * 1024);
    Ok(())
}

#[test]
fn small_files_are_verified_whole() -> Result<()> {
    // Files up to 64 KiB are fetched whole and checksum-verified: any flip anywhere fails the
    // open, naming the file.
    let lab = Lab::new()?;
    let mut cases = Vec::new();
    for txid in [2u64, 4, 6] {
        let key = key_of(txid);
        let len = bytes_of(&key).len();
        for pos in (0..len)
            .step_by(len / 25)
            .chain([len - 1, len - 9, len - 17, 99])
        {
            cases.push((format!("{key} byte {pos}"), flipped(&key, pos)));
        }
    }
    let (tally, bad) = run(&lab, "small", cases)?;
    assert_all_acceptable("small files", &bad);
    assert!(!tally.contains_key(&Outcome::Correct), "{tally:?}");
    Ok(())
}

#[test]
fn truncated_files_fail_naming_the_key() -> Result<()> {
    let lab = Lab::new()?;
    let mut cases = Vec::new();
    for txid in [1u64, 2, 3] {
        let key = key_of(txid);
        let len = bytes_of(&key).len();
        for keep in [0, 50, 100, len / 3, len / 2, len - 40, len - 24, len - 1] {
            let mut files = history().files.clone();
            files
                .iter_mut()
                .find(|(k, _)| *k == key)
                .unwrap()
                .1
                .truncate(keep);
            cases.push((format!("{key} truncated to {keep}"), files));
        }
    }
    let (tally, bad) = run(&lab, "truncated", cases)?;
    assert_all_acceptable("truncated files", &bad);
    assert!(!tally.contains_key(&Outcome::Correct), "{tally:?}");
    Ok(())
}

#[test]
fn wrong_file_checksum() -> Result<()> {
    // The file checksum (the trailer's last 8 bytes) can only be checked on a whole file: a
    // small file with a wrong one fails; a large file read by ranges is served from its intact
    // pages (correct rows).
    let lab = Lab::new()?;
    let mut cases = Vec::new();
    for txid in [1u64, 2, 3] {
        let key = key_of(txid);
        let len = bytes_of(&key).len();
        cases.push((format!("{key} checksum"), flipped(&key, len - 3)));
    }
    let (tally, bad) = run(&lab, "checksum", cases)?;
    assert_all_acceptable("wrong checksum", &bad);
    assert_eq!(tally.get(&Outcome::OpenErrorNamed), Some(&1), "{tally:?}");
    Ok(())
}

#[test]
fn name_disagreeing_with_header_and_missing_files() -> Result<()> {
    let lab = Lab::new()?;
    let files = &history().files;
    let mut cases = Vec::new();
    // The content of TXID 5 stored under the name of TXID 4 (and 5 absent).
    let mut swapped: Vec<_> = files.clone();
    let five = bytes_of(&key_of(5)).to_vec();
    swapped.iter_mut().find(|(k, _)| *k == key_of(4)).unwrap().1 = five;
    swapped.retain(|(k, _)| *k != key_of(5));
    cases.push(("name 4, header 5".to_string(), swapped));
    // The snapshot under a name claiming it reaches TXID 2.
    let mut renamed: Vec<_> = files.clone();
    let snap = renamed.iter_mut().find(|(k, _)| *k == key_of(1)).unwrap();
    snap.0 = format!("0009/{}", ltx::format_filename(1, 2));
    cases.push(("snapshot named 1-2".to_string(), renamed));
    // A missing file in the middle of the chain: a TXID gap fails the open.
    for gone in [2u64, 4] {
        let mut missing: Vec<_> = files.clone();
        missing.retain(|(k, _)| *k != key_of(gone));
        cases.push((format!("missing txid {gone}"), missing));
    }
    let (tally, bad) = run(&lab, "names", cases)?;
    assert_all_acceptable("names and gaps", &bad);
    assert_eq!(tally.get(&Outcome::OpenErrorNamed), Some(&4), "{tally:?}");
    // The missing snapshot: no history to start from.
    let mut no_snapshot: Vec<_> = files.clone();
    no_snapshot.retain(|(k, _)| *k != key_of(1));
    let (o, msg) = lab.case("nosnap", &no_snapshot)?;
    assert!(
        matches!(o, Outcome::OpenErrorNamed | Outcome::OpenErrorUnnamed),
        "{o:?}"
    );
    assert!(
        msg.contains("not at 1") || msg.contains("no snapshot"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn header_bit_flips_in_ranged_files() -> Result<()> {
    // Large files are read by range: their 100-byte header is decoded and cross-checked with
    // the file name, but nothing covers it with a checksum.
    let lab = Lab::new()?;
    let mut cases = Vec::new();
    for txid in [1u64, 3] {
        let key = key_of(txid);
        for pos in (txid as usize % 2..ltx::HEADER_SIZE).step_by(if txid == 1 { 1 } else { 2 }) {
            cases.push((format!("{key} header byte {pos}"), flipped(&key, pos)));
        }
    }
    let (tally, bad) = run(&lab, "header", cases)?;
    assert!(
        !tally.contains_key(&Outcome::Wrong),
        "{tally:?}\n{}",
        bad.join("\n")
    );
    assert_all_acceptable("header flips", &bad);
    Ok(())
}

#[test]
fn index_bit_flips_in_ranged_files() -> Result<()> {
    let lab = Lab::new()?;
    let mut cases = Vec::new();
    for txid in [1u64, 3] {
        let key = key_of(txid);
        let bytes = bytes_of(&key);
        let loc = ltx::page_index_location(bytes.len() as u64, bytes)?;
        let start = loc.index_start as usize;
        let end = start + loc.index_len as usize + ltx::INDEX_LEN_SIZE;
        let step = ((end - start) / 60).max(1);
        for pos in (start..end).step_by(step) {
            cases.push((format!("{key} index byte {pos}"), flipped(&key, pos)));
        }
    }
    let (tally, bad) = run(&lab, "index", cases)?;
    assert!(
        !tally.contains_key(&Outcome::Wrong),
        "{tally:?}\n{}",
        bad.join("\n")
    );
    assert_all_acceptable("index flips", &bad);
    Ok(())
}

/// Positions in the page frames of `key`: page header, size prefix, compressed data.
fn frame_positions(key: &str) -> Vec<usize> {
    let file = ltx::decode_file(bytes_of(key)).expect("pristine file decodes");
    let mut out = Vec::new();
    for (i, e) in file.index.iter().enumerate().step_by(5) {
        let o = e.offset as usize;
        let s = e.size as usize;
        let inner = [3, 5, 6 + (i % 4), 10 + (i * 37) % (s - 10), s / 2, s - 1];
        out.extend(inner.iter().map(|d| o + d));
    }
    out
}

fn frame_flip_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for txid in [1u64, 3] {
        let key = key_of(txid);
        for pos in frame_positions(&key) {
            cases.push((format!("{key} frame byte {pos}"), flipped(&key, pos)));
        }
    }
    cases
}

#[test]
#[ignore = "without verify=true, page frames of files read by range carry no checksum: a flipped literal byte is served as page content (wrong rows / SQLITE_CORRUPT); see docs/reliability.md"]
fn frame_bit_flips_in_ranged_files() -> Result<()> {
    let (_tally, bad) = run(&Lab::new()?, "frames", frame_flip_cases())?;
    assert_all_acceptable("frame flips", &bad);
    Ok(())
}

#[test]
fn frame_bit_flips_in_ranged_files_are_caught_with_verify() -> Result<()> {
    let (tally, bad) = run(&Lab::verifying()?, "framesverify", frame_flip_cases())?;
    assert_all_acceptable("frame flips with verify=true", &bad);
    // A flip that still decodes to the same page changes nothing a reader sees (Correct);
    // every other one must fail the open, naming the key.
    assert!(
        tally.get(&Outcome::OpenErrorNamed).copied().unwrap_or(0) > 0,
        "{tally:?}"
    );
    Ok(())
}

#[test]
fn frame_structure_flips_in_ranged_files() -> Result<()> {
    // Flips in a frame's page header and size prefix are caught: the frame must hold the page
    // the index names, and decompress to exactly one page.
    let lab = Lab::new()?;
    let mut cases = Vec::new();
    for txid in [1u64, 3] {
        let key = key_of(txid);
        let file = ltx::decode_file(bytes_of(&key))?;
        for (i, e) in file.index.iter().enumerate().step_by(4) {
            let o = e.offset as usize;
            // pgno (4 bytes), flags (2 bytes), LZ4 size prefix (4 bytes).
            for d in [2 + i % 2, 3, 5, 7 + i % 3] {
                cases.push((format!("{key} frame {i} byte {d}"), flipped(&key, o + d)));
            }
        }
    }
    let (tally, bad) = run(&lab, "framehdr", cases)?;
    assert!(
        !tally.contains_key(&Outcome::Wrong),
        "{tally:?}\n{}",
        bad.join("\n")
    );
    assert_all_acceptable("frame header flips", &bad);
    Ok(())
}

#[test]
fn go_replica_damaged_on_disk() -> Result<()> {
    // A replica written by the Go litestream, damaged after the fact: a flipped byte in each
    // level-0 file (read whole, so verified), and one of them removed from the middle.
    let lab = Lab::new()?;
    let dir = tempfile::tempdir()?;
    let primary = PrimaryDb::create(&dir.path().join("app.db"))?;
    primary
        .exec("CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, body BLOB NOT NULL)")?;
    let target = ReplicaTarget::s3(&lab.server, "bucket", "go");
    let mut rep = Replicator::start(
        primary.path(),
        target.clone(),
        ReplicateOpts {
            // No compaction or snapshot beyond the first during the test.
            levels: vec![Duration::from_secs(3600)],
            snapshot_interval: Duration::from_secs(3600),
            ..ReplicateOpts::default()
        },
    )?;
    for i in 0..6 {
        primary.exec(&format!(
            "INSERT INTO t(grp, body) SELECT {i}, randomblob(300) FROM (SELECT 1 UNION ALL SELECT 2)"
        ))?;
        rep.sync()?;
    }
    rep.stop(Duration::from_secs(5))?;
    let go_root = lab.server.root().join("bucket").join("go");
    let mut l0: Vec<PathBuf> = std::fs::read_dir(go_root.join("0000"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    l0.sort();
    assert!(l0.len() >= 4, "level 0 holds {l0:?}");
    let want = dump(primary.conn(), ROWS_SQL)?;
    let pristine = read_tree(&go_root)?;
    // Pristine: the VFS agrees with the primary.
    let (o, detail) = go_case(&lab, &pristine, &want)?;
    assert_eq!(o, Outcome::Correct, "{detail}");
    let mut bad = Vec::new();
    let mut tally: BTreeMap<Outcome, usize> = BTreeMap::new();
    // Level-0 files the snapshot covers are not read at all: damage only the ones after it.
    let snapshot_max = read_tree(&go_root)?
        .iter()
        .filter(|(k, _)| k.starts_with("0009/"))
        .filter_map(|(k, _)| ltx::parse_filename(k.rsplit('/').next()?))
        .map(|(_, max)| max)
        .max()
        .unwrap_or(0);
    let after: Vec<&PathBuf> = l0
        .iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| ltx::parse_filename(&n.to_string_lossy()))
                .is_some_and(|(min, _)| min > snapshot_max)
        })
        .collect();
    assert!(after.len() >= 3, "level 0 after the snapshot: {after:?}");
    for p in &after {
        let rel = p.strip_prefix(&go_root)?.to_string_lossy().to_string();
        let len = std::fs::metadata(p)?.len() as usize;
        for pos in [10, 50, 120, len / 2, len - 1] {
            let mut files = pristine.clone();
            let f = files.iter_mut().find(|(k, _)| *k == rel).unwrap();
            f.1[pos] ^= 0x10;
            let (o, detail) = go_case(&lab, &files, &want)?;
            *tally.entry(o).or_default() += 1;
            if !o.acceptable() || o == Outcome::Correct {
                bad.push(format!("{rel} byte {pos}: {o:?}: {detail}"));
            }
        }
    }
    // The second level-0 file removed: a gap.
    let gone = after[1]
        .strip_prefix(&go_root)?
        .to_string_lossy()
        .to_string();
    let mut files = pristine.clone();
    files.retain(|(k, _)| *k != gone);
    let (o, detail) = go_case(&lab, &files, &want)?;
    *tally.entry(o).or_default() += 1;
    if o != Outcome::OpenErrorNamed || !detail.contains("gap") {
        bad.push(format!("{gone} missing: {o:?}: {detail}"));
    }
    println!("corruption go: {tally:?}");
    assert_all_acceptable("Go replica", &bad);
    Ok(())
}

fn read_tree(root: &std::path::Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "ltx") {
                out.push((
                    p.strip_prefix(root)?.to_string_lossy().to_string(),
                    std::fs::read(&p)?,
                ));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Like [`Lab::case`], for a Go replica whose only known state is the final one.
fn go_case(
    lab: &Lab,
    files: &[(String, Vec<u8>)],
    want: &[Vec<String>],
) -> Result<(Outcome, String)> {
    let n = lab.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let prefix = format!("gocase-{n:04}");
    let dir = lab.server.root().join("bucket").join(&prefix);
    for (key, bytes) in files {
        let p = dir.join(key);
        std::fs::create_dir_all(p.parent().unwrap())?;
        std::fs::write(&p, bytes)?;
    }
    let marker = format!("{prefix}/");
    let conn = match open_vfs("app.db", &lab.url(&prefix), "&poll_interval=0") {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            let o = if msg.contains(&marker) || msg.contains("TXID gap") {
                Outcome::OpenErrorNamed
            } else {
                Outcome::OpenErrorUnnamed
            };
            return Ok((o, msg));
        }
    };
    Ok(match dump(&conn, ROWS_SQL) {
        Ok(rows) if rows == want => (Outcome::Correct, String::new()),
        // Only the final state is known; any other complete read is a wrong one.
        Ok(_) => (Outcome::Wrong, "rows differ from the primary".into()),
        Err(e) => {
            let log = std::fs::read_to_string(crate::log_path()).unwrap_or_default();
            match e.sqlite_error_code() {
                Some(ErrorCode::SystemIoFailure | ErrorCode::DatabaseBusy)
                    if log.contains(&marker) =>
                {
                    (Outcome::ReadErrorNamed, e.to_string())
                }
                Some(ErrorCode::SystemIoFailure | ErrorCode::DatabaseBusy) => {
                    (Outcome::ReadErrorUnnamed, e.to_string())
                }
                _ => (Outcome::SqliteCorrupt, e.to_string()),
            }
        }
    })
}
