//! Redis, the shared state of all instances: per-address limits, the "already
//! signed" set, and the fan-out of counts. Redis only accelerates: when it is not
//! configured or not answering, limits fall back to an in-process `governor`
//! and duplicates are left to Postgres's unique constraint.

mod fanout;
mod limit;
mod link;
mod local;
mod script;

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::debug;
use undersigned_domain::IdentityKey;

pub use fanout::{Announcement, Fanout};
pub use limit::{Limit, LimitParseError};
pub use link::{RedisLink, RedisState};
pub use redis::RedisError;

use local::LocalLimiter;

/// What the guard says about one signature before it is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on to Postgres.
    Pass,
    /// This identity has signed this petition already.
    Seen,
    /// Too many signatures from this address; try again after the delay.
    Limited { retry_after: Duration },
}

/// Checks signatures against the shared limits and the seen set.
pub struct Guard {
    link: Option<RedisLink>,
    prefix: String,
    ip_limit: Option<Limit>,
    local: LocalLimiter,
    seen_tx: Option<mpsc::Sender<(i64, Vec<IdentityKey>)>>,
}

/// Marking identities as seen is best effort; past this many pending batches
/// the marks are dropped and Postgres still catches the duplicates.
const SEEN_BACKLOG: usize = 1024;

impl Guard {
    /// `link` is `None` in single-node mode. Must be called inside a Tokio runtime.
    pub fn new(link: Option<RedisLink>, prefix: &str, ip_limit: Option<Limit>) -> Self {
        let seen_tx = link.clone().map(|link| {
            let (tx, rx) = mpsc::channel(SEEN_BACKLOG);
            tokio::spawn(script::mark_seen_loop(link, prefix.to_owned(), rx));
            tx
        });
        Self {
            link,
            prefix: prefix.to_owned(),
            ip_limit,
            local: LocalLimiter::new(ip_limit),
            seen_tx,
        }
    }

    /// One round trip to Redis (or none, when it is absent or down).
    pub async fn check(&self, petition_id: i64, client: IpAddr, identity: &IdentityKey) -> Verdict {
        if let Some(link) = &self.link {
            let keys = script::Keys::new(&self.prefix, petition_id, client);
            if let Some(verdict) = script::check(link, &keys, self.ip_limit, identity).await {
                return verdict;
            }
            debug!("redis unavailable, limiting in process");
        }
        self.local.check(petition_id, client)
    }

    /// Records identities as signed once their batch committed. Never waits.
    pub fn mark_seen(&self, petition_id: i64, identities: Vec<IdentityKey>) {
        if let Some(tx) = &self.seen_tx {
            let _ = tx.try_send((petition_id, identities));
        }
    }

    /// Evicts idle in-process limiter keys; call periodically to bound memory.
    pub fn forget_idle(&self) {
        self.local.forget_idle();
    }

    pub fn redis_state(&self) -> RedisState {
        self.link
            .as_ref()
            .map_or(RedisState::Disabled, RedisLink::state)
    }
}
