//! Tablets' own limit: signatures per enrolled device, in process. A device is
//! authenticated, so it is not held to the per-address limits (an event's
//! tablets share one address), but a stolen token cannot flood a petition.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use crate::Limit;

/// Why a tablet's signatures do not fit its allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRefusal {
    /// They fit after this wait.
    Wait(Duration),
    /// More than the whole allowance: they never fit at once.
    TooMany,
}

pub struct DeviceLimit {
    limiter: Option<DefaultKeyedRateLimiter<Uuid>>,
    clock: DefaultClock,
}

impl DeviceLimit {
    /// `None`: unlimited.
    pub fn new(limit: Option<Limit>) -> Self {
        let quota = limit.and_then(|l| {
            let burst = NonZeroU32::new(l.count)?;
            Quota::with_period(l.interval()).map(|q| q.allow_burst(burst))
        });
        Self {
            limiter: quota.map(RateLimiter::keyed),
            clock: DefaultClock::default(),
        }
    }

    /// Takes `n` signatures from the device's allowance, all or none.
    pub fn check(&self, device: Uuid, n: usize) -> Result<(), DeviceRefusal> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let Some(n) = NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX)) else {
            return Ok(());
        };
        match limiter.check_key_n(&device, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(DeviceRefusal::Wait(
                not_until.wait_time_from(self.clock.now()),
            )),
            Err(_) => Err(DeviceRefusal::TooMany),
        }
    }

    /// Forgets devices whose allowance is full again.
    pub fn forget_idle(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_device_has_its_own_allowance_taken_a_batch_at_a_time() {
        let limit = DeviceLimit::new(Some(Limit {
            count: 10,
            period: Duration::from_secs(3600),
        }));
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert!(limit.check(a, 6).is_ok());
        // Four are left: a batch of five is refused whole, four go through.
        let Err(DeviceRefusal::Wait(wait)) = limit.check(a, 5) else {
            panic!("five do not fit");
        };
        assert!(wait > Duration::from_secs(300));
        assert!(limit.check(a, 4).is_ok());
        assert!(limit.check(b, 10).is_ok());
        assert_eq!(limit.check(b, 11), Err(DeviceRefusal::TooMany));
        assert!(DeviceLimit::new(None).check(a, 1_000).is_ok());
    }
}
