//! The batch insert (rows and counts in one transaction) at 1, 10, 100 and
//! 1,000 rows, against the real Postgres.

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use undersigned_benches::{database_url, drop_scratch_database};
use undersigned_domain::{
    Channel, Country, NewPetition, NewPetitionInput, SignerKind, WordingInput,
};
use undersigned_store::{Actor, AuditEntry, SignatureRow, Store};
use uuid::Uuid;

fn rows(petition_id: i64, n: usize, next: &AtomicU64) -> Vec<SignatureRow> {
    let countries =
        ["NL", "DE", "AZ", "TR", "RU", "EG"].map(|c| Country::parse(c).expect("country"));
    (0..n)
        .map(|_| {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let mut key = [0u8; 32];
            key[..16].copy_from_slice(Uuid::new_v4().as_bytes());
            SignatureRow {
                id: Uuid::now_v7(),
                client_supplied: false,
                petition_id,
                identity_key: key,
                full_name: format!("Signer Número {i}"),
                email: Some(format!("signer.{i}@example.org")),
                country: countries[(i % 6) as usize],
                postal_code: Some("1012 AB".into()),
                city: Some("Amsterdam".into()),
                kind: SignerKind::Person,
                organization: None,
                consent_updates: i.is_multiple_of(2),
                locale: Some("nl".into()),
                channel: Channel::Web,
                client_address: Some(std::net::IpAddr::from([198, 51, 100, (i % 250) as u8])),
                shadowed_by: None,
                signed_at: None,
                event_id: None,
                device_id: None,
                confirmation: None,
                sealed: None,
                email_domain: None,
            }
        })
        .collect()
}

fn batch(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (store, petition_id) = runtime.block_on(async {
        let store = Store::open(&database_url(), 4).await.expect("postgres");
        let slug = format!("bench-{}", Uuid::new_v4().simple());
        let petition = NewPetition::parse(NewPetitionInput {
            slug: Some(slug[..30].into()),
            wording: WordingInput {
                title: Some("Benchmark".into()),
                text: Some("Batch inserts.".into()),
                ask: None,
            },
            goal: Some(1_000_000),
            locale: None,
            ..Default::default()
        })
        .expect("petition");
        let id = store
            .create_petition(
                &petition,
                AuditEntry::new(&Actor::default(), "petition.create", Default::default()),
            )
            .await
            .expect("create petition")
            .id;
        (store, id)
    });
    let next = AtomicU64::new(0);
    let mut group = c.benchmark_group("batch insert");
    for size in [1usize, 10, 100, 1000] {
        group.throughput(Throughput::Elements(size as u64));
        let writer = tokio::sync::Mutex::new(store.signature_writer(0));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.to_async(&runtime).iter_batched(
                || rows(petition_id, size, &next),
                |batch| {
                    let writer = &writer;
                    async move {
                        writer
                            .lock()
                            .await
                            .write(&batch)
                            .await
                            .expect("batch committed")
                    }
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
    drop(store);
    runtime.block_on(drop_scratch_database());
}

criterion_group!(benches, batch);
criterion_main!(benches);
