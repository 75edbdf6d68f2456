//! Petitions by slug, cached briefly so signing and counter reads skip Postgres.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use undersigned_domain::Slug;
use undersigned_store::{Petition, Store, StoreError};

/// How long a petition (or its absence) is believed without asking Postgres.
const TTL: Duration = Duration::from_secs(2);
/// Unknown slugs are cached too; past this many entries the cache starts over.
const MAX_ENTRIES: usize = 10_000;

/// When an entry was read, and what was found.
type Entry = (Instant, Option<Arc<Petition>>);

pub struct Catalog {
    store: Store,
    cache: RwLock<HashMap<String, Entry>>,
}

impl Catalog {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The petition with this slug, `None` when there is none.
    pub async fn by_slug(&self, slug: &str) -> Result<Option<Arc<Petition>>, StoreError> {
        if Slug::parse(slug)
            .map(|s| s.as_str() != slug)
            .unwrap_or(true)
        {
            return Ok(None);
        }
        if let Some((at, petition)) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(slug)
            && at.elapsed() < TTL
        {
            return Ok(petition.clone());
        }
        let petition = self.store.petition_by_slug(slug).await?.map(Arc::new);
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(slug.to_owned(), (Instant::now(), petition.clone()));
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
