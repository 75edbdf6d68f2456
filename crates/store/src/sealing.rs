//! Sealed petitions' epoch keys, as wrapped to their recipients with `age`
//! (crates/seal): what an export of sealed rows carries so that a recipient
//! can open them, and nothing the service itself can open.

use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::{Store, StoreError};

/// One epoch's key as stored: wrapped, with who may unwrap it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealEpoch {
    pub id: Uuid,
    pub recipients: Vec<String>,
    pub wrapped: Vec<u8>,
}

impl Store {
    /// Keeps an epoch's wrapped key; called before the epoch seals its
    /// first row, so that no row is ever stored that nobody could open.
    pub async fn store_seal_epoch(
        &self,
        petition_id: i64,
        epoch: &SealEpoch,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO seal_epochs (id, petition_id, recipients, wrapped)
                 VALUES ($1, $2, $3, $4)",
                &[&epoch.id, &petition_id, &epoch.recipients, &epoch.wrapped],
            )
            .await?;
        Ok(())
    }
}

/// Every epoch of a petition, oldest first.
pub(crate) async fn epochs_of(
    client: &impl GenericClient,
    petition_id: i64,
) -> Result<Vec<SealEpoch>, StoreError> {
    client
        .query(
            "SELECT id, recipients, wrapped FROM seal_epochs WHERE petition_id = $1
             ORDER BY created_at, id",
            &[&petition_id],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(SealEpoch {
                id: r.try_get(0)?,
                recipients: r.try_get(1)?,
                wrapped: r.try_get(2)?,
            })
        })
        .collect()
}
