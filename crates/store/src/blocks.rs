//! Block and allow rules: address ranges, email domains (globs) and canonical
//! email addresses, each rejecting, shadow-accepting or allowing signatures.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use crate::audit::{Actor, AuditEntry, record};
use crate::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    Address,
    EmailDomain,
    Email,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockAction {
    /// Refused with 403.
    Reject,
    /// Answered like any signature, stored with the rule, never counted.
    Shadow,
    /// Exempt from block rules and from the address and domain limits.
    Allow,
}

macro_rules! text_enum {
    ($t:ty { $($v:ident = $s:literal),+ }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)+ _ => None }
            }
        }
    };
}
text_enum!(BlockKind { Address = "address", EmailDomain = "email_domain", Email = "email" });
text_enum!(BlockAction { Reject = "reject", Shadow = "shadow", Allow = "allow" });

/// A rule as an administrator writes it (its pattern already checked).
#[derive(Debug, Clone)]
pub struct NewBlockRule {
    pub kind: BlockKind,
    pub pattern: String,
    pub action: BlockAction,
    pub reason: String,
    pub petition_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct BlockRule {
    pub id: i64,
    pub kind: BlockKind,
    pub pattern: String,
    pub action: BlockAction,
    pub reason: String,
    pub petition_id: Option<i64>,
    /// The petition's slug, when listed.
    pub petition_slug: Option<String>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, kind, pattern, action, reason, petition_id, created_at";

impl TryFrom<Row> for BlockRule {
    type Error = StoreError;

    fn try_from(row: Row) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Config(format!("stored block rule has {what}"));
        Ok(Self {
            id: row.try_get("id")?,
            kind: BlockKind::parse(row.try_get("kind")?).ok_or_else(|| corrupt("a bad kind"))?,
            pattern: row.try_get("pattern")?,
            action: BlockAction::parse(row.try_get("action")?)
                .ok_or_else(|| corrupt("a bad action"))?,
            reason: row.try_get("reason")?,
            petition_id: row.try_get("petition_id")?,
            petition_slug: row.try_get("slug").ok().flatten(),
            created_at: row.try_get("created_at")?,
        })
    }
}

impl Store {
    pub async fn create_block_rule(
        &self,
        rule: &NewBlockRule,
        by: &Actor,
    ) -> Result<BlockRule, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO block_rules (kind, pattern, action, reason, petition_id, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
                ),
                &[
                    &rule.kind.as_str(),
                    &rule.pattern,
                    &rule.action.as_str(),
                    &rule.reason,
                    &rule.petition_id,
                    &by.token_id,
                ],
            )
            .await?;
        let created = BlockRule::try_from(row)?;
        let mut entry = AuditEntry::new(
            by,
            "block.create",
            serde_json::json!({"rule": created.id, "kind": rule.kind.as_str(),
                               "action": rule.action.as_str()}),
        );
        entry.petition_id = rule.petition_id;
        record(&tx, &entry).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// The rules in force.
    pub async fn block_rules(&self) -> Result<Vec<BlockRule>, StoreError> {
        self.pool
            .get()
            .await?
            .query(
                "SELECT r.id, r.kind, r.pattern, r.action, r.reason, r.petition_id, r.created_at,
                        p.slug
                 FROM block_rules r LEFT JOIN petitions p ON p.id = r.petition_id
                 WHERE r.removed_at IS NULL ORDER BY r.id",
                &[],
            )
            .await?
            .into_iter()
            .map(BlockRule::try_from)
            .collect()
    }

    /// Lifts a rule; `false` when there was none in force with that id. Kept
    /// for the record: signatures stamped with it still name it.
    pub async fn remove_block_rule(&self, id: i64, by: &Actor) -> Result<bool, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "UPDATE block_rules SET removed_at = now(), removed_by = $2
                 WHERE id = $1 AND removed_at IS NULL RETURNING petition_id",
                &[&id, &by.token_id],
            )
            .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let mut entry = AuditEntry::new(by, "block.remove", serde_json::json!({"rule": id}));
        entry.petition_id = row.try_get("petition_id")?;
        record(&tx, &entry).await?;
        tx.commit().await?;
        Ok(true)
    }
}
