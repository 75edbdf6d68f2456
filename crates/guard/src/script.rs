//! The guard's one round trip: the address limit and the seen check in a Lua script.

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use tokio::sync::mpsc;
use undersigned_domain::IdentityKey;

use crate::{Limit, RedisLink, Verdict};

/// GCRA per address, then the seen set. Redis's own clock serves every instance,
/// so limits agree however many instances share them. Returns {verdict, wait_ms}:
/// 0 pass, 1 seen, 2 limited.
static GUARD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local interval = tonumber(ARGV[2])
if interval > 0 then
  local burst = tonumber(ARGV[3])
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local tat = tonumber(redis.call('GET', KEYS[1])) or now
  if tat < now then tat = now end
  local allow_at = tat + interval - interval * burst
  if allow_at > now then
    return {2, allow_at - now}
  end
  redis.call('SET', KEYS[1], tat + interval, 'PX', tat + interval - now)
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  return {1, 0}
end
return {0, 0}
",
    )
});

/// The keys of one petition share a hash tag, so the script runs on Redis Cluster too.
pub(crate) struct Keys {
    pub(crate) rate: String,
    pub(crate) seen: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str, petition_id: i64, client: IpAddr) -> Self {
        Self {
            rate: format!(
                "{{{prefix}:p:{petition_id}}}:ip:{}",
                crate::local::address_key(client)
            ),
            seen: seen_key(prefix, petition_id),
        }
    }
}

fn seen_key(prefix: &str, petition_id: i64) -> String {
    format!("{{{prefix}:p:{petition_id}}}:seen")
}

pub(crate) async fn check(
    link: &RedisLink,
    keys: &Keys,
    limit: Option<Limit>,
    identity: &IdentityKey,
) -> Option<Verdict> {
    let (interval_ms, burst) = limit.map_or((0, 0), |l| {
        (
            u64::try_from(l.interval().as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            l.count,
        )
    });
    let (verdict, wait_ms): (u8, u64) = link
        .call(|mut conn| async move {
            GUARD
                .key(&keys.rate)
                .key(&keys.seen)
                .arg(&identity.0[..])
                .arg(interval_ms)
                .arg(burst)
                .invoke_async(&mut conn)
                .await
        })
        .await?;
    Some(match verdict {
        1 => Verdict::Seen,
        2 => Verdict::Limited {
            retry_after: Duration::from_millis(wait_ms),
        },
        _ => Verdict::Pass,
    })
}

/// Adds committed identities to their petition's seen set, one pipeline per batch.
pub(crate) async fn mark_seen_loop(
    link: RedisLink,
    prefix: String,
    mut rx: mpsc::Receiver<(i64, Vec<IdentityKey>)>,
) {
    while let Some((petition_id, identities)) = rx.recv().await {
        if identities.is_empty() {
            continue;
        }
        let key = seen_key(&prefix, petition_id);
        let members: Vec<&[u8]> = identities.iter().map(|k| &k.0[..]).collect();
        let _: Option<()> = link
            .call(|mut conn| async move {
                redis::cmd("SADD")
                    .arg(&key)
                    .arg(&members)
                    .query_async(&mut conn)
                    .await
            })
            .await;
    }
}
