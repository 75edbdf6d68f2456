//! Petitions.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use undersigned_domain::{NewPetition, PetitionStatus};

use crate::error::conflict_on_unique;
use crate::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct Petition {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub text: String,
    pub goal: i64,
    pub locale: String,
    pub status: PetitionStatus,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, slug, title, body, goal, locale, status, created_at";

impl TryFrom<Row> for Petition {
    type Error = StoreError;

    fn try_from(row: Row) -> Result<Self, StoreError> {
        let status: &str = row.try_get("status")?;
        Ok(Self {
            id: row.try_get("id")?,
            slug: row.try_get("slug")?,
            title: row.try_get("title")?,
            text: row.try_get("body")?,
            goal: row.try_get("goal")?,
            locale: row.try_get("locale")?,
            status: PetitionStatus::parse(status)
                .ok_or_else(|| StoreError::Config(format!("unknown petition status {status}")))?,
            created_at: row.try_get("created_at")?,
        })
    }
}

impl Store {
    /// Creates an open petition; [`StoreError::Conflict`] when the slug is taken.
    pub async fn create_petition(&self, p: &NewPetition) -> Result<Petition, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO petitions (slug, title, body, goal, locale)
                     VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
                ),
                &[
                    &p.slug.as_str(),
                    &p.title.as_str(),
                    &p.text.as_str(),
                    &p.goal,
                    &p.locale.as_str(),
                ],
            )
            .await
            .map_err(conflict_on_unique)?;
        row.try_into()
    }

    pub async fn petition_by_slug(&self, slug: &str) -> Result<Option<Petition>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(&format!("SELECT {COLUMNS} FROM petitions WHERE slug = $1"))
            .await?;
        client
            .query_opt(&stmt, &[&slug])
            .await?
            .map(Petition::try_from)
            .transpose()
    }
}
