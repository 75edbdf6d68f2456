//! Who may keep a live count stream open. A stream holds its connection for
//! as long as its reader stays on the page: a viral petition's readers could
//! fill every connection and leave none for signing, and one address could
//! open thousands. So streams have a budget of their own, below the
//! connections' cap, and each client address (behind a trusted proxy, the
//! client it names; an IPv6 /64 is one) holds a few at most. A reader
//! refused is told when to retry; the page and the widget poll the count
//! (cached, with `ETag`) meanwhile.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use undersigned_guard::address_key;

use crate::client_address::canonical;
use crate::shares::Shares;

/// How many streams an instance keeps open, in all and per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    pub total: usize,
    pub per_address: usize,
}

/// Why a stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRefusal {
    /// The instance keeps as many as it may.
    Service,
    /// The reader's address keeps its share.
    Address,
}

impl StreamRefusal {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Address => "address",
        }
    }
}

/// The open streams, by client address.
pub struct Streams {
    limits: StreamLimits,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_address: Shares,
}

/// One admitted stream; dropping it (the stream ended, or its reader left)
/// frees its place.
pub(crate) struct Watching {
    streams: Arc<Streams>,
    address: IpAddr,
}

impl Streams {
    pub fn new(limits: StreamLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::default(),
        })
    }

    pub(crate) fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Watching, StreamRefusal> {
        let address = address_key(canonical(client));
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.limits.total {
            return Err(StreamRefusal::Service);
        }
        if open.by_address.holds(address) >= self.limits.per_address {
            return Err(StreamRefusal::Address);
        }
        open.total += 1;
        open.by_address.take(address);
        Ok(Watching {
            streams: self.clone(),
            address,
        })
    }

    /// Streams open now.
    pub(crate) fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let mut open = self
            .streams
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total -= 1;
        open.by_address.give_back(self.address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_keeps_its_share_and_the_instance_its_budget() {
        let streams = Streams::new(StreamLimits {
            total: 4,
            per_address: 2,
        });
        let first = streams.admit(ip("192.0.2.1")).unwrap();
        let _second = streams.admit(ip("::ffff:192.0.2.1")).unwrap();
        assert_eq!(
            streams.admit(ip("192.0.2.1")).err(),
            Some(StreamRefusal::Address)
        );
        let _a = streams.admit(ip("2001:db8:1:2::1")).unwrap();
        let _b = streams.admit(ip("198.51.100.7")).unwrap();
        assert_eq!(streams.open(), 4);
        assert_eq!(
            streams.admit(ip("203.0.113.9")).err(),
            Some(StreamRefusal::Service)
        );
        drop(first);
        assert_eq!(streams.open(), 3);
        assert!(streams.admit(ip("192.0.2.1")).is_ok());
        let open = streams.open.lock().unwrap();
        assert_eq!(open.by_address.holds(ip("192.0.2.1")), 1);
    }
}
