//! Sending the outbox. Mailers take due messages from Postgres (any instance's
//! mailers share the work): from the outbox, and the confirmation messages
//! due on pending signatures' own rows, send each through one pooled SMTP transport, or
//! write it as an `.eml` file where no relay is configured, and then forget
//! it. A refusal the relay calls temporary, or a connection that fails, is
//! tried again later, waiting longer each time; a permanent refusal, or too
//! many tries, gives the message up. Logs and metrics never name an address.

mod letters;
mod smtp;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::address::Envelope;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use thiserror::Error;
use tracing::{info, warn};
use undersigned_domain::{Pepper, SignerToken};
use undersigned_guard::Limit;
use undersigned_store::{Content, DueConfirmation, NewLink, Petition, Store, StoreError};
use uuid::Uuid;

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
/// How soon a confirmation message whose link could not be made (its
/// signature given another token by another mailer meanwhile) is looked at
/// again.
const RELINK: Duration = Duration::from_secs(1);
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

    /// Sends one message from `sender` to `recipient` (`name`: its file's,
    /// where messages are files); `connection` is the mailer's own, for a
    /// relay over `smtp://`.
    async fn send(
        &self,
        name: &str,
        (sender, recipient): (&str, &str),
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
                .send_raw(&envelope(sender, recipient)?, message)
                .await
                .map(drop)
                .map_err(|e| refused(e.is_permanent(), e.status().map(|c| c.to_string()))),
            Self::Relay(_) => {
                let Some(connection) = connection else {
                    return Err(Failure::Temporary(None));
                };
                connection
                    .send(&envelope(sender, recipient)?, message)
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
                let path = dir.join(format!("{name}.eml"));
                let partial = dir.join(format!("{name}.eml.partial"));
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
fn envelope(sender: &str, recipient: &str) -> Result<Envelope, Failure> {
    let parse = |a: &str| a.parse::<Address>().map_err(|_| Failure::Undeliverable);
    Envelope::new(Some(parse(sender)?), vec![parse(recipient)?]).map_err(|_| Failure::Undeliverable)
}

/// What becomes of a message a mailer tried to send.
enum Fate {
    /// Sent, or given up on: nothing more to do.
    Done,
    /// Due again after this long.
    Retry(Duration),
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
            "Messages waiting to be sent (the outbox and confirmations due), due or waiting for a retry",
        )?;
        let oldest = IntGauge::new(
            "undersigned_mail_outbox_oldest_seconds",
            "Age of the oldest message waiting to be sent",
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
    /// Makes the confirmation links' tokens again.
    pepper: Pepper,
    /// The petitions whose confirmation messages it composes, each kept
    /// for [`PETITION_FRESH`].
    petitions: Mutex<PetitionCache>,
}

/// Petitions by id, with when each was read (`None`: there was none).
type PetitionCache = HashMap<i64, (Instant, Option<Arc<Petition>>)>;

/// How long a mailer composes with a petition as it read it: a title
/// changed meanwhile shows in the messages after that.
const PETITION_FRESH: Duration = Duration::from_secs(30);

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
        pepper: Pepper,
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
            pepper,
            petitions: Mutex::new(HashMap::new()),
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

    /// Takes one batch from the outbox and one of confirmation messages, and
    /// says what became of each message; how many it took.
    pub async fn round(&self) -> Result<usize, StoreError> {
        Ok(self.outbox_round().await? + self.confirmation_round().await?)
    }

    async fn outbox_round(&self) -> Result<usize, StoreError> {
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
            let message = match &mail.content {
                Content::Message(message) => Ok(message.clone()),
                Content::Letter(letter) => self.letterhead.render(&mail.recipient, letter),
            };
            let envelope = (mail.sender.as_str(), mail.recipient.as_str());
            let name = format!("{}-{}", mail.kind, mail.id);
            match self
                .deliver(&mail.kind, &name, envelope, mail.attempts, message)
                .await
            {
                Fate::Done => done.push(mail.id),
                Fate::Retry(wait) => self.store.retry_mail(mail.id, wait).await?,
            }
        }
        self.store.forget_mail(&done).await?;
        Ok(taken.len())
    }

    /// Sends the confirmation messages due on pending signatures: each link
    /// carries the token made from the signature's id and the time stored in
    /// front of its hash, or, for a signature that has none yet (or one made
    /// otherwise, before V16), a token made now, whose hash is stored before
    /// the message leaves.
    async fn confirmation_round(&self) -> Result<usize, StoreError> {
        const KIND: &str = "confirmation";
        let taken = self.store.take_confirmations(BATCH, LEASE).await?;
        let made = |due: &DueConfirmation, hash: Option<&[u8]>| {
            let token = self
                .pepper
                .confirmation_token(due.id, SignerToken::hashed_at(hash?)?);
            (token.hash() == hash?).then_some(token)
        };
        let now = u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(0);
        let fresh: Vec<_> = taken
            .iter()
            .filter(|due| made(due, due.token_hash.as_deref()).is_none())
            .map(|due| {
                let token = self.pepper.confirmation_token(due.id, now);
                NewLink {
                    signature: due.id,
                    seen: due.token_hash.clone(),
                    hash: token.hash(),
                }
            })
            .collect();
        let kept = self.store.keep_confirmation_hashes(&fresh).await?;
        // Each link from the hash its row holds now; none for a signature
        // confirmed, withdrawn or given another hash meanwhile, which is
        // tried again shortly if it still needs its message.
        let links: Vec<Option<String>> = taken
            .iter()
            .map(|due| {
                let hash = kept.get(&due.id).or(due.token_hash.as_ref());
                made(due, hash.map(Vec::as_slice)).map(|t| t.encoded())
            })
            .collect();
        let sender = self.letterhead.from.email.to_string();
        let mut renew_at = tokio::time::Instant::now() + LEASE / 2;
        let mut done = Vec::with_capacity(taken.len());
        for (i, (due, link)) in taken.iter().zip(&links).enumerate() {
            let Some(link) = link else {
                self.store.retry_confirmation(due.id, RELINK).await?;
                continue;
            };
            if tokio::time::Instant::now() >= renew_at {
                self.store.confirmations_sent(&done).await?;
                done.clear();
                let held: Vec<Uuid> = taken[i..].iter().map(|c| c.id).collect();
                self.store.renew_confirmation_lease(&held, LEASE).await?;
                renew_at = tokio::time::Instant::now() + LEASE / 2;
            }
            let message = match self.petition(due.petition_id).await? {
                Some(petition) => {
                    let (locale, title) = petition.title_for(due.locale.as_deref());
                    self.letterhead.confirmation(&ConfirmationLetter {
                        to: &due.recipient,
                        locale,
                        title,
                        slug: &petition.slug,
                        receipt: due.id,
                        token: link,
                        words: petition
                            .web
                            .confirmation_texts
                            .get(locale)
                            .map(|t| (t.subject.as_str(), t.body.as_str())),
                    })
                }
                None => Err(LetterError::Compose("its petition is gone".into())),
            };
            let envelope = (sender.as_str(), due.recipient.as_str());
            let name = format!("{KIND}-{}", due.id);
            match self
                .deliver(KIND, &name, envelope, due.attempts, message)
                .await
            {
                Fate::Done => done.push(due.id),
                Fate::Retry(wait) => self.store.retry_confirmation(due.id, wait).await?,
            }
        }
        self.store.confirmations_sent(&done).await?;
        Ok(taken.len())
    }

    /// Sends one message (composed, or why it could not be) at the relay's
    /// rate, and counts and logs what became of it, never with its address.
    async fn deliver(
        &self,
        kind: &str,
        name: &str,
        envelope: (&str, &str),
        attempts: i32,
        message: Result<Vec<u8>, LetterError>,
    ) -> Fate {
        let message = match message {
            Ok(message) => message,
            Err(e) => {
                warn!(message = name, kind, error = %e, "a letter could not be composed; given up");
                self.metrics.count(kind, "failed");
                return Fate::Done;
            }
        };
        if let Some(rate) = &self.rate {
            rate.until_ready().await;
        }
        let sent = self
            .transport
            .send(name, envelope, &message, self.connection.as_ref())
            .await;
        match sent {
            Ok(()) => {
                self.metrics.count(kind, "sent");
                Fate::Done
            }
            Err(Failure::Temporary(code)) if attempts < MAX_ATTEMPTS => {
                let wait = backoff(attempts);
                info!(message = name, kind, attempts, code = ?code, retry_in = ?wait,
                      "a message will be tried again");
                self.metrics.count(kind, "retried");
                Fate::Retry(wait)
            }
            Err(failure) => {
                warn!(message = name, kind, attempts, failure = ?failure,
                      "a message was given up on");
                self.metrics.count(kind, "failed");
                Fate::Done
            }
        }
    }

    /// The petition `id`, as read at most [`PETITION_FRESH`] ago.
    async fn petition(&self, id: i64) -> Result<Option<Arc<Petition>>, StoreError> {
        let cached = {
            let petitions = self.petitions.lock().unwrap_or_else(|e| e.into_inner());
            petitions
                .get(&id)
                .filter(|(read, _)| read.elapsed() < PETITION_FRESH)
                .map(|(_, p)| p.clone())
        };
        if let Some(petition) = cached {
            return Ok(petition);
        }
        let petition = self.store.petition_by_id(id).await?.map(Arc::new);
        let mut petitions = self.petitions.lock().unwrap_or_else(|e| e.into_inner());
        petitions.retain(|_, (read, _)| read.elapsed() < PETITION_FRESH);
        petitions.insert(id, (Instant::now(), petition.clone()));
        Ok(petition)
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
