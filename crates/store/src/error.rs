use thiserror::Error;
use tokio_postgres::error::SqlState;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("postgres: {}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("connection pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("migration: {0}")]
    Migration(#[from] refinery::Error),
    #[error("configuration: {0}")]
    Config(String),
    /// A unique value (a slug, say) is already taken.
    #[error("already exists")]
    Conflict,
    /// Too much at once, or a task that would do it gone: try again later.
    #[error("unavailable: {0}")]
    Unavailable(&'static str),
    /// What one read, shared by several callers, met.
    #[error(transparent)]
    Shared(std::sync::Arc<StoreError>),
}

impl StoreError {
    /// The SQLSTATE Postgres answered with, if it answered.
    fn sql_state(&self) -> Option<&SqlState> {
        match self {
            Self::Postgres(e) => e.code(),
            Self::Shared(e) => e.sql_state(),
            _ => None,
        }
    }

    /// A unique constraint refused a row.
    pub fn is_unique_violation(&self) -> bool {
        self.sql_state() == Some(&SqlState::UNIQUE_VIOLATION)
    }

    /// Whether Postgres broke a deadlock by failing this transaction.
    pub fn is_deadlock(&self) -> bool {
        self.sql_state() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
    }

    /// Whether retrying the same transaction may succeed (deadlock, serialization).
    pub fn is_transient(&self) -> bool {
        self.is_deadlock() || self.sql_state() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
    }
}

/// How long one read that a client waits on may take (a petition by its
/// slug, a token, an event, which receipts are stored): a Postgres that
/// neither answers nor refuses would otherwise hold the client until it is
/// back. Past this, the read fails as if Postgres had refused it.
pub const READ_DEADLINE: std::time::Duration = std::time::Duration::from_secs(1);

/// `work`, given up after `limit`: a Postgres that neither answers nor
/// refuses (stopped, behind a dead link) is then [`StoreError::Unavailable`]
/// as one that refuses is, instead of holding its caller until it is back.
pub async fn within<T>(
    limit: std::time::Duration,
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or(Err(StoreError::Unavailable(
            "postgres did not answer in time",
        )))
}

/// Maps a unique violation to [`StoreError::Conflict`].
pub(crate) fn conflict_on_unique(e: tokio_postgres::Error) -> StoreError {
    let e = StoreError::from(e);
    if e.is_unique_violation() {
        StoreError::Conflict
    } else {
        e
    }
}

/// tokio-postgres says only "db error"; the server's own message is in the source.
fn describe(e: &tokio_postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => format!("{} ({})", db.message(), db.code().code()),
        (None, Some(source)) => format!("{e}: {source}"),
        (None, None) => e.to_string(),
    }
}
