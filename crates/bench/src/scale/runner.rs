//! The runner side of the scale suite: one [`ScaleSpec`] in this (fresh) process.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};

use super::pages::body_version;
use super::{ScaleOutput, ScaleSpec, ScaleWorkload};
use crate::spec::{Rng, Target, VFS_URI};

/// The first query and the follow's re-query: row 1, whose `body` names the last commit.
const SQL_ROW: &str = "SELECT body FROM t WHERE id = ?1";
/// How often the follow re-queries and samples memory.
const TICK: Duration = Duration::from_millis(100);
/// Rows from the end of the table of the deep point read.
const DEEP_FROM_END: u64 = 7;

/// Runs `spec`, filling `out` as it goes (what was measured before a failure is kept).
pub fn run(spec: &ScaleSpec, out: &mut ScaleOutput) -> Result<()> {
    let t = Instant::now();
    let (loader, _) = crate::spec::load_extension(&spec.extension)?;
    let conn = Connection::open_with_flags(
        VFS_URI,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )
    .with_context(|| format!("open {VFS_URI}"))?;
    let mut stmt = conn.prepare(SQL_ROW)?;
    row_version(&mut stmt, 1).context("first query")?;
    out.open_ms = t.elapsed().as_secs_f64() * 1000.0;
    out.rss_after_open_kb = status_kb("VmRSS:");
    out.hwm_after_open_kb = Some(status_kb("VmHWM:"));
    out.index_after_open = index_bytes(spec, &conn)?;

    match spec.workload {
        ScaleWorkload::Hydrate => {
            let path = spec.hydration_path.as_ref().context("no hydration path")?;
            crate::spec::wait_hydrated(&conn, spec.target, path, spec.db_bytes, true)?;
            out.hydrate_ms = Some(t.elapsed().as_secs_f64() * 1000.0);
        }
        ScaleWorkload::Follow => {
            let t = Instant::now();
            let v = row_version(&mut stmt, spec.leaves - DEEP_FROM_END).context("deep read")?;
            out.deep_read_ms = Some(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(v == 0, "deep row at version {v} before any commit");
            std::fs::write(&spec.ready_path, b"")?;
            follow(spec, &mut stmt, out)?;
            out.index_follow_end = index_bytes(spec, &conn)?;
        }
    }
    drop(stmt);
    // Close before exit: the Go VFS writes its hydration sidecar on close.
    drop(conn);
    drop(loader);
    Ok(())
}

/// Re-queries row 1 and a random row every [`TICK`] for the follow's length, sampling memory.
fn follow(
    spec: &ScaleSpec,
    stmt: &mut rusqlite::Statement<'_>,
    out: &mut ScaleOutput,
) -> Result<()> {
    let mut rng = Rng::new(0x00f0_110e);
    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    let length = Duration::from_secs_f64(spec.follow_secs);
    let mut ticks = 0u32;
    while t0.elapsed() < length {
        let seen = row_version(stmt, 1)?;
        out.last_commit_seen = out.last_commit_seen.max(seen);
        row_version(stmt, 1 + rng.below(spec.leaves))?;
        out.follow_queries += 2;
        out.follow_rss_peak_kb = out.follow_rss_peak_kb.max(status_kb("VmRSS:"));
        ticks += 1;
        if let Some(wait) = (TICK * ticks).checked_sub(t0.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    out.follow_secs = t0.elapsed().as_secs_f64();
    out.follow_cpu_secs = cpu_secs() - cpu0;
    out.follow_rss_end_kb = status_kb("VmRSS:");
    out.follow_rss_peak_kb = out.follow_rss_peak_kb.max(out.follow_rss_end_kb);
    Ok(())
}

/// What our VFS's page map keeps resident (`PRAGMA litestream_stats`, `index_bytes`); `None`
/// for the Go VFS, which does not say.
fn index_bytes(spec: &ScaleSpec, conn: &Connection) -> Result<Option<u64>> {
    if spec.target != Target::Ours {
        return Ok(None);
    }
    let stats: String = conn.query_row("PRAGMA litestream_stats", [], |r| r.get(0))?;
    let v: serde_json::Value = serde_json::from_str(&stats).context("litestream_stats")?;
    let n = v["index_bytes"].as_u64();
    n.map(Some)
        .with_context(|| format!("no index_bytes in {stats}"))
}

fn row_version(stmt: &mut rusqlite::Statement<'_>, id: u64) -> Result<u64> {
    let body: String = stmt.query_row([id as i64], |r| r.get(0))?;
    body_version(&body).with_context(|| format!("row {id}: unexpected body"))
}

/// A `kB` line of `/proc/self/status` (`VmRSS:`, `VmHWM:`).
pub fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU time of this process so far, seconds (`/proc/self/stat`, fields 14 and 15,
/// in clock ticks of 1/100 s on Linux).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
