//! Who may hold a connection. One address that opened 10,200 slow connections
//! once took every slot: signatures waited 6 s and `/healthz` timed out. So each
//! client address (the TCP peer; an IPv6 /64 counts as one, as in the limits)
//! holds at most `per_address` connections, and the last few slots of the cap
//! (the reserve, 1/32 of it) go only to addresses holding none yet: however
//! many connections one address may hold, a health check or a new signer from
//! elsewhere still gets in. A trusted proxy carries many clients and its own
//! limits, so it is held to the global cap alone.
//!
//! A connection over its address's share is closed at once, unanswered: a 503
//! would cost the flooder's target a write per refusal, and a client that has
//! not sent its request yet would not read it.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use undersigned_guard::address_key;

use crate::client_address::{TrustedProxies, canonical};
use crate::shares::Shares;

/// Connections that must have closed since the peak before freed memory is
/// handed back: a flood ending, not the churn of ordinary traffic.
const TRIM_AFTER_CLOSES: usize = 1024;

/// How many connections a listener holds, in all and per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionLimits {
    pub(crate) total: usize,
    pub(crate) per_address: usize,
}

impl ConnectionLimits {
    /// The slots of the cap only addresses holding no connection may take.
    pub(crate) fn reserve(self) -> usize {
        self.total.div_ceil(32)
    }
}

/// Why a connection was closed unanswered, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its address already holds its share.
    Address,
    /// Only the reserve is left, and its address already holds a connection.
    Reserve,
}

impl Refusal {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Address => "address",
            Self::Reserve => "reserve",
        }
    }
}

/// The connections a listener holds, by client address.
pub(crate) struct Connections {
    slots: Arc<Semaphore>,
    limits: ConnectionLimits,
    trusted: TrustedProxies,
    open: Mutex<Open>,
    /// Told when a burst of connections has closed, so freed memory can go back.
    closed_many: Arc<Notify>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_address: Shares,
    /// Most connections open since `closed_many` was last told.
    peak: usize,
}

/// One admitted connection; dropping it frees its slot and its address's share.
pub(crate) struct Held {
    connections: Arc<Connections>,
    /// `None` for a trusted proxy, which is not counted per address.
    address: Option<IpAddr>,
    _slot: OwnedSemaphorePermit,
}

impl Connections {
    pub(crate) fn new(
        limits: ConnectionLimits,
        trusted: TrustedProxies,
        closed_many: Arc<Notify>,
    ) -> Arc<Self> {
        let limits = ConnectionLimits {
            total: limits.total.max(1),
            per_address: limits.per_address.max(1),
        };
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(limits.total)),
            limits,
            trusted,
            open: Mutex::new(Open::default()),
            closed_many,
        })
    }

    /// Waits for a free slot: while the cap is reached, further clients wait
    /// in the listen backlog rather than being accepted and dropped.
    pub(crate) async fn slot(&self) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// Admits a connection from `peer` into `slot`, or refuses it.
    pub(crate) fn admit(
        self: &Arc<Self>,
        slot: OwnedSemaphorePermit,
        peer: IpAddr,
    ) -> Result<Held, Refusal> {
        let peer = canonical(peer);
        let address = (!self.trusted.trusts(peer)).then(|| address_key(peer));
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(address) = address {
            let holds = open.by_address.holds(address);
            if holds >= self.limits.per_address {
                return Err(Refusal::Address);
            }
            if holds > 0 && open.total >= self.limits.total - self.limits.reserve() {
                return Err(Refusal::Reserve);
            }
            open.by_address.take(address);
        }
        open.total += 1;
        open.peak = open.peak.max(open.total);
        Ok(Held {
            connections: self.clone(),
            address,
            _slot: slot,
        })
    }

    fn release(&self, address: Option<IpAddr>) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total -= 1;
        if let Some(address) = address {
            open.by_address.give_back(address);
        }
        if open.peak - open.total >= TRIM_AFTER_CLOSES {
            open.peak = open.total;
            self.closed_many.notify_one();
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.connections.release(self.address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn connections(total: usize, per_address: usize, trusted: &str) -> Arc<Connections> {
        Connections::new(
            ConnectionLimits { total, per_address },
            TrustedProxies::parse(trusted).unwrap(),
            Arc::new(Notify::new()),
        )
    }

    async fn admit(c: &Arc<Connections>, peer: &str) -> Result<Held, Refusal> {
        let slot = c.slot().await;
        c.admit(slot, ip(peer))
    }

    #[tokio::test]
    async fn an_address_holds_its_share_and_no_more_until_one_closes() {
        let c = connections(100, 2, "");
        let first = admit(&c, "192.0.2.1").await.unwrap();
        let _second = admit(&c, "192.0.2.1").await.unwrap();
        assert_eq!(admit(&c, "192.0.2.1").await.err(), Some(Refusal::Address));
        // The same host seen through a dual-stack socket is the same address.
        assert_eq!(
            admit(&c, "::ffff:192.0.2.1").await.err(),
            Some(Refusal::Address)
        );
        assert!(admit(&c, "192.0.2.2").await.is_ok());
        drop(first);
        assert!(admit(&c, "192.0.2.1").await.is_ok());
    }

    #[tokio::test]
    async fn an_ipv6_slash_64_is_one_address() {
        let c = connections(100, 2, "");
        let _a = admit(&c, "2001:db8:1:2::1").await.unwrap();
        let _b = admit(&c, "2001:db8:1:2::ffff").await.unwrap();
        assert_eq!(
            admit(&c, "2001:db8:1:2:aaaa::1").await.err(),
            Some(Refusal::Address)
        );
        assert!(admit(&c, "2001:db8:1:3::1").await.is_ok());
    }

    #[tokio::test]
    async fn the_reserve_takes_only_addresses_holding_none() {
        // 64 slots, 2 of them reserved; one address may hold them all but those.
        let c = connections(64, 64, "");
        assert_eq!(c.limits.reserve(), 2);
        let mut held: Vec<Held> = Vec::new();
        for _ in 0..62 {
            held.push(admit(&c, "192.0.2.1").await.unwrap());
        }
        assert_eq!(admit(&c, "192.0.2.1").await.err(), Some(Refusal::Reserve));
        let newcomer = admit(&c, "198.51.100.7").await.unwrap();
        assert_eq!(
            admit(&c, "198.51.100.7").await.err(),
            Some(Refusal::Reserve)
        );
        assert!(admit(&c, "198.51.100.8").await.is_ok());
        drop(newcomer);
        drop(held.pop());
        assert!(admit(&c, "192.0.2.1").await.is_ok());
    }

    #[tokio::test]
    async fn a_trusted_proxy_is_held_to_the_global_cap_alone() {
        let c = connections(8, 2, "10.0.0.0/8");
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(admit(&c, "10.0.0.1").await.unwrap());
        }
        assert_eq!(c.slots.available_permits(), 0);
    }

    #[tokio::test]
    async fn a_burst_of_closes_asks_for_memory_back_once() {
        let closed_many = Arc::new(Notify::new());
        let c = Connections::new(
            ConnectionLimits {
                total: 4096,
                per_address: 4096,
            },
            TrustedProxies::default(),
            closed_many.clone(),
        );
        let mut held = Vec::new();
        for _ in 0..TRIM_AFTER_CLOSES + 30 {
            held.push(admit(&c, "192.0.2.1").await.unwrap());
        }
        held.truncate(20);
        // One stored notification: the burst asked exactly once.
        let asked =
            tokio::time::timeout(std::time::Duration::from_millis(50), closed_many.notified());
        assert!(asked.await.is_ok());
        let again =
            tokio::time::timeout(std::time::Duration::from_millis(50), closed_many.notified());
        assert!(again.await.is_err());
        held.clear();
        assert!(c.open.lock().unwrap().by_address.is_empty());
    }
}
