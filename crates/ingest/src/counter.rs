//! The live counter: an in-memory snapshot of the maintained counts, merged from
//! this instance's commits, other instances' announcements and periodic reloads,
//! so readers never touch Postgres.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tracing::warn;
use undersigned_domain::{Country, SignerKind};
use undersigned_guard::{Announcement, Fanout};
use undersigned_store::{CountCell, Store};

/// One petition's counts as readers see them.
#[derive(Debug)]
pub struct CountView {
    pub total: i64,
    pub people: i64,
    pub organizations: i64,
    pub by_country: BTreeMap<Country, i64>,
    pub updated_at: DateTime<Utc>,
    /// A hash of the counts, equal on every instance for equal counts.
    pub fingerprint: u64,
}

type Cell = (Country, SignerKind, i16);

/// A cell's three totals: added, removed by invalidations, restored by undoing them.
type Totals = [i64; 3];

#[derive(Default)]
pub struct Counter {
    cells: std::sync::Mutex<HashMap<i64, HashMap<Cell, Totals>>>,
    views: RwLock<HashMap<i64, Arc<CountView>>>,
}

impl Counter {
    /// Takes each shard's totals where they are higher than the ones held. Every
    /// stored total only grows (an invalidation adds to `removed`, its undoing to
    /// `restored`), so the highest seen is the newest, whatever order
    /// announcements arrive in.
    pub fn merge(&self, cells: &[CountCell]) {
        let mut touched = Vec::new();
        let mut all = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        for c in cells {
            let petition = all.entry(c.petition_id).or_default();
            let held = petition
                .entry((c.country, c.kind, c.shard))
                .or_insert([0; 3]);
            let seen = [c.count, c.removed, c.restored];
            if seen.iter().zip(held.iter()).any(|(s, h)| s > h) {
                for (h, s) in held.iter_mut().zip(seen) {
                    *h = (*h).max(s);
                }
                if !touched.contains(&c.petition_id) {
                    touched.push(c.petition_id);
                }
            }
        }
        let fresh: Vec<(i64, Arc<CountView>)> = touched
            .into_iter()
            .map(|p| (p, Arc::new(CountView::from_cells(&all[&p]))))
            .collect();
        drop(all);
        if !fresh.is_empty() {
            let mut views = self.views.write().unwrap_or_else(|e| e.into_inner());
            views.extend(fresh);
        }
    }

    /// The current view of one petition's counts.
    pub fn view(&self, petition_id: i64) -> Arc<CountView> {
        if let Some(view) = self
            .views
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&petition_id)
        {
            return view.clone();
        }
        self.views
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(petition_id)
            .or_insert_with(|| Arc::new(CountView::from_cells(&HashMap::new())))
            .clone()
    }
}

impl CountView {
    fn from_cells(cells: &HashMap<Cell, Totals>) -> Self {
        let (mut people, mut organizations) = (0, 0);
        let mut by_country = BTreeMap::new();
        for (&(country, kind, _shard), &[added, removed, restored]) in cells {
            let n = added - removed + restored;
            match kind {
                SignerKind::Person => people += n,
                SignerKind::Organization => organizations += n,
            }
            *by_country.entry(country).or_insert(0) += n;
        }
        let mut hasher = DefaultHasher::new();
        (people, organizations, &by_country).hash(&mut hasher);
        Self {
            total: people + organizations,
            people,
            organizations,
            by_country,
            updated_at: Utc::now(),
            fingerprint: hasher.finish(),
        }
    }
}

/// Announcements are lines of `petition country kind shard count removed restored`.
pub(crate) fn encode(cells: &[CountCell]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(cells.len() * 32);
    for c in cells {
        let _ = writeln!(
            out,
            "{} {} {} {} {} {} {}",
            c.petition_id,
            c.country,
            c.kind.as_str(),
            c.shard,
            c.count,
            c.removed,
            c.restored
        );
    }
    out
}

pub(crate) fn decode(payload: &[u8]) -> Vec<CountCell> {
    let text = String::from_utf8_lossy(payload);
    text.lines()
        .filter_map(|line| {
            let mut f = line.split(' ');
            Some(CountCell {
                petition_id: f.next()?.parse().ok()?,
                country: Country::parse(f.next()?)?,
                kind: SignerKind::parse(f.next()?)?,
                shard: f.next()?.parse().ok()?,
                count: f.next()?.parse().ok()?,
                removed: f.next().map_or(Some(0), |n| n.parse().ok())?,
                restored: f.next().map_or(Some(0), |n| n.parse().ok())?,
            })
        })
        .collect()
}

/// Announces this instance's new totals to the others. Totals waiting to go
/// out are coalesced (only the highest per shard matters), and kept for the
/// next try when Redis does not take them, so a lost publish is repaired within
/// moments rather than at the next reload.
pub(crate) struct Announcer {
    pending: std::sync::Mutex<HashMap<(i64, Cell), Totals>>,
    wake: Notify,
}

impl Announcer {
    pub(crate) fn start(fanout: Fanout) -> Arc<Self> {
        let this = Arc::new(Self {
            pending: std::sync::Mutex::new(HashMap::new()),
            wake: Notify::new(),
        });
        let announcer = this.clone();
        tokio::spawn(async move {
            loop {
                announcer.wake.notified().await;
                let cells = announcer.take();
                if cells.is_empty() {
                    continue;
                }
                if !fanout.publish(&encode(&cells)).await {
                    announcer.announce(&cells);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        });
        this
    }

    pub(crate) fn announce(&self, cells: &[CountCell]) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for c in cells {
            let held = pending
                .entry((c.petition_id, (c.country, c.kind, c.shard)))
                .or_insert([0; 3]);
            for (h, s) in held.iter_mut().zip([c.count, c.removed, c.restored]) {
                *h = (*h).max(s);
            }
        }
        drop(pending);
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<CountCell> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending
            .drain()
            .map(
                |((petition_id, (country, kind, shard)), [count, removed, restored])| CountCell {
                    petition_id,
                    country,
                    kind,
                    shard,
                    count,
                    removed,
                    restored,
                },
            )
            .collect()
    }
}

/// Applies other instances' announcements as they come, and reloads from
/// Postgres: on every (re)subscription, every second while announcements are
/// not arriving (Redis absent or down), and every few seconds otherwise.
pub(crate) fn spawn_refresh(counter: Arc<Counter>, store: Store, fanout: Option<Fanout>) {
    tokio::spawn(async move {
        let mut announcements = fanout.as_ref().map(Fanout::subscribe);
        let mut next_reload = tokio::time::Instant::now();
        loop {
            let announcement = async {
                match announcements.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(announcement) = announcement => match announcement {
                    Announcement::Payload(payload) => counter.merge(&decode(&payload)),
                    Announcement::Subscribed => next_reload = tokio::time::Instant::now(),
                },
                _ = tokio::time::sleep_until(next_reload) => {
                    match store.count_cells().await {
                        Ok(cells) => counter.merge(&cells),
                        Err(e) => warn!(error = %e, "reloading counts failed"),
                    }
                    let subscribed = fanout.as_ref().is_some_and(Fanout::is_subscribed);
                    let period = if subscribed { Duration::from_secs(5) } else { Duration::from_secs(1) };
                    next_reload = tokio::time::Instant::now() + period;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(country: &str, kind: SignerKind, shard: i16, count: i64) -> CountCell {
        CountCell {
            petition_id: 7,
            country: Country::parse(country).unwrap(),
            kind,
            shard,
            count,
            removed: 0,
            restored: 0,
        }
    }

    #[test]
    fn removals_and_restorations_merge_like_additions() {
        let counter = Counter::default();
        counter.merge(&[cell("NL", SignerKind::Person, 0, 10)]);
        let adjusted = |removed, restored| CountCell {
            removed,
            restored,
            ..cell("NL", SignerKind::Person, -1, 0)
        };
        counter.merge(&[adjusted(4, 0)]);
        assert_eq!(counter.view(7).total, 6);
        // The undo's announcement, then a late copy of the removal's.
        counter.merge(&[adjusted(4, 3)]);
        counter.merge(&[adjusted(4, 0)]);
        assert_eq!(counter.view(7).total, 9);
        let wire = decode(encode(&[adjusted(4, 3)]).as_bytes());
        assert_eq!(wire, vec![adjusted(4, 3)]);
    }

    #[test]
    fn sums_shards_and_keeps_the_highest_total() {
        let counter = Counter::default();
        counter.merge(&[
            cell("NL", SignerKind::Person, 0, 10),
            cell("NL", SignerKind::Person, 1, 5),
            cell("AZ", SignerKind::Organization, 0, 2),
        ]);
        // An older announcement arriving late changes nothing.
        counter.merge(&[cell("NL", SignerKind::Person, 0, 8)]);
        let view = counter.view(7);
        assert_eq!((view.total, view.people, view.organizations), (17, 15, 2));
        assert_eq!(view.by_country[&Country::parse("NL").unwrap()], 15);
        assert_eq!(counter.view(8).total, 0);
    }

    #[test]
    fn equal_counts_give_equal_fingerprints() {
        let a = Counter::default();
        let b = Counter::default();
        a.merge(&[cell("NL", SignerKind::Person, 0, 3)]);
        b.merge(&[cell("NL", SignerKind::Person, 5, 3)]);
        assert_eq!(a.view(7).fingerprint, b.view(7).fingerprint);
        b.merge(&[cell("BE", SignerKind::Person, 5, 1)]);
        assert_ne!(a.view(7).fingerprint, b.view(7).fingerprint);
    }

    #[test]
    fn announcements_round_trip() {
        let cells = vec![
            cell("NL", SignerKind::Person, 3, 42),
            cell("TR", SignerKind::Organization, 0, 1),
        ];
        assert_eq!(decode(encode(&cells).as_bytes()), cells);
        assert!(decode(b"garbage\n1 2").is_empty());
    }
}
