//! Retention: a petition's signers' personal fields erased once the days its
//! `retention_days` gives have passed since it closed, and every signature's
//! client address once it is older than the address retention. Receipts,
//! countries, signer kinds, channels, times and counts stay, so the count,
//! its history and the Merkle roots of bundles delivered before all hold.

use std::time::Duration;

use serde_json::json;
use tracing::info;

use crate::{Actor, AuditEntry, Store, StoreError};

/// Rows erased per statement: each its own short transaction, so that a
/// million rows never hold one long lock or one huge WAL record.
const CHUNK: i64 = 5_000;

/// Petitions whose signers' personal fields are due to be erased.
const DUE: &str = "
    SELECT id, retention_days, least(closed_at, closes_at) FROM petitions
    WHERE retention_days IS NOT NULL AND personal_data_erased_at IS NULL
      AND least(closed_at, closes_at) + make_interval(days => retention_days) <= now()
    ORDER BY id";

/// One chunk of a petition's signatures that still name someone. A row
/// keeps its identity key until it is erased (withdrawn ones have none), so
/// the unique index on (petition, key) finds the next chunk at once, however
/// many were erased before.
const ERASE_CHUNK: &str = "
    WITH chosen AS (
        SELECT id FROM signatures WHERE petition_id = $1 AND identity_key IS NOT NULL
        ORDER BY identity_key LIMIT $2 FOR UPDATE
    )
    UPDATE signatures s SET full_name = '', email = NULL, organization = NULL,
        postal_code = NULL, city = NULL, client_address = NULL, sealed = NULL,
        email_domain = NULL, identity_key = NULL, confirm_hash = NULL, withdraw_hash = NULL,
        withdraw_until = NULL, mail_due = NULL
    FROM chosen WHERE s.id = chosen.id";

/// Client addresses older than the cut, in a range of the table's pages:
/// the sweep walks the table once, a range at a time (a TID range scan), so
/// rows erased before are read once a sweep, never again and again.
const ERASE_ADDRESSES: &str = "
    UPDATE signatures SET client_address = NULL
    WHERE ctid >= format('(%s,0)', $1::int8)::tid AND ctid < format('(%s,0)', $2::int8)::tid
      AND signed_at < now() - make_interval(secs => $3) AND client_address IS NOT NULL";

/// Pages of the table per statement (8 MB).
const PAGES: i64 = 1_000;

/// Marks a petition erased, only once nothing of it names anyone (a tablet's
/// batch may have arrived meanwhile: the next sweep takes it), and closes it:
/// every path that signs checks its status.
const FINISH: &str = "
    UPDATE petitions SET personal_data_erased_at = now(), status = 'closed'
    WHERE id = $1 AND personal_data_erased_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM signatures WHERE petition_id = $1 AND identity_key IS NOT NULL)";

impl Store {
    /// Erases the personal fields of every petition whose retention ran
    /// out, a chunk at a time, and records for each how many rows it
    /// erased. Returns the petitions finished and their rows erased. Each
    /// petition is swept by one instance at a time (an advisory lock); the
    /// others skip it.
    pub async fn sweep_retention(&self) -> Result<Vec<(i64, u64)>, StoreError> {
        let due = self.pool.get().await?.query(DUE, &[]).await?;
        let mut swept = Vec::with_capacity(due.len());
        for petition in due {
            let id: i64 = petition.try_get(0)?;
            let days: i32 = petition.try_get(1)?;
            let ended: chrono::DateTime<chrono::Utc> = petition.try_get(2)?;
            let mut client = self.pool.get().await?;
            let lock = [&id as &(dyn tokio_postgres::types::ToSql + Sync)];
            let mine: bool = client
                .query_one(
                    "SELECT pg_try_advisory_lock(hashtext('undersigned retention'), $1::int8::int4)",
                    &lock,
                )
                .await?
                .try_get(0)?;
            if !mine {
                continue;
            }
            let result = erase_petition(&mut client, id, days, ended).await;
            // Released whatever happened: the connection goes back to the pool.
            client
                .execute(
                    "SELECT pg_advisory_unlock(hashtext('undersigned retention'), $1::int8::int4)",
                    &lock,
                )
                .await?;
            if let Some(rows) = result? {
                swept.push((id, rows));
            }
        }
        Ok(swept)
    }

    /// Petitions whose signers' data was erased in the last day: their seen
    /// sets are dropped from Redis again at each sweep (a drop is harmless to
    /// repeat), so that one Redis missed is not kept for good.
    pub async fn recently_erased(&self) -> Result<Vec<i64>, StoreError> {
        let client = self.pool.get().await?;
        client
            .query(
                "SELECT id FROM petitions
                 WHERE personal_data_erased_at > now() - interval '1 day' ORDER BY id",
                &[],
            )
            .await?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
    }

    /// Erases the client addresses of signatures older than `older_than`;
    /// how many.
    pub async fn sweep_addresses(&self, older_than: Duration) -> Result<u64, StoreError> {
        let seconds = older_than.as_secs_f64();
        let client = self.pool.get().await?;
        let pages: i64 = client
            .query_one(
                "SELECT pg_relation_size('signatures') / current_setting('block_size')::int8",
                &[],
            )
            .await?
            .try_get(0)?;
        let mut erased = 0;
        let mut from = 0;
        while from <= pages {
            let to = from + PAGES;
            erased += client
                .execute(ERASE_ADDRESSES, &[&from, &to, &seconds])
                .await?;
            from = to;
        }
        Ok(erased)
    }
}

/// Erases one petition's personal fields, chunk by chunk until none is left,
/// then finishes it: `Some(rows erased)`, or `None` when rows arrived meanwhile.
async fn erase_petition(
    client: &mut deadpool_postgres::Object,
    id: i64,
    days: i32,
    ended: chrono::DateTime<chrono::Utc>,
) -> Result<Option<u64>, StoreError> {
    let mut rows = 0;
    loop {
        // A chunk can come back short while a withdrawal holds some of its
        // rows: only an empty one says none is left.
        let erased = client.execute(ERASE_CHUNK, &[&id, &CHUNK]).await?;
        if erased == 0 {
            break;
        }
        rows += erased;
    }
    let tx = client.transaction().await?;
    // What waits to be sent to its signers, and the wrapped keys of its
    // sealed rows (nothing is left to open), go too.
    tx.execute(
        "DELETE FROM outbox WHERE signature_id IN (SELECT id FROM signatures WHERE petition_id = $1)",
        &[&id],
    )
    .await?;
    tx.execute("DELETE FROM seal_epochs WHERE petition_id = $1", &[&id])
        .await?;
    if tx.execute(FINISH, &[&id]).await? == 0 {
        return Ok(None);
    }
    let entry = AuditEntry::new(
        &Actor::default(),
        "retention.erase",
        json!({"rows": rows, "retention_days": days, "closed_at": ended}),
    )
    .about(id);
    crate::audit::record(&tx, &entry).await?;
    tx.commit().await?;
    info!(
        petition = id,
        rows, days, "erased the personal fields of a petition past its retention"
    );
    Ok(Some(rows))
}
