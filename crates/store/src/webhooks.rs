//! Webhooks: the endpoints, and the messages owed to them.
//!
//! A message is a row of `webhook_deliveries`, written in the transaction
//! that makes it due (V21 says which), one per endpoint that hears of it.
//! Couriers on any instance take an endpoint's due rows with `SKIP LOCKED`
//! and a lease, delete those delivered, and put the others off or give up on
//! them. What a message says is read when it is sent (`Due`): the row names
//! a signature, not its signer.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use crate::audit::{AuditEntry, record};
use crate::{Store, StoreError};

/// The event types an endpoint may hear of.
pub const WEBHOOK_EVENTS: [&str; 5] = [
    "signature.counted",
    "signature.withdrawn",
    "signature.invalidated",
    "petition.milestone",
    "petition.closed",
];

/// Queues `$1` about the signatures `$3` of petitions `$2` for every endpoint
/// that hears of it there. Endpoints are few and read whole; with none, this
/// writes nothing.
pub(crate) const NOTIFY: &str = "
    INSERT INTO webhook_deliveries (webhook_id, kind, petition_id, signature_id)
    SELECT w.id, $1, t.p, t.s FROM unnest($2::int8[], $3::uuid[]) AS t(p, s)
    JOIN webhooks w ON $1 = ANY (w.events) AND (w.petition_id IS NULL OR w.petition_id = t.p)";

/// Queues `kind` about each of `signatures` (petition, receipt) for the
/// endpoints that hear of it, on `client` (inside the change's transaction).
pub(crate) async fn notify(
    client: &impl GenericClient,
    kind: &str,
    signatures: &[(i64, Uuid)],
) -> Result<(), StoreError> {
    if signatures.is_empty() {
        return Ok(());
    }
    let (petitions, ids): (Vec<i64>, Vec<Uuid>) = signatures.iter().copied().unzip();
    client.execute(NOTIFY, &[&kind, &petitions, &ids]).await?;
    Ok(())
}

/// Milestones reached since the last look, and petitions closed (by their
/// status or their `closes_at`) whose closing was not reported: each is
/// marked and queued in one transaction, so reported once however many
/// instances look. A count is read from committed rows only, so a milestone
/// is never announced for signatures that rolled back.
const REPORT: &str = "
    WITH totals AS (
        SELECT p.id, p.milestones, sum(c.count - c.removed + c.restored)::int8 AS total
        FROM petitions p JOIN signature_counts c ON c.petition_id = p.id
        WHERE cardinality(p.milestones) > 0
          AND EXISTS (SELECT 1 FROM unnest(p.milestones) AS m
                      WHERE NOT EXISTS (SELECT 1 FROM petition_milestones r
                                        WHERE r.petition_id = p.id AND r.milestone = m))
        GROUP BY p.id, p.milestones
    ), reached AS (
        INSERT INTO petition_milestones (petition_id, milestone, count)
        SELECT t.id, m, t.total FROM totals t, unnest(t.milestones) AS m WHERE m <= t.total
        ON CONFLICT DO NOTHING
        RETURNING petition_id, milestone, count
    ), closed AS (
        UPDATE petitions SET closed_reported_at = now()
        WHERE closed_reported_at IS NULL AND (closed_at IS NOT NULL OR closes_at <= now())
        RETURNING id, least(closed_at, closes_at) AS at
    ), reopened AS (
        UPDATE petitions SET closed_reported_at = NULL
        WHERE closed_reported_at IS NOT NULL AND closed_at IS NULL
          AND (closes_at IS NULL OR closes_at > now())
    ), queued AS (
        INSERT INTO webhook_deliveries (webhook_id, kind, petition_id, data)
        SELECT w.id, e.kind, e.petition_id, e.data
        FROM (SELECT 'petition.milestone' AS kind, petition_id,
                     jsonb_build_object('milestone', milestone, 'count', count) AS data
              FROM reached
              UNION ALL
              SELECT 'petition.closed', id, jsonb_build_object('closed_at', at) FROM closed) e
        JOIN webhooks w ON e.kind = ANY (w.events)
            AND (w.petition_id IS NULL OR w.petition_id = e.petition_id)
    )
    SELECT (SELECT count(*) FROM reached), (SELECT count(*) FROM closed)";

/// An endpoint as its owners see it (never its secret).
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    /// The petition it hears of (its slug), or every petition.
    pub petition_id: Option<i64>,
    pub petition: Option<String>,
    pub include_personal_data: bool,
    pub created_at: DateTime<Utc>,
    pub delivered: i64,
    pub last_delivered_at: Option<DateTime<Utc>>,
    /// Messages waiting (or being retried) and given up on.
    pub pending: i64,
    pub dead: i64,
}

const WEBHOOK_COLUMNS: &str = "w.id, w.url, w.events, w.petition_id, p.slug,
    w.include_personal_data, w.created_at, w.delivered, w.last_delivered_at,
    (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.state = 'pending'),
    (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.state = 'dead')";

impl TryFrom<&Row> for Webhook {
    type Error = StoreError;

    fn try_from(row: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.try_get(0)?,
            url: row.try_get(1)?,
            events: row.try_get(2)?,
            petition_id: row.try_get(3)?,
            petition: row.try_get(4)?,
            include_personal_data: row.try_get(5)?,
            created_at: row.try_get(6)?,
            delivered: row.try_get(7)?,
            last_delivered_at: row.try_get(8)?,
            pending: row.try_get(9)?,
            dead: row.try_get(10)?,
        })
    }
}

/// A new endpoint, checked by the caller.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub petition_id: Option<i64>,
    pub include_personal_data: bool,
    pub secret_sealed: Vec<u8>,
    pub created_by: Option<Uuid>,
}

/// An endpoint as couriers see it: where, what, and its sealed secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    pub id: Uuid,
    pub url: String,
    pub include_personal_data: bool,
    pub secret_sealed: Vec<u8>,
}

/// A message as its endpoint's owners see it.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub id: i64,
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub state: String,
    pub attempts: i16,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status: Option<i16>,
    pub last_error: Option<String>,
    /// When the next try is due (a pending message).
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A message a courier has taken, with what its payload says.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: i64,
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    /// Tries before this one.
    pub attempts: i16,
    pub petition: String,
    pub data: Option<Value>,
    pub signature: Option<SignatureFacts>,
}

/// What a signature's message says of it.
#[derive(Debug, Clone)]
pub struct SignatureFacts {
    pub receipt: Uuid,
    pub country: String,
    pub signer_kind: String,
    pub channel: String,
    pub signed_at: DateTime<Utc>,
    pub event_id: Option<Uuid>,
    /// Given only to an endpoint that includes personal data, for a signer
    /// who asked to be kept informed and whose data is there in clear.
    pub person: Option<Person>,
}

#[derive(Debug, Clone)]
pub struct Person {
    pub full_name: String,
    pub email: Option<String>,
    pub organization: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub locale: Option<String>,
}

/// What became of one try.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: i64,
    /// The endpoint's status code, when it answered.
    pub status: Option<u16>,
    /// Why it failed (no status, or not 2xx), in a few words.
    pub error: Option<String>,
    /// When to try again; `None`: given up on (dead letter).
    pub retry_at: Option<DateTime<Utc>>,
}

/// Takes up to `$2` of endpoint `$1`'s due messages, leases them for `$3`
/// seconds, and reads what their payloads say; a signer's person only in a
/// `signature.counted` message to an endpoint that includes personal data
/// (`$4`), when they consented and the signature still counts (not
/// withdrawn, invalidated, pending or shadowed) and is not sealed.
const TAKE: &str = "
    WITH taken AS (
        UPDATE webhook_deliveries d
        SET due_at = now() + make_interval(secs => $3), attempts = attempts + 1
        WHERE id IN (SELECT id FROM webhook_deliveries
                     WHERE webhook_id = $1 AND state = 'pending' AND due_at <= now()
                     ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
        RETURNING d.id, d.kind, d.occurred_at, (d.attempts - 1)::int2 AS attempts, d.petition_id,
            d.data, d.signature_id
    )
    SELECT t.id, t.kind, t.occurred_at, t.attempts, p.slug, t.data, s.id, s.country,
        s.signer_kind, s.channel, s.signed_at, s.event_id,
        ($4 AND t.kind = 'signature.counted' AND s.consent_updates
            AND s.withdrawn_at IS NULL AND s.invalidated_by IS NULL AND s.shadowed_by IS NULL
            AND s.pending_until IS NULL AND s.sealed IS NULL AND s.identity_key IS NOT NULL)
            AS person,
        s.full_name, s.email, s.organization, s.postal_code, s.city, s.locale
    FROM taken t JOIN petitions p ON p.id = t.petition_id
    LEFT JOIN signatures s ON s.id = t.signature_id
    ORDER BY t.id";

impl Due {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        let receipt: Option<Uuid> = row.try_get(6)?;
        let signature = match receipt {
            None => None,
            Some(receipt) => Some(SignatureFacts {
                receipt,
                country: row.try_get(7)?,
                signer_kind: row.try_get(8)?,
                channel: row.try_get(9)?,
                signed_at: row.try_get(10)?,
                event_id: row.try_get(11)?,
                person: if row.try_get::<_, Option<bool>>(12)?.unwrap_or(false) {
                    Some(Person {
                        full_name: row.try_get(13)?,
                        email: row.try_get(14)?,
                        organization: row.try_get(15)?,
                        postal_code: row.try_get(16)?,
                        city: row.try_get(17)?,
                        locale: row.try_get(18)?,
                    })
                } else {
                    None
                },
            }),
        };
        Ok(Self {
            id: row.try_get(0)?,
            kind: row.try_get(1)?,
            occurred_at: row.try_get(2)?,
            attempts: row.try_get(3)?,
            petition: row.try_get(4)?,
            data: row.try_get(5)?,
            signature,
        })
    }
}

impl Store {
    /// Creates an endpoint, audited in the same transaction.
    pub async fn create_webhook(
        &self,
        new: &NewWebhook,
        audit: AuditEntry,
    ) -> Result<Webhook, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO webhooks (id, url, events, petition_id, include_personal_data,
                secret_sealed, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &new.id,
                &new.url,
                &new.events,
                &new.petition_id,
                &new.include_personal_data,
                &new.secret_sealed,
                &new.created_by,
            ],
        )
        .await?;
        record(&tx, &audit).await?;
        let webhook = one_webhook(&*tx, new.id)
            .await?
            .ok_or_else(|| StoreError::Config("a webhook just created is gone".into()))?;
        tx.commit().await?;
        Ok(webhook)
    }

    pub async fn webhook(&self, id: Uuid) -> Result<Option<Webhook>, StoreError> {
        let client = self.pool.get().await?;
        one_webhook(&**client, id).await
    }

    /// Every endpoint (`petitions: None`), or those of these petitions.
    pub async fn webhooks(&self, petitions: Option<&[i64]>) -> Result<Vec<Webhook>, StoreError> {
        let petitions = petitions.map(<[i64]>::to_vec);
        self.pool
            .get()
            .await?
            .query(
                &format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks w
                     LEFT JOIN petitions p ON p.id = w.petition_id
                     WHERE $1::int8[] IS NULL OR w.petition_id = ANY ($1)
                     ORDER BY w.created_at, w.id"
                ),
                &[&petitions],
            )
            .await?
            .iter()
            .map(Webhook::try_from)
            .collect()
    }

    /// Deletes an endpoint and every message owed to it, audited; false when
    /// there was none.
    pub async fn delete_webhook(&self, id: Uuid, audit: AuditEntry) -> Result<bool, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Its messages first, as a courier settling them takes them before
        // the webhook's row (its tally): one order, no deadlock.
        tx.execute(
            "DELETE FROM webhook_deliveries WHERE webhook_id = $1",
            &[&id],
        )
        .await?;
        let gone = tx
            .execute("DELETE FROM webhooks WHERE id = $1", &[&id])
            .await?;
        if gone == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO webhook_deletions (id) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&id],
        )
        .await?;
        record(&tx, &audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The endpoint's messages not delivered yet or given up on, the latest
    /// first, `limit` at most.
    pub async fn webhook_deliveries(
        &self,
        id: Uuid,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.pool
            .get()
            .await?
            .query(
                "SELECT id, kind, occurred_at, state, attempts, last_attempt_at, last_status,
                    last_error, CASE WHEN state = 'pending' THEN due_at END
                 FROM webhook_deliveries WHERE webhook_id = $1
                 ORDER BY coalesce(last_attempt_at, occurred_at) DESC, id DESC LIMIT $2",
                &[&id, &limit],
            )
            .await?
            .iter()
            .map(|row| {
                Ok(DeliveryRecord {
                    id: row.try_get(0)?,
                    kind: row.try_get(1)?,
                    occurred_at: row.try_get(2)?,
                    state: row.try_get(3)?,
                    attempts: row.try_get(4)?,
                    last_attempt_at: row.try_get(5)?,
                    last_status: row.try_get(6)?,
                    last_error: row.try_get(7)?,
                    next_attempt_at: row.try_get(8)?,
                })
            })
            .collect()
    }

    /// Every endpoint, as couriers need them.
    pub async fn webhook_targets(&self) -> Result<Vec<WebhookTarget>, StoreError> {
        self.pool
            .get()
            .await?
            .query(
                "SELECT id, url, include_personal_data, secret_sealed FROM webhooks ORDER BY id",
                &[],
            )
            .await?
            .iter()
            .map(|row| {
                Ok(WebhookTarget {
                    id: row.try_get(0)?,
                    url: row.try_get(1)?,
                    include_personal_data: row.try_get(2)?,
                    secret_sealed: row.try_get(3)?,
                })
            })
            .collect()
    }

    /// Takes up to `limit` of the endpoint's due messages, leased for `lease`.
    pub async fn take_deliveries(
        &self,
        target: &WebhookTarget,
        limit: i64,
        lease: std::time::Duration,
    ) -> Result<Vec<Due>, StoreError> {
        let lease = lease.as_secs_f64();
        self.pool
            .get()
            .await?
            .query(
                TAKE,
                &[&target.id, &limit, &lease, &target.include_personal_data],
            )
            .await?
            .iter()
            .map(Due::from_row)
            .collect()
    }

    /// Records what became of a courier's tries: delivered messages go (and
    /// count on their endpoint), failed ones wait for their next try or are
    /// given up on. One transaction of at most three statements.
    pub async fn settle_deliveries(
        &self,
        webhook: Uuid,
        delivered: &[i64],
        failed: &[Attempt],
    ) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if !delivered.is_empty() {
            let n = tx
                .execute(
                    "DELETE FROM webhook_deliveries WHERE id = ANY ($1) AND webhook_id = $2",
                    &[&delivered, &webhook],
                )
                .await?;
            tx.execute(
                "UPDATE webhooks SET delivered = delivered + $2, last_delivered_at = now()
                 WHERE id = $1",
                &[&webhook, &i64::try_from(n).unwrap_or(i64::MAX)],
            )
            .await?;
        }
        if !failed.is_empty() {
            let ids: Vec<i64> = failed.iter().map(|a| a.id).collect();
            let statuses: Vec<Option<i16>> = failed
                .iter()
                .map(|a| a.status.and_then(|s| i16::try_from(s).ok()))
                .collect();
            let errors: Vec<Option<&str>> = failed.iter().map(|a| a.error.as_deref()).collect();
            let retries: Vec<Option<DateTime<Utc>>> = failed.iter().map(|a| a.retry_at).collect();
            tx.execute(
                "UPDATE webhook_deliveries d
                 SET last_attempt_at = now(), last_status = t.s, last_error = t.e,
                     due_at = coalesce(t.r, d.due_at),
                     state = CASE WHEN t.r IS NULL THEN 'dead' ELSE 'pending' END
                 FROM unnest($1::int8[], $2::int2[], $3::text[], $4::timestamptz[])
                     AS t(i, s, e, r)
                 WHERE d.id = t.i AND d.webhook_id = $5",
                &[&ids, &statuses, &errors, &retries, &webhook],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the messages queued for webhooks deleted lately by changes
    /// that began before the deletion, and forgets deletions an hour old.
    pub async fn sweep_deleted_webhooks(&self) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        let swept = client
            .execute(
                "DELETE FROM webhook_deliveries
                 WHERE webhook_id IN (SELECT id FROM webhook_deletions)",
                &[],
            )
            .await?;
        client
            .execute(
                "DELETE FROM webhook_deletions WHERE deleted_at < now() - interval '1 hour'",
                &[],
            )
            .await?;
        Ok(swept)
    }

    /// How many webhooks hear of this petition's events alone (`Some`), or
    /// of every petition's (`None`).
    pub async fn webhooks_on(&self, petition_id: Option<i64>) -> Result<i64, StoreError> {
        Ok(self
            .pool
            .get()
            .await?
            .query_one(
                "SELECT count(*) FROM webhooks WHERE petition_id IS NOT DISTINCT FROM $1",
                &[&petition_id],
            )
            .await?
            .try_get(0)?)
    }

    /// Queues the milestones reached and the closings not reported yet:
    /// (milestones, closings) reported.
    pub async fn report_milestones_and_closings(&self) -> Result<(i64, i64), StoreError> {
        let row = self.pool.get().await?.query_one(REPORT, &[]).await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }
}

async fn one_webhook(client: &impl GenericClient, id: Uuid) -> Result<Option<Webhook>, StoreError> {
    client
        .query_opt(
            &format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks w
                 LEFT JOIN petitions p ON p.id = w.petition_id WHERE w.id = $1"
            ),
            &[&id],
        )
        .await?
        .as_ref()
        .map(Webhook::try_from)
        .transpose()
}
