//! Petitions by slug, cached briefly so signing and counter reads skip Postgres.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;
use tracing::warn;
use undersigned_domain::Slug;
use undersigned_store::{Petition, READ_DEADLINE, Store, StoreError};

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

/// One read of a slug that nothing can be answered for meanwhile, shared by
/// every caller asking before it is done. If the caller reading it goes away
/// (its client hung up), the next one waiting takes the read over.
type Load = OnceCell<Result<Option<Arc<Petition>>, Arc<StoreError>>>;

pub struct Catalog {
    store: Store,
    cache: RwLock<HashMap<String, Entry>>,
    loading: Mutex<HashMap<String, Arc<Load>>>,
    /// How many times a slug was forgotten: a read that began before the last
    /// `forget` may hold the petition as it was, and is not cached.
    forgotten: AtomicU64,
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
            loading: Mutex::new(HashMap::new()),
            forgotten: AtomicU64::new(0),
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
    /// answered until it is `STALE_FOR` old. A slug with no entry (a cold
    /// start, an eviction) is read once for all its callers.
    pub async fn by_slug(&self, slug: &str) -> Result<Option<Arc<Petition>>, StoreError> {
        if !Slug::is_valid(slug) {
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
        // On the heap: the read's future is kilobytes (a Postgres query's),
        // which every caller's future would otherwise hold and move on every
        // request, though nearly all are answered from the cache above.
        Box::pin(self.refresh(slug, now)).await
    }

    /// [`Catalog::by_slug`] for a slug whose entry is missing or old.
    async fn refresh(&self, slug: &str, now: Instant) -> Result<Option<Arc<Petition>>, StoreError> {
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
        let Some(stale) = stale else {
            return self.load(slug).await;
        };
        match self.read(slug).await {
            Ok(petition) => Ok(petition),
            Err(e) => {
                warn!(error = %e, "reading a petition failed; answering the one read earlier");
                Ok(stale)
            }
        }
    }

    /// Reads a slug nothing is cached for, once for every caller meanwhile.
    async fn load(&self, slug: &str) -> Result<Option<Arc<Petition>>, StoreError> {
        let load = {
            let mut loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
            // A read its caller gave up on stays until the slug is asked for
            // again; forgetting them all costs at most a read twice.
            if loading.len() >= MAX_ENTRIES && !loading.contains_key(slug) {
                loading.clear();
            }
            loading.entry(slug.to_owned()).or_default().clone()
        };
        load.get_or_init(|| async {
            let read = self.read(slug).await.map_err(Arc::new);
            let mut loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
            if loading.get(slug).is_some_and(|l| Arc::ptr_eq(l, &load)) {
                loading.remove(slug);
            }
            read
        })
        .await
        .clone()
        .map_err(StoreError::Shared)
    }

    /// Reads a slug from Postgres and caches what it found, unless the slug
    /// was forgotten meanwhile.
    async fn read(&self, slug: &str) -> Result<Option<Arc<Petition>>, StoreError> {
        let forgotten = self.forgotten.load(Ordering::Acquire);
        let petition = undersigned_store::within(READ_DEADLINE, self.store.petition_by_slug(slug))
            .await?
            .map(Arc::new);
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if self.forgotten.load(Ordering::Acquire) != forgotten {
            return Ok(petition);
        }
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

    /// Forgets a slug after its petition changed here. Reads under way began
    /// before the change: what they find is not cached, and callers from now
    /// on start a read of their own.
    pub fn forget(&self, slug: &str) {
        // Under the cache's lock, so that no caller finds the slug uncached
        // and joins the read under way in between.
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        self.forgotten.fetch_add(1, Ordering::AcqRel);
        cache.remove(slug);
        self.loading
            .lock()
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

    /// A database of its own holding one petition, `catalog`; its name and id.
    async fn petition_store(pool: usize) -> (Store, String, i64) {
        let name = format!("us_test_{}", uuid::Uuid::new_v4().simple());
        let store = Store::open(&format!("{POSTGRES}/{name}"), pool)
            .await
            .unwrap();
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
        (store, name, id)
    }

    async fn connect(database: &str) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&format!("{POSTGRES}/{database}"), NoTls)
                .await
                .unwrap();
        tokio::spawn(connection);
        client
    }

    async fn drop_database(name: &str) {
        connect("postgres")
            .await
            .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
            .await
            .unwrap();
    }

    /// Holds every read of petitions until the returned client rolls back.
    async fn lock_petitions(database: &str) -> tokio_postgres::Client {
        let client = connect(database).await;
        client
            .batch_execute("BEGIN; LOCK TABLE petitions IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        client
    }

    /// Sessions of `database` waiting for a lock, once they stop changing.
    async fn waiting_reads(database: &str) -> i64 {
        let admin = connect("postgres").await;
        let mut last = -1;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE datname = $1 AND wait_event_type = 'Lock'",
                    &[&database],
                )
                .await
                .unwrap()
                .get(0);
            if now > 0 && now == last {
                return now;
            }
            last = now;
        }
        last
    }

    #[tokio::test]
    async fn a_slug_with_nothing_cached_is_read_once_however_many_ask() {
        let (store, name, id) = petition_store(8).await;
        let catalog = Arc::new(Catalog::new(store));
        let lock = lock_petitions(&name).await;
        let callers: Vec<_> = (0..40)
            .map(|_| {
                let catalog = catalog.clone();
                tokio::spawn(async move { catalog.by_slug("catalog").await })
            })
            .collect();
        // With a pool of 8, forty callers reading for themselves would be 8.
        assert_eq!(waiting_reads(&name).await, 1);
        lock.batch_execute("ROLLBACK").await.unwrap();
        for caller in callers {
            assert_eq!(caller.await.unwrap().unwrap().unwrap().id, id);
        }
        drop_database(&name).await;
    }

    #[tokio::test]
    async fn a_read_that_began_before_a_forget_is_not_cached() {
        let (store, name, _) = petition_store(4).await;
        let catalog = Arc::new(Catalog::new(store));
        let lock = lock_petitions(&name).await;
        let early = {
            let catalog = catalog.clone();
            tokio::spawn(async move { catalog.by_slug("catalog").await })
        };
        assert_eq!(waiting_reads(&name).await, 1);
        // The petition changed here while that read was under way.
        catalog.forget("catalog");
        lock.batch_execute("ROLLBACK").await.unwrap();
        assert!(early.await.unwrap().unwrap().is_some());
        // Not cached: the next caller reads Postgres, and waits for it.
        let lock = lock_petitions(&name).await;
        let next = tokio::time::timeout(Duration::from_millis(300), catalog.by_slug("catalog"));
        assert!(next.await.is_err(), "answered from the cache");
        lock.batch_execute("ROLLBACK").await.unwrap();
        drop_database(&name).await;
    }

    /// Once read, a petition goes on being answered for `STALE_FOR` while
    /// Postgres cannot be reached, and no longer.
    #[tokio::test]
    async fn a_petition_read_earlier_is_answered_while_postgres_is_gone() {
        let (store, name, id) = petition_store(2).await;
        // STALE_FOR is long enough for dropping a database on a loaded machine.
        let stale_for = Duration::from_secs(3);
        let catalog = Catalog::with_times(store, Duration::from_millis(50), stale_for);
        let read = catalog.by_slug("catalog").await.unwrap().unwrap();
        // The entry's age counts from a moment before this one.
        let read_at = Instant::now();
        assert_eq!(read.id, id);

        drop_database(&name).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Past the TTL: every caller, the one reading it again included, gets it.
        let answers =
            futures_util::future::join_all((0..20).map(|_| catalog.by_slug("catalog"))).await;
        for answer in answers {
            assert_eq!(answer.unwrap().unwrap().id, id);
        }
        // Past STALE_FOR the failure shows.
        tokio::time::sleep_until((read_at + stale_for + Duration::from_millis(50)).into()).await;
        assert!(catalog.by_slug("catalog").await.is_err());
    }
}
