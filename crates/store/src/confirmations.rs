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
}

const FIND: &str = "
    SELECT s.id, s.petition_id, p.slug, s.locale,
        CASE WHEN s.pending_until IS NULL THEN 'confirmed'
             WHEN s.pending_until > now() THEN 'pending'
             ELSE 'expired' END
    FROM signatures s JOIN petitions p ON p.id = s.petition_id
    WHERE s.confirm_hash = $1";

/// Confirms the pending signatures a group of tokens (`$1`, in order) names
/// and counts them in the confirmations' shard `$2`, in one statement, so
/// one transaction and one commit for the group: each signer's link on its
/// own took a commit of its own (four messages each way as a transaction of
/// four statements), and at a few thousand a second beside the signing they
/// queued for the pool's connections (benches/BENCHMARKS.md). Rows come
/// back as the signatures confirmed (`i`, the token's place, set) and the
/// count cells changed (`i` null); the counted signatures' events, when
/// webhooks hear of them, go in the same statement. A shadow-accepted
/// signature was never in the pending tally and never counts: it changes no
/// cell. A token twice in one group confirms once; the other finds it
/// confirmed.
const CONFIRM: &str = "
    WITH t AS (
        SELECT h, i FROM unnest($1::bytea[]) WITH ORDINALITY AS t(h, i)
    ), c AS (
        UPDATE signatures s SET pending_until = NULL, mail_due = NULL, confirmed_at = now(),
            email = CASE WHEN s.sealed IS NULL THEN s.email END FROM petitions p, t
        WHERE s.confirm_hash = t.h AND s.pending_until > now() AND p.id = s.petition_id
        RETURNING t.i, s.id, s.petition_id, p.slug, s.locale, s.country, s.signer_kind,
            s.shadowed_by
    ), counted AS (
        INSERT INTO signature_counts (petition_id, country, signer_kind, shard, count, settled)
        SELECT petition_id, country, signer_kind, $2::int2, count(*), count(*) FROM c
        WHERE shadowed_by IS NULL
        GROUP BY petition_id, country, signer_kind
        ORDER BY petition_id, country, signer_kind
        ON CONFLICT (petition_id, country, signer_kind, shard)
            DO UPDATE SET count = signature_counts.count + EXCLUDED.count,
                settled = signature_counts.settled + EXCLUDED.settled
        RETURNING petition_id, country, signer_kind, shard, count, removed, restored, pending,
            settled
    ), hooks AS (
        INSERT INTO webhook_events (kind, petition_id, signatures)
        SELECT 'signature.counted', c.petition_id, array_agg(c.id ORDER BY c.id) FROM c
        WHERE c.shadowed_by IS NULL
          AND EXISTS (SELECT 1 FROM webhooks w
                      WHERE 'signature.counted' = ANY (w.events)
                        AND (w.petition_id IS NULL OR w.petition_id = c.petition_id))
        GROUP BY c.petition_id
    )
    SELECT i, id, petition_id AS signature_petition, slug, locale,
        NULL::int8 AS petition_id, NULL::text AS country, NULL::text AS signer_kind,
        NULL::int2 AS shard, NULL::int8 AS count, NULL::int8 AS removed,
        NULL::int8 AS restored, NULL::int8 AS pending, NULL::int8 AS settled
    FROM c
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, petition_id, country, signer_kind, shard, count,
        removed, restored, pending, settled
    FROM counted";

/// What the tokens of a group that confirmed nothing name, if anything.
const FIND_MANY: &str = "
    SELECT t.i, s.id, s.petition_id, p.slug, s.locale,
        CASE WHEN s.pending_until IS NULL THEN 'confirmed'
             WHEN s.pending_until > now() THEN 'pending'
             ELSE 'expired' END
    FROM unnest($1::bytea[]) WITH ORDINALITY AS t(h, i)
    JOIN signatures s ON s.confirm_hash = t.h JOIN petitions p ON p.id = s.petition_id";

/// What confirming a group did.
#[derive(Debug, Default)]
pub struct ConfirmedGroup {
    /// For each token, in order: what it names, if anything, and whether
    /// this group confirmed it.
    pub each: Vec<Option<Confirmed>>,
    /// The count cells the group changed.
    pub cells: Vec<CountCell>,
}

/// A signer who signed again while their signature is pending: sent its
/// link again, within the day's allowance.
#[derive(Debug, Clone)]
pub struct Resend {
    pub petition_id: i64,
    pub identity_key: [u8; 32],
    /// On a sealed petition, the address as the signer typed it now: the
    /// row no longer holds one once its first message went out.
    pub email: Option<String>,
}

/// Rows are locked in id order, the same in every transaction; a signer
/// twice in one call is sent one message. The update checks again, on the
/// row as it is once locked, what `chosen` saw in the statement's snapshot:
/// a confirmation, a withdrawal or another writer's resend that committed
/// meanwhile is not sent a message too many. The message is due at once,
/// on the row itself, as the first one was, and carries the same link (the
/// mailer makes its token again from the row).
pub(crate) const RESEND: &str = "
    WITH r AS (
        SELECT * FROM unnest($1::int8[], $2::bytea[], $4::text[]) AS r(p, k, e)
    ), chosen AS (
        SELECT DISTINCT ON (s.id) s.id, r.e
        FROM r JOIN signatures s ON s.petition_id = r.p AND s.identity_key = r.k
        WHERE s.pending_until > now()
          AND (s.mail_window IS NULL OR s.mail_window < now() - interval '1 day'
               OR s.mail_sent < $3)
        ORDER BY s.id
    ), locked AS (
        SELECT s.id FROM signatures s JOIN chosen USING (id) ORDER BY s.id FOR UPDATE OF s
    )
    UPDATE signatures s SET mail_due = now(), mail_attempts = 0,
        email = CASE WHEN s.sealed IS NOT NULL THEN coalesce(chosen.e, s.email) ELSE s.email END,
        mail_sent = CASE WHEN s.mail_window IS NULL OR s.mail_window < now() - interval '1 day'
                         THEN 1 ELSE s.mail_sent + 1 END,
        mail_window = CASE WHEN s.mail_window IS NULL OR s.mail_window < now() - interval '1 day'
                           THEN now() ELSE s.mail_window END
    FROM chosen JOIN locked USING (id)
    WHERE s.id = chosen.id AND s.pending_until > now() AND s.withdrawn_at IS NULL
      AND (s.mail_window IS NULL OR s.mail_window < now() - interval '1 day'
           OR s.mail_sent < $3)";

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

    /// Confirms the pending signatures these tokens name and counts them,
    /// in one transaction; a token nobody was sent names nothing. Confirming
    /// again, or after the signature's time ran out, changes nothing.
    pub async fn confirm_group(&self, hashes: &[&[u8]]) -> Result<ConfirmedGroup, StoreError> {
        let client = self.pool.get().await?;
        let confirm = client.prepare_cached(CONFIRM).await?;
        let shard = confirmation_shard();
        let mut group = ConfirmedGroup {
            each: vec![None; hashes.len()],
            cells: Vec::new(),
        };
        for row in client.query(&confirm, &[&hashes, &shard]).await? {
            let Some(i) = row.try_get::<_, Option<i64>>("i")? else {
                group.cells.push(CountCell::try_from(row)?);
                continue;
            };
            let signature = PendingSignature {
                id: row.try_get("id")?,
                petition_id: row.try_get("signature_petition")?,
                slug: row.try_get("slug")?,
                locale: row.try_get("locale")?,
                state: PendingState::Confirmed,
            };
            if let Some(slot) = usize::try_from(i - 1)
                .ok()
                .and_then(|i| group.each.get_mut(i))
            {
                *slot = Some(Confirmed {
                    signature,
                    now: true,
                });
            }
        }
        let missed: Vec<usize> = (0..hashes.len())
            .filter(|&i| group.each[i].is_none())
            .collect();
        if !missed.is_empty() {
            // What the others name, if anything: confirmed before, expired,
            // or nothing (on the same connection: a second one, taken while
            // this is held, could wait forever for a pool that many such
            // calls have emptied).
            let asked: Vec<&[u8]> = missed.iter().map(|&i| hashes[i]).collect();
            let find = client.prepare_cached(FIND_MANY).await?;
            for row in client.query(&find, &[&asked]).await? {
                let place: i64 = row.try_get(0)?;
                let Some(&i) = usize::try_from(place - 1).ok().and_then(|p| missed.get(p)) else {
                    continue;
                };
                group.each[i] = Some(Confirmed {
                    signature: PendingSignature {
                        id: row.try_get(1)?,
                        petition_id: row.try_get(2)?,
                        slug: row.try_get(3)?,
                        locale: row.try_get(4)?,
                        state: state(row.try_get(5)?),
                    },
                    now: false,
                });
            }
        }
        Ok(group)
    }
}
