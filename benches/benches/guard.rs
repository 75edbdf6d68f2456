//! The Redis guard (every limit layer and the seen check in one Lua call),
//! against the real Redis: one check at a time (latency), and 256 at once, as
//! under load, when they share calls. And the in-process fallback.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::future::join_all;
use undersigned_benches::redis_url;
use undersigned_domain::IdentityKey;
use undersigned_guard::{Guard, Limit, Limits, RedisLink, RedisState, Subject, Verdict};
use undersigned_supervisor::Supervisor;

fn identity(n: u64) -> IdentityKey {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&n.to_le_bytes());
    IdentityKey(key)
}

/// The production layers, with limits too high to refuse anything.
fn limits() -> Limits {
    let wide = Limit {
        count: 1_000_000,
        period: Duration::from_secs(1),
    };
    Limits {
        address: vec![wide, wide],
        email_domain: Some(wide),
        petition: Some(wide),
        ..Limits::default()
    }
}

fn subject(n: u64, key: &IdentityKey) -> Subject<'_> {
    Subject {
        petition_id: 1,
        client: IpAddr::from((u32::try_from(n % 65_536).unwrap_or(0) + 0xC000_0200).to_be_bytes()),
        identity: key,
        email_domain: "example.org",
        exempt: false,
    }
}

fn guard(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let n = AtomicU64::new(0);
    // The guard's Redis queues run under it until the benchmark ends.
    let tasks = Supervisor::new();

    let redis = runtime.block_on(async {
        let link = RedisLink::new(&redis_url(), None).expect("redis url");
        let guard = Guard::new(Some(link), "bench", limits(), Duration::ZERO, &tasks);
        assert_eq!(guard.check(subject(0, &identity(0))).await, Verdict::Pass);
        assert_eq!(
            guard.redis_state(),
            RedisState::Up,
            "the benchmark needs Redis"
        );
        guard
    });
    c.bench_function("guard: redis round trip", |b| {
        b.to_async(&runtime).iter(|| async {
            let i = n.fetch_add(1, Ordering::Relaxed);
            redis.check(subject(i, &identity(i))).await
        })
    });
    let mut group = c.benchmark_group("guard: 256 concurrent checks");
    group.throughput(Throughput::Elements(256));
    group.bench_function("redis, batched", |b| {
        b.to_async(&runtime).iter(|| async {
            let first = n.fetch_add(256, Ordering::Relaxed);
            let keys: Vec<IdentityKey> = (first..first + 256).map(identity).collect();
            join_all(
                keys.iter()
                    .zip(first..)
                    .map(|(key, i)| redis.check(subject(i, key))),
            )
            .await
        })
    });
    group.finish();
    let local =
        runtime.block_on(async { Guard::new(None, "bench", limits(), Duration::ZERO, &tasks) });
    c.bench_function("guard: in-process governor", |b| {
        b.to_async(&runtime).iter(|| async {
            let i = n.fetch_add(1, Ordering::Relaxed);
            local.check(subject(i, &identity(i))).await
        })
    });
}

criterion_group!(benches, guard);
criterion_main!(benches);
