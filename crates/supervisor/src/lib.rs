//! Background work with an owner. Every periodic or long-lived task of the
//! service is started through one [`Supervisor`], by name and with a
//! [`Policy`] that says what its death means: restarted after a pause that
//! grows while it keeps dying, or the end of the service. The supervisor keeps
//! every handle, so a stop leaves nothing running behind it.
//!
//! Per-request work (a connection, an export stream) is not a task here: it
//! ends with its request.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, error, warn};

/// What a task's death (an error returned, or a panic) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Logged, and the task started again after a pause: for work whose
    /// absence the service survives a while (a refresh, a sweep, a listener).
    Restart,
    /// Logged, and the service stops with an error: for work it cannot do
    /// without.
    Fatal,
}

/// A fatal task's death, the reason the service stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    pub task: &'static str,
    pub error: String,
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "background task {:?} died: {}", self.task, self.error)
    }
}

impl std::error::Error for TaskFailure {}

/// How a task ends: `()` or `Ok(())` is done (not restarted), an error is a death.
pub trait Outcome {
    fn into_result(self) -> Result<(), String>;
}

impl Outcome for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Display> Outcome for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// The first pause before a restart; it doubles with each death in a row.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause; a task that ran this long before dying starts over
/// from the first.
const LONGEST_PAUSE: Duration = Duration::from_secs(30);

/// Starts, keeps and stops the service's background tasks. Clones share them.
#[derive(Clone, Default)]
pub struct Supervisor(Arc<Inner>);

struct Inner {
    handles: Mutex<Vec<JoinHandle<()>>>,
    live: AtomicUsize,
    stopping: AtomicBool,
    failure: watch::Sender<Option<TaskFailure>>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            handles: Mutex::default(),
            live: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            failure: watch::channel(None).0,
        }
    }
}

/// Counts a task as live until its future is dropped: finished, died for
/// good, or aborted (even before it first ran).
struct Live(Arc<Inner>);

impl Live {
    fn new(inner: &Arc<Inner>) -> Self {
        inner.live.fetch_add(1, Ordering::SeqCst);
        Self(inner.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Supervisor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts `task` (a function making the task's future, called again for
    /// each restart) under `name`. After [`Supervisor::shutdown`] nothing starts.
    pub fn spawn<F, Fut>(&self, name: &'static str, policy: Policy, mut task: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output: Outcome> + Send + 'static,
    {
        let mut handles = self.0.handles.lock().unwrap_or_else(|e| e.into_inner());
        if self.0.stopping.load(Ordering::SeqCst) {
            debug!(task = name, "not started: the service is stopping");
            return;
        }
        handles.retain(|h| !h.is_finished());
        let live = Live::new(&self.0);
        handles.push(tokio::spawn(async move {
            let live = live;
            let mut pause = FIRST_PAUSE;
            loop {
                let started = Instant::now();
                let error = match AssertUnwindSafe(task()).catch_unwind().await {
                    Ok(outcome) => match outcome.into_result() {
                        Ok(()) => {
                            debug!(task = name, "background task finished");
                            return;
                        }
                        Err(error) => error,
                    },
                    Err(panic) => panic_message(panic.as_ref()),
                };
                match policy {
                    Policy::Fatal => {
                        error!(task = name, %error, "background task died; stopping the service");
                        live.0.failure.send_if_modified(|failure| {
                            let first = failure.is_none();
                            if first {
                                *failure = Some(TaskFailure { task: name, error });
                            }
                            first
                        });
                        return;
                    }
                    Policy::Restart => {
                        if started.elapsed() >= LONGEST_PAUSE {
                            pause = FIRST_PAUSE;
                        }
                        warn!(task = name, %error, restart_in = ?pause, "background task died; restarting it");
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(LONGEST_PAUSE);
                    }
                }
            }
        }));
    }

    /// Starts `work` every `period` (the first time at once) under `name`;
    /// each round's own errors are for `work` to log, a panic is a death.
    pub fn every<F, Fut>(&self, name: &'static str, period: Duration, policy: Policy, work: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let work = Arc::new(work);
        self.spawn(name, policy, move || repeat(period, work.clone()));
    }

    /// Tasks started and not yet ended.
    pub fn live(&self) -> usize {
        self.0.live.load(Ordering::SeqCst)
    }

    /// Completes when a task with [`Policy::Fatal`] dies, with the first such death.
    pub async fn failure(&self) -> TaskFailure {
        let mut failure = self.0.failure.subscribe();
        let failed = failure
            .wait_for(Option::is_some)
            .await
            .expect("the supervisor holds its own sender");
        failed.clone().expect("waited for a failure")
    }

    /// Stops every task (at its next await) and waits until each has ended.
    pub async fn shutdown(&self) {
        let handles = {
            let mut handles = self.0.handles.lock().unwrap_or_else(|e| e.into_inner());
            self.0.stopping.store(true, Ordering::SeqCst);
            std::mem::take(&mut *handles)
        };
        for handle in &handles {
            handle.abort();
        }
        for handle in handles {
            let _ = handle.await;
        }
    }
}

async fn repeat<F, Fut>(period: Duration, work: Arc<F>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        work().await;
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(message), _) => format!("panicked: {message}"),
        (_, Some(message)) => format!("panicked: {message}"),
        _ => "panicked".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_dies_with_the_restart_policy_is_started_again() {
        let tasks = Supervisor::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let (done, finished) = tokio::sync::oneshot::channel();
        let mut done = Some(done);
        let counted = runs.clone();
        tasks.spawn("flaky", Policy::Restart, move || {
            let run = counted.fetch_add(1, Ordering::SeqCst) + 1;
            let done = if run == 3 { done.take() } else { None };
            async move {
                match run {
                    1 => Err("the first run fails".to_owned()),
                    2 => panic!("the second run panics"),
                    _ => {
                        let _ = done.map(|d| d.send(()));
                        Ok(())
                    }
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(5), finished)
            .await
            .expect("restarted twice within the pauses")
            .expect("third run reported");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        tasks.shutdown().await;
        assert_eq!(tasks.live(), 0);
    }

    #[tokio::test]
    async fn a_task_that_dies_with_the_fatal_policy_is_reported_and_not_restarted() {
        let tasks = Supervisor::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        tasks.spawn("vital", Policy::Fatal, move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>("the disk is gone") }
        });
        let failure = tokio::time::timeout(Duration::from_secs(5), tasks.failure())
            .await
            .expect("the death is reported");
        assert_eq!(
            failure,
            TaskFailure {
                task: "vital",
                error: "the disk is gone".into()
            }
        );
        assert_eq!(
            failure.to_string(),
            "background task \"vital\" died: the disk is gone"
        );
        tokio::time::sleep(FIRST_PAUSE * 3).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(tasks.live(), 0);
    }

    #[tokio::test]
    async fn a_panic_counts_as_a_death() {
        let tasks = Supervisor::new();
        async fn out_of_bounds() {
            panic!("out of bounds");
        }
        tasks.spawn("panicky", Policy::Fatal, out_of_bounds);
        let failure = tokio::time::timeout(Duration::from_secs(5), tasks.failure())
            .await
            .expect("the panic is reported");
        assert_eq!(failure.error, "panicked: out of bounds");
    }

    #[tokio::test]
    async fn shutdown_ends_every_task_and_starts_no_more() {
        let tasks = Supervisor::new();
        let rounds = Arc::new(AtomicUsize::new(0));
        let counted = rounds.clone();
        tasks.every(
            "ticker",
            Duration::from_millis(5),
            Policy::Restart,
            move || {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
            },
        );
        tasks.spawn("forever", Policy::Fatal, std::future::pending::<()>);
        assert_eq!(tasks.live(), 2);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(rounds.load(Ordering::SeqCst) >= 2, "the ticker ran");
        tasks.shutdown().await;
        assert_eq!(tasks.live(), 0);
        let after = rounds.load(Ordering::SeqCst);
        tasks.spawn("late", Policy::Restart, std::future::pending::<()>);
        assert_eq!(tasks.live(), 0, "nothing starts once stopping");
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(rounds.load(Ordering::SeqCst), after);
    }

    #[tokio::test]
    async fn a_task_that_finishes_is_not_restarted() {
        let tasks = Supervisor::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        tasks.spawn("once", Policy::Restart, move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {}
        });
        tokio::time::sleep(FIRST_PAUSE * 3).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(tasks.live(), 0);
    }
}
