//! The audit trail: every administrative action, who took it and when. Details
//! name what changed, never a signer's personal data.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::Value;
use uuid::Uuid;

use crate::{Store, StoreError};

/// Who acts: a token (none on the command line), and from which address.
#[derive(Debug, Clone, Copy, Default)]
pub struct Actor {
    pub token_id: Option<Uuid>,
    pub client_address: Option<IpAddr>,
}

/// One action about to be recorded.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub token_id: Option<Uuid>,
    pub action: &'static str,
    pub petition_id: Option<i64>,
    pub detail: Value,
    /// Where the request came from.
    pub client_address: Option<IpAddr>,
}

impl AuditEntry {
    pub fn new(by: &Actor, action: &'static str, detail: Value) -> Self {
        Self {
            token_id: by.token_id,
            action,
            petition_id: None,
            detail,
            client_address: by.client_address,
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
    pub client_address: Option<IpAddr>,
}

/// Which entries to read: newest first, before an id (for the next page).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub petition_id: Option<i64>,
    /// `token.` takes every token action.
    pub action_prefix: Option<String>,
    pub token_id: Option<Uuid>,
    pub before: Option<i64>,
    pub limit: i64,
}

pub(crate) async fn record(
    client: &impl GenericClient,
    entry: &AuditEntry,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO audit_log (token_id, action, petition_id, detail, client_address)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &entry.token_id,
                &entry.action,
                &entry.petition_id,
                &entry.detail,
                &entry.client_address,
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

    /// The newest actions first, as the filter says.
    pub async fn audit_trail(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let prefix = f.action_prefix.as_ref().map(|p| {
            format!(
                "{}%",
                p.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        });
        let rows = self
            .pool
            .get()
            .await?
            .query(
                "SELECT id, at, token_id, action, petition_id, detail, client_address
                 FROM audit_log
                 WHERE ($1::bigint IS NULL OR petition_id = $1)
                   AND ($2::text IS NULL OR action LIKE $2)
                   AND ($3::uuid IS NULL OR token_id = $3)
                   AND ($4::bigint IS NULL OR id < $4)
                 ORDER BY id DESC LIMIT $5",
                &[&f.petition_id, &prefix, &f.token_id, &f.before, &f.limit],
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
                    client_address: r.try_get("client_address")?,
                })
            })
            .collect()
    }
}
