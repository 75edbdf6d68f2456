//! Writing signatures in batches: one transaction inserts the rows and bumps the counts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool};
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Statement};
use tracing::warn;
use undersigned_domain::{Channel, Country, SignerKind};
use uuid::Uuid;

use crate::{CountCell, EventCell, StoreError};

/// One signature ready to be stored.
#[derive(Debug, Clone)]
pub struct SignatureRow {
    /// The receipt: the client's UUID when it sent one, else a fresh UUIDv7.
    pub id: Uuid,
    /// Whether `id` came from the client, and so may be a retry of an earlier row.
    pub client_supplied: bool,
    pub petition_id: i64,
    pub identity_key: [u8; 32],
    pub full_name: String,
    /// Absent only offline, where the petition allows it.
    pub email: Option<String>,
    pub country: Country,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub kind: SignerKind,
    pub organization: Option<String>,
    pub consent_updates: bool,
    pub locale: Option<String>,
    pub channel: Channel,
    /// Where the signature came from, for invalidating an address range later.
    pub client_address: Option<IpAddr>,
    /// The block rule that shadow-accepts it: stored, answered like any other,
    /// never counted.
    pub shadowed_by: Option<i64>,
    /// When it was given, for a signature collected offline; `None`: now.
    pub signed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Where and through what it was collected, for a tablet's signature.
    pub event_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
    /// On a sealed petition: the personal fields as sealed (crates/seal),
    /// the clear ones then empty but for a pending signature's email, kept
    /// until its message is sent.
    pub sealed: Option<Vec<u8>>,
    /// On a sealed petition: the email's domain, lower case, for abuse signals.
    pub email_domain: Option<String>,
    /// For a web signature on a petition that confirms by email: stored
    /// pending, its message due at once (on its own row, `mail_due`, for the
    /// mailers to send). `None`: counted at once.
    pub confirmation: Option<Confirmation>,
}

/// What makes a stored signature pending until its signer confirms it. Its
/// link's token is made by the mailer that sends it (crates/mail), which
/// stores the token's hash on the row before the message leaves: the
/// signature path makes, hashes and indexes none.
#[derive(Debug, Clone)]
pub struct Confirmation {
    /// When it is erased if it is still unconfirmed.
    pub pending_until: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOutcome {
    /// Stored and counted.
    Inserted,
    /// The signer had already signed this petition.
    Duplicate,
    /// The very same signature was stored before: the client sent it again
    /// (its answer was lost, or it raced its own first attempt).
    Retried,
    /// The client's `id` already names a different signature.
    IdReused,
}

#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// One outcome per input row, in order.
    pub rows: Vec<RowOutcome>,
    /// The new totals of this writer's count cells that the batch touched.
    pub cells: Vec<CountCell>,
    /// Likewise for the events' tallies.
    pub event_cells: Vec<EventCell>,
    /// How often the batch was written again, and why.
    pub retries: Vec<Retry>,
}

/// Why a batch was written again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The fast path met a signer already stored (a race, or Redis forgot).
    Duplicate,
    /// Postgres found two transactions waiting on each other.
    Deadlock,
    /// A serialization failure.
    Serialization,
}

impl Retry {
    /// Its label in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::Deadlock => "deadlock",
            Self::Serialization => "serialization",
        }
    }
}

const COLUMNS: &str = "id, petition_id, identity_key, full_name, email, country, postal_code, \
    city, signer_kind, organization, consent_updates, locale, channel, client_address, \
    shadowed_by, pending_until, email_domain, sealed, mail_due";

/// Rows as arrays, one per column; `signed_at` takes the transaction's
/// time, and a pending signature's message is due at once.
const UNNEST: &str = "SELECT *, CASE WHEN u.pu IS NOT NULL THEN now() END FROM unnest($1::uuid[], \
    $2::int8[], $3::bytea[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
    $9::text[], $10::text[], $11::bool[], $12::text[], $13::text[], $14::inet[], $15::int8[], \
    $16::timestamptz[], $17::text[], $18::bytea[]) \
    AS u(i, p, k, n, e, c, pc, ci, sk, o, cu, l, ch, a, sb, pu, ed, se)";

/// Parameters of the web statements: the columns, then (fast path) the shard.
const WEB_PARAMS: usize = 18;
/// Parameters of the offline statements: the columns, then (fast path) the shard.
const OFFLINE_PARAMS: usize = 21;

/// Batches holding signatures collected offline also say when each was given
/// (or now), where and through what, and when it arrived. Web-only batches,
/// the hot path, keep the statement they had (its cost is measured in
/// `benches/BENCHMARKS.md`) and leave those columns empty. A web signature
/// that shares such a batch is pending all the same, where its petition
/// confirms by email (before, a batch that mixed a tablet's signatures with
/// the web's stored those web signatures counted, unconfirmed).
const OFFLINE_COLUMNS: &str = "id, petition_id, identity_key, full_name, email, country, \
    postal_code, city, signer_kind, organization, consent_updates, locale, channel, \
    client_address, shadowed_by, event_id, device_id, signed_at, received_at, pending_until, \
    email_domain, sealed, mail_due";

const OFFLINE_UNNEST: &str = "SELECT i, p, k, n, e, c, pc, ci, sk, o, cu, l, ch, a, sb, ev, d, \
    coalesce(sa, now()), CASE WHEN ch <> 'web' THEN now() END, pu, ed, se, \
    CASE WHEN pu IS NOT NULL THEN now() END FROM unnest($1::uuid[], $2::int8[], $3::bytea[], \
    $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
    $11::bool[], $12::text[], $13::text[], $14::inet[], $15::int8[], $16::uuid[], $17::uuid[], \
    $18::timestamptz[], $19::timestamptz[], $20::text[], $21::bytea[]) \
    AS t(i, p, k, n, e, c, pc, ci, sk, o, cu, l, ch, a, sb, ev, d, sa, pu, ed, se)";

/// The careful path's insert, indexed by `[offline]`: it skips signers
/// already stored and says which rows it inserted.
static CAREFUL_INSERTS: LazyLock<[String; 2]> = LazyLock::new(|| {
    [(COLUMNS, UNNEST), (OFFLINE_COLUMNS, OFFLINE_UNNEST)].map(|(columns, rows)| {
        format!("INSERT INTO signatures ({columns}) {rows} ON CONFLICT DO NOTHING RETURNING id")
    })
});

/// The fast path, indexed by `[offline]`: one statement, its own transaction,
/// that inserts the rows, adds them to the writer's count shard (`$19`, or
/// `$22` offline) and to their events' tallies, and returns the cells it
/// changed (count cells with a null `event_id`); the counted rows, when
/// webhooks hear of them, go in with them as one event a petition (the
/// first test, on no row, is made once a statement: with no webhook
/// nothing else is done). A pending row carries its
/// own message's due time: nothing else is queued. One statement is one
/// message each way: as a transaction of five statements (BEGIN, SET LOCAL,
/// the insert, the count bump, COMMIT) each cost Postgres a send and the
/// writer a wake-up, most of a small batch's cost (measured in
/// `benches/BENCHMARKS.md`). It is answered once the commit is durable.
///
/// Its insert is a plain one: measured at half the cost per row of `ON
/// CONFLICT DO NOTHING` (speculative insertion probes every unique index
/// twice). Duplicates rarely reach it: the batch drops its own, and Redis's
/// seen set the committed ones. When one does (a race, Redis down or flushed),
/// the statement fails with a unique violation, and the batch is redone
/// carefully. Count rows are taken in sorted order, the same in every
/// transaction that takes several.
static FAST_WRITES: LazyLock<[String; 2]> = LazyLock::new(|| {
    [
        (COLUMNS, UNNEST, WEB_PARAMS + 1),
        (OFFLINE_COLUMNS, OFFLINE_UNNEST, OFFLINE_PARAMS + 1),
    ]
    .map(|(columns, rows, shard)| {
        format!(
            "WITH ins AS (
                INSERT INTO signatures ({columns}) {rows}
                RETURNING id, petition_id, country, signer_kind, shadowed_by, event_id,
                    pending_until
            ), counts AS (
                INSERT INTO signature_counts (petition_id, country, signer_kind, shard, count,
                    pending)
                SELECT petition_id, country, signer_kind, ${shard}::int2,
                    count(*) FILTER (WHERE pending_until IS NULL),
                    count(*) FILTER (WHERE pending_until IS NOT NULL) FROM ins
                    WHERE shadowed_by IS NULL
                    GROUP BY petition_id, country, signer_kind
                    ORDER BY petition_id, country, signer_kind
                ON CONFLICT (petition_id, country, signer_kind, shard)
                    DO UPDATE SET count = signature_counts.count + EXCLUDED.count,
                        pending = signature_counts.pending + EXCLUDED.pending
                RETURNING petition_id, country, signer_kind, shard, count, removed, restored,
                    pending, settled
            ), events AS (
                INSERT INTO event_counts (event_id, petition_id, shard, count)
                SELECT event_id, petition_id, ${shard}::int2, count(*) FROM ins
                    WHERE shadowed_by IS NULL AND event_id IS NOT NULL
                    GROUP BY event_id, petition_id
                    ORDER BY event_id
                ON CONFLICT (event_id, shard)
                    DO UPDATE SET count = event_counts.count + EXCLUDED.count
                RETURNING event_id, petition_id, shard, count, removed, restored
            ), hooks AS (
                INSERT INTO webhook_events (kind, petition_id, signatures)
                SELECT 'signature.counted', g.petition_id, g.ids
                FROM (SELECT i.petition_id, array_agg(i.id ORDER BY i.id) AS ids FROM ins i
                      WHERE i.shadowed_by IS NULL AND i.pending_until IS NULL
                        AND EXISTS (SELECT 1 FROM webhooks
                                    WHERE 'signature.counted' = ANY (events))
                      GROUP BY i.petition_id) g
                WHERE EXISTS (SELECT 1 FROM webhooks w
                              WHERE 'signature.counted' = ANY (w.events)
                                AND (w.petition_id IS NULL OR w.petition_id = g.petition_id))
            )
            SELECT NULL::uuid AS event_id, petition_id, country, signer_kind, shard, count,
                removed, restored, pending, settled FROM counts
            UNION ALL
            SELECT event_id, petition_id, NULL, NULL, shard, count, removed, restored, 0, 0
                FROM events"
        )
    })
});

/// Set once on a writer's connection: the writer's statements take arrays of
/// any length and scan no table, so one generic plan fits all; left to
/// choose, Postgres re-plans them for every batch (small arrays make a
/// custom plan look cheaper): 2 ms a batch. The connection never goes back to
/// the pool with it.
const GENERIC_PLANS: &str = "SET plan_cache_mode = force_generic_plan";

/// One statement, so its own transaction: an id assigned, a commit flushed.
const SYNC: &str = "SELECT pg_current_xact_id()";

// Sorted input gives every transaction the same lock order on count rows.
const BUMP_COUNTS: &str = "
    INSERT INTO signature_counts (petition_id, country, signer_kind, shard, count, pending)
    SELECT p, c, k, $4, n, q FROM unnest($1::int8[], $2::text[], $3::text[], $5::int8[],
        $6::int8[]) AS t(p, c, k, n, q) ORDER BY p, c, k
    ON CONFLICT (petition_id, country, signer_kind, shard)
        DO UPDATE SET count = signature_counts.count + EXCLUDED.count,
            pending = signature_counts.pending + EXCLUDED.pending
    RETURNING petition_id, country, signer_kind, shard, count, removed, restored, pending,
        settled";

const BUMP_EVENTS: &str = "
    INSERT INTO event_counts (event_id, petition_id, shard, count)
    SELECT e, p, $3, n FROM unnest($1::uuid[], $2::int8[], $4::int8[]) AS t(e, p, n) ORDER BY e
    ON CONFLICT (event_id, shard) DO UPDATE SET count = event_counts.count + EXCLUDED.count
    RETURNING event_id, petition_id, shard, count, removed, restored";

const EXISTING_IDS: &str =
    "SELECT id, petition_id, identity_key FROM signatures WHERE id = ANY($1::uuid[])";

const ATTEMPTS: usize = 3;

/// After a batch met a duplicate, the next ones go the careful way for a while:
/// duplicates come in bursts (Redis down, a retrying client), and a failed fast
/// insert costs more than a careful one.
const CAREFUL_FOR: Duration = Duration::from_secs(5);

/// How long one attempt at a batch's transaction (or a rider's commit) may
/// take before the writer gives up on its connection. A Postgres that neither
/// answers nor refuses (stopped, or behind a network that drops packets)
/// would otherwise hold every signer of the batch, and every one queued
/// behind it, until it came back: they hear 503 instead, and what the
/// abandoned transaction did is rolled back when its connection closes, or
/// committed unacknowledged, which a retry answers as a duplicate. A batch's
/// commit takes milliseconds (benches/BENCHMARKS.md); `loadtest/chaos
/// pg-freeze` shows the deadline at work.
const WRITE_DEADLINE: Duration = Duration::from_secs(3);

/// Writes batches over one connection of its own; its count shard is its own too.
/// The connection is closed with the writer, never returned to the pool.
pub struct SignatureWriter {
    pool: Pool,
    shard: i16,
    client: Option<Object>,
    /// The fast path's statements (web, offline), prepared on `client`.
    /// Kept here rather than asked of the pool's statement cache each batch,
    /// which hashes the statement's whole text (SipHash over kilobytes: about
    /// 8,000 instructions a batch, benches/BENCHMARKS.md).
    fast_writes: [Option<Statement>; 2],
    careful_until: Option<Instant>,
}

impl SignatureWriter {
    pub(crate) fn new(pool: Pool, shard: i16) -> Self {
        Self {
            pool,
            shard,
            client: None,
            fast_writes: [None, None],
            careful_until: None,
        }
    }

    /// Closes the writer's connection instead of returning it to the pool,
    /// which would hand its session setting to others.
    fn forget_connection(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }

    /// The writer's own connection, opened (and set to generic plans) when
    /// it has none.
    async fn connection(&mut self) -> Result<&mut Object, StoreError> {
        if self.client.is_none() {
            // Held by the writer before the setting is sent, so that a failure
            // (or a cancelled write) closes it rather than pools it.
            // Statements prepared on another connection are not this one's.
            self.fast_writes = [None, None];
            let client = self.client.insert(self.pool.get().await?);
            if let Err(e) = client.batch_execute(GENERIC_PLANS).await {
                self.forget_connection();
                return Err(e.into());
            }
        }
        match self.client.as_mut() {
            Some(client) => Ok(client),
            None => unreachable!("connection set above"),
        }
    }

    /// The fast path's statement for web rows or offline ones, prepared once
    /// on the writer's connection.
    async fn fast_write(&mut self, offline: bool) -> Result<Statement, StoreError> {
        let i = usize::from(offline);
        if let Some(statement) = &self.fast_writes[i] {
            return Ok(statement.clone());
        }
        let statement = self
            .connection()
            .await?
            .prepare_cached(&FAST_WRITES[i])
            .await?;
        self.fast_writes[i] = Some(statement.clone());
        Ok(statement)
    }

    /// Commits a transaction that writes no row but still waits for its
    /// commit record to be flushed, as a batch's commit does: taking a
    /// transaction id is what makes Postgres log and flush the commit. Signers
    /// already known to have signed wait for this when no batch is under way,
    /// so that their answer takes as long as a new signer's.
    pub async fn sync(&mut self) -> Result<(), StoreError> {
        let result = crate::within(WRITE_DEADLINE, async {
            let client = self.connection().await?;
            client.batch_execute(SYNC).await?;
            Ok(())
        })
        .await;
        if result.is_err() {
            self.forget_connection();
        }
        result
    }

    /// Sends pending signers who signed again a new confirmation link, at
    /// most [`crate::MAIL_PER_DAY`] a day each; how many were sent.
    pub async fn resend(&mut self, resends: &[crate::Resend]) -> Result<u64, StoreError> {
        if resends.is_empty() {
            return Ok(0);
        }
        let petitions: Vec<i64> = resends.iter().map(|r| r.petition_id).collect();
        let keys: Vec<&[u8]> = resends.iter().map(|r| &r.identity_key[..]).collect();
        let emails: Vec<Option<&str>> = resends.iter().map(|r| r.email.as_deref()).collect();
        let result = async {
            let client = self.connection().await?;
            let statement = client.prepare_cached(crate::confirmations::RESEND).await?;
            Ok(client
                .execute(
                    &statement,
                    &[&petitions, &keys, &crate::MAIL_PER_DAY, &emails],
                )
                .await?)
        }
        .await;
        if result.is_err() {
            self.forget_connection();
        }
        result
    }

    /// Stores a batch in one transaction. Deadlocks and serialization failures are
    /// retried; any other error leaves the batch uncommitted, and the connection
    /// is dropped so the next batch starts on a fresh one.
    ///
    /// A row's outcome depends only on what is stored, never on which rows
    /// share its batch, so that a client sending rows again (however they are
    /// split over writers) hears the same.
    pub async fn write(&mut self, rows: &[SignatureRow]) -> Result<BatchOutcome, StoreError> {
        // Duplicates within the batch never reach Postgres: the first one
        // stands, and the others' own ids are looked up (one may be stored from
        // an earlier sending). A row sent twice (same id, same signer) shares
        // the first's fate.
        let mut early: Vec<Option<Early>> = vec![None; rows.len()];
        let mut identities: HashMap<(i64, [u8; 32]), usize> = HashMap::with_capacity(rows.len());
        let mut ids: HashMap<Uuid, usize> = HashMap::with_capacity(rows.len());
        let mut fresh = Vec::with_capacity(rows.len());
        let mut probes = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            if let Some(&first) = ids.get(&r.id) {
                let same = rows[first].petition_id == r.petition_id
                    && rows[first].identity_key == r.identity_key;
                early[i] = Some(if same {
                    Early::Echo(first)
                } else {
                    Early::IdTaken
                });
                continue;
            }
            ids.insert(r.id, i);
            match identities.entry((r.petition_id, r.identity_key)) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(i);
                    fresh.push(r);
                }
                std::collections::hash_map::Entry::Occupied(o) => {
                    early[i] = Some(Early::DuplicateOf(*o.get(), probes.len()));
                    probes.push(r);
                }
            }
        }
        let mut careful = self
            .careful_until
            .is_some_and(|until| Instant::now() < until);
        let mut attempt = 1;
        let mut retries = Vec::new();
        let (stored, probed) = loop {
            match crate::within(WRITE_DEADLINE, self.try_write(&fresh, &probes, careful)).await {
                Ok(stored) => break stored,
                Err(e) if e.is_unique_violation() && !careful => {
                    careful = true;
                    self.careful_until = Some(Instant::now() + CAREFUL_FOR);
                    retries.push(Retry::Duplicate);
                }
                Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                    warn!(error = %e, attempt, "retrying signature batch");
                    retries.push(if e.is_deadlock() {
                        Retry::Deadlock
                    } else {
                        Retry::Serialization
                    });
                    attempt += 1;
                }
                Err(e) => {
                    self.forget_connection();
                    return Err(e);
                }
            }
        };
        // `None`: to be written again, because the row it deferred to could
        // not be stored (its id was another signature's).
        let mut stored_outcomes = stored.rows.into_iter();
        let mut resolved: Vec<Option<RowOutcome>> = Vec::with_capacity(rows.len());
        for e in early {
            let outcome = match e {
                None => Some(stored_outcomes.next().unwrap_or(RowOutcome::Duplicate)),
                Some(Early::IdTaken) => Some(RowOutcome::IdReused),
                // The first is earlier in the batch, so already resolved.
                Some(Early::Echo(first)) => resolved[first].map(|o| match o {
                    RowOutcome::Inserted | RowOutcome::Retried => RowOutcome::Retried,
                    other => other,
                }),
                Some(Early::DuplicateOf(first, probe)) => match probed[probe] {
                    Some(found) => Some(found),
                    None if matches!(resolved[first], Some(RowOutcome::IdReused) | None) => None,
                    None => Some(RowOutcome::Duplicate),
                },
            };
            resolved.push(outcome);
        }
        let mut outcome = BatchOutcome {
            rows: Vec::with_capacity(rows.len()),
            cells: stored.cells,
            event_cells: stored.event_cells,
            retries,
        };
        let again: Vec<SignatureRow> = rows
            .iter()
            .zip(&resolved)
            .filter(|(_, o)| o.is_none())
            .map(|(r, _)| r.clone())
            .collect();
        let mut rewritten = if again.is_empty() {
            Vec::new().into_iter()
        } else {
            // Each round stores or settles at least one row, so this ends.
            let second = Box::pin(self.write(&again)).await?;
            outcome.cells.extend(second.cells);
            outcome.event_cells.extend(second.event_cells);
            outcome.retries.extend(second.retries);
            second.rows.into_iter()
        };
        outcome.rows = resolved
            .into_iter()
            .map(|o| {
                o.or_else(|| rewritten.next())
                    .unwrap_or(RowOutcome::Duplicate)
            })
            .collect();
        Ok(outcome)
    }

    /// Inserts `rows`, and says of each of `probes` (rows held back as
    /// duplicates within the batch) whether its own id is stored: `Retried`
    /// for the same signer, `IdReused` for another, `None` when it is not.
    async fn try_write(
        &mut self,
        rows: &[&SignatureRow],
        probes: &[&SignatureRow],
        careful: bool,
    ) -> Result<(BatchOutcome, Vec<Option<RowOutcome>>), StoreError> {
        let shard = self.shard;
        let offline = rows.iter().any(|r| r.channel != Channel::Web);
        // Rows go to Postgres in the order of their signers' keys, in every
        // batch of every writer. Inserting a key another open transaction
        // has inserted waits for it to end (the unique index); two batches
        // sharing signers in opposite orders (a replayed form, two writers
        // taking the same crowd) each waited on the other until Postgres's
        // deadlock_timeout (1 s) broke the tie and one was written again.
        // In one order, a batch only ever waits on a key below the one it is
        // inserting, which the other already holds: no cycle can form. The
        // count rows were already taken in sorted order, and each writer
        // bumps a shard of its own. What is left is rows whose client-chosen
        // ids collide while their signers differ (a client reusing an id):
        // rare, answered `IdReused`, and still retried if they ever deadlock.
        let mut ordered = rows.to_vec();
        ordered.sort_unstable_by(|a, b| {
            (a.petition_id, &a.identity_key).cmp(&(b.petition_id, &b.identity_key))
        });
        let columns = Columns::of(&ordered);
        let arrays = &columns.params(offline)[..];
        // The fast path, nearly every batch: nothing to look up afterwards.
        if !careful && !probes.iter().any(|r| r.client_supplied) {
            let write = self.fast_write(offline).await?;
            let client = self.connection().await?;
            let mut params = arrays.to_vec();
            params.push(&shard);
            let mut outcome = BatchOutcome {
                rows: vec![RowOutcome::Inserted; rows.len()],
                cells: Vec::new(),
                event_cells: Vec::new(),
                retries: Vec::new(),
            };
            for row in client.query(&write, &params).await? {
                if row.try_get::<_, Option<Uuid>>("event_id")?.is_some() {
                    outcome.event_cells.push(EventCell::try_from(row)?);
                } else {
                    outcome.cells.push(CountCell::try_from(row)?);
                }
            }
            return Ok((outcome, vec![None; probes.len()]));
        }

        let client = self.connection().await?;
        let insert = client
            .prepare_cached(&CAREFUL_INSERTS[usize::from(offline)])
            .await?;
        let bumps = Bumps {
            counts: client.prepare_cached(BUMP_COUNTS).await?,
            events: client.prepare_cached(BUMP_EVENTS).await?,
            shard,
        };
        let tx = client.transaction().await?;
        let inserted: HashSet<Uuid> = tx
            .query(&insert, arrays)
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let stored = || rows.iter().copied().filter(|r| inserted.contains(&r.id));
        let tallies = Tallies::of(stored());
        let cells = tallies.bump_counts(&*tx, &bumps).await?;
        let event_cells = tallies.bump_events(&*tx, &bumps).await?;
        let counted: Vec<(i64, Uuid)> = stored()
            .filter(|r| r.shadowed_by.is_none() && r.confirmation.is_none())
            .map(|r| (r.petition_id, r.id))
            .collect();
        crate::webhooks::notify(&*tx, "signature.counted", &counted).await?;

        // A client id that was not inserted is either a retry (same signer) or an
        // id the client reused for someone else; only the latter is an error.
        let retried: Vec<Uuid> = rows
            .iter()
            .filter(|r| !inserted.contains(&r.id))
            .chain(probes)
            .filter(|r| r.client_supplied)
            .map(|r| r.id)
            .collect();
        let mut reused = HashSet::new();
        let mut again = HashSet::new();
        if !retried.is_empty() {
            // A lookup by key, planned for the ids at hand.
            tx.batch_execute("SET LOCAL plan_cache_mode = auto").await?;
            let existing = tx.prepare_cached(EXISTING_IDS).await?;
            for row in tx.query(&existing, &[&retried]).await? {
                let id: Uuid = row.get(0);
                let petition: i64 = row.get(1);
                // None once withdrawn: then the id is no longer this signer's.
                let key: Option<&[u8]> = row.get(2);
                let same = rows.iter().chain(probes).any(|r| {
                    r.id == id && r.petition_id == petition && key == Some(&r.identity_key[..])
                });
                if same {
                    again.insert(id);
                } else {
                    reused.insert(id);
                }
            }
        }
        tx.commit().await?;

        let outcomes = rows
            .iter()
            .map(|r| {
                if inserted.contains(&r.id) {
                    RowOutcome::Inserted
                } else if reused.contains(&r.id) {
                    RowOutcome::IdReused
                } else if again.contains(&r.id) {
                    RowOutcome::Retried
                } else {
                    RowOutcome::Duplicate
                }
            })
            .collect();
        let probed = probes
            .iter()
            .map(|r| {
                if reused.contains(&r.id) {
                    Some(RowOutcome::IdReused)
                } else if again.contains(&r.id) {
                    Some(RowOutcome::Retried)
                } else {
                    None
                }
            })
            .collect();
        Ok((
            BatchOutcome {
                rows: outcomes,
                cells,
                event_cells,
                retries: Vec::new(),
            },
            probed,
        ))
    }
}

/// The statements that add a batch to its writer's count shard.
struct Bumps {
    counts: Statement,
    events: Statement,
    shard: i16,
}

/// A batch as arrays, one per column.
struct Columns<'a> {
    ids: Vec<Uuid>,
    petitions: Vec<i64>,
    keys: Vec<&'a [u8]>,
    names: Vec<&'a str>,
    emails: Vec<Option<&'a str>>,
    countries: Vec<&'a str>,
    postal: Vec<Option<&'a str>>,
    cities: Vec<Option<&'a str>>,
    kinds: Vec<&'a str>,
    orgs: Vec<Option<&'a str>>,
    consent: Vec<bool>,
    locales: Vec<Option<&'a str>>,
    channels: Vec<&'a str>,
    addresses: Vec<Option<IpAddr>>,
    shadowed: Vec<Option<i64>>,
    pending: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    events: Vec<Option<Uuid>>,
    devices: Vec<Option<Uuid>>,
    signed: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    domains: Vec<Option<&'a str>>,
    sealed: Vec<Option<&'a [u8]>>,
}

impl<'a> Columns<'a> {
    fn of(rows: &[&'a SignatureRow]) -> Self {
        Self {
            ids: rows.iter().map(|r| r.id).collect(),
            petitions: rows.iter().map(|r| r.petition_id).collect(),
            keys: rows.iter().map(|r| &r.identity_key[..]).collect(),
            names: rows.iter().map(|r| r.full_name.as_str()).collect(),
            emails: rows.iter().map(|r| r.email.as_deref()).collect(),
            countries: rows.iter().map(|r| r.country.as_str()).collect(),
            postal: rows.iter().map(|r| r.postal_code.as_deref()).collect(),
            cities: rows.iter().map(|r| r.city.as_deref()).collect(),
            kinds: rows.iter().map(|r| r.kind.as_str()).collect(),
            orgs: rows.iter().map(|r| r.organization.as_deref()).collect(),
            consent: rows.iter().map(|r| r.consent_updates).collect(),
            locales: rows.iter().map(|r| r.locale.as_deref()).collect(),
            channels: rows.iter().map(|r| r.channel.as_str()).collect(),
            addresses: rows.iter().map(|r| r.client_address).collect(),
            shadowed: rows.iter().map(|r| r.shadowed_by).collect(),
            pending: rows
                .iter()
                .map(|r| r.confirmation.as_ref().map(|c| c.pending_until))
                .collect(),
            events: rows.iter().map(|r| r.event_id).collect(),
            devices: rows.iter().map(|r| r.device_id).collect(),
            signed: rows.iter().map(|r| r.signed_at).collect(),
            domains: rows.iter().map(|r| r.email_domain.as_deref()).collect(),
            sealed: rows.iter().map(|r| r.sealed.as_deref()).collect(),
        }
    }

    /// In the order of `COLUMNS` (web) or `OFFLINE_COLUMNS`.
    fn params(&self, offline: bool) -> Vec<&(dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &self.ids,
            &self.petitions,
            &self.keys,
            &self.names,
            &self.emails,
            &self.countries,
            &self.postal,
            &self.cities,
            &self.kinds,
            &self.orgs,
            &self.consent,
            &self.locales,
            &self.channels,
            &self.addresses,
            &self.shadowed,
        ];
        if offline {
            params.extend::<[&(dyn ToSql + Sync); 4]>([
                &self.events,
                &self.devices,
                &self.signed,
                &self.pending,
            ]);
        } else {
            params.push(&self.pending);
        }
        params.extend::<[&(dyn ToSql + Sync); 2]>([&self.domains, &self.sealed]);
        debug_assert_eq!(
            params.len(),
            if offline { OFFLINE_PARAMS } else { WEB_PARAMS }
        );
        params
    }
}

/// What a batch adds to the counts and the events' tallies: its stored rows
/// but the shadow-accepted ones, which are stored and never counted.
struct Tallies<'a> {
    /// Signatures counted, and stored pending, per cell.
    counts: BTreeMap<(i64, &'a str, &'a str), (i64, i64)>,
    events: BTreeMap<(Uuid, i64), i64>,
}

impl<'a> Tallies<'a> {
    fn of(stored: impl Iterator<Item = &'a SignatureRow>) -> Self {
        let mut tallies = Self {
            counts: BTreeMap::new(),
            events: BTreeMap::new(),
        };
        for r in stored.filter(|r| r.shadowed_by.is_none()) {
            let cell = tallies
                .counts
                .entry((r.petition_id, r.country.as_str(), r.kind.as_str()))
                .or_default();
            if r.confirmation.is_some() {
                cell.1 += 1;
            } else {
                cell.0 += 1;
            }
            if let Some(event) = r.event_id {
                *tallies.events.entry((event, r.petition_id)).or_default() += 1;
            }
        }
        tallies
    }

    /// Bumps the writer's count cells (sent when first polled; nothing is
    /// sent when the batch counts nothing).
    async fn bump_counts(
        &self,
        client: &impl GenericClient,
        bumps: &Bumps,
    ) -> Result<Vec<CountCell>, StoreError> {
        if self.counts.is_empty() {
            return Ok(Vec::new());
        }
        let p: Vec<i64> = self.counts.keys().map(|k| k.0).collect();
        let c: Vec<&str> = self.counts.keys().map(|k| k.1).collect();
        let k: Vec<&str> = self.counts.keys().map(|k| k.2).collect();
        let n: Vec<i64> = self.counts.values().map(|v| v.0).collect();
        let q: Vec<i64> = self.counts.values().map(|v| v.1).collect();
        client
            .query(&bumps.counts, &[&p, &c, &k, &bumps.shard, &n, &q])
            .await?
            .into_iter()
            .map(CountCell::try_from)
            .collect()
    }

    async fn bump_events(
        &self,
        client: &impl GenericClient,
        bumps: &Bumps,
    ) -> Result<Vec<EventCell>, StoreError> {
        if self.events.is_empty() {
            return Ok(Vec::new());
        }
        let e: Vec<Uuid> = self.events.keys().map(|k| k.0).collect();
        let p: Vec<i64> = self.events.keys().map(|k| k.1).collect();
        let n: Vec<i64> = self.events.values().copied().collect();
        client
            .query(&bumps.events, &[&e, &p, &bumps.shard, &n])
            .await?
            .into_iter()
            .map(EventCell::try_from)
            .collect()
    }
}

impl Drop for SignatureWriter {
    fn drop(&mut self) {
        self.forget_connection();
    }
}

/// What [`SignatureWriter::write`] knows of a row before asking Postgres.
#[derive(Debug, Clone, Copy)]
enum Early {
    /// Its id is an earlier row's, for another signer.
    IdTaken,
    /// The same row as the one at this earlier index.
    Echo(usize),
    /// The same signer as the row at this earlier index, under its own id:
    /// which probe looks that id up.
    DuplicateOf(usize, usize),
}

/// Which of a petition's signatures an organizer reads, a page at a time.
#[derive(Debug, Clone, Default)]
pub struct SignatureFilter {
    /// Only these countries (a coordinator's scope, or a filter); `None`: all.
    pub countries: Option<Vec<String>>,
    pub channel: Option<Channel>,
    pub signed_after: Option<chrono::DateTime<chrono::Utc>>,
    pub signed_before: Option<chrono::DateTime<chrono::Utc>>,
    /// The last receipt of the previous page.
    pub after: Option<Uuid>,
    pub limit: i64,
}

/// One stored signature as organizers see it.
#[derive(Debug, Clone)]
pub struct SignatureRecord {
    pub id: Uuid,
    /// Empty once withdrawn.
    pub full_name: String,
    pub email: Option<String>,
    pub country: String,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub kind: String,
    pub organization: Option<String>,
    pub consent_updates: bool,
    pub locale: Option<String>,
    pub channel: String,
    pub signed_at: chrono::DateTime<chrono::Utc>,
    /// `counted`, `pending` (awaiting its signer's confirmation), `shadowed`,
    /// `invalidated`, or `withdrawn` (a tombstone: no personal data left).
    pub state: &'static str,
}

impl crate::Store {
    /// Which of these receipts are stored (a client sending again).
    pub async fn stored_ids(&self, ids: &[Uuid]) -> Result<HashSet<Uuid>, StoreError> {
        let rows = self
            .pool
            .get()
            .await?
            .query(
                "SELECT id FROM signatures WHERE id = ANY($1::uuid[])",
                &[&ids],
            )
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Which of these identities have signed the petition, and under which
    /// receipt (for a dry run).
    pub async fn stored_identities(
        &self,
        petition_id: i64,
        keys: &[[u8; 32]],
    ) -> Result<HashMap<[u8; 32], Uuid>, StoreError> {
        let keys: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        let rows = self
            .pool
            .get()
            .await?
            .query(
                "SELECT identity_key, id FROM signatures
                 WHERE petition_id = $1 AND identity_key = ANY($2::bytea[])",
                &[&petition_id, &keys],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let key: &[u8] = r.try_get(0)?;
                let key: [u8; 32] = key.try_into().map_err(|_| {
                    StoreError::Config("stored identity key is not 32 bytes".into())
                })?;
                Ok((key, r.try_get(1)?))
            })
            .collect()
    }

    /// A page of a petition's signatures in receipt order.
    pub async fn signatures_page(
        &self,
        petition_id: i64,
        f: &SignatureFilter,
    ) -> Result<Vec<SignatureRecord>, StoreError> {
        let rows = self
            .pool
            .get()
            .await?
            .query(
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM signatures
                 WHERE petition_id = $1
                   AND ($2::text[] IS NULL OR country = ANY($2))
                   AND ($3::text IS NULL OR channel = $3)
                   AND ($4::timestamptz IS NULL OR signed_at >= $4)
                   AND ($5::timestamptz IS NULL OR signed_at < $5)
                   AND ($6::uuid IS NULL OR id > $6)
                 ORDER BY id LIMIT $7"
                ),
                &[
                    &petition_id,
                    &f.countries,
                    &f.channel.map(|c| c.as_str()),
                    &f.signed_after,
                    &f.signed_before,
                    &f.after,
                    &f.limit,
                ],
            )
            .await?;
        rows.iter().map(SignatureRecord::from_row).collect()
    }

    /// Counted signatures of a petition (neither pending, shadowed,
    /// invalidated nor withdrawn), in receipt order, `limit` from `offset`,
    /// in `countries` when given; and how many there are in all. For APIs
    /// that page by number (OSDI).
    pub async fn counted_signatures(
        &self,
        petition_id: i64,
        countries: Option<&[String]>,
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<SignatureRecord>), StoreError> {
        let client = self.pool.get().await?;
        let countries = countries.map(<[String]>::to_vec);
        let total: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM signatures WHERE {COUNTED_IN}"),
                &[&petition_id, &countries],
            )
            .await?
            .try_get(0)?;
        let rows = client
            .query(
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM signatures WHERE {COUNTED_IN}
                     ORDER BY id LIMIT $3 OFFSET $4"
                ),
                &[&petition_id, &countries, &limit, &offset],
            )
            .await?;
        Ok((
            total,
            rows.iter()
                .map(SignatureRecord::from_row)
                .collect::<Result<_, _>>()?,
        ))
    }

    /// One counted signature of a petition, in `countries` when given.
    pub async fn counted_signature(
        &self,
        petition_id: i64,
        countries: Option<&[String]>,
        receipt: Uuid,
    ) -> Result<Option<SignatureRecord>, StoreError> {
        let countries = countries.map(<[String]>::to_vec);
        self.pool
            .get()
            .await?
            .query_opt(
                &format!("SELECT {RECORD_COLUMNS} FROM signatures WHERE {COUNTED_IN} AND id = $3"),
                &[&petition_id, &countries, &receipt],
            )
            .await?
            .as_ref()
            .map(SignatureRecord::from_row)
            .transpose()
    }
}

/// What [`SignatureRecord::from_row`] reads.
const RECORD_COLUMNS: &str = "id, full_name, email, country, postal_code, city, signer_kind,
    organization, consent_updates, locale, channel, signed_at,
    shadowed_by IS NOT NULL AS shadowed, invalidated_by IS NOT NULL AS invalid,
    pending_until IS NOT NULL AS pending, withdrawn_at IS NOT NULL AS withdrawn";

/// Petition `$1`'s counted signatures, in the countries `$2` (all when null).
const COUNTED_IN: &str = "petition_id = $1 AND ($2::text[] IS NULL OR country = ANY ($2))
    AND shadowed_by IS NULL AND invalidated_by IS NULL AND pending_until IS NULL
    AND withdrawn_at IS NULL";

impl SignatureRecord {
    fn from_row(r: &tokio_postgres::Row) -> Result<Self, StoreError> {
        let state = if r.try_get("withdrawn")? {
            "withdrawn"
        } else if r.try_get("shadowed")? {
            "shadowed"
        } else if r.try_get("invalid")? {
            "invalidated"
        } else if r.try_get("pending")? {
            "pending"
        } else {
            "counted"
        };
        Ok(Self {
            id: r.try_get("id")?,
            full_name: r.try_get("full_name")?,
            email: r.try_get("email")?,
            country: r.try_get("country")?,
            postal_code: r.try_get("postal_code")?,
            city: r.try_get("city")?,
            kind: r.try_get("signer_kind")?,
            organization: r.try_get("organization")?,
            consent_updates: r.try_get("consent_updates")?,
            locale: r.try_get("locale")?,
            channel: r.try_get("channel")?,
            signed_at: r.try_get("signed_at")?,
            state,
        })
    }
}
