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

/// One chunk of client addresses older than the cut (the BRIN index on
/// `signed_at` skips the newer part of the table).
const ERASE_ADDRESSES: &str = "
    UPDATE signatures SET client_address = NULL WHERE id IN (
        SELECT id FROM signatures
        WHERE signed_at < now() - make_interval(secs => $1) AND client_address IS NOT NULL
        LIMIT $2 FOR UPDATE SKIP LOCKED)";

impl Store {
    /// Erases the personal fields of every petition whose retention ran
    /// out, a chunk at a time, and records for each how many rows it
    /// erased. Returns the petitions and rows erased.
    pub async fn sweep_retention(&self) -> Result<Vec<(i64, u64)>, StoreError> {
        let due = self.pool.get().await?.query(DUE, &[]).await?;
        let mut swept = Vec::with_capacity(due.len());
        for petition in due {
            let id: i64 = petition.try_get(0)?;
            let days: i32 = petition.try_get(1)?;
            let ended: chrono::DateTime<chrono::Utc> = petition.try_get(2)?;
            let mut rows = 0;
            loop {
                let client = self.pool.get().await?;
                let erased = client.execute(ERASE_CHUNK, &[&id, &CHUNK]).await?;
                rows += erased;
                if erased < CHUNK as u64 {
                    break;
                }
            }
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            // Nothing left to open: the wrapped keys of its sealed rows go too.
            tx.execute("DELETE FROM seal_epochs WHERE petition_id = $1", &[&id])
                .await?;
            tx.execute(
                "UPDATE petitions SET personal_data_erased_at = now() WHERE id = $1",
                &[&id],
            )
            .await?;
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
            swept.push((id, rows));
        }
        Ok(swept)
    }

    /// Erases the client addresses of signatures older than `older_than`;
    /// how many.
    pub async fn sweep_addresses(&self, older_than: Duration) -> Result<u64, StoreError> {
        let seconds = older_than.as_secs_f64();
        let mut erased = 0;
        loop {
            let client = self.pool.get().await?;
            let n = client.execute(ERASE_ADDRESSES, &[&seconds, &CHUNK]).await?;
            erased += n;
            if n < CHUNK as u64 {
                return Ok(erased);
            }
        }
    }
}
