//! Handing memory back to the system after a flood of connections ends. Each
//! slow connection holds hyper's read and write buffers (8 KiB each, hyper's
//! floor) and its task, about 29 KiB in all. When thousands close, glibc keeps
//! the freed chunks in its arenas rather than returning them: after 10,200
//! such connections the service stayed at 273 MiB instead of 15 MiB, and a
//! `malloc_trim(0)` called from a debugger brought it to 18 MiB
//! (benches/BENCHMARKS.md). So the service calls it itself once a burst of
//! closes has settled.

use std::time::Duration;

use tokio::sync::Notify;
use tracing::debug;

/// Time for the rest of a burst of closes to happen, so one trim returns it all.
const SETTLE: Duration = Duration::from_secs(1);

/// Each time `closed_many` is told, waits for the burst to settle and trims.
pub(crate) async fn hand_back(closed_many: &Notify) {
    loop {
        closed_many.notified().await;
        tokio::time::sleep(SETTLE).await;
        // A trim walks every arena under its lock: off the runtime's threads.
        match tokio::task::spawn_blocking(trim).await {
            Ok(released) => debug!(
                released,
                "handed freed memory back after connections closed"
            ),
            Err(e) => debug!(error = %e, "trimming the heap failed"),
        }
    }
}

/// Returns the allocator's free pages to the system; whether any were.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() -> bool {
    // SAFETY: malloc_trim only walks and shrinks glibc's own heaps under their
    // locks; it takes no pointers and is safe to call from any thread.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators (musl's, the BSDs') return freed memory themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> bool {
    false
}
