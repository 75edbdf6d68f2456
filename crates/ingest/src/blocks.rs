//! The block and allow rules in force, held in memory and reloaded every few
//! seconds (and at once after a change here), so screening a signature costs
//! no I/O.

use std::net::IpAddr;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use ipnet::IpNet;
use tracing::warn;
use undersigned_store::{BlockAction, BlockKind, BlockRule, Store, StoreError};
use undersigned_supervisor::{Policy, Supervisor};

/// How stale another instance's view of the rules may be.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// What the rules say about one signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screening {
    /// No rule applies.
    Pass,
    /// An allow rule applies: no block rule and no address or domain limit.
    Allowed,
    /// Refused, by this rule.
    Rejected(i64),
    /// Accepted in appearance, stored with this rule, never counted.
    Shadowed(i64),
}

enum Matcher {
    Address(IpNet),
    Domain(String),
    Email(String),
}

struct Rule {
    id: i64,
    petition_id: Option<i64>,
    matcher: Matcher,
    action: BlockAction,
}

impl Rule {
    fn compile(rule: &BlockRule) -> Option<Self> {
        let matcher = match rule.kind {
            BlockKind::Address => Matcher::Address(parse_range(&rule.pattern)?),
            BlockKind::EmailDomain => Matcher::Domain(rule.pattern.to_ascii_lowercase()),
            BlockKind::Email => Matcher::Email(rule.pattern.clone()),
        };
        Some(Self {
            id: rule.id,
            petition_id: rule.petition_id,
            matcher,
            action: rule.action,
        })
    }

    /// A signature without an address (a paper form) or an e-mail (offline,
    /// where allowed) matches no rule on what it lacks.
    fn matches(&self, petition_id: i64, client: Option<IpAddr>, email: Option<&str>) -> bool {
        self.petition_id.is_none_or(|p| p == petition_id)
            && match &self.matcher {
                Matcher::Address(net) => client.is_some_and(|c| net.contains(&c)),
                Matcher::Domain(glob) => email
                    .and_then(|e| e.rsplit_once('@'))
                    .is_some_and(|(_, domain)| glob_matches(glob, domain)),
                Matcher::Email(canonical) => email == Some(canonical.as_str()),
            }
    }
}

/// A CIDR, or a single address as its /32 or /128.
pub fn parse_range(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .map(|n| n.trunc())
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// `*` matches any run of characters (none included); everything else itself.
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let mut parts = glob.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

pub struct BlockList {
    store: Store,
    rules: RwLock<Arc<Vec<Rule>>>,
}

impl BlockList {
    /// Loads the rules and keeps reloading them (under `tasks`) while the
    /// list is in use.
    pub async fn start(store: Store, tasks: &Supervisor) -> Result<Arc<Self>, StoreError> {
        let list = Arc::new(Self {
            store,
            rules: RwLock::new(Arc::new(Vec::new())),
        });
        list.reload().await?;
        let weak = Arc::downgrade(&list);
        tasks.spawn("block rule reload", Policy::Restart, move || {
            Self::keep_reloading(weak.clone())
        });
        Ok(list)
    }

    async fn keep_reloading(list: Weak<Self>) {
        let mut tick = tokio::time::interval(RELOAD_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(list) = list.upgrade() else { return };
            if let Err(e) = list.reload().await {
                warn!(error = %e, "reloading block rules failed; keeping the last ones");
            }
        }
    }

    /// Reads the rules in force now.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let rules = self
            .store
            .block_rules()
            .await?
            .iter()
            .filter_map(Rule::compile)
            .collect();
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
        Ok(())
    }

    /// Allow rules win over block rules; among block rules, rejecting wins.
    /// `email` is the canonical address.
    pub fn screen(
        &self,
        petition_id: i64,
        client: Option<IpAddr>,
        email: Option<&str>,
    ) -> Screening {
        let rules = self.rules.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut verdict = Screening::Pass;
        for rule in rules
            .iter()
            .filter(|r| r.matches(petition_id, client, email))
        {
            verdict = match (rule.action, verdict) {
                (BlockAction::Allow, _) => return Screening::Allowed,
                (BlockAction::Reject, Screening::Rejected(_)) => verdict,
                (BlockAction::Reject, _) => Screening::Rejected(rule.id),
                (BlockAction::Shadow, Screening::Pass) => Screening::Shadowed(rule.id),
                (BlockAction::Shadow, _) => verdict,
            };
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_matches("*.example", "a.example"));
        assert!(glob_matches("*.example", "b.a.example"));
        assert!(!glob_matches("*.example", "example"));
        assert!(!glob_matches("*.example", "a.example.org"));
        assert!(glob_matches("spam.test", "spam.test"));
        assert!(!glob_matches("spam.test", "xspam.test"));
        assert!(glob_matches("mail*.ru", "mail.ru") && glob_matches("mail*.ru", "mail7.ru"));
        assert!(glob_matches("*", "anything"));
        assert!(!glob_matches("a*a", "a"));
    }

    #[test]
    fn ranges() {
        assert!(
            parse_range("203.0.113.0/24")
                .unwrap()
                .contains(&"203.0.113.77".parse::<IpAddr>().unwrap())
        );
        assert_eq!(parse_range("2001:db8::1").unwrap().prefix_len(), 128);
        assert!(parse_range("203.0.113.0/33").is_none());
    }
}
