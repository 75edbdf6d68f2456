//! The batch writer against the real Postgres: its fast path, and the careful
//! path it falls back to when another transaction races it on an identity.

use std::time::Duration;

mod common;

use common::setup;
use undersigned_domain::{Channel, Country, SignerKind};
use undersigned_store::{Retry, RowOutcome, SignatureRow};
use uuid::Uuid;

fn row(petition_id: i64, key: u8, id: Uuid, client_supplied: bool) -> SignatureRow {
    SignatureRow {
        id,
        client_supplied,
        petition_id,
        identity_key: [key; 32],
        full_name: format!("Signer {key}"),
        email: Some(format!("signer{key}@example.org")),
        country: Country::parse("NL").unwrap(),
        postal_code: None,
        city: None,
        kind: SignerKind::Person,
        organization: None,
        consent_updates: false,
        locale: None,
        channel: Channel::Web,
        client_address: Some("192.0.2.1".parse().unwrap()),
        shadowed_by: None,
        signed_at: None,
        event_id: None,
        device_id: None,
        confirmation: None,
        sealed: None,
        email_domain: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_inside_a_batch_and_retried_ids() {
    let (db, store, p) = setup().await;
    let mut writer = store.signature_writer(3);
    let retried = Uuid::new_v4();
    let first = writer
        .write(&[
            row(p, 1, Uuid::now_v7(), false),
            row(p, 1, Uuid::now_v7(), false),
            row(p, 2, retried, true),
        ])
        .await
        .unwrap();
    assert_eq!(
        first.rows,
        vec![
            RowOutcome::Inserted,
            RowOutcome::Duplicate,
            RowOutcome::Inserted
        ]
    );
    assert_eq!(first.cells.len(), 1);
    assert_eq!((first.cells[0].shard, first.cells[0].count), (3, 2));

    let second = writer
        .write(&[
            row(p, 2, retried, true),
            row(p, 3, retried, true),
            row(p, 4, Uuid::now_v7(), false),
        ])
        .await
        .unwrap();
    assert_eq!(
        second.rows,
        vec![
            RowOutcome::Retried,
            RowOutcome::IdReused,
            RowOutcome::Inserted
        ]
    );
    assert_eq!(second.cells[0].count, 3);
    db.drop().await;
}

/// An event under way at petition `p`.
async fn event_now(sql: &tokio_postgres::Client, p: i64) -> Uuid {
    let event = Uuid::now_v7();
    sql.execute(
        "INSERT INTO events (id, petition_id, name, starts_at, ends_at)
         VALUES ($1, $2, 'Stand', now() - interval '1 hour', now() + interval '1 hour')",
        &[&event, &p],
    )
    .await
    .unwrap();
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_sent_twice_shares_its_fate_and_an_event_tallies_what_is_new() {
    let (db, store, p) = setup().await;
    let sql = db.sql().await;
    let event = event_now(&sql, p).await;
    let at_event = |key: u8, id: Uuid| SignatureRow {
        event_id: Some(event),
        channel: Channel::Event,
        email: None,
        signed_at: Some(chrono::Utc::now() - chrono::Duration::minutes(5)),
        ..row(p, key, id, true)
    };
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut writer = store.signature_writer(1);
    let first = writer
        .write(&[
            at_event(1, a),
            at_event(1, a),
            at_event(1, b),
            at_event(2, b),
        ])
        .await
        .unwrap();
    assert_eq!(
        first.rows,
        vec![
            RowOutcome::Inserted,
            RowOutcome::Retried,
            RowOutcome::Duplicate,
            RowOutcome::IdReused
        ]
    );
    assert_eq!(first.event_cells.len(), 1);
    assert_eq!(
        (first.event_cells[0].event_id, first.event_cells[0].count),
        (event, 1)
    );
    // Sent again through another writer: the same fates, nothing counted twice.
    let again = store
        .signature_writer(2)
        .write(&[at_event(1, a), at_event(1, a), at_event(1, b)])
        .await
        .unwrap();
    assert_eq!(
        again.rows,
        vec![
            RowOutcome::Retried,
            RowOutcome::Retried,
            RowOutcome::Duplicate
        ]
    );
    assert!(again.cells.is_empty() && again.event_cells.is_empty());
    let tallies = store.event_cells().await.unwrap();
    assert_eq!(tallies.iter().map(|c| c.count).sum::<i64>(), 1);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_hears_the_same_however_its_batch_was_split_over_writers() {
    let (db, store, p) = setup().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    // First sending: the signer's two signatures went to two writers, and
    // the second one's batch committed first.
    let mut one = store.signature_writer(1);
    let mut two = store.signature_writer(2);
    assert_eq!(
        two.write(&[row(p, 1, b, true)]).await.unwrap().rows,
        [RowOutcome::Inserted]
    );
    assert_eq!(
        one.write(&[row(p, 1, a, true)]).await.unwrap().rows,
        [RowOutcome::Duplicate]
    );
    // Sent again in one batch: the same answers (b's is its retry).
    assert_eq!(
        one.write(&[row(p, 1, a, true), row(p, 1, b, true)])
            .await
            .unwrap()
            .rows,
        [RowOutcome::Duplicate, RowOutcome::Retried]
    );

    // A signer's first row names another's signature: their second row, held
    // back as a duplicate of it, is stored after all.
    let fresh = Uuid::now_v7();
    let outcome = one
        .write(&[
            row(p, 2, b, true),
            row(p, 2, fresh, true),
            row(p, 2, fresh, true),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcome.rows,
        [
            RowOutcome::IdReused,
            RowOutcome::Inserted,
            RowOutcome::Retried
        ]
    );
    assert_eq!(outcome.cells.iter().map(|c| c.count).max(), Some(1));
    let stored: i64 = db
        .sql()
        .await
        .query_one("SELECT count(*) FROM signatures", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 2);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_racing_transaction_sends_the_batch_down_the_careful_path() {
    let (db, store, p) = setup().await;

    // Another transaction holds identity 7, uncommitted.
    let mut other = db.sql().await;
    let tx = other.transaction().await.unwrap();
    tx.execute(
        "INSERT INTO signatures (id, petition_id, identity_key, full_name, email, country,
             signer_kind, consent_updates, channel)
         VALUES ($1, $2, $3, 'Racer', 'racer@example.org', 'NL', 'person', false, 'web')",
        &[&Uuid::now_v7(), &p, &vec![7u8; 32]],
    )
    .await
    .unwrap();

    // The writer's plain insert waits on that identity, then fails when it commits.
    let mut writer = store.signature_writer(0);
    let batch = vec![
        row(p, 7, Uuid::now_v7(), false),
        row(p, 8, Uuid::now_v7(), false),
    ];
    let write = tokio::spawn(async move { writer.write(&batch).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !write.is_finished(),
        "the writer waits for the racing transaction"
    );
    tx.commit().await.unwrap();

    let outcome = write.await.unwrap().unwrap();
    assert_eq!(
        outcome.rows,
        vec![RowOutcome::Duplicate, RowOutcome::Inserted]
    );
    assert_eq!(outcome.cells[0].count, 1);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_petition_with_signatures_cannot_be_deleted() {
    let (db, store, p) = setup().await;
    store
        .signature_writer(0)
        .write(&[row(p, 1, Uuid::now_v7(), false)])
        .await
        .unwrap();
    let sql = db.sql().await;
    let e = sql
        .execute("DELETE FROM petitions WHERE id = $1", &[&p])
        .await
        .unwrap_err();
    assert!(
        e.as_db_error()
            .unwrap()
            .message()
            .contains("close it instead")
    );
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_collected_offline_record_when_they_arrived_and_web_ones_do_not() {
    let (db, store, p) = setup().await;
    let paper = |key: u8| SignatureRow {
        channel: Channel::Paper,
        client_address: None,
        ..row(p, key, Uuid::now_v7(), false)
    };
    let mut writer = store.signature_writer(0);
    // An undated paper form alone, then one beside a web signature.
    writer.write(&[paper(1)]).await.unwrap();
    writer
        .write(&[paper(2), row(p, 3, Uuid::now_v7(), false)])
        .await
        .unwrap();
    let got: Vec<(String, bool)> = db
        .sql()
        .await
        .query(
            "SELECT channel, received_at IS NOT NULL FROM signatures ORDER BY identity_key",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        got,
        [
            ("paper".to_owned(), true),
            ("paper".to_owned(), true),
            ("web".to_owned(), false)
        ]
    );
    db.drop().await;
}

/// A writer's connection carries a session setting of its own (generic
/// plans), so it is closed with the writer rather than handed back to the
/// pool for other queries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_closes_its_connection_rather_than_return_it_to_the_pool() {
    let (db, store, p) = setup().await;
    let sql = db.sql().await;
    // The other connections to the database, once there are `want` (closing
    // ones take a moment to go), or after five seconds.
    let connections = |want: i64| {
        let sql = &sql;
        async move {
            let mut seen = -1;
            for _ in 0..50 {
                seen = sql
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity
                         WHERE datname = current_database() AND pid <> pg_backend_pid()
                             AND backend_type = 'client backend'",
                        &[],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if seen == want {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            seen
        }
    };
    // Creating the petition left one connection idle in the pool (the
    // migration's own may still be closing).
    assert_eq!(connections(1).await, 1);
    let mut writer = store.signature_writer(0);
    let outcome = writer
        .write(&[row(p, 1, Uuid::now_v7(), false)])
        .await
        .unwrap();
    assert_eq!(outcome.rows, vec![RowOutcome::Inserted]);
    drop(writer);
    assert_eq!(
        connections(0).await,
        0,
        "the writer's connection is closed, not pooled"
    );
    // The pool opens a fresh one when asked.
    store.ping().await.unwrap();
    db.drop().await;
}

/// The fast path's one statement, with web and event rows in one batch:
/// every row stored, the counts by country and the event's tally bumped in
/// the writer's own shard, and both kinds of cells told apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_statement_stores_a_mixed_batch_and_bumps_counts_and_tallies() {
    let (db, store, p) = setup().await;
    let sql = db.sql().await;
    let event = event_now(&sql, p).await;
    let at_event = |key: u8| SignatureRow {
        event_id: Some(event),
        channel: Channel::Event,
        email: None,
        ..row(p, key, Uuid::now_v7(), false)
    };
    let in_germany = |key: u8| SignatureRow {
        country: Country::parse("DE").unwrap(),
        ..row(p, key, Uuid::now_v7(), false)
    };
    let batch = vec![
        row(p, 1, Uuid::now_v7(), false),
        at_event(2),
        in_germany(3),
        at_event(4),
        in_germany(5),
    ];
    let outcome = store.signature_writer(3).write(&batch).await.unwrap();
    assert_eq!(outcome.rows, vec![RowOutcome::Inserted; 5]);
    let mut counts: Vec<_> = outcome
        .cells
        .iter()
        .map(|c| (c.country.as_str().to_owned(), c.shard, c.count))
        .collect();
    counts.sort();
    assert_eq!(counts, vec![("DE".into(), 3, 2), ("NL".into(), 3, 3)]);
    assert_eq!(outcome.event_cells.len(), 1);
    let cell = &outcome.event_cells[0];
    assert_eq!(
        (cell.event_id, cell.petition_id, cell.shard, cell.count),
        (event, p, 3, 2)
    );
    let stored: i64 = sql
        .query_one(
            "SELECT count(*) FROM signatures WHERE petition_id = $1 AND event_id IS NOT DISTINCT FROM $2",
            &[&p, &Some(event)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 2);
    db.drop().await;
}

/// A web signature that awaits its signer's confirmation stays pending, its
/// message due on its row, whatever shares its batch: a tablet's signature
/// sends the batch down the offline statement, and a retried id down the
/// careful one. Before, the offline statement had no place for it, and
/// stored it counted, unconfirmed, with no message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_web_signature_stays_pending_beside_a_tablets_and_on_the_careful_path() {
    let (db, store, p) = setup().await;
    let sql = db.sql().await;
    let event = event_now(&sql, p).await;
    let pending = |key: u8, client_supplied: bool| SignatureRow {
        confirmation: Some(undersigned_store::Confirmation {
            pending_until: chrono::Utc::now() + chrono::Duration::days(7),
        }),
        ..row(p, key, Uuid::now_v7(), client_supplied)
    };
    let at_event = SignatureRow {
        event_id: Some(event),
        channel: Channel::Event,
        email: None,
        ..row(p, 2, Uuid::now_v7(), false)
    };
    let mut writer = store.signature_writer(0);
    let outcome = writer.write(&[pending(1, false), at_event]).await.unwrap();
    let cell = &outcome.cells[0];
    assert_eq!(
        (cell.count, cell.pending),
        (1, 1),
        "the tablet's counts; the web one waits"
    );
    // A signer twice in one batch, the second time with the client's own id
    // (which may name a stored signature): the careful path.
    let outcome = writer
        .write(&[pending(3, false), pending(3, true)])
        .await
        .unwrap();
    assert_eq!(outcome.rows, [RowOutcome::Inserted, RowOutcome::Duplicate]);
    let got: Vec<(String, bool, bool)> = sql
        .query(
            "SELECT channel, pending_until IS NOT NULL, mail_due IS NOT NULL FROM signatures
             ORDER BY identity_key",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let web = ("web".to_owned(), true, true);
    assert_eq!(got, [web.clone(), ("event".to_owned(), false, false), web]);
    let counted: i64 = sql
        .query_one("SELECT sum(count)::int8 FROM signature_counts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(counted, 1, "only the tablet's signature counts");
    db.drop().await;
}

/// Signer `n` of a crowd larger than [`row`]'s 256.
fn signer(petition_id: i64, n: u32) -> SignatureRow {
    let mut key = [0u8; 32];
    key[..4].copy_from_slice(&n.to_be_bytes());
    SignatureRow {
        identity_key: key,
        full_name: format!("Signer {n}"),
        email: Some(format!("signer{n}@example.org")),
        ..row(petition_id, 0, Uuid::now_v7(), false)
    }
}

/// Two writers take the same 1,000 signers at once, in opposite orders (a
/// replayed form, each copy under its own receipt), round after round: each
/// signer is stored once and counted once, and no batch ever waits for
/// Postgres to break a deadlock. Without rows in key order, the two inserts
/// met in the middle, each holding keys the other wanted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_racing_on_the_same_signers_never_deadlock() {
    const CROWD: u32 = 1_000;
    const ROUNDS: u32 = 6;
    let (db, store, p) = setup().await;
    let (mut a, mut b) = (store.signature_writer(1), store.signature_writer(2));
    for round in 0..ROUNDS {
        let crowd: Vec<SignatureRow> = (0..CROWD).map(|n| signer(p, round * CROWD + n)).collect();
        let replayed: Vec<SignatureRow> = crowd
            .iter()
            .rev()
            .map(|r| SignatureRow {
                id: Uuid::now_v7(),
                ..r.clone()
            })
            .collect();
        let (first, second) = tokio::join!(a.write(&crowd), b.write(&replayed));
        let (first, second) = (first.unwrap(), second.unwrap());
        for outcome in [&first, &second] {
            assert!(
                !outcome
                    .retries
                    .iter()
                    .any(|r| matches!(r, Retry::Deadlock | Retry::Serialization)),
                "round {round}: {:?}",
                outcome.retries
            );
        }
        let n = CROWD as usize;
        for i in 0..n {
            let stored = [first.rows[i], second.rows[n - 1 - i]];
            assert_eq!(
                stored
                    .iter()
                    .filter(|o| **o == RowOutcome::Inserted)
                    .count(),
                1,
                "round {round}, signer {i}: {stored:?}"
            );
            assert!(stored.contains(&RowOutcome::Duplicate));
        }
    }
    let sql = db.sql().await;
    let stored: i64 = sql
        .query_one(
            "SELECT count(*) FROM signatures WHERE petition_id = $1",
            &[&p],
        )
        .await
        .unwrap()
        .get(0);
    let counted: i64 = sql
        .query_one(
            "SELECT sum(count)::int8 FROM signature_counts WHERE petition_id = $1",
            &[&p],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        (stored, counted),
        (i64::from(CROWD * ROUNDS), i64::from(CROWD * ROUNDS))
    );
    db.drop().await;
}

/// Every statement a batch runs is planned once per connection. Postgres
/// parses and plans the body of a SQL-language function on every call (it
/// keeps nothing across calls before version 18). The count history's
/// trigger called one for each batch, which was a quarter of Postgres's CPU
/// a signature (benches/BENCHMARKS.md, "Count history's statement planned
/// once"). PL/pgSQL keeps its plans.
#[tokio::test]
async fn no_function_of_the_schema_is_parsed_again_at_each_call() {
    let (db, _store, _) = setup().await;
    let functions: Vec<(String, String)> = db
        .sql()
        .await
        .query(
            "SELECT p.proname::text, l.lanname::text FROM pg_proc p
             JOIN pg_language l ON l.oid = p.prolang
             JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = current_schema()",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let parsed_each_call: Vec<_> = functions.iter().filter(|(_, l)| l == "sql").collect();
    assert!(parsed_each_call.is_empty(), "{parsed_each_call:?}");
    assert!(functions.contains(&("count_history_record".into(), "plpgsql".into())));
    db.drop().await;
}
