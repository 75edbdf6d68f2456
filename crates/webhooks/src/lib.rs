//! Webhooks after the Standard Webhooks specification
//! (<https://www.standardwebhooks.com/>): campaigns' CRMs and mailing tools
//! hear of signatures counted, withdrawn and invalidated, of milestones
//! reached and of petitions closing.
//!
//! - What happened is written by the store in the transaction of the change
//!   it reports, once however many endpoints hear of it
//!   (`crates/store/src/webhooks.rs`): nothing is reported that did not
//!   commit, nothing is lost when a process dies.
//! - [`Webhooks::run`] is the courier: one loop per endpoint, so a slow or
//!   dead endpoint holds only its own messages. A loop holds its endpoint
//!   (one instance's at a time), reads the events after the endpoint's
//!   cursor and the retries due, sends up to [`PER_ENDPOINT`] at once, no
//!   faster than `UNDERSIGNED_WEBHOOK_RATE`, and moves the cursor on in the
//!   transaction that records the tries that failed. A failed message is
//!   tried again after waits growing to ten hours ([`RETRY_AFTER`]) for
//!   about 26 hours, then kept as a dead letter. Every try of one message
//!   carries the same `webhook-id`.
//! - A delivered message leaves no row, and events are written once for all
//!   endpoints: three endpoints cost the signature path one row a signature,
//!   not three, and nothing per delivery (benches/BENCHMARKS.md).
//! - [`signing`]: the signature, and the secret sealed at rest.
//! - [`target`]: where an endpoint may point (no private addresses).
//! - [`payload`]: what a message says.

pub mod payload;
pub mod signing;
pub mod target;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use prometheus::{IntCounterVec, Opts, Registry};
use tokio::task::{AbortHandle, JoinSet};
use tracing::warn;
use undersigned_domain::Pepper;
use undersigned_store::{Attempt, Due, Store, StoreError, WebhookTarget};
use uuid::Uuid;

/// A rate (messages per period, with a burst).
pub use governor::Quota;
/// Building the HTTP client failed.
pub use reqwest_tls::Error as ClientError;
pub use signing::{Secret, SecretSeal};
pub use target::{Refusal, Targets};

/// Messages one endpoint's loop takes at a time.
const BATCH: usize = 256;
/// Messages sent to one endpoint at once.
pub const PER_ENDPOINT: usize = 16;
/// How long a loop with nothing due waits before looking again.
const IDLE: Duration = Duration::from_millis(200);
/// How often the courier reads the endpoints again (new, changed, deleted).
const REFRESH: Duration = Duration::from_secs(2);
/// How long a stop waits for the batches being sent to be recorded.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// How long a loop whose endpoint another instance holds waits to look again.
const HELD_ELSEWHERE: Duration = Duration::from_secs(2);
/// The waits after each failed try, in units of the first retry's wait
/// (`UNDERSIGNED_WEBHOOK_FIRST_RETRY_MS`, 5 s by default): 5 s, 30 s, 2 min,
/// 5 min, 15 min, 30 min, 1 h, 2 h, 4 h, 8 h, 10 h. After the last, a
/// message is given up on (25.9 hours after its first try, by default).
pub const RETRY_AFTER: [u32; 11] = [1, 6, 24, 60, 180, 360, 720, 1440, 2880, 5760, 7200];
/// Bytes of an endpoint's answer read (so its connection can be kept).
const ANSWER_READ: usize = 64 * 1024;

/// How deliveries are made.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Private and loopback targets, and plain `http`, are allowed.
    pub allow_private: bool,
    /// How long one try may take, connecting included.
    pub timeout: Duration,
    /// The wait before the first retry; later ones are multiples of it.
    pub first_retry: Duration,
    /// Messages one endpoint is sent at most, from each instance (`None`:
    /// as fast as it answers).
    pub rate: Option<governor::Quota>,
}

/// Deliveries by outcome.
#[derive(Clone)]
pub struct WebhookMetrics {
    deliveries: IntCounterVec,
}

impl WebhookMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let deliveries = IntCounterVec::new(
            Opts::new(
                "undersigned_webhook_deliveries_total",
                "Webhook messages tried, by outcome: delivered, retried (to be tried again), dead (given up)",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(deliveries.clone()))?;
        Ok(Self { deliveries })
    }
}

/// Why one try failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("answered {0}")]
    Status(u16),
    #[error("timed out")]
    Timeout,
    #[error("could not connect")]
    Connect,
    #[error("refused: {0}")]
    Refused(Refusal),
    #[error("request failed")]
    Request,
}

impl Failure {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status(s) => Some(*s),
            _ => None,
        }
    }
}

/// Signs and delivers; shared by the courier and the API (a test message).
pub struct Webhooks {
    store: Store,
    client: reqwest_tls::Client,
    seal: SecretSeal,
    targets: Targets,
    settings: Settings,
    metrics: WebhookMetrics,
    /// Told when this instance makes or deletes a webhook, so its courier
    /// starts or stops its loop at once (other instances' within
    /// [`REFRESH`]).
    changed: tokio::sync::Notify,
    /// Who this instance's courier is, when it holds an endpoint.
    courier: Uuid,
    /// Set once the service stops: the courier holds no endpoint any more.
    stopping: std::sync::atomic::AtomicBool,
    /// Batches being sent now, which a stop waits for.
    sending: std::sync::atomic::AtomicUsize,
}

impl Webhooks {
    pub fn new(
        store: Store,
        pepper: &Pepper,
        settings: Settings,
        metrics: WebhookMetrics,
    ) -> Result<Self, ClientError> {
        // reqwest's rustls takes the process's provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let targets = Targets {
            allow_private: settings.allow_private,
        };
        let client = reqwest_tls::Client::builder()
            .dns_resolver(targets.resolver())
            .redirect(reqwest_tls::redirect::Policy::none())
            .no_proxy()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(PER_ENDPOINT)
            .user_agent(concat!("undersigned-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            store,
            client,
            seal: SecretSeal::new(pepper),
            targets,
            settings,
            metrics,
            changed: tokio::sync::Notify::new(),
            courier: Uuid::new_v4(),
            stopping: std::sync::atomic::AtomicBool::new(false),
            sending: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// The service stops: this instance's courier takes no endpoint any
    /// more, lets the batches it is sending finish and be recorded (for
    /// [`STOP_WAIT`] at most), then lets go of the endpoints it holds, which
    /// another instance's courier takes at once rather than when the hold
    /// runs out. A batch still sending after that wait is not recorded, and
    /// is sent again by the next holder (with the same `webhook-id`s).
    pub async fn release(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.stopping.store(true, SeqCst);
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        while self.sending.load(SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.store.release_webhooks(self.courier).await?;
        Ok(())
    }

    /// A webhook was made or deleted here: the courier looks again now.
    pub fn changed(&self) {
        self.changed.notify_one();
    }

    pub fn targets(&self) -> Targets {
        self.targets
    }

    pub fn seal(&self) -> &SecretSeal {
        &self.seal
    }

    /// One try: the signed message to `url`; the status of a 2xx answer.
    pub async fn send(
        &self,
        url: &str,
        secret: &Secret,
        id: &str,
        body: Vec<u8>,
    ) -> Result<u16, Failure> {
        // An address written in the URL is never resolved: checked here, at
        // every try, as names are by the resolver.
        let url = self.targets.check_url(url).map_err(Failure::Refused)?;
        let timestamp = Utc::now().timestamp();
        let signature = secret.sign(id, timestamp, &body);
        let mut answer = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    Failure::Timeout
                } else if e.is_connect() {
                    Failure::Connect
                } else {
                    Failure::Request
                }
            })?;
        let status = answer.status().as_u16();
        let mut read = 0;
        while read < ANSWER_READ {
            match answer.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        if (200..300).contains(&status) {
            Ok(status)
        } else {
            Err(Failure::Status(status))
        }
    }

    /// A `webhook.test` message to webhook `id` now, with its own
    /// `webhook-id`; `None` when there is no such webhook.
    pub async fn test(
        &self,
        id: Uuid,
    ) -> Result<Option<(String, Result<u16, Failure>)>, StoreError> {
        let Some(target) = self
            .store
            .webhook_targets()
            .await?
            .into_iter()
            .find(|t| t.id == id)
        else {
            return Ok(None);
        };
        let message = format!("msg_test_{}", Uuid::now_v7().simple());
        let Some(secret) = self.seal.open(id, &target.secret_sealed) else {
            return Err(StoreError::Config(format!(
                "webhook {id}'s secret does not open with this pepper"
            )));
        };
        let outcome = self
            .send(
                &target.url,
                &secret,
                &message,
                payload::test_body(id, Utc::now()),
            )
            .await;
        Ok(Some((message, outcome)))
    }

    /// When to try again after the `tries`-th failed try; `None`: give up.
    pub fn retry_at(&self, tries: usize, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let units = *RETRY_AFTER.get(tries.checked_sub(1)?)?;
        let wait = self.settings.first_retry.checked_mul(units)?;
        Some(now + chrono::Duration::from_std(wait).ok()?)
    }

    /// How long a loop holds its endpoint and the retries it took: enough
    /// to send a whole batch (new messages and retries, [`PER_ENDPOINT`] at a
    /// time, each up to the timeout, and no faster than the rate), so that
    /// no other instance takes them over while they are being sent.
    fn lease(&self) -> Duration {
        let messages = 2 * BATCH as u32;
        let rounds = messages.div_ceil(PER_ENDPOINT as u32) + 1;
        let paced = self
            .settings
            .rate
            .map_or(Duration::ZERO, |q| q.replenish_interval() * messages);
        self.settings.timeout * rounds + paced
    }

    /// The courier: one loop per endpoint, started and stopped as endpoints
    /// come and go. Returns only when Postgres fails (to be restarted).
    pub async fn run(self: Arc<Self>) -> Result<(), StoreError> {
        let mut loops: JoinSet<Uuid> = JoinSet::new();
        let mut running: HashMap<Uuid, (WebhookTarget, AbortHandle)> = HashMap::new();
        loop {
            let targets = self.store.webhook_targets().await?;
            running.retain(|_, (target, handle)| {
                let same = targets.contains(target) && !handle.is_finished();
                if !same {
                    handle.abort();
                }
                same
            });
            for target in targets {
                if !running.contains_key(&target.id) {
                    let this = self.clone();
                    let id = target.id;
                    let handle = loops.spawn({
                        let target = target.clone();
                        async move {
                            if let Err(e) = this.endpoint(target).await {
                                warn!(error = %e, webhook = %id, "webhook courier failed; restarting it");
                            }
                            id
                        }
                    });
                    running.insert(id, (target, handle));
                }
            }
            let pause = tokio::time::sleep(REFRESH);
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    () = &mut pause => break,
                    () = self.changed.notified() => break,
                    Some(ended) = loops.join_next() => {
                        if let Ok(id) = ended {
                            running.remove(&id);
                        }
                    }
                }
            }
        }
    }

    /// One endpoint's loop.
    async fn endpoint(&self, target: WebhookTarget) -> Result<(), StoreError> {
        let Some(secret) = self.seal.open(target.id, &target.secret_sealed) else {
            warn!(webhook = %target.id,
                  "a webhook's secret does not open with this pepper: its messages wait");
            std::future::pending::<()>().await;
            return Ok(());
        };
        let rate = self.settings.rate.map(governor::RateLimiter::direct);
        loop {
            if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            // Counted as sending from before the claim, so that a stop either
            // sees it and waits, or comes first and is seen below.
            let sending_now = Sending::start(&self.sending);
            let Some(cursor) = self
                .store
                .claim_webhook(target.id, self.courier, self.lease())
                .await?
            else {
                drop(sending_now);
                tokio::time::sleep(HELD_ELSEWHERE).await;
                continue;
            };
            if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                // The stop let go of its endpoints before this claim.
                self.store.release_webhooks(self.courier).await?;
                drop(sending_now);
                return std::future::pending().await;
            }
            let fresh = self
                .store
                .fresh_events(&target, &cursor, BATCH as i64)
                .await?;
            let retries = self
                .store
                .take_deliveries(&target, BATCH as i64, self.lease())
                .await?;
            if fresh.due.is_empty() && retries.is_empty() {
                if fresh.next != cursor {
                    self.store
                        .settle_deliveries(target.id, self.courier, &fresh.next, 0, &[], &[])
                        .await?;
                }
                drop(sending_now);
                tokio::time::sleep(IDLE).await;
                continue;
            }
            let tried: Vec<(Due, Result<u16, Failure>)> =
                futures_util::stream::iter(fresh.due.into_iter().chain(retries))
                    .map(|d| {
                        let (secret, url, rate) = (&secret, target.url.as_str(), &rate);
                        async move {
                            if let Some(rate) = rate {
                                rate.until_ready().await;
                            }
                            let body = payload::body(&d);
                            let id = payload::message_id(d.message, d.position);
                            let outcome = self.send(url, secret, &id, body).await;
                            (d, outcome)
                        }
                    })
                    .buffer_unordered(PER_ENDPOINT)
                    .collect()
                    .await;
            let now = Utc::now();
            let mut delivered = 0;
            let mut retried = Vec::new();
            let mut failed = Vec::new();
            for (due, outcome) in tried {
                match outcome {
                    Ok(_) => {
                        delivered += 1;
                        retried.extend(due.retry);
                    }
                    Err(failure) => {
                        let tries = usize::try_from(due.attempts).unwrap_or(0) + 1;
                        failed.push(Attempt {
                            message: due.message,
                            position: due.position,
                            signature: due.signature.as_ref().map(|s| s.receipt),
                            status: failure.status(),
                            error: Some(failure.to_string()),
                            retry_at: self.retry_at(tries, now),
                            retry: due.retry,
                            xid: due.xid,
                        });
                    }
                }
            }
            let settled = self
                .store
                .settle_deliveries(
                    target.id,
                    self.courier,
                    &fresh.next,
                    delivered,
                    &retried,
                    &failed,
                )
                .await?;
            if settled {
                let outcome = |name| self.metrics.deliveries.with_label_values(&[name]);
                outcome("delivered").inc_by(delivered as u64);
                let dead = failed.iter().filter(|a| a.retry_at.is_none()).count();
                outcome("dead").inc_by(dead as u64);
                outcome("retried").inc_by((failed.len() - dead) as u64);
            } else {
                warn!(webhook = %target.id,
                      "another courier took this webhook over: it sends this batch again");
            }
        }
    }
}

/// A batch being sent, counted while it lives.
struct Sending<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Sending<'a> {
    fn start(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn retries_span_more_than_a_day_at_the_default_wait() {
        let first = 5u64;
        let total: u64 = super::RETRY_AFTER
            .iter()
            .map(|u| first * u64::from(*u))
            .sum();
        assert!(total > 86_400, "{total}");
        assert!(total < 2 * 86_400, "{total}");
    }
}
