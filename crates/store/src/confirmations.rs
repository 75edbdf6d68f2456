//! Confirming pending signatures: a signer follows the emailed link, and the
//! signature moves from the pending tally to the count in one transaction.
//! Only the token's SHA-256 is stored; a token confirms at most once, and a
//! second use finds the signature already confirmed.

use uuid::Uuid;

use crate::{CountCell, Store, StoreError};

/// Confirmations spread their count rows over these shards, apart from the
/// writers' and the adjustments', so that thousands of confirmations a second
/// neither queue on one row nor wait for a writer's batch.
const CONFIRMATION_SHARDS: i16 = 16;
const FIRST_CONFIRMATION_SHARD: i16 = -2;

/// A pending signature as its token finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignature {
    pub id: Uuid,
    pub petition_id: i64,
    pub slug: String,
    /// The locale the signer chose, if any.
    pub locale: Option<String>,
    pub state: PendingState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingState {
    /// Awaiting confirmation.
    Pending,
    /// Confirmed (now, or by an earlier use of the token).
    Confirmed,
    /// Its time ran out: it is (or is about to be) erased, never counted.
    Expired,
}

/// What confirming did.
#[derive(Debug, Clone)]
pub struct Confirmed {
    pub signature: PendingSignature,
    /// Whether this call confirmed it (rather than finding it confirmed,
    /// or expired).
    pub now: bool,
    /// The count cells it changed (empty when it counted nothing: confirmed
    /// before, expired, or shadow-accepted).
    pub cells: Vec<CountCell>,
}

const FIND: &str = "
    SELECT s.id, s.petition_id, p.slug, s.locale,
        CASE WHEN s.pending_until IS NULL THEN 'confirmed'
             WHEN s.pending_until > now() THEN 'pending'
             ELSE 'expired' END
    FROM signatures s JOIN petitions p ON p.id = s.petition_id
    WHERE s.confirm_hash = $1";

const CONFIRM: &str = "
    UPDATE signatures s SET pending_until = NULL FROM petitions p
    WHERE s.confirm_hash = $1 AND s.pending_until > now() AND p.id = s.petition_id
    RETURNING s.id, s.petition_id, p.slug, s.locale, s.country, s.signer_kind, s.shadowed_by";

const COUNT: &str = "
    INSERT INTO signature_counts (petition_id, country, signer_kind, shard, count, settled)
    VALUES ($1, $2, $3, $4, 1, 1)
    ON CONFLICT (petition_id, country, signer_kind, shard)
        DO UPDATE SET count = signature_counts.count + 1,
            settled = signature_counts.settled + 1
    RETURNING petition_id, country, signer_kind, shard, count, removed, restored, pending,
        settled";

/// A signer who signed again while their signature is pending: sent a new
/// link (the newest replaces the one before), within the day's allowance.
#[derive(Debug, Clone)]
pub struct Resend {
    pub petition_id: i64,
    pub identity_key: [u8; 32],
    pub confirmation: crate::Confirmation,
}

/// Rows are locked in id order, the same in every transaction; a signer
/// twice in one call is sent one message. The update checks again, on the
/// row as it is once locked, what `chosen` saw in the statement's snapshot:
/// a confirmation, a withdrawal or another writer's resend that committed
/// meanwhile is not overwritten with a new link or a message too many.
pub(crate) const RESEND: &str = "
    WITH r AS (
        SELECT * FROM unnest($1::int8[], $2::bytea[], $3::bytea[], $4::text[], $5::text[],
            $6::text[], $7::bytea[], $9::text[])
            AS r(p, k, h, kind, sender, recipient, message, letter)
    ), chosen AS (
        SELECT DISTINCT ON (s.id) s.id, r.h, r.kind, r.sender, r.recipient, r.message,
            r.letter
        FROM r JOIN signatures s ON s.petition_id = r.p AND s.identity_key = r.k
        WHERE s.pending_until > now()
          AND (s.mail_window IS NULL OR s.mail_window < now() - interval '1 day'
               OR s.mail_sent < $8)
        ORDER BY s.id
    ), locked AS (
        SELECT s.id FROM signatures s JOIN chosen USING (id) ORDER BY s.id FOR UPDATE OF s
    ), sent AS (
        UPDATE signatures s SET confirm_hash = chosen.h,
            mail_sent = CASE WHEN s.mail_window IS NULL OR s.mail_window < now() - interval '1 day'
                             THEN 1 ELSE s.mail_sent + 1 END,
            mail_window = CASE WHEN s.mail_window IS NULL OR s.mail_window < now() - interval '1 day'
                               THEN now() ELSE s.mail_window END
        FROM chosen JOIN locked USING (id)
        WHERE s.id = chosen.id AND s.pending_until > now() AND s.withdrawn_at IS NULL
          AND (s.mail_window IS NULL OR s.mail_window < now() - interval '1 day'
               OR s.mail_sent < $8)
        RETURNING s.id, chosen.kind, chosen.sender, chosen.recipient, chosen.message,
            chosen.letter
    )
    INSERT INTO outbox (kind, sender, recipient, message, letter, signature_id)
    SELECT kind, sender, recipient, message, letter::jsonb, id FROM sent";

fn state(text: &str) -> PendingState {
    match text {
        "confirmed" => PendingState::Confirmed,
        "pending" => PendingState::Pending,
        _ => PendingState::Expired,
    }
}

fn found_signature(r: &tokio_postgres::Row) -> Result<PendingSignature, StoreError> {
    Ok(PendingSignature {
        id: r.try_get(0)?,
        petition_id: r.try_get(1)?,
        slug: r.try_get(2)?,
        locale: r.try_get(3)?,
        state: state(r.try_get(4)?),
    })
}

fn confirmation_shard() -> i16 {
    let spread = Uuid::new_v4().as_u128() % u128::from(CONFIRMATION_SHARDS.unsigned_abs());
    FIRST_CONFIRMATION_SHARD - i16::try_from(spread).unwrap_or(0)
}

impl Store {
    /// The signature a token names, changing nothing (what a link preview or
    /// a mail scanner's fetch may see).
    pub async fn pending_signature(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<PendingSignature>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client.prepare_cached(FIND).await?;
        let row = client.query_opt(&stmt, &[&token_hash]).await?;
        row.map(|r| found_signature(&r)).transpose()
    }

    /// Confirms the pending signature a token names and counts it, in one
    /// transaction; `None` for a token nobody was sent. Confirming again, or
    /// after the signature's time ran out, changes nothing.
    pub async fn confirm(&self, token_hash: &[u8]) -> Result<Option<Confirmed>, StoreError> {
        let mut client = self.pool.get().await?;
        let confirm = client.prepare_cached(CONFIRM).await?;
        let count = client.prepare_cached(COUNT).await?;
        let tx = client.transaction().await?;
        let Some(row) = tx.query_opt(&confirm, &[&token_hash]).await? else {
            // Nothing to confirm: what the token names, if anything, read on
            // this same connection (a second one, taken while this is held,
            // could wait forever for a pool that many such calls have emptied).
            let find = tx.prepare_cached(FIND).await?;
            let found = tx.query_opt(&find, &[&token_hash]).await?;
            tx.rollback().await?;
            return found
                .map(|r| {
                    Ok(Confirmed {
                        signature: found_signature(&r)?,
                        now: false,
                        cells: Vec::new(),
                    })
                })
                .transpose();
        };
        let signature = PendingSignature {
            id: row.try_get("id")?,
            petition_id: row.try_get("petition_id")?,
            slug: row.try_get("slug")?,
            locale: row.try_get("locale")?,
            state: PendingState::Confirmed,
        };
        // A shadow-accepted signature was never in the pending tally, and
        // never counts.
        let shadowed: Option<i64> = row.try_get("shadowed_by")?;
        let cells = if shadowed.is_some() {
            Vec::new()
        } else {
            let country: &str = row.try_get("country")?;
            let kind: &str = row.try_get("signer_kind")?;
            let shard = confirmation_shard();
            let cell = tx
                .query_one(&count, &[&signature.petition_id, &country, &kind, &shard])
                .await?;
            vec![CountCell::try_from(cell)?]
        };
        tx.commit().await?;
        Ok(Some(Confirmed {
            signature,
            now: true,
            cells,
        }))
    }
}
