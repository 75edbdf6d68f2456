//! The audit trail: every administrative action, who took it and when. Details
//! name what changed, never a signer's personal data.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::Value;
use uuid::Uuid;

use crate::{Store, StoreError};

/// One action about to be recorded.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub token_id: Option<Uuid>,
    pub action: &'static str,
    pub petition_id: Option<i64>,
    pub detail: Value,
}

impl AuditEntry {
    pub fn new(token_id: Uuid, action: &'static str, detail: Value) -> Self {
        Self {
            token_id: Some(token_id),
            action,
            petition_id: None,
            detail,
        }
    }

    pub fn about(mut self, petition_id: i64) -> Self {
        self.petition_id = Some(petition_id);
        self
    }
}

/// One recorded action.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub token_id: Option<Uuid>,
    pub action: String,
    pub petition_id: Option<i64>,
    pub detail: Value,
}

pub(crate) async fn record(
    client: &impl GenericClient,
    entry: &AuditEntry,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO audit_log (token_id, action, petition_id, detail) VALUES ($1, $2, $3, $4)",
            &[
                &entry.token_id,
                &entry.action,
                &entry.petition_id,
                &entry.detail,
            ],
        )
        .await?;
    Ok(())
}

impl Store {
    /// Records an action taken outside any other transaction.
    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        record(&self.pool.get().await?, entry).await
    }

    /// The newest actions first, for a petition or all.
    pub async fn audit_trail(
        &self,
        petition_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = self
            .pool
            .get()
            .await?
            .query(
                "SELECT id, at, token_id, action, petition_id, detail FROM audit_log
                 WHERE $1::bigint IS NULL OR petition_id = $1
                 ORDER BY id DESC LIMIT $2",
                &[&petition_id, &limit],
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    token_id: r.try_get("token_id")?,
                    action: r.try_get("action")?,
                    petition_id: r.try_get("petition_id")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}
