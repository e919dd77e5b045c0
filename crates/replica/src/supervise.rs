//! One supervisor for every background loop of the engine (the poller, the uploader, the
//! compactor, the hydrator): a loop that panics or returns an error is logged through
//! `tracing`, counted, and started again after a back-off. A loop that keeps failing is given
//! up, and the reason is kept in its [`Health`], so the next read or commit fails with an
//! error that names it instead of serving a state that silently stopped moving.
//!
//! Panic messages of the engine's threads go to the log, not to the host's stderr
//! ([`install_panic_hook`]).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use parking_lot::Mutex;
use tokio::runtime::Handle;

use crate::error::{Error, Result};

/// First pause before a failed loop is started again; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest pause between two restarts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Failures in a row after which a loop is given up.
pub const MAX_FAILURES_IN_A_ROW: u32 = 8;
/// A run that lasted this long was healthy: the failure count and back-off start over.
pub const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// The names of the supervised loops, as they appear in logs, stats and errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Follows the replica (LIST, new versions).
    Poller,
    /// Uploads committed transactions (write mode).
    Uploader,
    /// Compacts, snapshots and applies retention (write mode).
    Compactor,
    /// Downloads the database to a local file.
    Hydrator,
}

impl Task {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Task::Poller => "poller",
            Task::Uploader => "uploader",
            Task::Compactor => "compactor",
            Task::Hydrator => "hydrator",
        }
    }
}

/// What the supervisor knows of one loop, shared with whoever must refuse to go on without it.
#[derive(Debug)]
pub struct Health {
    task: Task,
    restarts: AtomicU64,
    given_up: Mutex<Option<String>>,
}

impl Health {
    /// A healthy loop that has not failed yet.
    pub fn new(task: Task) -> Health {
        Health {
            task,
            restarts: AtomicU64::new(0),
            given_up: Mutex::new(None),
        }
    }

    /// How many times the loop failed and was started again (or given up).
    pub fn failures(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// `Err` naming the cause once the loop was given up.
    pub fn check(&self) -> Result<()> {
        match &*self.given_up.lock() {
            None => Ok(()),
            Some(cause) => Err(Error::TaskFailed {
                task: self.task.name(),
                cause: cause.clone(),
            }),
        }
    }
}

/// How a loop's run ended, when it did not panic.
pub type RunResult = Result<()>;

/// Runs the loop `run()` makes on `rt` (the replica's runtime) under supervision. `Ok(())`
/// ends it for good (its replica or writer is gone); a panic or an `Err` restarts it with a
/// fresh `run()` after a back-off, until [`MAX_FAILURES_IN_A_ROW`] failures without a healthy
/// run.
pub fn spawn<F, Fut>(rt: &Handle, health: std::sync::Arc<Health>, context: String, run: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = RunResult> + Send + 'static,
{
    spawn_then(rt, health, context, run, |_| {});
}

/// Like [`spawn`], then `on_give_up(cause)` if the loop is given up.
pub fn spawn_then<F, Fut>(
    rt: &Handle,
    health: std::sync::Arc<Health>,
    context: String,
    run: F,
    on_give_up: impl FnOnce(String) + Send + 'static,
) where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = RunResult> + Send + 'static,
{
    install_panic_hook();
    rt.spawn(async move {
        if let Some(cause) = supervise(health, context, run).await {
            on_give_up(cause);
        }
    });
}

/// The supervisor itself, on whatever runtime polls it (tests run it on a paused clock).
/// Returns the cause when it gave the loop up, `None` when the loop ended by design.
pub async fn supervise<F, Fut>(
    health: std::sync::Arc<Health>,
    context: String,
    mut run: F,
) -> Option<String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = RunResult>,
{
    let task = health.task.name();
    let mut in_a_row = 0u32;
    let mut backoff: Option<Duration> = None;
    loop {
        let started = tokio::time::Instant::now();
        let cause = match AssertUnwindSafe(run()).catch_unwind().await {
            Ok(Ok(())) => return None,
            Ok(Err(e)) => e.to_string(),
            Err(panic) => format!("panic: {}", panic_message(&*panic)),
        };
        if started.elapsed() >= HEALTHY_RUN {
            in_a_row = 0;
            backoff = None;
        }
        in_a_row += 1;
        health.restarts.fetch_add(1, Ordering::Relaxed);
        if in_a_row >= MAX_FAILURES_IN_A_ROW {
            tracing::error!(task, %context, %cause, failures = in_a_row, "background task failed repeatedly and was stopped; reads and commits that need it now fail with this cause");
            *health.given_up.lock() = Some(cause.clone());
            return Some(cause);
        }
        let pause = backoff.map_or_else(points::first_backoff, |b| (b * 2).min(MAX_BACKOFF));
        backoff = Some(pause);
        tracing::error!(task, %context, %cause, restart_in = ?pause, "background task failed; restarting it");
        tokio::time::sleep(pause).await;
    }
}

pub use crate::panics::{install_panic_hook, panic_message};

/// Named fault points for tests: [`fault_point`] panics once where a test armed it with
/// [`arm`], for one replica (its URL as shown in messages), so tests running side by side do
/// not trip each other's points. Without the `fault-points` feature (the product build) the
/// points are empty and the back-off is fixed.
#[cfg(any(test, feature = "fault-points"))]
mod points {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use parking_lot::Mutex;

    static ARMED: Mutex<Vec<(&'static str, String)>> = Mutex::new(Vec::new());
    static FIRST_BACKOFF_MS: AtomicU64 = AtomicU64::new(super::FIRST_BACKOFF.as_millis() as u64);

    /// Makes the next `times` passes through point `name` for `context` panic.
    pub fn arm(name: &'static str, context: &str, times: u32) {
        let mut armed = ARMED.lock();
        for _ in 0..times {
            armed.push((name, context.to_string()));
        }
    }

    /// Shortens the supervisor's first back-off, so a test can see a loop given up quickly.
    pub fn set_first_backoff(d: Duration) {
        FIRST_BACKOFF_MS.store(d.as_millis() as u64, Ordering::Relaxed);
    }

    pub(super) fn first_backoff() -> Duration {
        Duration::from_millis(FIRST_BACKOFF_MS.load(Ordering::Relaxed))
    }

    static IDLE_TIMEOUT_MS: AtomicU64 = AtomicU64::new(u64::MAX);

    /// Overrides how long a replica with no session stays in the process registry, so a test
    /// can make the poller release it at every tick.
    pub fn set_idle_timeout(d: Duration) {
        IDLE_TIMEOUT_MS.store(d.as_millis() as u64, Ordering::Relaxed);
    }

    /// The override, if a test set one.
    pub fn idle_timeout() -> Option<Duration> {
        match IDLE_TIMEOUT_MS.load(Ordering::Relaxed) {
            u64::MAX => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// Panics if a test armed `name` for `context`.
    #[allow(clippy::panic)]
    pub fn fault_point(name: &'static str, context: &str) {
        let hit = {
            let mut armed = ARMED.lock();
            armed
                .iter()
                .position(|(n, c)| *n == name && c == context)
                .map(|i| armed.remove(i))
        };
        if hit.is_some() {
            panic!("fault point {name}");
        }
    }
}

#[cfg(not(any(test, feature = "fault-points")))]
mod points {
    use std::time::Duration;

    /// No fault points in the product.
    #[inline(always)]
    pub fn fault_point(_name: &'static str, _context: &str) {}

    pub(super) fn first_backoff() -> Duration {
        super::FIRST_BACKOFF
    }

    /// No override in the product.
    #[inline(always)]
    pub fn idle_timeout() -> Option<Duration> {
        None
    }
}

pub use points::*;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;

    // The clock is paused: tokio jumps it over every back-off, so the test takes no real time
    // and asserts nothing about it.
    #[tokio::test(start_paused = true)]
    async fn a_panicking_loop_is_restarted_and_counted() {
        let health = Arc::new(Health::new(Task::Poller));
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        supervise(health.clone(), "test".into(), move || {
            let n = r.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    panic!("first run dies");
                }
                Ok(())
            }
        })
        .await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "started again after the panic"
        );
        assert_eq!(health.failures(), 1);
        assert!(health.check().is_ok(), "one failure is not fatal");
    }

    #[tokio::test(start_paused = true)]
    async fn a_loop_that_keeps_failing_is_given_up_with_its_cause() {
        let health = Arc::new(Health::new(Task::Uploader));
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let start = tokio::time::Instant::now();
        supervise(health.clone(), "test".into(), move || {
            r.fetch_add(1, Ordering::SeqCst);
            async { Err(Error::Inconsistent("disk on fire".into())) }
        })
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), MAX_FAILURES_IN_A_ROW);
        let msg = health.check().expect_err("given up").to_string();
        assert!(
            msg.contains("uploader") && msg.contains("disk on fire"),
            "{msg}"
        );
        // Backed off between the runs: 200 ms doubling, 7 pauses.
        assert!(
            start.elapsed() >= FIRST_BACKOFF * 127,
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_healthy_run_resets_the_count() {
        let health = Arc::new(Health::new(Task::Compactor));
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        supervise(health.clone(), "test".into(), move || {
            let n = r.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 2 * MAX_FAILURES_IN_A_ROW {
                    return Ok(());
                }
                // Every other run lasts long enough to count as healthy.
                if n % 2 == 1 {
                    tokio::time::sleep(HEALTHY_RUN).await;
                }
                Err(Error::Inconsistent(format!("run {n}")))
            }
        })
        .await;
        assert!(health.check().is_ok(), "never given up");
        assert_eq!(health.failures(), u64::from(2 * MAX_FAILURES_IN_A_ROW));
    }

    #[test]
    fn fault_points_fire_once() {
        arm("supervise.test", "here", 1);
        fault_point("supervise.test", "elsewhere");
        let first = std::panic::catch_unwind(|| fault_point("supervise.test", "here"));
        assert!(first.is_err());
        fault_point("supervise.test", "here");
    }
}
