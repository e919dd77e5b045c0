//! The engine's background loops under their supervisor, driven by named fault points (built
//! only with the `fault-points` feature, which these tests enable), and the process registry
//! under concurrent opens and idle releases.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Layout, ReplicaDir};
use replica::supervise::{arm, set_first_backoff, set_idle_timeout, MAX_FAILURES_IN_A_ROW};
use replica::{ReplicaOptions, Target};

fn opts(url: &str) -> ReplicaOptions {
    ReplicaOptions {
        url: url.into(),
        poll_interval: Duration::from_millis(20),
        cache_size: 8 << 20,
        hydration: None,
        verify: false,
        write: None,
    }
}

/// The hang guard of this file's waits.
const WAIT: Duration = Duration::from_secs(30);

fn eventually(what: &str, f: impl FnMut() -> bool) {
    common::eventually(what, WAIT, f)
}

#[test]
fn a_poller_that_panics_is_restarted_and_keeps_following() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(dir.path(), Layout::Hex);
    r.snapshot(9, 1, 5, 1, 1);
    let s = replica::open(&opts(&r.url())).unwrap();
    arm("poller", s.display_url(), 1);
    eventually("the poller to panic", || s.stats().task_failures == 1);
    r.write(0, 2, 2, 6, &[(5, 2), (6, 2)], 2);
    eventually("txid 2 after the restart", || s.current().txid() == 2);
    assert!(s.check_health().is_ok());
    assert_eq!(s.stats().task_failures, 1);
}

#[test]
fn a_poller_that_keeps_failing_is_reported_not_served_stale() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(dir.path(), Layout::Ltx);
    r.snapshot(9, 1, 5, 1, 1);
    set_first_backoff(Duration::from_millis(1));
    let s = replica::open(&opts(&r.url())).unwrap();
    arm("poller", s.display_url(), MAX_FAILURES_IN_A_ROW);
    eventually("the poller to be given up", || s.check_health().is_err());
    let msg = s.check_health().unwrap_err().to_string();
    assert!(
        msg.contains("poller") && msg.contains("fault point poller"),
        "{msg}"
    );
    assert_eq!(s.stats().task_failures, u64::from(MAX_FAILURES_IN_A_ROW));
    // Past states do not depend on the poller.
    assert_eq!(s.version_at(Target::Txid(1)).unwrap().txid(), 1);
}

/// Opens and drops sessions while the poller releases the idle replica at every tick (idle
/// timeout zero). A session must always hold the registered replica, whose poller runs: one
/// that joined a replica just being released would read a state that never moves again.
#[test]
fn opens_racing_idle_releases_always_get_a_followed_replica() {
    let dir = tempfile::tempdir().unwrap();
    let r = ReplicaDir::new(dir.path(), Layout::Hex);
    r.snapshot(9, 1, 5, 1, 1);
    set_idle_timeout(Duration::ZERO);
    let o = opts(&r.url());
    let mut replicas = Vec::new();
    for _ in 0..300 {
        let s = replica::open(&o).unwrap();
        assert!(s.is_registered(), "a session holds a released replica");
        replicas.push(Arc::downgrade(&*s));
        drop(s);
        std::thread::sleep(Duration::from_millis(1));
    }
    // Releases did happen meanwhile (several replica instances were made in turn).
    let distinct = replicas.iter().filter(|w| w.upgrade().is_none()).count();
    assert!(distinct > 0, "the poller never released the idle replica");
    let s = replica::open(&o).unwrap();
    r.write(0, 2, 2, 6, &[(5, 2), (6, 2)], 2);
    eventually("the last session to follow txid 2", || {
        s.current().txid() == 2
    });
}
