//! Webhooks: the endpoints, what happened, and the messages that failed.
//!
//! An event is a row of `webhook_events`, written in the transaction of the
//! change it reports when some webhook hears of it (V21 says how). Each
//! webhook's courier, on one instance at a time (it holds the webhook for a
//! while, `courier_until`), reads the events after its cursor in commit-safe
//! order, sends them, and moves its cursor on in the transaction that
//! records the messages that failed, to be tried again from
//! `webhook_deliveries`. What a message says is read when it is sent
//! (`Due`): an event names a signature, not its signer.

use std::sync::LazyLock;

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

/// Records `$1` about the signatures `$3` of petitions `$2`, one event a
/// petition, when some endpoint hears of it there. Endpoints are few and
/// read whole; with none, this writes nothing.
pub(crate) const NOTIFY: &str = "
    INSERT INTO webhook_events (kind, petition_id, signatures)
    SELECT $1, t.p, array_agg(t.s ORDER BY t.s) FROM unnest($2::int8[], $3::uuid[]) AS t(p, s)
    WHERE EXISTS (SELECT 1 FROM webhooks w WHERE $1 = ANY (w.events)
                  AND (w.petition_id IS NULL OR w.petition_id = t.p))
    GROUP BY t.p";

/// Records `kind` about each of `signatures` (petition, receipt) for the
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
        INSERT INTO webhook_events (kind, petition_id, data)
        SELECT e.kind, e.petition_id, e.data
        FROM (SELECT 'petition.milestone' AS kind, petition_id,
                     jsonb_build_object('milestone', milestone, 'count', count) AS data
              FROM reached
              UNION ALL
              SELECT 'petition.closed', id, jsonb_build_object('closed_at', at) FROM closed) e
        WHERE EXISTS (SELECT 1 FROM webhooks w WHERE e.kind = ANY (w.events)
                      AND (w.petition_id IS NULL OR w.petition_id = e.petition_id))
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
    /// Messages waiting for a retry, and given up on.
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

/// An endpoint as couriers see it: where, what it hears of, and its sealed
/// secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub petition_id: Option<i64>,
    pub include_personal_data: bool,
    pub secret_sealed: Vec<u8>,
}

/// A place in the events: a transaction (`xid8`, written as text), an
/// event's id in it, and a message's position in that event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub xid: String,
    pub id: i64,
    /// The last message of that event sent (0: none yet).
    pub position: i32,
}

/// An `xid8` written as text, as a number (0 if it is not one).
fn xid_number(xid: &str) -> u64 {
    xid.parse().unwrap_or(0)
}

/// Events a courier read after its cursor, and where its cursor goes once
/// they are sent.
#[derive(Debug, Clone)]
pub struct Fresh {
    pub due: Vec<Due>,
    pub next: Cursor,
}

/// A message that failed, as its endpoint's owners see it.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    /// Its event's id and its position there (its `webhook-id`).
    pub message: i64,
    pub position: i32,
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
    /// Its event's id and its position in it: its `webhook-id`.
    pub message: i64,
    pub position: i32,
    /// Its row in `webhook_deliveries` when it is a retry; `None` on its
    /// first try, straight from the events.
    pub retry: Option<i64>,
    /// Its event's transaction (`xid8` as text), on a first try.
    pub xid: Option<String>,
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

/// What became of one try that failed.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The message: its event's id and its position in it.
    pub message: i64,
    pub position: i32,
    /// The signature it is about, if any.
    pub signature: Option<Uuid>,
    /// The endpoint's status code, when it answered.
    pub status: Option<u16>,
    /// Why it failed (no status, or not 2xx), in a few words.
    pub error: Option<String>,
    /// When to try again; `None`: given up on (dead letter).
    pub retry_at: Option<DateTime<Utc>>,
    /// Its row when it was a retry; `None`: its first try.
    pub retry: Option<i64>,
    /// Its event's transaction, on a first try.
    pub xid: Option<String>,
}

/// What a message says: `{source}` holds its event's fields (`message`,
/// `kind`, `occurred_at`, `attempts` before this one, `petition_id`, `data`,
/// `signature_id`); a signer's person only in a `signature.counted` message
/// to an endpoint that includes personal data (`$4`), when they consented
/// and the signature still counts (not withdrawn, invalidated, pending or
/// shadowed) and is not sealed.
fn facts(source: &str) -> String {
    format!(
        "WITH t AS ({source})
         SELECT t.message, t.retry, t.kind, t.occurred_at, t.attempts, p.slug, t.data, s.id,
            s.country, s.signer_kind, s.channel, s.signed_at, s.event_id,
            ($4 AND t.kind = 'signature.counted' AND s.consent_updates
                AND s.withdrawn_at IS NULL AND s.invalidated_by IS NULL
                AND s.shadowed_by IS NULL AND s.pending_until IS NULL AND s.sealed IS NULL
                AND s.identity_key IS NOT NULL) AS person,
            s.full_name, s.email, s.organization, s.postal_code, s.city, s.locale, t.xid::text,
            t.position
         FROM t JOIN petitions p ON p.id = t.petition_id
         LEFT JOIN signatures s ON s.id = t.signature_id
         ORDER BY t.xid, t.message, t.position"
    )
}

/// Takes up to `$2` of endpoint `$1`'s retries that are due, and leases
/// them for `$3` seconds.
static TAKE: LazyLock<String> = LazyLock::new(|| {
    facts(
        "UPDATE webhook_deliveries d
         SET due_at = now() + make_interval(secs => $3), attempts = attempts + 1
         WHERE id IN (SELECT id FROM webhook_deliveries
                      WHERE webhook_id = $1 AND state = 'pending' AND due_at <= now()
                      ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING d.message, d.id AS retry, d.kind, d.occurred_at,
             (d.attempts - 1)::int2 AS attempts, d.petition_id, d.data, d.signature_id,
             NULL::xid8 AS xid, d.position",
    )
});

/// Up to `$1` messages after the cursor (`$2`, `$3`, `$8`) that an
/// endpoint hears of (the kinds `$5`, the petition `$6`), from events
/// written by transactions below `$7`, all of which have ended, in order:
/// each signature of an event is a message, at its position; a petition's
/// own event is one, at position 1. Only the next 32 events are opened, so
/// that a backlog (a peak faster than the webhook's rate) costs each read
/// no more than they hold.
static FRESH: LazyLock<String> = LazyLock::new(|| {
    facts(
        "SELECT e.id AS message, NULL::int8 AS retry, e.kind, e.occurred_at,
             0::int2 AS attempts, e.petition_id, e.data, u.signature_id, e.xid,
             u.position::int4 AS position
         FROM (SELECT * FROM webhook_events e
               WHERE (e.xid, e.id) >= ($2::text::xid8, $3) AND e.xid < $7::text::xid8
                 AND e.kind = ANY ($5) AND ($6::int8 IS NULL OR e.petition_id = $6)
               ORDER BY e.xid, e.id LIMIT 32) e
         CROSS JOIN LATERAL unnest(coalesce(e.signatures, ARRAY[NULL::uuid]))
             WITH ORDINALITY AS u(signature_id, position)
         WHERE (e.xid, e.id, u.position) > ($2::text::xid8, $3, $8::int4)
         ORDER BY e.xid, e.id, u.position LIMIT $1",
    )
});

impl Due {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        let receipt: Option<Uuid> = row.try_get(7)?;
        let signature = match receipt {
            None => None,
            Some(receipt) => Some(SignatureFacts {
                receipt,
                country: row.try_get(8)?,
                signer_kind: row.try_get(9)?,
                channel: row.try_get(10)?,
                signed_at: row.try_get(11)?,
                event_id: row.try_get(12)?,
                person: if row.try_get::<_, Option<bool>>(13)?.unwrap_or(false) {
                    Some(Person {
                        full_name: row.try_get(14)?,
                        email: row.try_get(15)?,
                        organization: row.try_get(16)?,
                        postal_code: row.try_get(17)?,
                        city: row.try_get(18)?,
                        locale: row.try_get(19)?,
                    })
                } else {
                    None
                },
            }),
        };
        Ok(Self {
            message: row.try_get(0)?,
            position: row.try_get(21)?,
            retry: row.try_get(1)?,
            xid: row.try_get(20)?,
            kind: row.try_get(2)?,
            occurred_at: row.try_get(3)?,
            attempts: row.try_get(4)?,
            petition: row.try_get(5)?,
            data: row.try_get(6)?,
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
        // Its row first, then its failed messages: the order a courier
        // settling a batch takes them in, so the two wait on each other at
        // most, never in a cycle.
        let gone = tx
            .execute("DELETE FROM webhooks WHERE id = $1", &[&id])
            .await?;
        if gone == 0 {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM webhook_deliveries WHERE webhook_id = $1",
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
                "SELECT message, kind, occurred_at, state, attempts, last_attempt_at, last_status,
                    last_error, CASE WHEN state = 'pending' THEN due_at END, position
                 FROM webhook_deliveries WHERE webhook_id = $1
                 ORDER BY coalesce(last_attempt_at, occurred_at) DESC, id DESC LIMIT $2",
                &[&id, &limit],
            )
            .await?
            .iter()
            .map(|row| {
                Ok(DeliveryRecord {
                    message: row.try_get(0)?,
                    position: row.try_get(9)?,
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
                "SELECT id, url, events, petition_id, include_personal_data, secret_sealed
                 FROM webhooks ORDER BY id",
                &[],
            )
            .await?
            .iter()
            .map(|row| {
                Ok(WebhookTarget {
                    id: row.try_get(0)?,
                    url: row.try_get(1)?,
                    events: row.try_get(2)?,
                    petition_id: row.try_get(3)?,
                    include_personal_data: row.try_get(4)?,
                    secret_sealed: row.try_get(5)?,
                })
            })
            .collect()
    }

    /// Holds webhook `id` for `courier` until `lease` from now, when no other
    /// courier holds it; its cursor, or `None` when another does (or the
    /// webhook is gone).
    pub async fn claim_webhook(
        &self,
        id: Uuid,
        courier: Uuid,
        lease: std::time::Duration,
    ) -> Result<Option<Cursor>, StoreError> {
        let row = self
            .pool
            .get()
            .await?
            .query_opt(
                "UPDATE webhooks SET courier = $2,
                     courier_until = now() + make_interval(secs => $3)
                 WHERE id = $1 AND (courier IS NULL OR courier = $2 OR courier_until < now())
                 RETURNING cursor_xid::text, cursor_id, cursor_position",
                &[&id, &courier, &lease.as_secs_f64()],
            )
            .await?;
        row.map(|row| {
            Ok(Cursor {
                xid: row.try_get(0)?,
                id: row.try_get(1)?,
                position: row.try_get(2)?,
            })
        })
        .transpose()
    }

    /// Lets go of every webhook `courier` holds, so that another instance's
    /// courier takes them at once (a stop, a rolling restart).
    pub async fn release_webhooks(&self, courier: Uuid) -> Result<u64, StoreError> {
        Ok(self
            .pool
            .get()
            .await?
            .execute(
                "UPDATE webhooks SET courier = NULL, courier_until = NULL WHERE courier = $1",
                &[&courier],
            )
            .await?)
    }

    /// Up to `limit` messages after `cursor` that `target` hears of, and
    /// where its cursor goes once they are sent: after the last of them, or,
    /// when there is none, to the oldest transaction still running, below
    /// which every event has been read.
    pub async fn fresh_events(
        &self,
        target: &WebhookTarget,
        cursor: &Cursor,
        limit: i64,
    ) -> Result<Fresh, StoreError> {
        let client = self.pool.get().await?;
        // The horizon first: every transaction below it has ended before the
        // events are read, so none can add one behind the cursor later.
        let horizon: String = client
            .query_one("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", &[])
            .await?
            .try_get(0)?;
        let rows = client
            .query(
                FRESH.as_str(),
                &[
                    &limit,
                    &cursor.xid,
                    &cursor.id,
                    &target.include_personal_data,
                    &target.events,
                    &target.petition_id,
                    &horizon,
                    &cursor.position,
                ],
            )
            .await?;
        let due = rows
            .iter()
            .map(Due::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = match rows.last() {
            Some(last) => Cursor {
                xid: last.try_get(20)?,
                id: last.try_get(0)?,
                position: last.try_get(21)?,
            },
            // Nothing left below the horizon: the cursor goes to it, never
            // back (a cursor may start above a transaction still running).
            None if xid_number(&horizon) > xid_number(&cursor.xid) => Cursor {
                xid: horizon,
                id: 0,
                position: 0,
            },
            None => cursor.clone(),
        };
        Ok(Fresh { due, next })
    }

    /// Takes up to `limit` of the endpoint's retries that are due, leased
    /// for `lease`.
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
                TAKE.as_str(),
                &[&target.id, &limit, &lease, &target.include_personal_data],
            )
            .await?
            .iter()
            .map(Due::from_row)
            .collect()
    }

    /// Records what became of a courier's batch, in one transaction: its
    /// cursor moves to `next` and its tally grows by `delivered`; first
    /// tries that failed become retries (`failed` with `retry: None` names
    /// the event), retries delivered go, retries that failed wait again or
    /// are given up on. Nothing is recorded, and `false` answered, when the
    /// courier no longer holds the webhook (another took it over, or it was
    /// deleted): that courier sends them again.
    pub async fn settle_deliveries(
        &self,
        webhook: Uuid,
        courier: Uuid,
        next: &Cursor,
        delivered: i64,
        retried: &[i64],
        failed: &[Attempt],
    ) -> Result<bool, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let held = tx
            .execute(
                "UPDATE webhooks SET cursor_xid = $3::text::xid8, cursor_id = $4,
                     cursor_position = $6, delivered = delivered + $5,
                     last_delivered_at = CASE WHEN $5 > 0 THEN now() ELSE last_delivered_at END
                 WHERE id = $1 AND courier = $2",
                &[
                    &webhook,
                    &courier,
                    &next.xid,
                    &next.id,
                    &delivered,
                    &next.position,
                ],
            )
            .await?;
        if held == 0 {
            return Ok(false);
        }
        if !retried.is_empty() {
            tx.execute(
                "DELETE FROM webhook_deliveries WHERE id = ANY ($1) AND webhook_id = $2",
                &[&retried, &webhook],
            )
            .await?;
        }
        let (first, again): (Vec<&Attempt>, Vec<&Attempt>) =
            failed.iter().partition(|a| a.retry.is_none());
        let columns = |list: &[&Attempt]| {
            (
                list.iter()
                    .map(|a| a.retry.unwrap_or(a.message))
                    .collect::<Vec<i64>>(),
                list.iter()
                    .map(|a| a.status.and_then(|s| i16::try_from(s).ok()))
                    .collect::<Vec<Option<i16>>>(),
                list.iter()
                    .map(|a| a.error.clone())
                    .collect::<Vec<Option<String>>>(),
                list.iter()
                    .map(|a| a.retry_at)
                    .collect::<Vec<Option<DateTime<Utc>>>>(),
                list.iter()
                    .map(|a| a.xid.clone())
                    .collect::<Vec<Option<String>>>(),
                list.iter().map(|a| a.position).collect::<Vec<i32>>(),
                list.iter()
                    .map(|a| a.signature)
                    .collect::<Vec<Option<Uuid>>>(),
            )
        };
        if !first.is_empty() {
            let (ids, statuses, errors, retries, xids, positions, signatures) = columns(&first);
            tx.execute(
                "INSERT INTO webhook_deliveries (webhook_id, message, position, kind,
                     petition_id, signature_id, data, occurred_at, attempts, due_at, state,
                     last_attempt_at, last_status, last_error)
                 SELECT $1, e.id, t.p, e.kind, e.petition_id, t.g, e.data, e.occurred_at,
                     1, coalesce(t.r, now()), CASE WHEN t.r IS NULL THEN 'dead' ELSE 'pending' END,
                     now(), t.s, t.e
                 FROM unnest($2::int8[], $3::int2[], $4::text[], $5::timestamptz[], $6::text[],
                             $7::int4[], $8::uuid[])
                     AS t(i, s, e, r, x, p, g)
                 JOIN webhook_events e ON e.xid = t.x::xid8 AND e.id = t.i",
                &[
                    &webhook,
                    &ids,
                    &statuses,
                    &errors,
                    &retries,
                    &xids,
                    &positions,
                    &signatures,
                ],
            )
            .await?;
        }
        if !again.is_empty() {
            let (ids, statuses, errors, retries, ..) = columns(&again);
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
        Ok(true)
    }

    /// Deletes the events every webhook's cursor has gone past whole (all of them,
    /// below the running transactions, when there is no webhook), a chunk at
    /// a time; how many.
    pub async fn sweep_webhook_events(&self) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        let low = client
            .query_opt(
                "SELECT cursor_xid::text, cursor_id FROM webhooks
                 ORDER BY cursor_xid, cursor_id LIMIT 1",
                &[],
            )
            .await?;
        let (xid, id): (String, i64) = match low {
            Some(row) => (row.try_get(0)?, row.try_get(1)?),
            None => (
                client
                    .query_one("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", &[])
                    .await?
                    .try_get(0)?,
                0,
            ),
        };
        let mut swept = 0;
        loop {
            let n = client
                .execute(
                    "DELETE FROM webhook_events WHERE ctid = ANY (ARRAY(
                         SELECT ctid FROM webhook_events
                         WHERE (xid, id) < ($1::text::xid8, $2) LIMIT 50000))",
                    &[&xid, &id],
                )
                .await?;
            swept += n;
            if n < 50_000 {
                return Ok(swept);
            }
        }
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
