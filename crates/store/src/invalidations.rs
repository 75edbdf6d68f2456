//! Bulk invalidation: stamping a petition's signatures that match some criteria
//! as invalid, in chunks, each chunk one transaction that also adjusts the
//! counts, so the count is exact at every moment; and undoing it the same way.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::audit::{Actor, AuditEntry, record};
use crate::counts::ADJUSTMENT_SHARD;
use crate::{CountCell, EventCell, Store, StoreError};

/// What an invalidation matches; every criterion given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Criteria {
    /// A CIDR the signature's client address lies in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_range: Option<String>,
    /// The email's domain, lower case; `*` matches any run of characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_after: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_before: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipts: Option<Vec<Uuid>>,
}

impl Criteria {
    /// The domain glob as a LIKE pattern.
    fn domain_like(&self) -> Option<String> {
        self.email_domain.as_ref().map(|d| {
            d.to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
                .replace('*', "%")
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidationState {
    Running,
    Done,
    Undoing,
    Undone,
}

impl InvalidationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Undoing => "undoing",
            Self::Undone => "undone",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "running" => Some(Self::Running),
            "done" => Some(Self::Done),
            "undoing" => Some(Self::Undoing),
            "undone" => Some(Self::Undone),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Invalidation {
    pub id: i64,
    #[serde(skip)]
    pub petition_id: i64,
    pub criteria: Criteria,
    pub reason: String,
    pub state: InvalidationState,
    /// Signatures it holds invalid now.
    pub affected: i64,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub undone_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub cursor: Option<Uuid>,
}

const COLUMNS: &str = "id, petition_id, criteria, reason, state, affected, created_at, \
                       finished_at, undone_at, cursor";

/// The first key of the advisory locks that serialize a petition's invalidations.
const ADVISORY_SPACE: i32 = 0x5553_0001;

impl TryFrom<Row> for Invalidation {
    type Error = StoreError;

    fn try_from(row: Row) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Config(format!("stored invalidation has {what}"));
        let criteria: serde_json::Value = row.try_get("criteria")?;
        Ok(Self {
            id: row.try_get("id")?,
            petition_id: row.try_get("petition_id")?,
            criteria: serde_json::from_value(criteria).map_err(|_| corrupt("bad criteria"))?,
            reason: row.try_get("reason")?,
            state: InvalidationState::parse(row.try_get("state")?)
                .ok_or_else(|| corrupt("a bad state"))?,
            affected: row.try_get("affected")?,
            created_at: row.try_get("created_at")?,
            finished_at: row.try_get("finished_at")?,
            undone_at: row.try_get("undone_at")?,
            cursor: row.try_get("cursor")?,
        })
    }
}

/// The criteria as the audit trail keeps them: receipts by number only (the
/// job itself keeps the list).
fn audited(criteria: &Criteria) -> serde_json::Value {
    let mut summary = serde_json::to_value(Criteria {
        receipts: None,
        ..criteria.clone()
    })
    .unwrap_or_default();
    if let (Some(receipts), Some(map)) = (&criteria.receipts, summary.as_object_mut()) {
        map.insert("receipts".into(), receipts.len().into());
    }
    summary
}

/// Signatures stamped (or unstamped) per transaction.
const CHUNK: i64 = 2_000;

/// Walks the signatures in id order from the job's cursor, so each row is
/// examined once however many chunks the job takes.
const INVALIDATE_CHUNK: &str = "
    WITH chosen AS (
        SELECT id FROM signatures
        WHERE petition_id = $1 AND invalidated_by IS NULL AND shadowed_by IS NULL
          AND pending_until IS NULL AND withdrawn_at IS NULL
          AND ($10::uuid IS NULL OR id > $10)
          AND ($2::text IS NULL OR client_address <<= $2::text::inet)
          AND ($3::text IS NULL
               OR coalesce(email_domain, lower(split_part(email, '@', 2))) LIKE $3)
          AND ($4::text IS NULL OR country = $4)
          AND ($5::timestamptz IS NULL OR signed_at >= $5)
          AND ($6::timestamptz IS NULL OR signed_at < $6)
          AND ($7::uuid[] IS NULL OR id = ANY($7))
        ORDER BY id
        LIMIT $8
        FOR UPDATE
    )
    UPDATE signatures s SET invalidated_by = $9 FROM chosen WHERE s.id = chosen.id
    RETURNING s.id, s.country, s.signer_kind, s.event_id";

const UNDO_CHUNK: &str = "
    WITH chosen AS (
        SELECT id FROM signatures WHERE invalidated_by = $1 LIMIT $2 FOR UPDATE
    )
    UPDATE signatures s SET invalidated_by = NULL FROM chosen WHERE s.id = chosen.id
    RETURNING s.id, s.country, s.signer_kind, s.event_id";

/// Adds to the adjustment shard's `removed` or `restored`, in a stable order.
fn adjust_counts(column: &str) -> String {
    format!(
        "INSERT INTO signature_counts (petition_id, country, signer_kind, shard, count, {column})
         SELECT $1, c, k, {ADJUSTMENT_SHARD}, 0, n
         FROM unnest($2::text[], $3::text[], $4::int8[]) AS t(c, k, n) ORDER BY c, k
         ON CONFLICT (petition_id, country, signer_kind, shard)
             DO UPDATE SET {column} = signature_counts.{column} + EXCLUDED.{column}
         RETURNING petition_id, country, signer_kind, shard, count, removed, restored, pending,
             settled"
    )
}

/// Likewise for the events' tallies.
fn adjust_events(column: &str) -> String {
    format!(
        "INSERT INTO event_counts (event_id, petition_id, shard, {column})
         SELECT e, $1, {ADJUSTMENT_SHARD}, n
         FROM unnest($2::uuid[], $3::int8[]) AS t(e, n) ORDER BY e
         ON CONFLICT (event_id, shard)
             DO UPDATE SET {column} = event_counts.{column} + EXCLUDED.{column}
         RETURNING event_id, petition_id, shard, count, removed, restored"
    )
}

/// What one chunk did.
pub struct Chunk {
    /// Signatures stamped or unstamped; 0 when the job is finished.
    pub signatures: i64,
    /// The adjusted count cells, for the live counter.
    pub cells: Vec<CountCell>,
    /// The adjusted event tallies.
    pub event_cells: Vec<EventCell>,
}

impl Store {
    pub async fn create_invalidation(
        &self,
        petition_id: i64,
        criteria: &Criteria,
        reason: &str,
        by: &Actor,
    ) -> Result<Invalidation, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let criteria_json = serde_json::to_value(criteria)
            .map_err(|e| StoreError::Config(format!("criteria: {e}")))?;
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO invalidations (petition_id, criteria, reason, created_by)
                     VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
                ),
                &[&petition_id, &criteria_json, &reason, &by.token_id],
            )
            .await?;
        let created = Invalidation::try_from(row)?;
        record(
            &tx,
            &AuditEntry::new(
                by,
                "invalidation.create",
                serde_json::json!({"invalidation": created.id, "criteria": audited(criteria),
                                   "reason": reason}),
            )
            .about(petition_id),
        )
        .await?;
        tx.commit().await?;
        Ok(created)
    }

    pub async fn invalidation(
        &self,
        petition_id: i64,
        id: i64,
    ) -> Result<Option<Invalidation>, StoreError> {
        self.pool
            .get()
            .await?
            .query_opt(
                &format!("SELECT {COLUMNS} FROM invalidations WHERE id = $1 AND petition_id = $2"),
                &[&id, &petition_id],
            )
            .await?
            .map(Invalidation::try_from)
            .transpose()
    }

    pub async fn invalidations(&self, petition_id: i64) -> Result<Vec<Invalidation>, StoreError> {
        self.pool
            .get()
            .await?
            .query(
                &format!("SELECT {COLUMNS} FROM invalidations WHERE petition_id = $1 ORDER BY id"),
                &[&petition_id],
            )
            .await?
            .into_iter()
            .map(Invalidation::try_from)
            .collect()
    }

    /// Jobs left unfinished (by a stop or a crash), to resume.
    pub async fn unfinished_invalidations(&self) -> Result<Vec<Invalidation>, StoreError> {
        self.pool
            .get()
            .await?
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM invalidations WHERE state IN ('running', 'undoing')"
                ),
                &[],
            )
            .await?
            .into_iter()
            .map(Invalidation::try_from)
            .collect()
    }

    /// Asks for an invalidation to be undone: `Ok(None)` when there is none,
    /// `Ok(Some(false))` when it is not done (still running, or undone already).
    pub async fn begin_undo(
        &self,
        petition_id: i64,
        id: i64,
        by: &Actor,
    ) -> Result<Option<bool>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "SELECT state FROM invalidations WHERE id = $1 AND petition_id = $2 FOR UPDATE",
                &[&id, &petition_id],
            )
            .await?
        else {
            return Ok(None);
        };
        if row.try_get::<_, &str>("state")? != "done" {
            return Ok(Some(false));
        }
        tx.execute(
            "UPDATE invalidations SET state = 'undoing', undone_by = $2 WHERE id = $1",
            &[&id, &by.token_id],
        )
        .await?;
        record(
            &tx,
            &AuditEntry::new(
                by,
                "invalidation.undo",
                serde_json::json!({"invalidation": id}),
            )
            .about(petition_id),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(true))
    }

    /// Does the next chunk of a running or undoing job; when nothing is left,
    /// marks it done or undone. The steps of all jobs of one petition take
    /// turns (a transaction-scoped advisory lock): a chunk never waits on rows
    /// another job is stamping, so a short chunk means the job is at its end,
    /// and two instances resuming one job never stamp a row twice.
    pub async fn invalidation_step(&self, id: i64) -> Result<Chunk, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let petition_id: i64 = tx
            .query_one(
                "SELECT petition_id FROM invalidations WHERE id = $1",
                &[&id],
            )
            .await?
            .try_get(0)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[
                &ADVISORY_SPACE,
                &i32::try_from(petition_id % i64::from(i32::MAX)).unwrap_or(0),
            ],
        )
        .await?;
        let job = Invalidation::try_from(
            tx.query_one(
                &format!("SELECT {COLUMNS} FROM invalidations WHERE id = $1 FOR UPDATE"),
                &[&id],
            )
            .await?,
        )?;
        let (rows, column, sign) = match job.state {
            InvalidationState::Running => {
                let c = &job.criteria;
                let rows = tx
                    .query(
                        INVALIDATE_CHUNK,
                        &[
                            &job.petition_id,
                            &c.address_range,
                            &c.domain_like(),
                            &c.country,
                            &c.signed_after,
                            &c.signed_before,
                            &c.receipts,
                            &CHUNK,
                            &id,
                            &job.cursor,
                        ],
                    )
                    .await?;
                (rows, "removed", 1)
            }
            InvalidationState::Undoing => {
                (tx.query(UNDO_CHUNK, &[&id, &CHUNK]).await?, "restored", -1)
            }
            InvalidationState::Done | InvalidationState::Undone => {
                return Ok(Chunk {
                    signatures: 0,
                    cells: Vec::new(),
                    event_cells: Vec::new(),
                });
            }
        };
        let mut tallies: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut event_tallies: BTreeMap<Uuid, i64> = BTreeMap::new();
        for row in &rows {
            *tallies
                .entry((row.try_get("country")?, row.try_get("signer_kind")?))
                .or_default() += 1;
            if let Some(event) = row.try_get::<_, Option<Uuid>>("event_id")? {
                *event_tallies.entry(event).or_default() += 1;
            }
        }
        let n = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let (cells, event_cells) = if n == 0 {
            let finish = match job.state {
                InvalidationState::Running => {
                    "UPDATE invalidations SET state = 'done', finished_at = now() WHERE id = $1"
                }
                _ => "UPDATE invalidations SET state = 'undone', undone_at = now() WHERE id = $1",
            };
            tx.execute(finish, &[&id]).await?;
            (Vec::new(), Vec::new())
        } else {
            let last = rows
                .iter()
                .filter_map(|r| r.try_get::<_, Uuid>("id").ok())
                .max();
            tx.execute(
                "UPDATE invalidations SET affected = affected + $2,
                        cursor = CASE WHEN state = 'running' THEN $3 ELSE cursor END
                 WHERE id = $1",
                &[&id, &(sign * n), &last],
            )
            .await?;
            // Endpoints hear a signature leave the count, or come back to it.
            let changed = rows
                .iter()
                .map(|r| Ok((job.petition_id, r.try_get::<_, Uuid>("id")?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let kind = match job.state {
                InvalidationState::Running => "signature.invalidated",
                _ => "signature.counted",
            };
            crate::webhooks::notify(&*tx, kind, &changed).await?;
            let countries: Vec<&str> = tallies.keys().map(|k| k.0.as_str()).collect();
            let kinds: Vec<&str> = tallies.keys().map(|k| k.1.as_str()).collect();
            let counts: Vec<i64> = tallies.values().copied().collect();
            let cells = tx
                .query(
                    &adjust_counts(column),
                    &[&job.petition_id, &countries, &kinds, &counts],
                )
                .await?
                .into_iter()
                .map(CountCell::try_from)
                .collect::<Result<_, _>>()?;
            let events: Vec<Uuid> = event_tallies.keys().copied().collect();
            let counts: Vec<i64> = event_tallies.values().copied().collect();
            let event_cells = if events.is_empty() {
                Vec::new()
            } else {
                tx.query(
                    &adjust_events(column),
                    &[&job.petition_id, &events, &counts],
                )
                .await?
                .into_iter()
                .map(EventCell::try_from)
                .collect::<Result<_, _>>()?
            };
            (cells, event_cells)
        };
        tx.commit().await?;
        Ok(Chunk {
            signatures: n,
            cells,
            event_cells,
        })
    }
}
