//! How much of something each client address holds (its connections, its
//! live streams), so that one address never takes every slot. Addresses are
//! the keys the limits use: an IPv6 /64 is one.

use std::collections::HashMap;
use std::net::IpAddr;

/// What each address holds; an address holding nothing is not kept.
#[derive(Debug, Default)]
pub(crate) struct Shares {
    by_address: HashMap<IpAddr, usize>,
}

impl Shares {
    pub(crate) fn holds(&self, address: IpAddr) -> usize {
        self.by_address.get(&address).copied().unwrap_or(0)
    }

    pub(crate) fn take(&mut self, address: IpAddr) {
        *self.by_address.entry(address).or_default() += 1;
    }

    pub(crate) fn give_back(&mut self, address: IpAddr) {
        let Some(holds) = self.by_address.get_mut(&address) else {
            return;
        };
        *holds -= 1;
        if *holds == 0 {
            self.by_address.remove(&address);
            // A flood from many addresses leaves a large, empty table behind.
            if self.by_address.capacity() > 1024
                && self.by_address.len() * 4 < self.by_address.capacity()
            {
                self.by_address.shrink_to_fit();
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }
}
