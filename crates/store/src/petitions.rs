//! Petitions.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use undersigned_domain::{
    CaptchaPolicy, NewPetition, Origin, PageUrl, PetitionStatus, WebSettings, Window,
};

use crate::audit::AuditEntry;
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
    pub window: Window,
    pub web: WebSettings,
    pub created_at: DateTime<Utc>,
}

/// What an organizer may change in a petition; every field is written.
#[derive(Debug, Clone)]
pub struct PetitionUpdate {
    pub title: String,
    pub text: String,
    pub goal: i64,
    pub status: PetitionStatus,
    pub window: Window,
    pub web: WebSettings,
}

impl From<&Petition> for PetitionUpdate {
    fn from(p: &Petition) -> Self {
        Self {
            title: p.title.clone(),
            text: p.text.clone(),
            goal: p.goal,
            status: p.status,
            window: p.window,
            web: p.web.clone(),
        }
    }
}

const COLUMNS: &str = "id, slug, title, body, goal, locale, status, created_at, \
                       allowed_origins, thank_you_url, error_url, captcha, captcha_fail_open, \
                       opens_at, closes_at";

impl TryFrom<Row> for Petition {
    type Error = StoreError;

    fn try_from(row: Row) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Config(format!("stored petition has {what}"));
        let status: &str = row.try_get("status")?;
        let origins: Vec<String> = row.try_get("allowed_origins")?;
        let page = |column: &str| -> Result<Option<PageUrl>, StoreError> {
            row.try_get::<_, Option<String>>(column)?
                .map(|u| PageUrl::parse(&u).map_err(|_| corrupt(column)))
                .transpose()
        };
        Ok(Self {
            id: row.try_get("id")?,
            slug: row.try_get("slug")?,
            title: row.try_get("title")?,
            text: row.try_get("body")?,
            goal: row.try_get("goal")?,
            locale: row.try_get("locale")?,
            status: PetitionStatus::parse(status).ok_or_else(|| corrupt("an unknown status"))?,
            window: Window {
                opens_at: row.try_get("opens_at")?,
                closes_at: row.try_get("closes_at")?,
            },
            web: WebSettings {
                allowed_origins: origins
                    .iter()
                    .map(|o| Origin::parse(o).map_err(|_| corrupt("an invalid origin")))
                    .collect::<Result<_, _>>()?,
                thank_you_url: page("thank_you_url")?,
                error_url: page("error_url")?,
                captcha: CaptchaPolicy::parse(row.try_get("captcha")?)
                    .map_err(|_| corrupt("an unknown captcha policy"))?,
                captcha_fail_open: row.try_get("captcha_fail_open")?,
            },
            created_at: row.try_get("created_at")?,
        })
    }
}

/// The web settings as the five columns they are stored in, in `COLUMNS` order.
struct WebColumns<'a> {
    origins: Vec<&'a str>,
    thank_you_url: Option<&'a str>,
    error_url: Option<&'a str>,
    captcha: &'static str,
    fail_open: bool,
}

impl<'a> WebColumns<'a> {
    fn new(web: &'a WebSettings) -> Self {
        Self {
            origins: web.allowed_origins.iter().map(Origin::as_str).collect(),
            thank_you_url: web.thank_you_url.as_ref().map(PageUrl::as_str),
            error_url: web.error_url.as_ref().map(PageUrl::as_str),
            captcha: web.captcha.as_str(),
            fail_open: web.captcha_fail_open,
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 5] {
        [
            &self.origins,
            &self.thank_you_url,
            &self.error_url,
            &self.captcha,
            &self.fail_open,
        ]
    }
}

impl Store {
    /// Creates an open petition; [`StoreError::Conflict`] when the slug is taken.
    pub async fn create_petition(&self, p: &NewPetition) -> Result<Petition, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO petitions (slug, title, body, goal, locale, allowed_origins,
                                            thank_you_url, error_url, captcha, captcha_fail_open,
                                            opens_at, closes_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                     RETURNING {COLUMNS}"
                ),
                &[
                    &[
                        &p.slug.as_str() as &(dyn ToSql + Sync),
                        &p.title.as_str(),
                        &p.text.as_str(),
                        &p.goal,
                        &p.locale.as_str(),
                    ][..],
                    &WebColumns::new(&p.web).params(),
                    &[&p.window.opens_at, &p.window.closes_at],
                ]
                .concat(),
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

    /// Changes a petition under a row lock, so concurrent changes never undo
    /// each other: `change` sees the petition as it is and returns it as it
    /// should be (or the reason it cannot), and the audit trail records it in
    /// the same transaction. `None` when there is no such petition.
    pub async fn update_petition<E: From<StoreError>>(
        &self,
        slug: &str,
        audit: AuditEntry,
        change: impl FnOnce(&Petition) -> Result<PetitionUpdate, E>,
    ) -> Result<Option<Petition>, E> {
        let mut client = self.pool.get().await.map_err(StoreError::from)?;
        let tx = client.transaction().await.map_err(StoreError::from)?;
        let Some(row) = tx
            .query_opt(
                &format!("SELECT {COLUMNS} FROM petitions WHERE slug = $1 FOR UPDATE"),
                &[&slug],
            )
            .await
            .map_err(StoreError::from)?
        else {
            return Ok(None);
        };
        let current = Petition::try_from(row)?;
        let u = change(&current)?;
        let row = tx
            .query_one(
                &format!(
                    "UPDATE petitions SET title = $2, body = $3, goal = $4, status = $5,
                            allowed_origins = $6, thank_you_url = $7, error_url = $8,
                            captcha = $9, captcha_fail_open = $10, opens_at = $11,
                            closes_at = $12, updated_at = now()
                     WHERE id = $1 RETURNING {COLUMNS}"
                ),
                &[
                    &[
                        &current.id as &(dyn ToSql + Sync),
                        &u.title,
                        &u.text,
                        &u.goal,
                        &u.status.as_str(),
                    ][..],
                    &WebColumns::new(&u.web).params(),
                    &[&u.window.opens_at, &u.window.closes_at],
                ]
                .concat(),
            )
            .await
            .map_err(StoreError::from)?;
        let updated = Petition::try_from(row)?;
        crate::audit::record(&tx, &audit.about(updated.id)).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Some(updated))
    }
}
