//! Petitions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql};
use undersigned_domain::{
    CaptchaPolicy, MailText, NewPetition, Origin, PageUrl, PetitionStatus, SignerField,
    SignerRules, Target, Verification, WebSettings, Window, Wording, Wordings,
};

use crate::audit::AuditEntry;
use crate::error::conflict_on_unique;
use crate::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct Petition {
    pub id: i64,
    pub slug: String,
    pub wordings: Wordings,
    pub goal: i64,
    pub status: PetitionStatus,
    pub window: Window,
    pub targets: Vec<Target>,
    pub signers: SignerRules,
    pub web: WebSettings,
    /// The `age` recipients its signers' personal fields are sealed to
    /// (crates/seal); empty: kept in clear.
    pub sealing: Vec<String>,
    /// Days its signers' personal fields are kept after it closes; `None`:
    /// as long as the petition.
    pub retention_days: Option<i32>,
    /// When its status last became `closed` (none while it is not).
    pub closed_at: Option<DateTime<Utc>>,
    /// When the retention sweeper erased its signers' personal fields.
    pub personal_data_erased_at: Option<DateTime<Utc>>,
    /// Counts announced to webhooks once each when reached, ascending.
    pub milestones: Vec<i64>,
    pub created_at: DateTime<Utc>,
}

impl Petition {
    /// The locale and title a signer reads it in: theirs when the petition
    /// speaks it (`fr-CA` finds `fr`), else the petition's default.
    pub fn title_for(&self, locale: Option<&str>) -> (&str, &str) {
        let (locale, wording) = locale
            .and_then(|l| undersigned_domain::Locale::parse(l).ok())
            .and_then(|l| self.wordings.find(&l))
            .unwrap_or((&self.wordings.locale, &self.wordings.default));
        (locale, &wording.title)
    }

    /// When it stopped taking signatures, if it has or is due to: closed, or
    /// at its closing time, whichever comes first.
    pub fn ends_at(&self) -> Option<DateTime<Utc>> {
        match (self.closed_at, self.window.closes_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When its signers' personal fields are due to be erased, once known.
    pub fn erasure_due_at(&self) -> Option<DateTime<Utc>> {
        let days = chrono::Duration::days(i64::from(self.retention_days?));
        Some(self.ends_at()? + days)
    }
}

/// What an organizer may change in a petition (all but its slug and default
/// locale); every field is written.
#[derive(Debug, Clone)]
pub struct PetitionUpdate {
    pub wordings: Wordings,
    pub goal: i64,
    pub status: PetitionStatus,
    pub window: Window,
    pub targets: Vec<Target>,
    pub signers: SignerRules,
    pub web: WebSettings,
    pub sealing: Vec<String>,
    pub retention_days: Option<i32>,
    pub milestones: Vec<i64>,
}

/// A new petition's columns are written as a change's are.
impl From<&NewPetition> for PetitionUpdate {
    fn from(p: &NewPetition) -> Self {
        Self {
            wordings: p.wordings.clone(),
            goal: p.goal,
            status: p.status,
            window: p.window,
            targets: p.targets.clone(),
            signers: p.signers.clone(),
            web: p.web.clone(),
            sealing: p.sealing.clone(),
            retention_days: p.retention_days,
            milestones: p.milestones.clone(),
        }
    }
}

impl From<&Petition> for PetitionUpdate {
    fn from(p: &Petition) -> Self {
        Self {
            wordings: p.wordings.clone(),
            goal: p.goal,
            status: p.status,
            window: p.window,
            targets: p.targets.clone(),
            signers: p.signers.clone(),
            web: p.web.clone(),
            sealing: p.sealing.clone(),
            retention_days: p.retention_days,
            milestones: p.milestones.clone(),
        }
    }
}

const COLUMNS: &str = "id, slug, title, body, ask, locale, translations, goal, status, created_at, \
                       allowed_origins, thank_you_url, error_url, captcha, captcha_fail_open, \
                       opens_at, closes_at, targets, required_fields, organizations_may_sign, \
                       email_optional_offline, verification, confirmed_url, \
                       confirmation_texts, sealing_recipients, retention_days, closed_at, \
                       personal_data_erased_at, milestones";

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
        let Json(translations) = row.try_get("translations")?;
        let Json(targets) = row.try_get("targets")?;
        let required: Vec<&str> = row.try_get("required_fields")?;
        Ok(Self {
            id: row.try_get("id")?,
            slug: row.try_get("slug")?,
            wordings: Wordings {
                locale: row.try_get("locale")?,
                default: Wording {
                    title: row.try_get("title")?,
                    text: row.try_get("body")?,
                    ask: row.try_get("ask")?,
                },
                translations,
            },
            goal: row.try_get("goal")?,
            status: PetitionStatus::parse(status).ok_or_else(|| corrupt("an unknown status"))?,
            window: Window {
                opens_at: row.try_get("opens_at")?,
                closes_at: row.try_get("closes_at")?,
            },
            targets,
            signers: SignerRules {
                required: required
                    .iter()
                    .map(|f| {
                        SignerField::parse(f).ok_or_else(|| corrupt("an unknown required field"))
                    })
                    .collect::<Result<_, _>>()?,
                organizations_may_sign: row.try_get("organizations_may_sign")?,
                email_optional_offline: row.try_get("email_optional_offline")?,
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
                verification: Verification::parse(row.try_get("verification")?)
                    .map_err(|_| corrupt("an unknown verification"))?,
                confirmed_url: page("confirmed_url")?,
                confirmation_texts: {
                    let Json(texts) = row.try_get("confirmation_texts")?;
                    texts
                },
            },
            sealing: row.try_get("sealing_recipients")?,
            retention_days: row.try_get("retention_days")?,
            closed_at: row.try_get("closed_at")?,
            personal_data_erased_at: row.try_get("personal_data_erased_at")?,
            milestones: row.try_get("milestones")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// The web settings as the columns they are stored in, in `ASSIGNED` order.
struct WebColumns<'a> {
    origins: Vec<&'a str>,
    thank_you_url: Option<&'a str>,
    error_url: Option<&'a str>,
    captcha: &'static str,
    fail_open: bool,
    verification: &'static str,
    confirmed_url: Option<&'a str>,
    confirmation_texts: Json<&'a BTreeMap<String, MailText>>,
}

impl<'a> WebColumns<'a> {
    fn new(web: &'a WebSettings) -> Self {
        Self {
            origins: web.allowed_origins.iter().map(Origin::as_str).collect(),
            thank_you_url: web.thank_you_url.as_ref().map(PageUrl::as_str),
            error_url: web.error_url.as_ref().map(PageUrl::as_str),
            captcha: web.captcha.as_str(),
            fail_open: web.captcha_fail_open,
            verification: web.verification.as_str(),
            confirmed_url: web.confirmed_url.as_ref().map(PageUrl::as_str),
            confirmation_texts: Json(&web.confirmation_texts),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 8] {
        [
            &self.origins,
            &self.thank_you_url,
            &self.error_url,
            &self.captcha,
            &self.fail_open,
            &self.verification,
            &self.confirmed_url,
            &self.confirmation_texts,
        ]
    }
}

/// The columns written alike on creation and change, beyond the web settings.
struct PetitionColumns<'a> {
    title: &'a str,
    body: &'a str,
    ask: Option<&'a str>,
    translations: Json<&'a BTreeMap<String, Wording>>,
    goal: i64,
    status: &'static str,
    window: Window,
    targets: Json<&'a [Target]>,
    required: Vec<&'static str>,
    organizations_may_sign: bool,
    email_optional_offline: bool,
    sealing: &'a [String],
    retention_days: Option<i32>,
    milestones: &'a [i64],
}

impl<'a> PetitionColumns<'a> {
    fn new(p: &'a PetitionUpdate) -> Self {
        let (wordings, signers) = (&p.wordings, &p.signers);
        Self {
            title: &wordings.default.title,
            body: &wordings.default.text,
            ask: wordings.default.ask.as_deref(),
            translations: Json(&wordings.translations),
            goal: p.goal,
            status: p.status.as_str(),
            window: p.window,
            targets: Json(&p.targets),
            required: signers.required.iter().map(|f| f.as_str()).collect(),
            organizations_may_sign: signers.organizations_may_sign,
            email_optional_offline: signers.email_optional_offline,
            sealing: &p.sealing,
            retention_days: p.retention_days,
            milestones: &p.milestones,
        }
    }

    /// In the order of `ASSIGNED`.
    fn params(&self) -> [&(dyn ToSql + Sync); 15] {
        [
            &self.title,
            &self.body,
            &self.ask,
            &self.translations,
            &self.goal,
            &self.status,
            &self.window.opens_at,
            &self.window.closes_at,
            &self.targets,
            &self.required,
            &self.organizations_may_sign,
            &self.email_optional_offline,
            &self.sealing,
            &self.retention_days,
            &self.milestones,
        ]
    }
}

/// The columns of [`PetitionColumns::params`] then [`WebColumns::params`].
const ASSIGNED: [&str; 23] = [
    "title",
    "body",
    "ask",
    "translations",
    "goal",
    "status",
    "opens_at",
    "closes_at",
    "targets",
    "required_fields",
    "organizations_may_sign",
    "email_optional_offline",
    "sealing_recipients",
    "retention_days",
    "milestones",
    "allowed_origins",
    "thank_you_url",
    "error_url",
    "captcha",
    "captcha_fail_open",
    "verification",
    "confirmed_url",
    "confirmation_texts",
];

impl Store {
    /// Creates a petition; [`StoreError::Conflict`] when the slug is taken.
    /// The audit entry is written in the same transaction.
    pub async fn create_petition(
        &self,
        p: &NewPetition,
        audit: AuditEntry,
    ) -> Result<Petition, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let update = PetitionUpdate::from(p);
        let columns = PetitionColumns::new(&update);
        let placeholders: Vec<String> = (3..ASSIGNED.len() + 3).map(|i| format!("${i}")).collect();
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO petitions (slug, locale, {})
                     VALUES ($1, $2, {}) RETURNING {COLUMNS}",
                    ASSIGNED.join(", "),
                    placeholders.join(", ")
                ),
                &[
                    &[&p.slug.as_str() as &(dyn ToSql + Sync), &p.wordings.locale][..],
                    &columns.params(),
                    &WebColumns::new(&p.web).params(),
                ]
                .concat(),
            )
            .await
            .map_err(conflict_on_unique)?;
        let created = Petition::try_from(row)?;
        crate::audit::record(&tx, &audit.about(created.id)).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Every petition, oldest first: for the operators' listing.
    pub async fn petitions(&self) -> Result<Vec<Petition>, StoreError> {
        let client = self.pool.get().await?;
        client
            .query(
                &format!("SELECT {COLUMNS} FROM petitions ORDER BY created_at, id"),
                &[],
            )
            .await?
            .into_iter()
            .map(Petition::try_from)
            .collect()
    }

    /// A page of the petitions a caller sees (`only`: these ids; `None`:
    /// every one), oldest first, starting after the one named `after`:
    /// (id, slug, title in the default locale, status, goal).
    pub async fn petition_page(
        &self,
        only: Option<&[i64]>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(i64, String, String, String, i64)>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "SELECT id, slug, title, status, goal FROM petitions
                 WHERE ($1::bigint[] IS NULL OR id = ANY($1))
                   AND ($2::text IS NULL OR (created_at, id) >
                        (SELECT created_at, id FROM petitions WHERE slug = $2))
                 ORDER BY created_at, id
                 LIMIT $3",
            )
            .await?;
        client
            .query(&stmt, &[&only, &after, &limit])
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                ))
            })
            .collect()
    }

    /// Every published petition's id and slug, for naming them in metrics
    /// (a draft's slug may name a campaign not yet announced).
    pub async fn petition_slugs(&self) -> Result<Vec<(i64, String)>, StoreError> {
        let client = self.pool.get().await?;
        client
            .query(
                "SELECT id, slug FROM petitions WHERE status <> 'draft' ORDER BY id",
                &[],
            )
            .await?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    pub async fn petition_by_slug(&self, slug: &str) -> Result<Option<Petition>, StoreError> {
        self.petition_where("slug = $1", &slug).await
    }

    pub async fn petition_by_id(&self, id: i64) -> Result<Option<Petition>, StoreError> {
        self.petition_where("id = $1", &id).await
    }

    async fn petition_where(
        &self,
        condition: &str,
        value: &(dyn ToSql + Sync),
    ) -> Result<Option<Petition>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM petitions WHERE {condition}"
            ))
            .await?;
        client
            .query_opt(&stmt, &[value])
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
        let columns = PetitionColumns::new(&u);
        let assignments: Vec<String> = ASSIGNED
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}", i + 2))
            .collect();
        let row = tx
            .query_one(
                &format!(
                    "UPDATE petitions SET {}, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}",
                    assignments.join(", ")
                ),
                &[
                    &[&current.id as &(dyn ToSql + Sync)][..],
                    &columns.params(),
                    &WebColumns::new(&u.web).params(),
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
