//! Creating the database and applying `migrations/*.sql`.

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use tracing::{info, warn};

use crate::StoreError;
use crate::tls::Connection;

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Any constant works as long as every instance uses the same one.
const MIGRATION_LOCK: i64 = 0x756e_6465_7273_6967; // "undersig"

async fn connect(to: &Connection) -> Result<Client, StoreError> {
    let (client, connection) = to.config.connect(to.tls.clone()).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            warn!(error = %e, "maintenance connection ended");
        }
    });
    Ok(client)
}

/// Creates the database named in the URL when it does not exist yet. Two
/// instances racing here are fine: the loser's "already exists" is ignored.
pub async fn ensure_database(database_url: &str) -> Result<(), StoreError> {
    let database = Connection::parse(database_url)?;
    let name = database
        .config
        .get_dbname()
        .or(database.config.get_user())
        .ok_or_else(|| StoreError::Config("DATABASE_URL names no database".into()))?
        .to_owned();
    let client = connect(&database.on_database("postgres")).await?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if exists {
        return Ok(());
    }
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match client
        .batch_execute(&format!("CREATE DATABASE {quoted}"))
        .await
    {
        Ok(()) => {
            info!(database = %name, "created database");
            Ok(())
        }
        Err(e)
            if e.code() == Some(&SqlState::DUPLICATE_DATABASE)
                || e.code() == Some(&SqlState::UNIQUE_VIOLATION) =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Applies pending migrations under a Postgres advisory lock, so instances
/// starting together take turns instead of racing.
pub async fn migrate(database_url: &str) -> Result<(), StoreError> {
    let mut client = connect(&Connection::parse(database_url)?).await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let report = embedded::migrations::runner().run_async(&mut client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    for m in report?.applied_migrations() {
        info!(version = m.version(), name = m.name(), "applied migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::embedded;

    /// Fails when the build embedded another set of migrations than the
    /// folder holds: a file added without the crate being rebuilt.
    #[test]
    fn the_embedded_migrations_are_the_files_in_the_migrations_folder() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
        let mut files: Vec<(i64, String)> = std::fs::read_dir(&folder)
            .expect("the migrations folder")
            .map(|entry| {
                entry
                    .expect("an entry")
                    .file_name()
                    .into_string()
                    .expect("UTF-8")
            })
            .filter_map(|name| {
                let stem = name.strip_suffix(".sql")?.strip_prefix('V')?;
                let (version, name) = stem.split_once("__")?;
                Some((version.parse().expect("a version number"), name.to_owned()))
            })
            .collect();
        files.sort();
        let mut embedded: Vec<(i64, String)> = embedded::migrations::runner()
            .get_migrations()
            .iter()
            .map(|m| (i64::from(m.version()), m.name().to_owned()))
            .collect();
        embedded.sort();
        assert!(!files.is_empty());
        assert_eq!(embedded, files);
    }
}
