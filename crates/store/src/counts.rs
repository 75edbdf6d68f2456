//! Maintained counts, read back for the live counter.

use tokio_postgres::Row;
use undersigned_domain::{Country, SignerKind};

use crate::{Store, StoreError};

/// One shard of one (petition, country, signer kind) tally, as totals that only
/// grow: signatures counted, then removed by invalidations (and withdrawals)
/// and restored by undoing them; signatures stored pending, and pending ones
/// settled (confirmed, expired, withdrawn). Its net count is `count - removed
/// + restored`, its pending net `pending - settled`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountCell {
    pub petition_id: i64,
    pub country: Country,
    pub kind: SignerKind,
    pub shard: i16,
    pub count: i64,
    pub removed: i64,
    pub restored: i64,
    pub pending: i64,
    pub settled: i64,
}

/// The shard that invalidations adjust, apart from the writers' shards.
pub const ADJUSTMENT_SHARD: i16 = -1;

impl CountCell {
    pub fn net(&self) -> i64 {
        self.count - self.removed + self.restored
    }

    pub fn net_pending(&self) -> i64 {
        self.pending - self.settled
    }
}

impl TryFrom<Row> for CountCell {
    type Error = StoreError;

    fn try_from(row: Row) -> Result<Self, StoreError> {
        let country: &str = row.try_get("country")?;
        let kind: &str = row.try_get("signer_kind")?;
        Ok(Self {
            petition_id: row.try_get("petition_id")?,
            country: Country::parse(country)
                .ok_or_else(|| StoreError::Config(format!("stored country {country}")))?,
            kind: SignerKind::parse(kind)
                .ok_or_else(|| StoreError::Config(format!("stored signer kind {kind}")))?,
            shard: row.try_get("shard")?,
            count: row.try_get("count")?,
            removed: row.try_get("removed")?,
            restored: row.try_get("restored")?,
            pending: row.try_get("pending")?,
            settled: row.try_get("settled")?,
        })
    }
}

/// One shard of one event's tally, totals that only grow like [`CountCell`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCell {
    pub event_id: uuid::Uuid,
    pub petition_id: i64,
    pub shard: i16,
    pub count: i64,
    pub removed: i64,
    pub restored: i64,
}

impl TryFrom<Row> for EventCell {
    type Error = StoreError;

    fn try_from(row: Row) -> Result<Self, StoreError> {
        Ok(Self {
            event_id: row.try_get("event_id")?,
            petition_id: row.try_get("petition_id")?,
            shard: row.try_get("shard")?,
            count: row.try_get("count")?,
            removed: row.try_get("removed")?,
            restored: row.try_get("restored")?,
        })
    }
}

impl Store {
    /// Every count cell of every petition: small (petitions × countries × kinds × shards).
    pub async fn count_cells(&self) -> Result<Vec<CountCell>, StoreError> {
        let client = self.pool.get().await?;
        client
            .query(
                "SELECT petition_id, country, signer_kind, shard, count, removed, restored,
                        pending, settled
                 FROM signature_counts",
                &[],
            )
            .await?
            .into_iter()
            .map(CountCell::try_from)
            .collect()
    }

    /// Every shard of every event's tally.
    pub async fn event_cells(&self) -> Result<Vec<EventCell>, StoreError> {
        let client = self.pool.get().await?;
        client
            .query(
                "SELECT event_id, petition_id, shard, count, removed, restored FROM event_counts",
                &[],
            )
            .await?
            .into_iter()
            .map(EventCell::try_from)
            .collect()
    }
}
