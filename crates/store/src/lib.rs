//! PostgreSQL, the system of record.
//!
//! `Store` owns the connection pool; each module is one table's worth of queries.

mod audit;
mod blocks;
mod confirmations;
mod counts;
mod database;
mod erasure;
mod error;
mod events;
mod exports;
mod history;
mod invalidations;
mod outbox;
mod petitions;
mod retention;
mod sealing;
mod settings;
mod signals;
mod signatures;
mod tls;
mod tokens;
mod webhooks;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use crate::tls::Connection;

pub use audit::{Actor, AuditEntry, AuditFilter, AuditRecord};
pub use blocks::{BlockAction, BlockKind, BlockRule, NewBlockRule};
pub use confirmations::{Confirmed, ConfirmedGroup, PendingSignature, PendingState, Resend};
pub use counts::{ADJUSTMENT_SHARD, CountCell, EventCell};
pub use database::{ensure_database, migrate};
pub use erasure::{Erased, LinkState, MAIL_PER_DAY, Withdrawable, WithdrawalLink};
pub use error::{READ_DEADLINE, StoreError, within};
pub use events::{
    DEVICE_GRACE, Device, ENROLLMENT_CODE_LIFETIME, Enrollment, Event, EventInput, NewEvent,
    code_hash,
};
pub use exports::{ExportFilter, ExportMessage, ExportRow, ExportStatus, ReadFrom};
pub use history::{History, HistoryPoint, Interval, Tally};
pub use invalidations::{Chunk, Criteria, Invalidation, InvalidationState};
pub use outbox::{Content, DueConfirmation, NewLink, OutgoingMail, QueuedMail};
pub use petitions::{Petition, PetitionUpdate};
pub use sealing::SealEpoch;
pub use signals::{PetitionSignals, Signal, Signals};
pub use signatures::{
    BatchOutcome, Confirmation, Retry, RowOutcome, SignatureFilter, SignatureRecord, SignatureRow,
    SignatureWriter,
};
pub use tls::TlsMode;
pub use tokens::{NewToken, Role, Token, TokenRecord};
pub use webhooks::{
    Attempt, Cursor, DeliveryRecord, Due, Fresh, NewWebhook, Person, SignatureFacts,
    WEBHOOK_EVENTS, Webhook, WebhookTarget,
};

/// The shared pool of connections to the service's database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    tls: TlsMode,
    /// A streaming replica of the database that exports read, when set.
    replica: Option<Pool>,
}

impl Store {
    /// Creates the database if missing, applies migrations, then opens a pool.
    pub async fn open(database_url: &str, pool_size: usize) -> Result<Self, StoreError> {
        ensure_database(database_url).await?;
        migrate(database_url).await?;
        Self::connect(database_url, pool_size)
    }

    /// A pool on an existing, migrated database; connections open lazily.
    pub fn connect(database_url: &str, pool_size: usize) -> Result<Self, StoreError> {
        let (pool, tls) = pool(database_url, pool_size)?;
        Ok(Self {
            pool,
            tls,
            replica: None,
        })
    }

    /// Exports then read this streaming replica of the database (a hot
    /// standby), once it has replayed what the primary had written when each
    /// was asked for; `pool_size` connections at most, opened lazily.
    pub fn with_replica(mut self, replica_url: &str, pool_size: usize) -> Result<Self, StoreError> {
        self.replica = Some(pool(replica_url, pool_size)?.0);
        Ok(self)
    }

    /// How its connections are protected (the URL's `sslmode`, or its default).
    pub fn tls(&self) -> TlsMode {
        self.tls
    }

    /// Round trip to Postgres, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.pool.get().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// A writer of signature batches holding its own connection.
    pub fn signature_writer(&self, shard: i16) -> SignatureWriter {
        SignatureWriter::new(self.pool.clone(), shard)
    }
}

/// A pool of connections to `database_url`, opened lazily, and how they are protected.
fn pool(database_url: &str, pool_size: usize) -> Result<(Pool, TlsMode), StoreError> {
    let Connection { config, tls, mode } = Connection::parse(database_url)?;
    let manager = Manager::from_config(
        config,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| StoreError::Config(e.to_string()))?;
    Ok((pool, mode))
}
