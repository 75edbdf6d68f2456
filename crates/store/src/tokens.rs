//! API tokens: random, shown once, stored as their SHA-256.

use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

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

/// A token that authenticated: who is calling, never the secret itself.
#[derive(Debug, Clone)]
pub struct Token {
    pub id: Uuid,
    pub role: Role,
}

/// Tokens carry 256 random bits, so a plain SHA-256 is enough to store them:
/// a slow password hash protects guessable secrets, and these are not guessable.
fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

impl Store {
    /// Issues a token and returns it in clear, the only time it exists so.
    pub async fn create_token(&self, role: Role) -> Result<(Token, String), StoreError> {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let token = format!("us_{}", hex::encode(secret));
        let id = Uuid::now_v7();
        self.pool
            .get()
            .await?
            .execute(
                "INSERT INTO api_tokens (id, role, token_hash) VALUES ($1, $2, $3)",
                &[&id, &role.as_str(), &token_hash(&token)],
            )
            .await?;
        Ok((Token { id, role }, token))
    }

    /// The token's identity when it exists, is not revoked and has not expired.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Token>, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE api_tokens SET last_used_at = now()
                 WHERE token_hash = $1 AND revoked_at IS NULL
                   AND (expires_at IS NULL OR expires_at > now())
                 RETURNING id, role",
            )
            .await?;
        let Some(row) = client.query_opt(&stmt, &[&token_hash(token)]).await? else {
            return Ok(None);
        };
        let role: &str = row.try_get("role")?;
        Ok(Role::parse(role).map(|role| Token {
            id: row.get("id"),
            role,
        }))
    }
}
