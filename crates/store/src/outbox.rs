//! The outbox: messages to send, written in the transaction that makes them
//! due, so that no message goes out for a change that did not commit and none
//! is lost when a process dies. Mailers on any instance take due messages with
//! `SKIP LOCKED` and a lease, and delete each once it is sent or given up on.
//!
//! A pending signature's confirmation message is queued on the signature's
//! own row (`mail_due`, V16) rather than here: the signature path writes no
//! second row for it. Mailers take those the same way, compose them from
//! the row and its petition, and store the link's token hash on the row
//! before the message leaves.

use std::collections::HashMap;
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

/// A pending signature whose confirmation message is due, as a mailer took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueConfirmation {
    /// The signature, its receipt.
    pub id: Uuid,
    pub petition_id: i64,
    pub recipient: String,
    /// The locale the signer chose, if any.
    pub locale: Option<String>,
    /// What is stored of the token its link carries, once one was made.
    pub token_hash: Option<Vec<u8>>,
    /// Tries so far, this one included.
    pub attempts: i32,
}

/// A link a mailer made for a pending signature: the hash of its token, to
/// be stored in place of the one the mailer saw on the row.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub signature: Uuid,
    pub seen: Option<Vec<u8>>,
    pub hash: Vec<u8>,
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

    /// How many messages wait (in the outbox, and on pending signatures),
    /// and the age of the oldest, in seconds.
    pub async fn outbox_backlog(&self) -> Result<(i64, f64), StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT sum(n)::int8, coalesce(extract(epoch FROM now() - min(oldest)), 0)::float8
                 FROM (SELECT count(*) AS n, min(created_at) AS oldest FROM outbox
                       UNION ALL
                       SELECT count(*), min(signed_at) FROM signatures
                       WHERE mail_due IS NOT NULL) AS t",
                &[],
            )
            .await?;
        Ok((row.get(0), row.get(1)))
    }

    /// Up to `limit` pending signatures whose confirmation message is due,
    /// oldest first, each counted as one more try and leased for `lease`.
    pub async fn take_confirmations(
        &self,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<DueConfirmation>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "UPDATE signatures SET mail_attempts = mail_attempts + 1,
                        mail_due = now() + make_interval(secs => $2)
                 WHERE id IN (SELECT id FROM signatures WHERE mail_due <= now()
                              ORDER BY mail_due LIMIT $1 FOR UPDATE SKIP LOCKED)
                   AND pending_until > now() AND email IS NOT NULL
                 RETURNING id, petition_id, email, locale, confirm_hash, mail_attempts",
                &[&limit, &seconds(lease)],
            )
            .await?;
        let mut taken = rows
            .iter()
            .map(|r| {
                Ok(DueConfirmation {
                    id: r.try_get(0)?,
                    petition_id: r.try_get(1)?,
                    recipient: r.try_get(2)?,
                    locale: r.try_get(3)?,
                    token_hash: r.try_get(4)?,
                    attempts: i32::from(r.try_get::<_, i16>(5)?),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        taken.sort_by_key(|c| c.id);
        Ok(taken)
    }

    /// Stores the hashes of the tokens that the links of these pending
    /// signatures will carry, before their messages leave; only where the row still holds the hash
    /// the mailer saw (another mailer, sending the same signature's message
    /// again meanwhile, may have stored one first). Returns, for each, the
    /// hash the row holds now (`None`: no longer pending), for the mailer to
    /// make its link from.
    pub async fn keep_confirmation_hashes(
        &self,
        hashes: &[NewLink],
    ) -> Result<HashMap<Uuid, Vec<u8>>, StoreError> {
        if hashes.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<Uuid> = hashes.iter().map(|l| l.signature).collect();
        let seen: Vec<Option<&[u8]>> = hashes.iter().map(|l| l.seen.as_deref()).collect();
        let new: Vec<&[u8]> = hashes.iter().map(|l| &l.hash[..]).collect();
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE signatures s SET confirm_hash = t.h
                 FROM unnest($1::uuid[], $2::bytea[], $3::bytea[]) AS t(i, seen, h)
                 WHERE s.id = t.i AND s.pending_until IS NOT NULL
                   AND s.confirm_hash IS NOT DISTINCT FROM t.seen",
                &[&ids, &seen, &new],
            )
            .await?;
        // Read after the update committed: what another mailer stored
        // instead shows too.
        let rows = client
            .query(
                "SELECT id, confirm_hash FROM signatures
                 WHERE id = ANY($1) AND pending_until IS NOT NULL AND confirm_hash IS NOT NULL",
                &[&ids],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Renews the lease of confirmation messages a mailer still holds.
    pub async fn renew_confirmation_lease(
        &self,
        ids: &[Uuid],
        lease: Duration,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE signatures SET mail_due = now() + make_interval(secs => $2)
                 WHERE id = ANY($1) AND mail_due IS NOT NULL",
                &[&ids, &seconds(lease)],
            )
            .await?;
        Ok(())
    }

    /// Nothing more to send for these signatures: their messages were
    /// sent, or given up on. One made due again meanwhile (its signer
    /// signed again while it was being sent) stays due.
    pub async fn confirmations_sent(&self, ids: &[Uuid]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let client = self.pool.get().await?;
        client
            .execute(
                // A sealed signature's address was kept in clear only for
                // this message (confirming clears it too, should the signer
                // follow the link before this).
                "UPDATE signatures SET mail_due = NULL,
                        email = CASE WHEN sealed IS NULL THEN email END
                 WHERE id = ANY($1) AND mail_due > now()",
                &[&ids],
            )
            .await?;
        Ok(())
    }

    /// Makes a signature's confirmation message due again after `after`,
    /// while the signature is still pending.
    pub async fn retry_confirmation(&self, id: Uuid, after: Duration) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE signatures SET mail_due = now() + make_interval(secs => $2)
                 WHERE id = $1 AND pending_until IS NOT NULL",
                &[&id, &seconds(after)],
            )
            .await?;
        Ok(())
    }
}
