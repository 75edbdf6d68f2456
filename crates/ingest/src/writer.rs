//! Group commit: each writer takes everything queued (up to a batch) as soon as
//! its previous commit finishes, so batches grow by themselves under load.
//!
//! A writer that took fewer than [`LINGER_BELOW`] rows first waits the linger
//! (2 ms by default) while the other writers commit, then takes what came
//! meanwhile. Without it a moderate load (5,000 signatures/s) made batches of
//! 2 or 3 rows, and every commit's fixed cost (Postgres's commit and WAL flush,
//! the Redis seen mark, the count announcement, the wake-ups between them) was
//! paid per two or three signatures: half the machine's CPU went to that
//! (benches/BENCHMARKS.md). Under full load the rate was the same with it.
//! The linger ends early once every connected client's signature is queued:
//! nobody is left to join, and waiting would only delay them all (a load
//! balancer's kept-alive pool, a closed loop; see the guard's `joiners.rs`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, mpsc, watch};
use tracing::{error, warn};
use undersigned_domain::IdentityKey;
use undersigned_guard::{Guard, Stage};
use undersigned_store::{BatchOutcome, Resend, RowOutcome, SignatureWriter};

use crate::counter::Announcer;
use crate::{Counter, IngestMetrics, Pending, SignError};

/// Count shards in Postgres; writers of all instances spread over them.
pub(crate) const SHARDS: i16 = 16;

/// How late tokio's timer wakes a task, about (it works in whole milliseconds).
const TIMER_LATE: Duration = Duration::from_micros(900);

/// A batch taken smaller than this lingers for more rows.
pub(crate) const LINGER_BELOW: usize = 32;

pub(crate) struct Writer {
    pub(crate) store: SignatureWriter,
    pub(crate) queued: Arc<Mutex<mpsc::Receiver<Pending>>>,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) batch_max: usize,
    /// How long a small batch waits for more rows; zero: never.
    pub(crate) linger: Duration,
    pub(crate) guard: Arc<Guard>,
    pub(crate) counter: Arc<Counter>,
    pub(crate) announcer: Option<Arc<Announcer>>,
    pub(crate) metrics: IngestMetrics,
    /// Shared by the writers: with answers awaited one by one, one writer
    /// may take every new signer and the other every rider.
    pub(crate) small_commits: Arc<std::sync::Mutex<Durations>>,
    /// Wakes this process's mailers when a batch queued messages.
    pub(crate) mail_queued: Arc<tokio::sync::Notify>,
}

impl Writer {
    /// Runs until the service stops and the queue is empty.
    pub(crate) async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.batch_max);
        let mut failures = 0u32;
        loop {
            if self.take(&mut batch).await == 0 {
                return;
            }
            let mut rows = Vec::with_capacity(batch.len());
            let mut replies = Vec::with_capacity(batch.len());
            let mut riders = Vec::new();
            let mut resends = Vec::new();
            for pending in batch.drain(..) {
                match pending.row {
                    Some(row) => {
                        rows.push(row);
                        replies.push(pending.reply);
                    }
                    None => riders.push(pending.reply),
                }
                resends.extend(pending.resend);
            }
            let started = Instant::now();
            // Riders alone still wait for a commit's flush to disk, as a new
            // signer would; with rows, they ride that batch's commit.
            let result = if rows.is_empty() {
                let synced = self.store.sync().await;
                // The insert and count bumps a new signer's commit also does
                // took about 1.3 ms more than this commit alone, and vary
                // more (benches/BENCHMARKS.md): a rider-only commit lasts as
                // long as one of the last small batches' commits, drawn at
                // random, so that its answers' times are distributed alike.
                // Tokio's timer wakes at the first whole millisecond past a
                // deadline (measured: 0.9 ms late at the median), so it aims
                // that much early.
                let pad = self.small_commits().draw().saturating_sub(TIMER_LATE);
                tokio::time::sleep_until((started + pad).into()).await;
                synced.map(|()| BatchOutcome::default())
            } else {
                self.metrics.batch_rows.observe(rows.len() as f64);
                let written = self.store.write(&rows).await;
                if written.is_ok() && rows.len() < LINGER_BELOW {
                    self.small_commits().record(started.elapsed());
                }
                if written.is_ok() && rows.iter().any(|r| r.confirmation.is_some()) {
                    // One permit, kept if no mailer waits right now: none is lost.
                    self.mail_queued.notify_one();
                }
                written
            };
            self.metrics
                .batch_commit_seconds
                .observe(started.elapsed().as_secs_f64());
            match result {
                Ok(outcome) => {
                    failures = 0;
                    for retry in &outcome.retries {
                        self.metrics
                            .batch_retries
                            .with_label_values(&[retry.as_str()])
                            .inc();
                    }
                    self.publish(&rows, &outcome);
                    for (reply, outcome) in replies.into_iter().zip(outcome.rows.iter().copied()) {
                        let _ = reply.send(Ok(outcome));
                    }
                    for rider in riders {
                        let _ = rider.send(Ok(RowOutcome::Duplicate));
                    }
                    // Pending signers who signed again: their link again, once
                    // they have their answer (so that it never tells).
                    resends.extend(rows.into_iter().zip(&outcome.rows).filter_map(
                        |(row, outcome)| {
                            row.confirmation.as_ref()?;
                            (*outcome == RowOutcome::Duplicate).then_some(Resend {
                                petition_id: row.petition_id,
                                identity_key: row.identity_key,
                                email: row.sealed.as_ref().and(row.email.clone()),
                            })
                        },
                    ));
                    self.resend(&resends).await;
                }
                Err(e) => {
                    // Nothing of this batch was acknowledged: its signers get a 503
                    // and retry, and their retries are idempotent. Riders share
                    // the batch's fate, as they would have as rows.
                    error!(error = %e, rows = rows.len(), "signature batch failed");
                    self.metrics
                        .rejected
                        .inc_by((rows.len() + riders.len()) as u64);
                    for reply in replies.into_iter().chain(riders) {
                        let _ = reply.send(Err(SignError::Storage(e.to_string())));
                    }
                    failures = (failures + 1).min(5);
                    tokio::time::sleep(Duration::from_millis(50 << failures)).await;
                }
            }
        }
    }

    /// Waits for at least one queued signature and takes up to a batch,
    /// lingering when that is small; once stopping, takes what is left at once
    /// and returns 0 when nothing is.
    async fn take(&mut self, batch: &mut Vec<Pending>) -> usize {
        let mut queued = self.queued.lock().await;
        let taken = tokio::select! {
            taken = queued.recv_many(batch, self.batch_max) => taken,
            _ = async { self.stop.wait_for(|stop| *stop).await.map(|_| ()) } => {
                queued.close();
                return queued.recv_many(batch, self.batch_max).await;
            }
        };
        if taken == 0 || taken >= LINGER_BELOW.min(self.batch_max) || self.linger.is_zero() {
            return taken;
        }
        // The lock is held meanwhile: the other writer commits, and takes
        // whatever this one leaves once it is done.
        let joiners = self.guard.joiners();
        if !joiners.none_left(Stage::Queued) {
            tokio::select! {
                () = tokio::time::sleep(self.linger) => {}
                () = joiners.until_none_left(Stage::Queued) => {}
                _ = async { self.stop.wait_for(|stop| *stop).await.map(|_| ()) } => {}
            }
        }
        while batch.len() < self.batch_max {
            match queued.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        batch.len()
    }

    async fn resend(&mut self, resends: &[Resend]) {
        match self.store.resend(resends).await {
            Ok(0) => {}
            Ok(sent) => {
                self.metrics.mail_queued("confirmation", sent);
                self.mail_queued.notify_one();
            }
            Err(e) => warn!(error = %e, signers = resends.len(),
                            "sending confirmation links again failed"),
        }
    }

    fn small_commits(&self) -> std::sync::MutexGuard<'_, Durations> {
        self.small_commits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn publish(&self, rows: &[undersigned_store::SignatureRow], outcome: &BatchOutcome) {
        let mut by_petition: Vec<(i64, Vec<IdentityKey>)> = Vec::new();
        for (row, result) in rows.iter().zip(&outcome.rows) {
            match result {
                RowOutcome::Inserted => {
                    self.metrics.accepted.inc();
                    if row.confirmation.is_some() {
                        self.metrics.mail_queued("confirmation", 1);
                    }
                }
                RowOutcome::Duplicate | RowOutcome::Retried => self.metrics.duplicate.inc(),
                RowOutcome::IdReused => {
                    self.metrics.rejected.inc();
                    continue;
                }
            }
            let key = IdentityKey(row.identity_key);
            match by_petition.iter_mut().find(|(p, _)| *p == row.petition_id) {
                Some((_, keys)) => keys.push(key),
                None => by_petition.push((row.petition_id, vec![key])),
            }
        }
        for (petition, keys) in by_petition {
            self.guard.mark_seen(petition, keys);
        }
        if !outcome.cells.is_empty() || !outcome.event_cells.is_empty() {
            self.counter.merge_all(&outcome.cells, &outcome.event_cells);
            if let Some(announcer) = &self.announcer {
                announcer.announce(&outcome.cells, &outcome.event_cells);
            }
        }
    }
}

/// How long the last commits of small batches took; until one is measured,
/// nothing is assumed.
#[derive(Default)]
pub(crate) struct Durations {
    last: VecDeque<Duration>,
}

impl Durations {
    const KEPT: usize = 64;

    fn record(&mut self, took: Duration) {
        if self.last.len() == Self::KEPT {
            self.last.pop_front();
        }
        self.last.push_back(took);
    }

    /// One of them, at random; zero when none is known.
    fn draw(&self) -> Duration {
        if self.last.is_empty() {
            return Duration::ZERO;
        }
        self.last[rand::random_range(0..self.last.len())]
    }
}
