//! The Redis guard's round trip (limit + seen check in one Lua call), against
//! the real Redis, and the in-process fallback.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use undersigned_benches::redis_url;
use undersigned_domain::IdentityKey;
use undersigned_guard::{Guard, Limit, RedisLink, RedisState, Verdict};

fn identity(n: u64) -> IdentityKey {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&n.to_le_bytes());
    IdentityKey(key)
}

fn guard(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let limit = Some(Limit {
        count: 1_000_000,
        period: Duration::from_secs(1),
    });
    let n = AtomicU64::new(0);
    let client: IpAddr = "192.0.2.7".parse().expect("address");

    let redis = runtime.block_on(async {
        let link = RedisLink::new(&redis_url()).expect("redis url");
        let guard = Guard::new(Some(link), "bench", limit);
        assert_eq!(guard.check(1, client, &identity(0)).await, Verdict::Pass);
        assert_eq!(
            guard.redis_state(),
            RedisState::Up,
            "the benchmark needs Redis"
        );
        guard
    });
    c.bench_function("guard: redis round trip", |b| {
        b.to_async(&runtime).iter(|| async {
            let key = identity(n.fetch_add(1, Ordering::Relaxed));
            redis.check(1, client, &key).await
        })
    });
    let local = runtime.block_on(async { Guard::new(None, "bench", limit) });
    c.bench_function("guard: in-process governor", |b| {
        b.to_async(&runtime).iter(|| async {
            let key = identity(n.fetch_add(1, Ordering::Relaxed));
            local.check(1, client, &key).await
        })
    });
}

criterion_group!(benches, guard);
criterion_main!(benches);
