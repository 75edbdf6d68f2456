//! The live counter: an in-memory snapshot of the maintained counts, merged from
//! this instance's commits, other instances' announcements and periodic reloads,
//! so readers never touch Postgres.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use tokio::sync::{Notify, watch};
use tracing::warn;
use undersigned_domain::{Country, SignerKind};
use undersigned_guard::{Announcement, Fanout};
use undersigned_store::{CountCell, EventCell, Store};
use undersigned_supervisor::{Policy, Supervisor};
use uuid::Uuid;

/// One petition's counts as readers see them.
#[derive(Debug)]
pub struct CountView {
    pub total: i64,
    pub people: i64,
    pub organizations: i64,
    pub by_country: BTreeMap<Country, i64>,
    /// Each event's own tally (signatures its tablets collected).
    pub by_event: BTreeMap<Uuid, i64>,
    /// Signatures awaiting their signers' confirmation, in none of the above.
    pub pending: i64,
    pub updated_at: DateTime<Utc>,
    /// A hash of the counts, equal on every instance for equal counts.
    pub fingerprint: u64,
}

type Cell = (Country, SignerKind, i16);

/// A count cell's totals: counted, removed (invalidations, withdrawals),
/// restored (undoing an invalidation), stored pending, settled (no longer pending).
type Totals = [i64; 5];

/// An event tally's totals: counted, removed, restored.
type EventTotals = [i64; 3];

fn totals(c: &CountCell) -> Totals {
    [c.count, c.removed, c.restored, c.pending, c.settled]
}

/// One petition's shards: its counts, and its events' tallies.
#[derive(Default)]
struct Held {
    cells: HashMap<Cell, Totals>,
    events: HashMap<(Uuid, i16), EventTotals>,
}

#[derive(Default)]
pub struct Counter {
    held: std::sync::Mutex<HashMap<i64, Held>>,
    /// By petition id (the service's own, so a fast hash; read on every
    /// counter read).
    views: RwLock<FxHashMap<i64, Arc<CountView>>>,
    /// Each watched petition's newest view, for whoever waits on a change
    /// (the live stream): one sender a petition, however many watch it.
    watched: std::sync::Mutex<HashMap<i64, watch::Sender<Arc<CountView>>>>,
}

/// Raises the held totals to the ones seen; whether anything changed.
fn raise<const N: usize>(held: &mut [i64; N], seen: [i64; N]) -> bool {
    let higher = seen.iter().zip(held.iter()).any(|(s, h)| s > h);
    for (h, s) in held.iter_mut().zip(seen) {
        *h = (*h).max(s);
    }
    higher
}

impl Counter {
    /// Takes each shard's totals where they are higher than the ones held. Every
    /// stored total only grows (an invalidation adds to `removed`, its undoing to
    /// `restored`), so the highest seen is the newest, whatever order
    /// announcements arrive in.
    pub fn merge(&self, cells: &[CountCell]) {
        self.merge_all(cells, &[]);
    }

    /// As [`Counter::merge`], with events' tallies too.
    pub fn merge_all(&self, cells: &[CountCell], events: &[EventCell]) {
        let mut touched = Vec::new();
        let mut all = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let mut touch = |petition: i64, changed: bool| {
            if changed && !touched.contains(&petition) {
                touched.push(petition);
            }
        };
        for c in cells {
            let held = all.entry(c.petition_id).or_default();
            let totals = held
                .cells
                .entry((c.country, c.kind, c.shard))
                .or_insert([0; 5]);
            touch(c.petition_id, raise(totals, self::totals(c)));
        }
        for e in events {
            let held = all.entry(e.petition_id).or_default();
            let totals = held.events.entry((e.event_id, e.shard)).or_insert([0; 3]);
            touch(
                e.petition_id,
                raise(totals, [e.count, e.removed, e.restored]),
            );
        }
        if touched.is_empty() {
            return;
        }
        // The views are replaced, and watchers told, before the totals are
        // let go: a merge that computed an older view cannot land after a
        // newer one, and a watcher subscribing meanwhile (under `watched`)
        // sees either the view before or the change.
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        let mut views = self.views.write().unwrap_or_else(|e| e.into_inner());
        for petition in touched {
            let view = Arc::new(CountView::from_cells(&all[&petition]));
            // Nobody watching any more: forget the petition's sender.
            if let Some(sender) = watched.get(&petition)
                && sender.send(view.clone()).is_err()
            {
                watched.remove(&petition);
            }
            views.insert(petition, view);
        }
    }

    /// The petition's views as they change, starting with the current one:
    /// every change merged, from this instance's commits, other instances'
    /// announcements and reloads alike. A slow watcher sees only the newest.
    pub fn watch(&self, petition_id: i64) -> watch::Receiver<Arc<CountView>> {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        // Under the lock, so that no change merged meanwhile is missed.
        let current = self.view(petition_id);
        let sender = watched
            .entry(petition_id)
            .or_insert_with(|| watch::channel(current.clone()).0);
        if sender.is_closed() {
            sender.send_replace(current);
        }
        sender.subscribe()
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
            .or_insert_with(|| Arc::new(CountView::from_cells(&Held::default())))
            .clone()
    }
}

impl CountView {
    fn from_cells(held: &Held) -> Self {
        let (mut people, mut organizations) = (0, 0);
        let mut by_country = BTreeMap::new();
        let mut pending = 0;
        for (&(country, kind, _shard), &[added, removed, restored, stored, settled]) in &held.cells
        {
            pending += stored - settled;
            let n = added - removed + restored;
            match kind {
                SignerKind::Person => people += n,
                SignerKind::Organization => organizations += n,
            }
            *by_country.entry(country).or_insert(0) += n;
        }
        // A country whose signatures are all pending (or all invalidated)
        // has none to show.
        by_country.retain(|_, n| *n != 0);
        let mut by_event = BTreeMap::new();
        for (&(event, _shard), &[added, removed, restored]) in &held.events {
            *by_event.entry(event).or_insert(0) += added - removed + restored;
        }
        let mut hasher = DefaultHasher::new();
        (people, organizations, &by_country, &by_event, pending).hash(&mut hasher);
        Self {
            total: people + organizations,
            people,
            organizations,
            by_country,
            by_event,
            pending,
            updated_at: Utc::now(),
            fingerprint: hasher.finish(),
        }
    }
}

/// Announcements are lines of `petition country kind shard count removed
/// restored pending settled` (instances that predate the last two ignore
/// them), and for events' tallies `e event petition shard count removed
/// restored` (which instances that predate them skip).
pub(crate) fn encode(cells: &[CountCell], events: &[EventCell]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(cells.len() * 32 + events.len() * 64);
    for c in cells {
        let _ = writeln!(
            out,
            "{} {} {} {} {} {} {} {} {}",
            c.petition_id,
            c.country,
            c.kind.as_str(),
            c.shard,
            c.count,
            c.removed,
            c.restored,
            c.pending,
            c.settled
        );
    }
    for e in events {
        let _ = writeln!(
            out,
            "e {} {} {} {} {} {}",
            e.event_id, e.petition_id, e.shard, e.count, e.removed, e.restored
        );
    }
    out
}

pub(crate) fn decode(payload: &[u8]) -> (Vec<CountCell>, Vec<EventCell>) {
    let text = String::from_utf8_lossy(payload);
    let (events, cells): (Vec<&str>, Vec<&str>) =
        text.lines().partition(|line| line.starts_with("e "));
    let events = events
        .into_iter()
        .filter_map(|line| {
            let mut f = line.split(' ').skip(1);
            Some(EventCell {
                event_id: f.next()?.parse().ok()?,
                petition_id: f.next()?.parse().ok()?,
                shard: f.next()?.parse().ok()?,
                count: f.next()?.parse().ok()?,
                removed: f.next()?.parse().ok()?,
                restored: f.next()?.parse().ok()?,
            })
        })
        .collect();
    let cells = cells
        .into_iter()
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
                pending: f.next().map_or(Some(0), |n| n.parse().ok())?,
                settled: f.next().map_or(Some(0), |n| n.parse().ok())?,
            })
        })
        .collect();
    (cells, events)
}

/// Announces this instance's new totals to the others. Totals waiting to go
/// out are coalesced (only the highest per shard matters), and kept for the
/// next try when Redis does not take them, so a lost publish is repaired within
/// moments rather than at the next reload.
pub(crate) struct Announcer {
    pending: std::sync::Mutex<Pending>,
    wake: Notify,
}

#[derive(Default)]
struct Pending {
    cells: HashMap<(i64, Cell), Totals>,
    events: HashMap<(i64, Uuid, i16), EventTotals>,
}

impl Announcer {
    pub(crate) fn start(fanout: Fanout, tasks: &Supervisor) -> Arc<Self> {
        let this = Arc::new(Self {
            pending: std::sync::Mutex::new(Pending::default()),
            wake: Notify::new(),
        });
        let announcer = this.clone();
        tasks.spawn("count announcer", Policy::Restart, move || {
            announcer.clone().publish(fanout.clone())
        });
        this
    }

    async fn publish(self: Arc<Self>, fanout: Fanout) {
        loop {
            self.wake.notified().await;
            let (cells, events) = self.take();
            if cells.is_empty() && events.is_empty() {
                continue;
            }
            if !fanout.publish(&encode(&cells, &events)).await {
                self.announce(&cells, &events);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    pub(crate) fn announce(&self, cells: &[CountCell], events: &[EventCell]) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for c in cells {
            let held = pending
                .cells
                .entry((c.petition_id, (c.country, c.kind, c.shard)))
                .or_insert([0; 5]);
            raise(held, totals(c));
        }
        for e in events {
            let held = pending
                .events
                .entry((e.petition_id, e.event_id, e.shard))
                .or_insert([0; 3]);
            raise(held, [e.count, e.removed, e.restored]);
        }
        drop(pending);
        self.wake.notify_one();
    }

    fn take(&self) -> (Vec<CountCell>, Vec<EventCell>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let events = pending
            .events
            .drain()
            .map(
                |((petition_id, event_id, shard), [count, removed, restored])| EventCell {
                    event_id,
                    petition_id,
                    shard,
                    count,
                    removed,
                    restored,
                },
            )
            .collect();
        let cells = pending
            .cells
            .drain()
            .map(
                |(
                    (petition_id, (country, kind, shard)),
                    [count, removed, restored, pending, settled],
                )| CountCell {
                    petition_id,
                    country,
                    kind,
                    shard,
                    count,
                    removed,
                    restored,
                    pending,
                    settled,
                },
            )
            .collect();
        (cells, events)
    }
}

/// Applies other instances' announcements as they come, and reloads from
/// Postgres: on every (re)subscription, every second while announcements are
/// not arriving (Redis absent or down), and every few seconds otherwise.
pub(crate) fn spawn_refresh(
    counter: Arc<Counter>,
    store: Store,
    fanout: Option<Fanout>,
    tasks: &Supervisor,
) {
    // Subscribed once: a refresh started again after a death takes the same
    // announcements, instead of leaving a listener behind.
    let announcements = fanout
        .as_ref()
        .map(|f| Arc::new(tokio::sync::Mutex::new(f.subscribe(tasks))));
    tasks.spawn("count refresh", Policy::Restart, move || {
        refresh(
            counter.clone(),
            store.clone(),
            fanout.clone(),
            announcements.clone(),
        )
    });
}

async fn refresh(
    counter: Arc<Counter>,
    store: Store,
    fanout: Option<Fanout>,
    announcements: Option<Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Announcement>>>>,
) {
    let mut announcements = match &announcements {
        Some(shared) => Some(shared.lock().await),
        None => None,
    };
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
                Announcement::Payload(payload) => {
                    let (cells, events) = decode(&payload);
                    counter.merge_all(&cells, &events);
                }
                Announcement::Subscribed => next_reload = tokio::time::Instant::now(),
            },
            _ = tokio::time::sleep_until(next_reload) => {
                match tokio::try_join!(store.count_cells(), store.event_cells()) {
                    Ok((cells, events)) => counter.merge_all(&cells, &events),
                    Err(e) => warn!(error = %e, "reloading counts failed"),
                }
                let subscribed = fanout.as_ref().is_some_and(Fanout::is_subscribed);
                let period = if subscribed { Duration::from_secs(5) } else { Duration::from_secs(1) };
                next_reload = tokio::time::Instant::now() + period;
            }
        }
    }
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
            pending: 0,
            settled: 0,
        }
    }

    #[test]
    fn watchers_see_each_change_to_their_petition_and_nothing_else() {
        let counter = Counter::default();
        counter.merge(&[cell("FR", SignerKind::Person, 0, 2)]);
        let mut watching = counter.watch(7);
        assert_eq!(watching.borrow_and_update().total, 2);
        // Another petition's change, or one that changes nothing, is not seen.
        counter.merge(&[CountCell {
            petition_id: 8,
            ..cell("FR", SignerKind::Person, 0, 9)
        }]);
        counter.merge(&[cell("FR", SignerKind::Person, 0, 2)]);
        assert!(!watching.has_changed().unwrap());
        counter.merge(&[cell("DE", SignerKind::Organization, 1, 3)]);
        assert!(watching.has_changed().unwrap());
        assert_eq!(watching.borrow_and_update().total, 5);
        // Two changes before it looks: it sees the newest.
        counter.merge(&[cell("DE", SignerKind::Organization, 1, 4)]);
        counter.merge(&[cell("DE", SignerKind::Organization, 1, 6)]);
        assert_eq!(watching.borrow_and_update().total, 8);
        // Once nobody watches, the next change forgets the sender; a new
        // watcher starts from the view as it is.
        drop(watching);
        counter.merge(&[cell("NL", SignerKind::Person, 2, 1)]);
        assert!(counter.watched.lock().unwrap().is_empty());
        assert_eq!(counter.watch(7).borrow().total, 9);
    }

    #[test]
    fn pending_signatures_are_apart_from_the_count_until_confirmed() {
        let counter = Counter::default();
        let writer = |count, pending| CountCell {
            pending,
            ..cell("FR", SignerKind::Person, 3, count)
        };
        counter.merge(&[writer(2, 5)]);
        let view = counter.view(7);
        assert_eq!((view.total, view.pending, view.by_country.len()), (2, 5, 1));
        // Two confirmations on their own shard: counted, no longer pending.
        let confirmed = |n| CountCell {
            settled: n,
            ..cell("FR", SignerKind::Person, -2, n)
        };
        counter.merge(&[confirmed(2)]);
        counter.merge(&[confirmed(1)]);
        let view = counter.view(7);
        assert_eq!((view.total, view.pending, view.people), (4, 3, 4));
        let wire = decode(encode(&[writer(2, 5), confirmed(2)], &[]).as_bytes());
        assert_eq!(wire.0, vec![writer(2, 5), confirmed(2)]);
        // A line from an instance that predates pending counts reads as none.
        let old = decode(b"7 FR person 3 2 0 0\n");
        assert_eq!(old.0, vec![writer(2, 0)]);
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
        let wire = decode(encode(&[adjusted(4, 3)], &[]).as_bytes());
        assert_eq!(wire, (vec![adjusted(4, 3)], vec![]));
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
        let events = vec![EventCell {
            event_id: Uuid::now_v7(),
            petition_id: 7,
            shard: 2,
            count: 9,
            removed: 1,
            restored: 0,
        }];
        assert_eq!(decode(encode(&cells, &events).as_bytes()), (cells, events));
        assert_eq!(decode(b"garbage\n1 2\ne x"), (vec![], vec![]));
    }

    #[test]
    fn events_tally_apart_and_within_their_petition() {
        let counter = Counter::default();
        let stand = Uuid::now_v7();
        let event = |shard, count, removed| EventCell {
            event_id: stand,
            petition_id: 7,
            shard,
            count,
            removed,
            restored: 0,
        };
        counter.merge_all(&[cell("NL", SignerKind::Person, 0, 10)], &[event(0, 4, 0)]);
        counter.merge_all(&[], &[event(1, 2, 0), event(-1, 0, 1)]);
        // A late, lower announcement changes nothing.
        counter.merge_all(&[], &[event(0, 3, 0)]);
        let view = counter.view(7);
        assert_eq!(view.total, 10);
        assert_eq!(view.by_event[&stand], 5);
        assert!(counter.view(8).by_event.is_empty());
    }
}
