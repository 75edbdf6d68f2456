//! The flood shield under 1,000,000 distinct client addresses: the cost of a
//! check, and (printed) the most heap it ever held and the addresses it
//! remembered, measured by a counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use undersigned_guard::{Limit, Shield};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on as it came.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The n-th distinct client: IPv4 for even n, an IPv6 /64 for odd n.
fn address(n: u64) -> IpAddr {
    if n.is_multiple_of(2) {
        IpAddr::from(u32::try_from(n / 2 % (1 << 32)).unwrap_or(0).to_be_bytes())
    } else {
        IpAddr::from((0x2001_0db8_u128 << 96 | u128::from(n) << 64).to_be_bytes())
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn shield(c: &mut Criterion) {
    let limit = Some(Limit {
        count: 10,
        period: Duration::from_secs(1),
    });

    let shield = Shield::new(limit);
    // One million distinct addresses as fast as one core sends them: under
    // `cargo bench` only, not when the test suite runs each benchmark once.
    if undersigned_benches::measuring() {
        flood(&shield);
    }

    let n = AtomicU64::new(2_000_000);
    shield_checks(c, &shield, &n);
}

fn flood(shield: &Shield) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let (mut most_keys, started) = (0, Instant::now());
    for n in 0..1_000_000u64 {
        let _ = shield.check(address(n));
        if n % 10_000 == 0 {
            most_keys = most_keys.max(shield.len());
        }
    }
    let elapsed = started.elapsed();
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let after = LIVE.load(Ordering::Relaxed) - before;
    std::thread::sleep(Duration::from_millis(1100));
    shield.forget_idle();
    let idle = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "shield, 1,000,000 distinct addresses in {elapsed:.2?}: peak heap {:.1} MiB, \
         at most {most_keys} addresses remembered (sampled), {:.1} MiB at the end, \
         {:.2} MiB and {} addresses once idle ones are forgotten",
        mib(peak),
        mib(after),
        mib(idle),
        shield.len(),
    );
}

fn shield_checks(c: &mut Criterion, shield: &Shield, n: &AtomicU64) {
    let mut group = c.benchmark_group("shield");
    group.throughput(Throughput::Elements(1));
    group.bench_function("check, a new address each time", |b| {
        b.iter(|| shield.check(address(n.fetch_add(1, Ordering::Relaxed))))
    });
    group.bench_function("check, one address", |b| {
        let one = address(7);
        b.iter(|| shield.check(one))
    });
    group.finish();
}

criterion_group!(benches, shield);
criterion_main!(benches);
