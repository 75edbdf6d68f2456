//! Webhooks after the Standard Webhooks specification
//! (<https://www.standardwebhooks.com/>): campaigns' CRMs and mailing tools
//! hear of signatures counted, withdrawn and invalidated, of milestones
//! reached and of petitions closing.
//!
//! - What is owed to each endpoint is written by the store in the transaction
//!   of the change it reports (`crates/store/src/webhooks.rs`): nothing is
//!   reported that did not commit, nothing is lost when a process dies.
//! - [`Webhooks::run`] is the courier: one loop per endpoint, so a slow or
//!   dead endpoint holds only its own messages; each takes its due messages
//!   with a lease, sends up to [`PER_ENDPOINT`] at once, and deletes those
//!   delivered or puts the others off, doubling and more up to ten hours
//!   ([`RETRY_AFTER`]) for about 26 hours, then keeps them as dead letters.
//!   Every try of one message carries the same `webhook-id`.
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
use undersigned_store::{Attempt, Store, StoreError, WebhookTarget};
use uuid::Uuid;

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
        })
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

    /// How long a loop holds the messages it took: enough to try them all.
    fn lease(&self) -> Duration {
        let rounds = BATCH.div_ceil(PER_ENDPOINT) as u32 + 1;
        self.settings.timeout * rounds
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
        loop {
            let due = self
                .store
                .take_deliveries(&target, BATCH as i64, self.lease())
                .await?;
            if due.is_empty() {
                tokio::time::sleep(IDLE).await;
                continue;
            }
            let tried: Vec<(i64, i16, Result<u16, Failure>)> = futures_util::stream::iter(due)
                .map(|d| {
                    let secret = &secret;
                    let url = target.url.as_str();
                    async move {
                        let body = payload::body(&d);
                        let outcome = self
                            .send(url, secret, &payload::message_id(d.id), body)
                            .await;
                        (d.id, d.attempts, outcome)
                    }
                })
                .buffer_unordered(PER_ENDPOINT)
                .collect()
                .await;
            let now = Utc::now();
            let mut delivered = Vec::new();
            let mut failed = Vec::new();
            for (id, before, outcome) in tried {
                match outcome {
                    Ok(_) => delivered.push(id),
                    Err(failure) => {
                        let tries = usize::try_from(before).unwrap_or(0) + 1;
                        let retry_at = self.retry_at(tries, now);
                        failed.push(Attempt {
                            id,
                            status: failure.status(),
                            error: Some(failure.to_string()),
                            retry_at,
                        });
                    }
                }
            }
            let outcome = |name| self.metrics.deliveries.with_label_values(&[name]);
            outcome("delivered").inc_by(delivered.len() as u64);
            let dead = failed.iter().filter(|a| a.retry_at.is_none()).count();
            outcome("dead").inc_by(dead as u64);
            outcome("retried").inc_by((failed.len() - dead) as u64);
            self.store
                .settle_deliveries(target.id, &delivered, &failed)
                .await?;
        }
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
