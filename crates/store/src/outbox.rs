//! The outbox: messages to send, written in the transaction that makes them
//! due, so that no message goes out for a change that did not commit and none
//! is lost when a process dies. Mailers on any instance take due messages with
//! `SKIP LOCKED` and a lease, and delete each once it is sent or given up on.

use std::time::Duration;

use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::{Store, StoreError};

/// A message to queue: its envelope and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// What it is for (`confirmation`, `withdrawal`), for metrics.
    pub kind: &'static str,
    pub sender: String,
    pub recipient: String,
    pub content: Content,
}

/// What a queued message holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Its whole text (RFC 5322), sent as it is.
    Message(Vec<u8>),
    /// A letter (JSON) the mailer composes when it sends it.
    Letter(String),
}

impl Content {
    pub(crate) fn message(&self) -> Option<&[u8]> {
        match self {
            Self::Message(m) => Some(m),
            Self::Letter(_) => None,
        }
    }

    pub(crate) fn letter(&self) -> Option<&str> {
        match self {
            Self::Message(_) => None,
            Self::Letter(l) => Some(l),
        }
    }
}

/// A queued message a mailer has taken, leased to it for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    pub id: i64,
    pub kind: String,
    pub sender: String,
    pub recipient: String,
    pub content: Content,
    /// Tries so far, this one included.
    pub attempts: i32,
}

/// Queues `mail` on `client` (inside the caller's transaction when it is
/// one), each message with the signature it is about, if any: erasing that
/// signature forgets it.
pub(crate) async fn enqueue(
    client: &impl GenericClient,
    mail: &[(Option<Uuid>, &OutgoingMail)],
) -> Result<(), StoreError> {
    if mail.is_empty() {
        return Ok(());
    }
    let signatures: Vec<Option<Uuid>> = mail.iter().map(|(s, _)| *s).collect();
    let kinds: Vec<&str> = mail.iter().map(|(_, m)| m.kind).collect();
    let senders: Vec<&str> = mail.iter().map(|(_, m)| m.sender.as_str()).collect();
    let recipients: Vec<&str> = mail.iter().map(|(_, m)| m.recipient.as_str()).collect();
    let messages: Vec<Option<&[u8]>> = mail.iter().map(|(_, m)| m.content.message()).collect();
    let letters: Vec<Option<&str>> = mail.iter().map(|(_, m)| m.content.letter()).collect();
    client
        .execute(
            "INSERT INTO outbox (kind, sender, recipient, message, letter, signature_id)
             SELECT k, s, r, m, l::jsonb, i
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[],
                 $6::uuid[]) AS t(k, s, r, m, l, i)",
            &[
                &kinds,
                &senders,
                &recipients,
                &messages,
                &letters,
                &signatures,
            ],
        )
        .await?;
    Ok(())
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Store {
    /// Queues messages on their own (those no other change goes with).
    pub async fn enqueue_mail(&self, mail: &[OutgoingMail]) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        let about: Vec<_> = mail.iter().map(|m| (None, m)).collect();
        enqueue(&**client, &about).await
    }

    /// Up to `limit` due messages, oldest first, each counted as one more try
    /// and leased for `lease`: no other mailer takes it meanwhile, and it is
    /// due again if this one dies before saying what became of it.
    pub async fn take_mail(
        &self,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "UPDATE outbox SET attempts = attempts + 1,
                        due_at = now() + make_interval(secs => $2)
                 WHERE id IN (SELECT id FROM outbox WHERE due_at <= now()
                              ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED)
                 RETURNING id, kind, sender, recipient, message, letter::text, attempts",
                &[&limit, &seconds(lease)],
            )
            .await?;
        let mut taken: Vec<QueuedMail> = rows
            .iter()
            .map(|r| QueuedMail {
                id: r.get(0),
                kind: r.get(1),
                sender: r.get(2),
                recipient: r.get(3),
                content: match r.get::<_, Option<Vec<u8>>>(4) {
                    Some(message) => Content::Message(message),
                    None => Content::Letter(r.get::<_, Option<String>>(5).unwrap_or_default()),
                },
                attempts: r.get(6),
            })
            .collect();
        taken.sort_by_key(|m| m.id);
        Ok(taken)
    }

    /// Keeps messages a mailer still holds its own for `lease` more.
    pub async fn renew_mail_lease(&self, ids: &[i64], lease: Duration) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE outbox SET due_at = now() + make_interval(secs => $2) WHERE id = ANY($1)",
                &[&ids, &seconds(lease)],
            )
            .await?;
        Ok(())
    }

    /// Forgets messages sent, or given up on: the outbox keeps no copy.
    pub async fn forget_mail(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let client = self.pool.get().await?;
        client
            .execute("DELETE FROM outbox WHERE id = ANY($1)", &[&ids])
            .await?;
        Ok(())
    }

    /// Makes a message due again after `after`, for another try.
    pub async fn retry_mail(&self, id: i64, after: Duration) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE outbox SET due_at = now() + make_interval(secs => $2) WHERE id = $1",
                &[&id, &seconds(after)],
            )
            .await?;
        Ok(())
    }

    /// How many messages wait, and the age of the oldest, in seconds.
    pub async fn outbox_backlog(&self) -> Result<(i64, f64), StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
                 FROM outbox",
                &[],
            )
            .await?;
        Ok((row.get(0), row.get(1)))
    }
}
