//! Sending the outbox. Mailers take due messages from Postgres (any instance's
//! mailers share the work), send each through one pooled SMTP transport, or
//! write it as an `.eml` file where no relay is configured, and then forget
//! it. A refusal the relay calls temporary, or a connection that fails, is
//! tried again later, waiting longer each time; a permanent refusal, or too
//! many tries, gives the message up. Logs and metrics never name an address.

mod letters;
mod smtp;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::address::Envelope;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use thiserror::Error;
use tracing::{info, warn};
use undersigned_guard::Limit;
use undersigned_store::{Content, QueuedMail, Store, StoreError};

pub use letters::{ConfirmationLetter, LetterError, Letterhead, WithdrawalLetter, escape};
pub use lettre::message::Mailbox;

/// Messages one mailer takes at a time.
const BATCH: i64 = 64;
/// How long a taken message is a mailer's before another may take it: what
/// a message a mailer died with waits before it is sent by another. A
/// mailer renews the lease of what it still holds halfway through.
const LEASE: Duration = Duration::from_secs(10);
/// How long a mailer with nothing to send waits before it looks again,
/// unless woken.
const IDLE: Duration = Duration::from_secs(1);
/// Tries before a message is given up on: with [`backoff`], about a day.
pub const MAX_ATTEMPTS: i32 = 30;

/// Where messages go.
pub enum Transport {
    /// An SMTP relay behind implicit TLS (`smtps://`), through lettre's pool.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// An SMTP relay over `smtp://` (STARTTLS or none): each mailer its own
    /// connection, opened by [`smtp`] without Nagle's delay.
    Relay(smtp::Relay),
    /// `.eml` files in a folder, one per message: for a development machine
    /// without a relay.
    Files(PathBuf),
}

#[derive(Debug, Error)]
#[error("UNDERSIGNED_SMTP_URL: {0}")]
pub struct TransportError(String);

impl Transport {
    /// A relay from its URL as lettre reads it: `smtp://host:port`,
    /// `smtps://user:pass@host`, `smtp://host?tls=required` for STARTTLS.
    pub fn smtp(url: &str) -> Result<Self, TransportError> {
        if let Some(relay) = smtp::Relay::from_url(url)? {
            return Ok(Self::Relay(relay));
        }
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map(|builder| Self::Smtp(builder.build()))
            .map_err(|e| TransportError(e.to_string()))
    }

    /// Whether lettre reads `url` as a relay, without connecting or starting
    /// the pool (which needs a runtime): for checking the configuration.
    pub fn check_smtp_url(url: &str) -> Result<(), TransportError> {
        smtp::Relay::from_url(url)?;
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map(drop)
            .map_err(|e| TransportError(e.to_string()))
    }

    /// Sends one message; `connection` is the mailer's own, for a relay
    /// over `smtp://`.
    async fn send(
        &self,
        mail: &QueuedMail,
        message: &[u8],
        connection: Option<&smtp::Connection>,
    ) -> Result<(), Failure> {
        let refused = |permanent: bool, code: Option<String>| {
            if permanent {
                Failure::Refused(code)
            } else {
                Failure::Temporary(code)
            }
        };
        match self {
            Self::Smtp(smtp) => smtp
                .send_raw(&envelope(mail)?, message)
                .await
                .map(drop)
                .map_err(|e| refused(e.is_permanent(), e.status().map(|c| c.to_string()))),
            Self::Relay(_) => {
                let Some(connection) = connection else {
                    return Err(Failure::Temporary(None));
                };
                connection
                    .send(&envelope(mail)?, message)
                    .await
                    .map(drop)
                    .map_err(|e| {
                        if let smtp::SendError::Connect(why) = &e {
                            warn!(error = %why, "connecting to the SMTP relay failed");
                        }
                        refused(e.is_permanent(), e.status())
                    })
            }
            Self::Files(dir) => {
                let path = dir.join(format!("{}.eml", mail.id));
                let partial = dir.join(format!("{}.eml.partial", mail.id));
                let written = async {
                    tokio::fs::create_dir_all(dir).await?;
                    tokio::fs::write(&partial, message).await?;
                    tokio::fs::rename(&partial, &path).await
                };
                written.await.map_err(|e| {
                    warn!(folder = %dir.display(), error = %e, "writing a message failed");
                    Failure::Temporary(None)
                })
            }
        }
    }
}

/// A message's envelope: its sender and its one recipient.
fn envelope(mail: &QueuedMail) -> Result<Envelope, Failure> {
    let parse = |a: &str| a.parse::<Address>().map_err(|_| Failure::Undeliverable);
    Envelope::new(Some(parse(&mail.sender)?), vec![parse(&mail.recipient)?])
        .map_err(|_| Failure::Undeliverable)
}

/// Why a message was not sent, without its address.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// Try again later: a 4xx answer (its code, when the relay gave one), or
    /// no answer at all.
    Temporary(Option<String>),
    /// The relay refused it for good (5xx).
    Refused(Option<String>),
    /// Its envelope holds no address a relay could take.
    Undeliverable,
}

/// How long before the try after `attempts` tries: 5 s, doubling, at most an hour.
pub fn backoff(attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(10);
    (Duration::from_secs(5) * 2u32.pow(doublings)).min(Duration::from_secs(3600))
}

/// The mailers' counters.
#[derive(Clone)]
pub struct MailMetrics {
    messages: IntCounterVec,
    waiting: IntGauge,
    oldest: IntGauge,
}

impl MailMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let messages = IntCounterVec::new(
            Opts::new(
                "undersigned_mail_messages_total",
                "Messages by kind and outcome: sent, retried (a temporary failure), failed (given up)",
            ),
            &["kind", "outcome"],
        )?;
        let waiting = IntGauge::new(
            "undersigned_mail_outbox_messages",
            "Messages in the outbox, due or waiting for a retry",
        )?;
        let oldest = IntGauge::new(
            "undersigned_mail_outbox_oldest_seconds",
            "Age of the oldest message in the outbox",
        )?;
        registry.register(Box::new(messages.clone()))?;
        registry.register(Box::new(waiting.clone()))?;
        registry.register(Box::new(oldest.clone()))?;
        Ok(Self {
            messages,
            waiting,
            oldest,
        })
    }

    fn count(&self, kind: &str, outcome: &str) {
        self.messages.with_label_values(&[kind, outcome]).inc();
    }
}

/// One mailer: several may run, in one process or many.
pub struct Mailer {
    store: Store,
    transport: Arc<Transport>,
    /// The relay's quota, shared by this process's mailers.
    rate: Option<Arc<DefaultDirectRateLimiter>>,
    metrics: MailMetrics,
    /// Notified when this process queues messages.
    queued: Arc<tokio::sync::Notify>,
    /// Its own connection, for a relay over `smtp://`.
    connection: Option<smtp::Connection>,
    /// Composes the letters waiting in the outbox.
    letterhead: Arc<Letterhead>,
}

/// A rate limiter for `limit` (`None`: no limit).
pub fn rate(limit: Option<Limit>) -> Option<Arc<DefaultDirectRateLimiter>> {
    let limit = limit?;
    let burst = std::num::NonZeroU32::new(limit.count)?;
    Quota::with_period(limit.interval())
        .map(|q| Arc::new(RateLimiter::direct(q.allow_burst(burst))))
}

impl Mailer {
    pub fn new(
        store: Store,
        transport: Arc<Transport>,
        rate: Option<Arc<DefaultDirectRateLimiter>>,
        metrics: MailMetrics,
        queued: Arc<tokio::sync::Notify>,
        letterhead: Arc<Letterhead>,
    ) -> Self {
        let connection = match &*transport {
            Transport::Relay(relay) => Some(smtp::Connection::new(relay.clone())),
            _ => None,
        };
        Self {
            store,
            transport,
            rate,
            metrics,
            queued,
            connection,
            letterhead,
        }
    }

    /// Sends until stopped; returns only when Postgres fails (to be restarted).
    pub async fn run(&self) -> Result<(), StoreError> {
        loop {
            if self.round().await? == 0 {
                let (waiting, oldest) = self.store.outbox_backlog().await?;
                self.metrics.waiting.set(waiting);
                // Whole seconds are enough for an alert on a stuck outbox.
                #[allow(clippy::cast_possible_truncation)]
                self.metrics.oldest.set(oldest as i64);
                // Messages this process queues wake it at once; other
                // instances' are found at the next look.
                let _ = tokio::time::timeout(IDLE, self.queued.notified()).await;
            }
        }
    }

    /// Takes one batch and says what became of each message; how many it took.
    pub async fn round(&self) -> Result<usize, StoreError> {
        let taken = self.store.take_mail(BATCH, LEASE).await?;
        let mut renew_at = tokio::time::Instant::now() + LEASE / 2;
        let mut done = Vec::with_capacity(taken.len());
        for (i, mail) in taken.iter().enumerate() {
            if tokio::time::Instant::now() >= renew_at {
                // What is done leaves now; what is left stays this mailer's.
                self.store.forget_mail(&done).await?;
                done.clear();
                let held: Vec<i64> = taken[i..].iter().map(|m| m.id).collect();
                self.store.renew_mail_lease(&held, LEASE).await?;
                renew_at = tokio::time::Instant::now() + LEASE / 2;
            }
            if let Some(rate) = &self.rate {
                rate.until_ready().await;
            }
            let composed;
            let message = match &mail.content {
                Content::Message(message) => message.as_slice(),
                Content::Letter(letter) => match self.letterhead.render(&mail.recipient, letter) {
                    Ok(m) => {
                        composed = m;
                        composed.as_slice()
                    }
                    Err(e) => {
                        warn!(message = mail.id, kind = %mail.kind, error = %e,
                              "a letter could not be composed; given up");
                        self.metrics.count(&mail.kind, "failed");
                        done.push(mail.id);
                        continue;
                    }
                },
            };
            let sent = self
                .transport
                .send(mail, message, self.connection.as_ref())
                .await;
            match sent {
                Ok(()) => {
                    self.metrics.count(&mail.kind, "sent");
                    done.push(mail.id);
                }
                Err(Failure::Temporary(code)) if mail.attempts < MAX_ATTEMPTS => {
                    let wait = backoff(mail.attempts);
                    info!(message = mail.id, kind = %mail.kind, attempts = mail.attempts,
                          code = ?code, retry_in = ?wait, "a message will be tried again");
                    self.metrics.count(&mail.kind, "retried");
                    self.store.retry_mail(mail.id, wait).await?;
                }
                Err(failure) => {
                    warn!(message = mail.id, kind = %mail.kind, attempts = mail.attempts,
                          failure = ?failure, "a message was given up on");
                    self.metrics.count(&mail.kind, "failed");
                    done.push(mail.id);
                }
            }
        }
        self.store.forget_mail(&done).await?;
        Ok(taken.len())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::backoff;

    #[test]
    fn retries_wait_longer_each_time_up_to_an_hour_for_about_a_day() {
        let total: Duration = (1..super::MAX_ATTEMPTS).map(backoff).sum();
        assert!((20..=26).contains(&(total.as_secs() / 3600)), "{total:?}");
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(5), Duration::from_secs(80));
        assert_eq!(backoff(12), Duration::from_secs(3600));
        assert_eq!(backoff(i32::MAX), Duration::from_secs(3600));
        assert_eq!(backoff(0), Duration::from_secs(5));
    }
}
