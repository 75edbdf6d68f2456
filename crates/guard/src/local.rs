//! The in-process fallback limiter, used when Redis is absent or not answering.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::{Limit, Limits, Scope, Verdict};

/// IPv6 hosts usually get a whole /64, so a /64 counts as one address.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

type Keyed<K> = DefaultKeyedRateLimiter<K>;

fn keyed<K: std::hash::Hash + Eq + Clone>(limit: Limit) -> Option<Keyed<K>> {
    let burst = NonZeroU32::new(limit.count)?;
    Quota::with_period(limit.interval()).map(|q| RateLimiter::keyed(q.allow_burst(burst)))
}

/// The same layers as the Redis script, per instance. A signature a later
/// layer refuses has used up the earlier layers' budget: stricter than Redis,
/// which is acceptable while Redis is away.
pub(crate) struct LocalLimiter {
    address: Vec<Keyed<(i64, IpAddr)>>,
    email_domain: Option<Keyed<(i64, String)>>,
    petition: Option<Keyed<i64>>,
    clock: DefaultClock,
}

impl LocalLimiter {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            address: limits.address.iter().filter_map(|l| keyed(*l)).collect(),
            email_domain: limits.email_domain.and_then(keyed),
            petition: limits.petition.and_then(keyed),
            clock: DefaultClock::default(),
        }
    }

    /// `domain` is the email domain when a domain limit applies to it; `exempt`
    /// skips the address limits.
    pub(crate) fn check(
        &self,
        petition_id: i64,
        client: IpAddr,
        domain: Option<&str>,
        exempt: bool,
    ) -> Verdict {
        let limited = |not_until: governor::NotUntil<_>, scope| Verdict::Limited {
            retry_after: not_until.wait_time_from(self.clock.now()),
            scope,
        };
        let address = (petition_id, address_key(client));
        for limiter in self.address.iter().filter(|_| !exempt) {
            if let Err(not_until) = limiter.check_key(&address) {
                return limited(not_until, Scope::Address);
            }
        }
        if let (Some(limiter), Some(domain)) = (&self.email_domain, domain)
            && let Err(not_until) = limiter.check_key(&(petition_id, domain.to_owned()))
        {
            return limited(not_until, Scope::EmailDomain);
        }
        if let Some(limiter) = &self.petition
            && let Err(not_until) = limiter.check_key(&petition_id)
        {
            return limited(not_until, Scope::Petition);
        }
        Verdict::Pass
    }

    pub(crate) fn forget_idle(&self) {
        for limiter in &self.address {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.email_domain {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.petition {
            limiter.retain_recent();
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
    fn every_layer_limits_with_its_retry_after() {
        let limiter = LocalLimiter::new(&Limits {
            address: vec![Limit {
                count: 2,
                period: Duration::from_secs(60),
            }],
            email_domain: Some(Limit {
                count: 3,
                period: Duration::from_secs(3600),
            }),
            petition: Some(Limit {
                count: 5,
                period: Duration::from_secs(10),
            }),
            ..Limits::default()
        });
        let ip = |n: u8| IpAddr::from([192, 0, 2, n]);
        assert_eq!(limiter.check(1, ip(1), None, false), Verdict::Pass);
        assert_eq!(limiter.check(1, ip(1), None, false), Verdict::Pass);
        match limiter.check(1, ip(1), None, false) {
            Verdict::Limited {
                retry_after,
                scope: Scope::Address,
            } => {
                assert!(
                    retry_after > Duration::from_secs(25) && retry_after <= Duration::from_secs(30)
                );
            }
            other => panic!("expected the address limit, got {other:?}"),
        }
        assert_eq!(
            limiter.check(2, ip(1), None, false),
            Verdict::Pass,
            "another petition"
        );
        for n in 2..5 {
            assert_eq!(
                limiter.check(2, ip(n), Some("example.org"), false),
                Verdict::Pass
            );
        }
        assert!(matches!(
            limiter.check(2, ip(9), Some("example.org"), false),
            Verdict::Limited {
                scope: Scope::EmailDomain,
                ..
            }
        ));
        assert_eq!(
            limiter.check(2, ip(10), Some("example.net"), false),
            Verdict::Pass
        );
        assert!(matches!(
            limiter.check(2, ip(11), None, false),
            Verdict::Limited {
                scope: Scope::Petition,
                ..
            }
        ));
    }
}
