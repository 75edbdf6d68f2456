//! Signers' rights: withdrawing a signature, erasure on request, and pending
//! signatures whose time ran out. Each erases the signer's data (name, email,
//! organization, postal code, city, client address, identity key) and, in the
//! same transaction, uncounts what was counted and forgets the messages still
//! waiting for that address. A withdrawn or erased signature stays as a
//! tombstone (receipt, country, kind, channel, time) marked withdrawn; an
//! expired one was never counted and leaves no row.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::{ADJUSTMENT_SHARD, CountCell, EventCell, OutgoingMail, Store, StoreError};

/// Messages one signature's address may be sent a day beyond its first
/// confirmation request: resent confirmations and withdrawal links.
pub const MAIL_PER_DAY: i16 = 3;

/// What an erasure did.
#[derive(Debug, Default)]
pub struct Erased {
    /// Signatures erased.
    pub signatures: u64,
    /// The adjusted count cells and event tallies, for the live counter.
    pub cells: Vec<CountCell>,
    pub event_cells: Vec<EventCell>,
    /// The identities erased, by petition: to be forgotten by Redis's seen
    /// sets too, so that the signer may sign again.
    pub identities: Vec<(i64, [u8; 32])>,
}

/// One signature as erasing finds it, before its data goes.
struct Gone {
    id: Uuid,
    petition_id: i64,
    country: String,
    kind: String,
    event_id: Option<Uuid>,
    /// Counted: neither pending, shadowed nor invalidated.
    counted: bool,
    /// Pending, and not shadowed (in the pending tally).
    pending: bool,
    email: Option<String>,
    identity: Option<Vec<u8>>,
}

/// Erases the signatures `ids` names (those not erased already) and returns
/// them as they were.
const ERASE: &str = "
    WITH old AS (
        SELECT id, petition_id, country, signer_kind, event_id, email, identity_key,
            shadowed_by IS NULL AND invalidated_by IS NULL AND pending_until IS NULL AS counted,
            shadowed_by IS NULL AND pending_until IS NOT NULL AS pending
        FROM signatures WHERE id = ANY($1) AND withdrawn_at IS NULL
        ORDER BY id FOR UPDATE
    )
    UPDATE signatures s SET full_name = '', email = NULL, organization = NULL,
        postal_code = NULL, city = NULL, client_address = NULL, identity_key = NULL,
        sealed = NULL, email_domain = NULL, confirm_hash = NULL, pending_until = NULL, withdraw_until = NULL, mail_due = NULL,
        invalidated_by = NULL, withdrawn_at = now()
    FROM old WHERE s.id = old.id
    RETURNING old.petition_id, old.country, old.signer_kind, old.event_id, old.counted,
        old.pending, old.email, old.identity_key, old.id";

/// Deletes pending signatures whose time ran out, a chunk at a time.
const EXPIRE: &str = "
    DELETE FROM signatures WHERE id IN (
        SELECT id FROM signatures WHERE pending_until <= now()
        ORDER BY pending_until LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING petition_id, country, signer_kind, event_id, false AS counted,
        shadowed_by IS NULL AS pending, email, identity_key, id";

/// Adds to the adjustment shard's `removed` and `settled`, in a stable order.
const ADJUST_COUNTS: &str = "
    INSERT INTO signature_counts (petition_id, country, signer_kind, shard, count, removed, settled)
    SELECT p, c, k, $4, 0, r, s
    FROM unnest($1::int8[], $2::text[], $3::text[], $5::int8[], $6::int8[]) AS t(p, c, k, r, s)
    ORDER BY p, c, k
    ON CONFLICT (petition_id, country, signer_kind, shard)
        DO UPDATE SET removed = signature_counts.removed + EXCLUDED.removed,
            settled = signature_counts.settled + EXCLUDED.settled
    RETURNING petition_id, country, signer_kind, shard, count, removed, restored, pending,
        settled";

const ADJUST_EVENTS: &str = "
    INSERT INTO event_counts (event_id, petition_id, shard, removed)
    SELECT e, p, $3, n FROM unnest($1::uuid[], $2::int8[], $4::int8[]) AS t(e, p, n)
    ORDER BY e
    ON CONFLICT (event_id, shard)
        DO UPDATE SET removed = event_counts.removed + EXCLUDED.removed
    RETURNING event_id, petition_id, shard, count, removed, restored";

/// Messages still waiting about these signatures: they go with the signer's
/// data. Those queued before messages named their signature (V14) are found
/// by address instead.
const FORGET_MAIL: &str = "DELETE FROM outbox WHERE signature_id = ANY($1)
    OR (signature_id IS NULL AND lower(recipient) = ANY(SELECT lower(a) FROM unnest($2::text[]) AS a))";

impl Gone {
    fn from_row(row: &tokio_postgres::Row) -> Result<Self, StoreError> {
        Ok(Self {
            petition_id: row.try_get(0)?,
            country: row.try_get(1)?,
            kind: row.try_get(2)?,
            event_id: row.try_get(3)?,
            counted: row.try_get(4)?,
            pending: row.try_get(5)?,
            email: row.try_get(6)?,
            identity: row.try_get(7)?,
            id: row.try_get(8)?,
        })
    }
}

/// Uncounts `gone` and forgets its mail, on `client` (inside the
/// transaction that erased it).
async fn settle(client: &impl GenericClient, gone: &[Gone]) -> Result<Erased, StoreError> {
    let mut cells: BTreeMap<(i64, &str, &str), (i64, i64)> = BTreeMap::new();
    let mut events: BTreeMap<(Uuid, i64), i64> = BTreeMap::new();
    for g in gone {
        if g.counted || g.pending {
            let cell = cells
                .entry((g.petition_id, g.country.as_str(), g.kind.as_str()))
                .or_default();
            if g.counted {
                cell.0 += 1;
            } else {
                cell.1 += 1;
            }
        }
        if let (true, Some(event)) = (g.counted, g.event_id) {
            *events.entry((event, g.petition_id)).or_default() += 1;
        }
    }
    let mut erased = Erased {
        signatures: gone.len() as u64,
        ..Erased::default()
    };
    if !cells.is_empty() {
        let p: Vec<i64> = cells.keys().map(|k| k.0).collect();
        let c: Vec<&str> = cells.keys().map(|k| k.1).collect();
        let k: Vec<&str> = cells.keys().map(|k| k.2).collect();
        let removed: Vec<i64> = cells.values().map(|v| v.0).collect();
        let settled: Vec<i64> = cells.values().map(|v| v.1).collect();
        for row in client
            .query(
                ADJUST_COUNTS,
                &[&p, &c, &k, &ADJUSTMENT_SHARD, &removed, &settled],
            )
            .await?
        {
            erased.cells.push(CountCell::try_from(row)?);
        }
    }
    if !events.is_empty() {
        let e: Vec<Uuid> = events.keys().map(|k| k.0).collect();
        let p: Vec<i64> = events.keys().map(|k| k.1).collect();
        let n: Vec<i64> = events.values().copied().collect();
        for row in client
            .query(ADJUST_EVENTS, &[&e, &p, &ADJUSTMENT_SHARD, &n])
            .await?
        {
            erased.event_cells.push(EventCell::try_from(row)?);
        }
    }
    let ids: Vec<Uuid> = gone.iter().map(|g| g.id).collect();
    let addresses: Vec<&str> = gone.iter().filter_map(|g| g.email.as_deref()).collect();
    if !ids.is_empty() {
        client.execute(FORGET_MAIL, &[&ids, &addresses]).await?;
    }
    // Endpoints that heard a signature counted hear it leave the count.
    let withdrawn: Vec<(i64, Uuid)> = gone
        .iter()
        .filter(|g| g.counted)
        .map(|g| (g.petition_id, g.id))
        .collect();
    crate::webhooks::notify(client, "signature.withdrawn", &withdrawn).await?;
    erased.identities = gone
        .iter()
        .filter_map(|g| Some((g.petition_id, g.identity.as_deref()?.try_into().ok()?)))
        .collect();
    Ok(erased)
}

/// A signature a withdrawal link may be sent for.
#[derive(Debug, Clone)]
pub struct Withdrawable {
    pub id: Uuid,
    /// The address as the signer typed it when signing.
    pub email: String,
    pub locale: Option<String>,
}

/// A signature as a withdrawal token finds it. The token's hash stays with
/// the tombstone (it names nobody), so that a second click finds the
/// signature withdrawn rather than an unknown link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithdrawalLink {
    pub petition_id: i64,
    pub slug: String,
    pub locale: Option<String>,
    pub state: LinkState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// It withdraws the signature when posted.
    Live,
    /// Its time ran out; the signature stands.
    Expired,
    /// The signature is withdrawn (by this link or otherwise).
    Withdrawn,
}

const FIND_WITHDRAWAL: &str = "
    SELECT s.petition_id, p.slug, s.locale,
        CASE WHEN s.withdrawn_at IS NOT NULL THEN 'withdrawn'
             WHEN s.withdraw_until > now() THEN 'live'
             ELSE 'expired' END
    FROM signatures s JOIN petitions p ON p.id = s.petition_id
    WHERE s.withdraw_hash = $1";

impl Store {
    /// Sends a withdrawal link for the signature of `identity` on a
    /// petition, if there is one and its address has not had its messages
    /// for the day: `compose` writes the message (to the address as typed
    /// when signing; on a sealed petition, which keeps none in clear, as
    /// `typed` now, the same address since its identity matched) carrying
    /// the token whose hash is `token_hash`. Whether
    /// it was sent is the caller's to keep to itself.
    pub async fn request_withdrawal(
        &self,
        petition_id: i64,
        identity: &[u8; 32],
        token_hash: &[u8],
        until: DateTime<Utc>,
        typed: &str,
        compose: impl FnOnce(&Withdrawable) -> Option<OutgoingMail>,
    ) -> Result<bool, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "SELECT id, coalesce(email, $4), locale FROM signatures
                 WHERE petition_id = $1 AND identity_key = $2 AND withdrawn_at IS NULL
                   AND (email IS NOT NULL OR sealed IS NOT NULL)
                   AND (mail_window IS NULL OR mail_window < now() - interval '1 day'
                        OR mail_sent < $3)
                 FOR UPDATE",
                &[&petition_id, &&identity[..], &MAIL_PER_DAY, &typed],
            )
            .await?
        else {
            return Ok(false);
        };
        let found = Withdrawable {
            id: row.try_get(0)?,
            email: row.try_get(1)?,
            locale: row.try_get(2)?,
        };
        let Some(mail) = compose(&found) else {
            return Ok(false);
        };
        tx.execute(
            "UPDATE signatures SET withdraw_hash = $2, withdraw_until = $3,
                 mail_sent = CASE WHEN mail_window IS NULL OR mail_window < now() - interval '1 day'
                                  THEN 1 ELSE mail_sent + 1 END,
                 mail_window = CASE WHEN mail_window IS NULL OR mail_window < now() - interval '1 day'
                                    THEN now() ELSE mail_window END
             WHERE id = $1",
            &[&found.id, &token_hash, &until],
        )
        .await?;
        crate::outbox::enqueue(&*tx, &[(Some(found.id), &mail)]).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The signature a withdrawal token names, changing nothing.
    pub async fn withdrawal_link(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<WithdrawalLink>, StoreError> {
        let client = self.pool.get().await?;
        let row = client.query_opt(FIND_WITHDRAWAL, &[&token_hash]).await?;
        row.map(|r| {
            let state: &str = r.try_get(3)?;
            Ok(WithdrawalLink {
                petition_id: r.try_get(0)?,
                slug: r.try_get(1)?,
                locale: r.try_get(2)?,
                state: match state {
                    "withdrawn" => LinkState::Withdrawn,
                    "live" => LinkState::Live,
                    _ => LinkState::Expired,
                },
            })
        })
        .transpose()
    }

    /// Withdraws the signature a live withdrawal token names: erases its
    /// data and uncounts it in one transaction. `None` when the token names
    /// none (unknown, spent, or its time ran out).
    pub async fn withdraw(&self, token_hash: &[u8]) -> Result<Option<Erased>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "SELECT id FROM signatures
                 WHERE withdraw_hash = $1 AND withdraw_until > now() AND withdrawn_at IS NULL",
                &[&token_hash],
            )
            .await?
        else {
            return Ok(None);
        };
        let id: Uuid = row.try_get(0)?;
        let erased = erase_ids(&*tx, &[id]).await?;
        tx.commit().await?;
        Ok(Some(erased))
    }

    /// Erases every signature of these identities, one key per petition (a
    /// data subject's request): data, counts and queued messages, in one
    /// transaction; `audit` is recorded with it.
    pub async fn erase_identities(
        &self,
        keys: &[(i64, [u8; 32])],
        audit: impl FnOnce(u64) -> crate::AuditEntry,
    ) -> Result<Erased, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let petitions: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let identities: Vec<&[u8]> = keys.iter().map(|k| &k.1[..]).collect();
        let ids: Vec<Uuid> = tx
            .query(
                "SELECT s.id FROM unnest($1::int8[], $2::bytea[]) AS k(p, i)
                 JOIN signatures s ON s.petition_id = k.p AND s.identity_key = k.i",
                &[&petitions, &identities],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let erased = erase_ids(&*tx, &ids).await?;
        crate::audit::record(&tx, &audit(erased.signatures)).await?;
        tx.commit().await?;
        Ok(erased)
    }

    /// Erases up to `limit` pending signatures whose time ran out (never
    /// counted: they leave the pending tally), with their queued messages.
    pub async fn expire_pending(&self, limit: i64) -> Result<Erased, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let gone = tx
            .query(EXPIRE, &[&limit])
            .await?
            .iter()
            .map(Gone::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let erased = settle(&*tx, &gone).await?;
        tx.commit().await?;
        Ok(erased)
    }
}

async fn erase_ids(client: &impl GenericClient, ids: &[Uuid]) -> Result<Erased, StoreError> {
    if ids.is_empty() {
        return Ok(Erased::default());
    }
    let gone = client
        .query(ERASE, &[&ids])
        .await?
        .iter()
        .map(Gone::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    settle(client, &gone).await
}
