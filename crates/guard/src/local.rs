//! The in-process fallback limiter, used when Redis is absent or not answering.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::{Limit, Verdict};

/// IPv6 hosts usually get a whole /64, so a /64 counts as one address.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

pub(crate) struct LocalLimiter {
    limiter: Option<DefaultKeyedRateLimiter<(i64, IpAddr)>>,
    clock: DefaultClock,
}

impl LocalLimiter {
    pub(crate) fn new(limit: Option<Limit>) -> Self {
        let limiter = limit.and_then(|l| {
            let burst = NonZeroU32::new(l.count)?;
            Quota::with_period(l.interval()).map(|q| RateLimiter::keyed(q.allow_burst(burst)))
        });
        Self {
            limiter,
            clock: DefaultClock::default(),
        }
    }

    pub(crate) fn check(&self, petition_id: i64, client: IpAddr) -> Verdict {
        let Some(limiter) = &self.limiter else {
            return Verdict::Pass;
        };
        match limiter.check_key(&(petition_id, address_key(client))) {
            Ok(()) => Verdict::Pass,
            Err(not_until) => Verdict::Limited {
                retry_after: not_until.wait_time_from(self.clock.now()),
            },
        }
    }

    pub(crate) fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_v6_slash_64_is_one_address() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
    }

    #[test]
    fn limits_per_petition_and_address_with_retry_after() {
        let limiter = LocalLimiter::new(Some(Limit {
            count: 2,
            period: Duration::from_secs(60),
        }));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(limiter.check(1, ip), Verdict::Pass);
        assert_eq!(limiter.check(1, ip), Verdict::Pass);
        match limiter.check(1, ip) {
            Verdict::Limited { retry_after } => {
                assert!(
                    retry_after > Duration::from_secs(25) && retry_after <= Duration::from_secs(30)
                );
            }
            other => panic!("expected a limit, got {other:?}"),
        }
        assert_eq!(limiter.check(2, ip), Verdict::Pass);
    }
}
