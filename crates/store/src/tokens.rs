//! API tokens: random, shown once, stored as their SHA-256.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::audit::{AuditEntry, record};
use crate::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Organizer,
    Coordinator,
    Device,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Organizer => "organizer",
            Self::Coordinator => "coordinator",
            Self::Device => "device",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "organizer" => Some(Self::Organizer),
            "coordinator" => Some(Self::Coordinator),
            "device" => Some(Self::Device),
            _ => None,
        }
    }
}

/// A token that authenticated: who is calling and what it may touch, never the
/// secret itself.
#[derive(Debug, Clone)]
pub struct Token {
    pub id: Uuid,
    pub role: Role,
    /// Petitions an organizer, coordinator or device token is limited to.
    pub petition_ids: Vec<i64>,
    /// Countries (ISO codes) a coordinator's token is limited to.
    pub countries: Vec<String>,
    /// The event an enrolled device belongs to.
    pub event_id: Option<Uuid>,
}

/// What a new token may do.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub role: Role,
    pub petition_ids: Vec<i64>,
    pub countries: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewToken {
    pub fn admin() -> Self {
        Self {
            role: Role::Admin,
            petition_ids: Vec::new(),
            countries: Vec::new(),
            expires_at: None,
        }
    }
}

/// A token as listed to admins: everything but the secret.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub token: Token,
    /// The slugs of `token.petition_ids`.
    pub petitions: Vec<String>,
    /// An enrolled tablet's label.
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Tokens carry 256 random bits, so a plain SHA-256 is enough to store them:
/// a slow password hash protects guessable secrets, and these are not guessable.
fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn token_from(row: &Row) -> Result<Token, StoreError> {
    let role: &str = row.try_get("role")?;
    Ok(Token {
        id: row.try_get("id")?,
        role: Role::parse(role)
            .ok_or_else(|| StoreError::Config(format!("stored token role {role}")))?,
        petition_ids: row.try_get("petition_ids")?,
        countries: row.try_get("countries")?,
        event_id: row.try_get("event_id")?,
    })
}

/// A new token's secret, in clear, and what is stored of it.
fn new_secret() -> (String, Vec<u8>) {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = format!("us_{}", hex::encode(secret));
    let hash = token_hash(&token);
    (token, hash)
}

/// Inserts a token in `tx`; a device enrolled for an event (`device`: the
/// event and the tablet's label) is bound to it.
pub(crate) async fn insert_token(
    tx: &tokio_postgres::Transaction<'_>,
    new: &NewToken,
    device: Option<(Uuid, &str)>,
) -> Result<(Token, String), StoreError> {
    let (token, hash) = new_secret();
    let id = Uuid::now_v7();
    let (event_id, label) = device.unzip();
    tx.execute(
        "INSERT INTO api_tokens (id, role, token_hash, petition_ids, countries, expires_at,
                                 event_id, label)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &id,
            &new.role.as_str(),
            &hash,
            &new.petition_ids,
            &new.countries,
            &new.expires_at,
            &event_id,
            &label,
        ],
    )
    .await?;
    Ok((
        Token {
            id,
            role: new.role,
            petition_ids: new.petition_ids.clone(),
            countries: new.countries.clone(),
            event_id,
        },
        token,
    ))
}

impl Store {
    /// Issues a token and returns it in clear, the only time it exists so.
    /// `audit` (when given) is recorded in the same transaction.
    pub async fn create_token(
        &self,
        new: &NewToken,
        audit: Option<AuditEntry>,
    ) -> Result<(Token, String), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let (token, secret) = insert_token(&tx, new, None).await?;
        if let Some(mut entry) = audit {
            if let Some(detail) = entry.detail.as_object_mut() {
                detail.insert("token".into(), token.id.to_string().into());
            }
            record(&tx, &entry).await?;
        }
        tx.commit().await?;
        Ok((token, secret))
    }

    /// The token's identity when it exists, is not revoked and has not expired.
    /// Read on every request, so a revocation holds at once on every instance.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Token>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE api_tokens SET last_used_at = now()
                 WHERE token_hash = $1 AND revoked_at IS NULL
                   AND (expires_at IS NULL OR expires_at > now())
                 RETURNING id, role, petition_ids, countries, event_id",
            )
            .await?;
        client
            .query_opt(&stmt, &[&token_hash(token)])
            .await?
            .map(|row| token_from(&row))
            .transpose()
    }

    /// Every token, newest first, revoked ones included.
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = self
            .pool
            .get()
            .await?
            .query(
                "SELECT t.id, t.role, t.petition_ids, t.countries, t.event_id, t.label, t.created_at,
                        t.expires_at,
                        t.revoked_at, t.last_used_at,
                        ARRAY(SELECT p.slug FROM petitions p
                              WHERE p.id = ANY(t.petition_ids) ORDER BY p.slug) AS slugs
                 FROM api_tokens t ORDER BY t.created_at DESC",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(TokenRecord {
                    token: token_from(row)?,
                    petitions: row.try_get("slugs")?,
                    label: row.try_get("label")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                    last_used_at: row.try_get("last_used_at")?,
                })
            })
            .collect()
    }

    /// Revokes a token at once; `false` when there is no live token with that id.
    pub async fn revoke_token(&self, id: Uuid, audit: AuditEntry) -> Result<bool, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let revoked = tx
            .execute(
                "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
                &[&id],
            )
            .await?;
        if revoked == 0 {
            return Ok(false);
        }
        record(&tx, &audit).await?;
        tx.commit().await?;
        Ok(true)
    }
}
