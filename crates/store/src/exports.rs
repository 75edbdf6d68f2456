//! Reading a petition's signatures for export: one consistent snapshot, read a
//! batch at a time through a portal, so a million rows never sit in memory and
//! a running campaign never tears an export.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use tracing::warn;
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
    /// Only signers who asked to be kept informed (`consent_updates`).
    pub consented: bool,
    /// Whether the sealed fields (and the epochs that open them) are read:
    /// an export of a sealed petition, to be opened by its recipients.
    pub sealed: bool,
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
    /// Only when the filter asked for sealed fields.
    pub sealed: Option<Vec<u8>>,
    pub locale: Option<String>,
    pub consent_updates: bool,
    /// When the signer consented: when they confirmed their address, or
    /// signed where no confirmation was asked.
    pub consented_at: DateTime<Utc>,
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
        /// A sealed export's epochs, oldest first; else none.
        epochs: Vec<crate::SealEpoch>,
    },
    Rows(Vec<ExportRow>),
    PassEnd,
}

/// Rows per round trip.
const BATCH: i32 = 2_000;

/// Where an export's snapshot was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    Primary,
    /// The streaming replica, caught up with the primary as of the request.
    Replica,
}

impl ReadFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Replica => "replica",
        }
    }
}

/// How long an export waits for the replica to replay what the primary had
/// written when the export was asked for, before reading the primary instead.
/// Without the wait a lagging replica would deliver a signature withdrawn or
/// erased a moment before, or miss one just acknowledged.
const REPLICA_CATCH_UP: Duration = Duration::from_secs(2);

/// Why an export did not read the replica.
#[derive(Debug, thiserror::Error)]
enum Unfit {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("it is not in recovery (a primary, or promoted)")]
    NotStandby,
    #[error("it had not replayed the primary's WAL up to {0} after {REPLICA_CATCH_UP:?}")]
    Behind(String),
    #[error("it did not answer within {REPLICA_CATCH_UP:?}")]
    Silent,
}

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
    ) -> Result<(u64, ReadFrom), StoreError> {
        let (mut client, read_from) = self.export_connection().await?;
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
             AND ($6::text IS NULL OR signer_kind = $6)
             AND ($7::bool IS NOT TRUE OR consent_updates)";
        let condition = format!("{filters} AND {}", filter.status.condition());
        let channel = filter.channel.map(Channel::as_str);
        let kind = filter.signer_kind.map(SignerKind::as_str);
        let params: [&(dyn ToSql + Sync); 7] = [
            &filter.petition_id,
            &filter.countries,
            &filter.since,
            &filter.until,
            &channel,
            &kind,
            &filter.consented,
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
        let epochs = if filter.sealed {
            crate::sealing::epochs_of(&*tx, filter.petition_id).await?
        } else {
            Vec::new()
        };
        if out
            .send(ExportMessage::Totals {
                rows,
                by_country,
                withdrawn,
                epochs,
            })
            .await
            .is_err()
        {
            return Ok((rows, read_from));
        }
        let email = if filter.with_email {
            "email"
        } else {
            "NULL::text"
        };
        let sealed = if filter.sealed {
            "sealed"
        } else {
            "NULL::bytea"
        };
        let select = tx
            .prepare(&format!(
                "SELECT id, full_name, organization, signer_kind, city, postal_code, country,
                        signed_at, channel, {email} AS email, {sealed} AS sealed, locale,
                        consent_updates, coalesce(confirmed_at, signed_at) AS consented_at
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
                            sealed: r.try_get("sealed")?,
                            locale: r.try_get("locale")?,
                            consent_updates: r.try_get("consent_updates")?,
                            consented_at: r.try_get("consented_at")?,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                if !batch.is_empty() && out.send(ExportMessage::Rows(batch)).await.is_err() {
                    return Ok((rows, read_from));
                }
                if last {
                    break;
                }
            }
            if out.send(ExportMessage::PassEnd).await.is_err() {
                return Ok((rows, read_from));
            }
        }
        tx.commit().await?;
        Ok((rows, read_from))
    }

    /// The replica, once caught up with the primary as of now, else the primary.
    async fn export_connection(&self) -> Result<(Object, ReadFrom), StoreError> {
        if let Some(replica) = &self.replica {
            match self.caught_up(replica).await {
                Ok(client) => return Ok((client, ReadFrom::Replica)),
                Err(why) => warn!(%why, "the export reads the primary, not the replica"),
            }
        }
        Ok((self.pool.get().await?, ReadFrom::Primary))
    }

    /// A connection to the replica once it has replayed the primary's WAL as
    /// far as the primary had written it when asked, within [`REPLICA_CATCH_UP`].
    async fn caught_up(&self, replica: &Pool) -> Result<Object, Unfit> {
        let written: String = self
            .pool
            .get()
            .await
            .map_err(StoreError::from)?
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await?
            .get(0);
        let deadline = tokio::time::Instant::now() + REPLICA_CATCH_UP;
        // A replica that neither answers nor refuses holds no export up.
        let client = tokio::time::timeout_at(deadline, replica.get())
            .await
            .map_err(|_| Unfit::Silent)?
            .map_err(StoreError::from)?;
        let params: [&(dyn ToSql + Sync); 1] = [&written];
        loop {
            let asked = client.query_one(
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                &params,
            );
            let row = tokio::time::timeout_at(deadline, asked)
                .await
                .map_err(|_| Unfit::Silent)??;
            if !row.get::<_, bool>(0) {
                return Err(Unfit::NotStandby);
            }
            if row.get::<_, Option<bool>>(1) == Some(true) {
                return Ok(client);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Unfit::Behind(written));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
