//! Redis, the shared state of all instances: the layered limits, the "already
//! signed" set, and the fan-out of counts. In front of it, an in-process shield
//! per client address. Redis only accelerates: when it is not configured or not
//! answering, limits fall back to in-process `governor`s and duplicates are left
//! to Postgres's unique constraint.

mod device;
mod fanout;
mod joiners;
mod limit;
mod link;
mod local;
mod script;
mod shield;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::debug;
use undersigned_domain::IdentityKey;
use undersigned_supervisor::{Policy, Supervisor};

pub use device::{DeviceLimit, DeviceRefusal};
pub use fanout::{Announcement, Fanout};
pub use joiners::{Counted, Joiners, Stage};
pub use limit::{Limit, LimitParseError};
pub use link::{RedisLink, RedisState};
pub use local::address_key;
pub use redis::RedisError;
pub use shield::Shield;

use local::LocalLimiter;

/// Which limit turned a signature away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Signatures from one client address to one petition.
    Address,
    /// Signatures with addresses at one email domain to one petition.
    EmailDomain,
    /// All signatures to one petition.
    Petition,
    /// Signatures from one enrolled tablet.
    Device,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Address => "address",
            Self::EmailDomain => "email_domain",
            Self::Petition => "petition",
            Self::Device => "device",
        }
    }
}

/// What the guard says about one signature before it is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on to Postgres.
    Pass,
    /// This identity has signed this petition already.
    Seen,
    /// Over a limit; trying again after the delay passes that limit.
    Limited { retry_after: Duration, scope: Scope },
}

/// The limits shared by all instances, each per petition.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Per client address; all apply, such as a burst and a sustained rate.
    pub address: Vec<Limit>,
    /// Per email domain (after canonicalization).
    pub email_domain: Option<Limit>,
    /// Domains too large to limit as one, such as the big webmail providers.
    pub exempt_domains: HashSet<String>,
    /// All signatures to the petition.
    pub petition: Option<Limit>,
}

/// One signature as the guard sees it.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub petition_id: i64,
    pub client: IpAddr,
    pub identity: &'a IdentityKey,
    /// The canonical email's domain.
    pub email_domain: &'a str,
    /// An allow rule covers it: no address or domain limit applies.
    pub exempt: bool,
}

/// Checks signatures against the shared limits and the seen set.
pub struct Guard {
    link: Option<RedisLink>,
    checks: Option<mpsc::Sender<script::Check>>,
    prefix: String,
    limits: Limits,
    local: LocalLimiter,
    seen_tx: Option<mpsc::Sender<(i64, Vec<IdentityKey>)>>,
    /// Who could still join a call or a commit (see `joiners.rs`).
    joiners: Arc<Joiners>,
}

/// Marking identities as seen is best effort; past this many pending batches
/// the marks are dropped and Postgres still catches the duplicates.
const SEEN_BACKLOG: usize = 1024;

impl Guard {
    /// `link` is `None` in single-node mode; `linger` is how long a call to
    /// Redis holding only a few checks waits for more (zero: never). Must be
    /// called inside a Tokio runtime; its tasks (with Redis) run under `tasks`.
    pub fn new(
        link: Option<RedisLink>,
        prefix: &str,
        limits: Limits,
        linger: Duration,
        tasks: &Supervisor,
    ) -> Self {
        let seen_tx = link.clone().map(|link| {
            let (tx, rx) = mpsc::channel(SEEN_BACKLOG);
            let rx: script::SharedQueue<_> = Arc::new(tokio::sync::Mutex::new(rx));
            let prefix: Arc<str> = prefix.into();
            tasks.spawn("marking signers seen", Policy::Restart, move || {
                script::mark_seen_loop(link.clone(), prefix.clone(), rx.clone())
            });
            tx
        });
        let joiners = Joiners::new();
        let checks = link.clone().map(|link| {
            script::spawn_checker(link, prefix.to_owned(), linger, joiners.clone(), tasks)
        });
        Self {
            link,
            checks,
            joiners,
            prefix: prefix.to_owned(),
            local: LocalLimiter::new(&limits),
            limits,
            seen_tx,
        }
    }

    /// Who could still join a call or a commit: the server counts its
    /// connections here, the signature path its signatures.
    pub fn joiners(&self) -> &Arc<Joiners> {
        &self.joiners
    }

    /// A share of one round trip to Redis (or none, when it is absent or down).
    pub async fn check(&self, subject: Subject<'_>) -> Verdict {
        let domain = self
            .limited_domain(subject.email_domain)
            .filter(|_| !subject.exempt);
        if let Some(checks) = self
            .checks
            .as_ref()
            .filter(|_| self.redis_state() == RedisState::Up)
        {
            let (reply, answer) = oneshot::channel();
            let check = script::Check {
                petition_id: subject.petition_id,
                identity: *subject.identity,
                limits: self.keyed_limits(&subject, domain),
                reply,
            };
            if checks.send(check).await.is_ok()
                && let Ok(Some(verdict)) = answer.await
            {
                return verdict;
            }
            debug!("redis unavailable, limiting in process");
        }
        self.local
            .check(subject.petition_id, subject.client, domain, subject.exempt)
    }

    /// The domain, when a domain limit applies to it.
    fn limited_domain<'a>(&self, domain: &'a str) -> Option<&'a str> {
        (self.limits.email_domain.is_some() && !self.limits.exempt_domains.contains(domain))
            .then_some(domain)
    }

    fn keyed_limits(&self, s: &Subject<'_>, domain: Option<&str>) -> Vec<script::KeyedLimit> {
        let address = if s.exempt {
            0
        } else {
            self.limits.address.len()
        };
        let domain = domain.filter(|_| self.limits.email_domain.is_some());
        let count =
            address + usize::from(domain.is_some()) + usize::from(self.limits.petition.is_some());
        // No limit, no key: nothing allocated.
        if count == 0 {
            return Vec::new();
        }
        let keys = script::Keys::new(&self.prefix, s.petition_id);
        let mut limits = Vec::with_capacity(count);
        if !s.exempt {
            for (i, limit) in self.limits.address.iter().enumerate() {
                limits.push((keys.address(s.client, i), *limit, Scope::Address));
            }
        }
        if let (Some(limit), Some(domain)) = (self.limits.email_domain, domain) {
            limits.push((keys.email_domain(domain), limit, Scope::EmailDomain));
        }
        if let Some(limit) = self.limits.petition {
            limits.push((keys.petition(), limit, Scope::Petition));
        }
        limits
    }

    /// Records identities as signed once their batch committed. Never waits.
    pub fn mark_seen(&self, petition_id: i64, identities: Vec<IdentityKey>) {
        if let Some(tx) = &self.seen_tx {
            let _ = tx.try_send((petition_id, identities));
        }
    }

    /// Takes identities out of the seen sets, so that their signers may sign
    /// again; whether Redis (when there is one) took it.
    pub async fn forget_seen(&self, identities: &[(i64, IdentityKey)]) -> bool {
        match &self.link {
            Some(link) if !identities.is_empty() => {
                script::forget_seen(link, &self.prefix, identities).await
            }
            _ => true,
        }
    }

    /// Forgets every signer of a petition whose signers' data was erased (its
    /// seen set holds their keyed hashes); `false` if Redis did not do it.
    pub async fn forget_petition(&self, petition_id: i64) -> bool {
        match &self.link {
            Some(link) => script::forget_petition(link, &self.prefix, petition_id).await,
            None => true,
        }
    }

    /// Evicts idle in-process limiter keys; call periodically to bound memory.
    pub fn forget_idle(&self) {
        self.local.forget_idle();
    }

    /// Redis's state as a PING finds it now (readiness).
    pub async fn probe_redis(&self) -> RedisState {
        match &self.link {
            Some(link) => link.probe().await,
            None => RedisState::Disabled,
        }
    }

    pub fn redis_state(&self) -> RedisState {
        self.link
            .as_ref()
            .map_or(RedisState::Disabled, RedisLink::state)
    }
}
