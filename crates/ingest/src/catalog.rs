//! Petitions by slug, cached briefly so signing and counter reads skip Postgres.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tracing::warn;
use undersigned_domain::Slug;
use undersigned_store::{Petition, Store, StoreError};

/// How long a petition (or its absence) is believed without asking Postgres.
const TTL: Duration = Duration::from_secs(2);
/// How long a petition read earlier is still answered while one caller reads
/// it again, or when reading it fails.
const STALE_FOR: Duration = Duration::from_secs(30);
/// Unknown slugs are cached too; past this many entries the cache starts over.
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    /// When the entry was last read, or a caller set out to read it again.
    checked: Instant,
    /// When Postgres last answered for it.
    read: Instant,
    petition: Option<Arc<Petition>>,
}

pub struct Catalog {
    store: Store,
    cache: RwLock<HashMap<String, Entry>>,
    ttl: Duration,
    stale_for: Duration,
}

impl Catalog {
    pub fn new(store: Store) -> Self {
        Self::with_times(store, TTL, STALE_FOR)
    }

    fn with_times(store: Store, ttl: Duration, stale_for: Duration) -> Self {
        Self {
            store,
            cache: RwLock::new(HashMap::new()),
            ttl,
            stale_for,
        }
    }

    /// The petition with this slug, `None` when there is none.
    ///
    /// Once an entry is older than the TTL, the first caller reads it again
    /// and the others, meanwhile, get it as it was: at 50,000 requests a
    /// second, every caller reading it for itself queued hundreds of reads
    /// for the pool every two seconds. When the read fails, the entry is still
    /// answered until it is `STALE_FOR` old.
    pub async fn by_slug(&self, slug: &str) -> Result<Option<Arc<Petition>>, StoreError> {
        if Slug::parse(slug)
            .map(|s| s.as_str() != slug)
            .unwrap_or(true)
        {
            return Ok(None);
        }
        let now = Instant::now();
        if let Some(entry) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(slug)
            && now.saturating_duration_since(entry.checked) < self.ttl
        {
            return Ok(entry.petition.clone());
        }
        let stale = {
            let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
            match cache.get_mut(slug) {
                // Another caller is reading it again, or just did.
                Some(entry) if now.saturating_duration_since(entry.checked) < self.ttl => {
                    return Ok(entry.petition.clone());
                }
                Some(entry) if now.saturating_duration_since(entry.read) < self.stale_for => {
                    entry.checked = now;
                    Some(entry.petition.clone())
                }
                _ => None,
            }
        };
        let petition = match self.store.petition_by_slug(slug).await {
            Ok(petition) => petition.map(Arc::new),
            Err(e) => {
                return match stale {
                    Some(petition) => {
                        warn!(error = %e, "reading a petition failed; answering the one read earlier");
                        Ok(petition)
                    }
                    None => Err(e),
                };
            }
        };
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        let read = Instant::now();
        cache.insert(
            slug.to_owned(),
            Entry {
                checked: read,
                read,
                petition: petition.clone(),
            },
        );
        Ok(petition)
    }

    /// Forgets a slug after its petition changed here.
    pub fn forget(&self, slug: &str) {
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(slug);
    }
}

#[cfg(test)]
mod tests {
    use tokio_postgres::NoTls;
    use undersigned_domain::{NewPetition, NewPetitionInput, WordingInput};
    use undersigned_store::{Actor, AuditEntry};

    use super::*;

    const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

    /// Once read, a petition goes on being answered for `STALE_FOR` while
    /// Postgres cannot be reached, and no longer.
    #[tokio::test]
    async fn a_petition_read_earlier_is_answered_while_postgres_is_gone() {
        let name = format!("us_test_{}", uuid::Uuid::new_v4().simple());
        let store = Store::open(&format!("{POSTGRES}/{name}"), 2).await.unwrap();
        let petition = NewPetition::parse(NewPetitionInput {
            slug: Some("catalog".into()),
            wording: WordingInput {
                title: Some("Catalog".into()),
                text: Some("Text".into()),
                ask: None,
            },
            goal: Some(10),
            ..Default::default()
        })
        .unwrap();
        let audit = AuditEntry::new(&Actor::default(), "petition.create", Default::default());
        let id = store.create_petition(&petition, audit).await.unwrap().id;
        let catalog =
            Catalog::with_times(store, Duration::from_millis(50), Duration::from_millis(800));
        let read = catalog.by_slug("catalog").await.unwrap().unwrap();
        assert_eq!(read.id, id);

        let (admin, connection) = tokio_postgres::connect(&format!("{POSTGRES}/postgres"), NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        admin
            .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Past the TTL: every caller, the one reading it again included, gets it.
        let answers =
            futures_util::future::join_all((0..20).map(|_| catalog.by_slug("catalog"))).await;
        for answer in answers {
            assert_eq!(answer.unwrap().unwrap().id, id);
        }
        // Past STALE_FOR the failure shows.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(catalog.by_slug("catalog").await.is_err());
    }
}
