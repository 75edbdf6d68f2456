//! Reading a petition's signatures for export: one consistent snapshot, read a
//! batch at a time through a portal, so a million rows never sit in memory and
//! a running campaign never tears an export.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use undersigned_domain::{Channel, SignerKind};
use uuid::Uuid;

use crate::{Store, StoreError};

/// Which signatures count for an export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExportStatus {
    /// Counted: neither invalidated nor shadow-accepted. What is delivered.
    #[default]
    Counted,
    Invalidated,
    Shadowed,
    All,
}

impl ExportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counted => "counted",
            Self::Invalidated => "invalidated",
            Self::Shadowed => "shadowed",
            Self::All => "all",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Counted, Self::Invalidated, Self::Shadowed, Self::All]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    /// Which rows; a withdrawn signature (a tombstone) is in none.
    fn condition(self) -> &'static str {
        match self {
            Self::Counted => {
                "invalidated_by IS NULL AND shadowed_by IS NULL AND pending_until IS NULL \
                 AND withdrawn_at IS NULL"
            }
            Self::Invalidated => "invalidated_by IS NOT NULL AND withdrawn_at IS NULL",
            Self::Shadowed => "shadowed_by IS NOT NULL AND withdrawn_at IS NULL",
            Self::All => "withdrawn_at IS NULL",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    pub petition_id: i64,
    /// Only these countries (a coordinator's scope, or a filter); `None`: all.
    pub countries: Option<Vec<String>>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub channel: Option<Channel>,
    pub signer_kind: Option<SignerKind>,
    pub status: ExportStatus,
    /// Whether e-mail addresses are read at all.
    pub with_email: bool,
}

/// One exported signature.
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub id: Uuid,
    pub full_name: String,
    pub organization: Option<String>,
    pub signer_kind: String,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub country: String,
    pub signed_at: DateTime<Utc>,
    pub channel: String,
    /// Only when the filter asked for e-mail.
    pub email: Option<String>,
}

/// What a snapshot reader sends, in this order: the totals, then each pass's
/// batches, each pass closed by `PassEnd`.
#[derive(Debug)]
pub enum ExportMessage {
    Totals {
        rows: u64,
        by_country: BTreeMap<String, u64>,
        /// Withdrawn signatures the filters would otherwise have taken:
        /// their receipts are left out, and a bundle says how many.
        withdrawn: u64,
    },
    Rows(Vec<ExportRow>),
    PassEnd,
}

/// Rows per round trip.
const BATCH: i32 = 2_000;

impl Store {
    /// Reads the filter's signatures `passes` times (a bundle writes them into
    /// its CSV and again into its PDF) from one REPEATABLE READ snapshot, in
    /// signing order, into `out`, which sets the pace: when the receiver is slow
    /// or gone, reading waits or stops. Returns the rows of one pass.
    pub async fn export_snapshot(
        &self,
        filter: &ExportFilter,
        passes: usize,
        out: mpsc::Sender<ExportMessage>,
    ) -> Result<u64, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        // A snapshot held open holds back vacuum: one left idle is ended.
        tx.batch_execute("SET LOCAL idle_in_transaction_session_timeout = '2min'")
            .await?;
        let filters = "petition_id = $1
             AND ($2::text[] IS NULL OR country = ANY($2))
             AND ($3::timestamptz IS NULL OR signed_at >= $3)
             AND ($4::timestamptz IS NULL OR signed_at < $4)
             AND ($5::text IS NULL OR channel = $5)
             AND ($6::text IS NULL OR signer_kind = $6)";
        let condition = format!("{filters} AND {}", filter.status.condition());
        let channel = filter.channel.map(Channel::as_str);
        let kind = filter.signer_kind.map(SignerKind::as_str);
        let params: [&(dyn ToSql + Sync); 6] = [
            &filter.petition_id,
            &filter.countries,
            &filter.since,
            &filter.until,
            &channel,
            &kind,
        ];
        let mut by_country = BTreeMap::new();
        let mut rows = 0;
        for row in tx
            .query(
                &format!(
                    "SELECT country, count(*) FROM signatures WHERE {condition} GROUP BY country"
                ),
                &params,
            )
            .await?
        {
            let n: i64 = row.try_get(1)?;
            rows += n as u64;
            by_country.insert(row.try_get::<_, String>(0)?, n as u64);
        }
        let withdrawn: i64 = tx
            .query_one(
                &format!(
                    "SELECT count(*) FROM signatures WHERE {filters} AND withdrawn_at IS NOT NULL"
                ),
                &params,
            )
            .await?
            .try_get(0)?;
        let withdrawn = withdrawn as u64;
        if out
            .send(ExportMessage::Totals {
                rows,
                by_country,
                withdrawn,
            })
            .await
            .is_err()
        {
            return Ok(rows);
        }
        let email = if filter.with_email {
            "email"
        } else {
            "NULL::text"
        };
        let select = tx
            .prepare(&format!(
                "SELECT id, full_name, organization, signer_kind, city, postal_code, country,
                        signed_at, channel, {email} AS email
                 FROM signatures WHERE {condition} ORDER BY signed_at, id"
            ))
            .await?;
        for _ in 0..passes {
            let portal = tx.bind(&select, &params).await?;
            loop {
                let batch = tx.query_portal(&portal, BATCH).await?;
                let last = batch.len() < BATCH as usize;
                let batch = batch
                    .iter()
                    .map(|r| {
                        Ok(ExportRow {
                            id: r.try_get("id")?,
                            full_name: r.try_get("full_name")?,
                            organization: r.try_get("organization")?,
                            signer_kind: r.try_get("signer_kind")?,
                            city: r.try_get("city")?,
                            postal_code: r.try_get("postal_code")?,
                            country: r.try_get("country")?,
                            signed_at: r.try_get("signed_at")?,
                            channel: r.try_get("channel")?,
                            email: r.try_get("email")?,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                if !batch.is_empty() && out.send(ExportMessage::Rows(batch)).await.is_err() {
                    return Ok(rows);
                }
                if last {
                    break;
                }
            }
            if out.send(ExportMessage::PassEnd).await.is_err() {
                return Ok(rows);
            }
        }
        tx.commit().await?;
        Ok(rows)
    }
}
