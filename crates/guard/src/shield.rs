//! The first line: an in-process `governor` per client address that turns a
//! flood away before the service reads a body or asks Redis anything.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::Limit;
use crate::local::address_key;

/// Above this many remembered addresses, idle ones are evicted at once.
const SOFT_CAP: usize = 65_536;
/// If evicting idle ones leaves more than this (a flood from that many distinct
/// addresses within one refill interval), every address is forgotten: the shield
/// cannot tell them apart anyway, and the Redis limits still hold.
const HARD_CAP: usize = 262_144;
/// How often (in checks) the size is looked at.
const SIZE_CHECK_EVERY: u32 = 1_024;

/// A per-address flood shield (IPv4 /32, IPv6 /64) whose memory stays bounded:
/// an address is forgotten once its state is the same as a fresh one's (for a
/// quota of n per second, at most a second after its last request), checked
/// periodically and whenever the map passes [`SOFT_CAP`]; past [`HARD_CAP`]
/// the map starts over.
pub struct Shield {
    quota: Option<Quota>,
    limiter: RwLock<Option<DefaultKeyedRateLimiter<IpAddr>>>,
    clock: DefaultClock,
    calls: AtomicU32,
}

impl Shield {
    pub fn new(limit: Option<Limit>) -> Self {
        let quota = limit.and_then(|l| {
            let burst = NonZeroU32::new(l.count)?;
            Quota::with_period(l.interval()).map(|q| q.allow_burst(burst))
        });
        Self {
            quota,
            limiter: RwLock::new(quota.map(RateLimiter::keyed)),
            clock: DefaultClock::default(),
            calls: AtomicU32::new(0),
        }
    }

    /// `Err(wait)` when this address is flooding.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        if self.quota.is_none() {
            return Ok(());
        }
        let result = match &*self.limiter.read().unwrap_or_else(|e| e.into_inner()) {
            Some(limiter) => limiter
                .check_key(&address_key(client))
                .map_err(|not_until| not_until.wait_time_from(self.clock.now())),
            None => Ok(()),
        };
        if self
            .calls
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SIZE_CHECK_EVERY)
            && self.len() > SOFT_CAP
        {
            self.forget_idle();
        }
        result
    }

    /// Evicts addresses whose state is back to fresh; also run periodically.
    pub fn forget_idle(&self) {
        let mut limiter = self.limiter.write().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = limiter.as_ref() {
            l.retain_recent();
            if l.len() > HARD_CAP {
                *limiter = self.quota.map(RateLimiter::keyed);
            } else {
                l.shrink_to_fit();
            }
        }
    }

    /// Addresses remembered now.
    pub fn len(&self) -> usize {
        self.limiter
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |l| l.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floods_stop_per_address_and_idle_addresses_are_forgotten() {
        let shield = Shield::new(Some(Limit {
            count: 3,
            period: Duration::from_millis(30),
        }));
        let a: IpAddr = "198.51.100.1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::9".parse().unwrap();
        for _ in 0..3 {
            assert!(shield.check(a).is_ok());
        }
        let wait = shield.check(a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(10));
        // Another host in the same IPv6 /64 shares b's budget, a's is separate.
        assert!(shield.check(b).is_ok());
        assert!(shield.check("2001:db8:1:2::10".parse().unwrap()).is_ok());
        assert_eq!(shield.len(), 2);
        std::thread::sleep(Duration::from_millis(40));
        shield.forget_idle();
        assert!(shield.is_empty());
        assert!(shield.check(a).is_ok());
    }
}
