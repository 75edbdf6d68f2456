//! The guard's Redis side: every limit and the seen check of many signatures in
//! one Lua call. Checks that arrive while a call is in flight wait for the next
//! one, so under load one round trip serves hundreds of signatures (the writers
//! batch Postgres the same way); a call that would hold only a few waits a
//! millisecond for more.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::{Semaphore, mpsc, oneshot};
use undersigned_domain::IdentityKey;
use undersigned_supervisor::{Policy, Supervisor};

use crate::{Joiners, Limit, RedisLink, Scope, Stage, Verdict};

/// For each signature in ARGV: its identity, how many limits apply, and each
/// limit's interval (µs, so limits faster than 1,000/s stay exact) and burst, its keys in KEYS after the seen set (KEYS[1]).
/// A signature passes only if every limit allows it, and only then uses them up
/// (GCRA: a key holds the theoretical arrival time). Redis's clock serves every
/// instance, so limits agree however many instances share them. Returns
/// {verdict, wait_µs, limit} per signature: verdict 0 pass, 1 seen, 2 limited,
/// with the wait that passes every limit and the (0-based) limit that needs it.
///
/// Each `redis.call` from Lua costs microseconds of its own, more than the
/// command, so the script reads every key with one MGET, checks every identity
/// with one SMISMEMBER, and writes each changed key once, however many
/// signatures of the batch share it (the petition's key, a domain's).
static GUARD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = {}
if #KEYS > 1 then
  local values = redis.call('MGET', unpack(KEYS, 2))
  for i = 2, #KEYS do
    tat[KEYS[i]] = tonumber(values[i - 1])
  end
end
local members, entries = {}, {}
local k, a = 2, 1
while a <= #ARGV do
  local n = tonumber(ARGV[a + 1])
  members[#members + 1] = ARGV[a]
  entries[#entries + 1] = {k, a + 2, n}
  k, a = k + n, a + 2 + 2 * n
end
local seen = redis.call('SMISMEMBER', KEYS[1], unpack(members))
local out, dirty = {}, {}
for e = 1, #entries do
  local first_key, first_arg, n = entries[e][1], entries[e][2], entries[e][3]
  local wait, worst, next_tat = 0, 0, {}
  for i = 0, n - 1 do
    local key = KEYS[first_key + i]
    local interval = tonumber(ARGV[first_arg + 2 * i])
    local burst = tonumber(ARGV[first_arg + 2 * i + 1])
    local current = tat[key] or now
    if current < now then current = now end
    local allow_at = current + interval - interval * burst
    if allow_at - now > wait then wait, worst = allow_at - now, i end
    next_tat[i] = current + interval
  end
  if wait > 0 then
    out[#out + 1] = 2
    out[#out + 1] = wait
    out[#out + 1] = worst
  else
    for i = 0, n - 1 do
      local key = KEYS[first_key + i]
      tat[key] = next_tat[i]
      dirty[key] = true
    end
    out[#out + 1] = seen[e]
    out[#out + 1] = 0
    out[#out + 1] = 0
  end
end
for key in pairs(dirty) do
  local ttl_ms = math.max(1, math.ceil((tat[key] - now) / 1000))
  redis.call('SET', key, string.format('%.0f', tat[key]), 'PX', ttl_ms)
end
return out
",
    )
});

/// Checks in flight at once: one fills while another is answered.
const IN_FLIGHT: usize = 2;
/// A call gathered with fewer checks than this waits the guard's linger, then
/// takes what came meanwhile. At 5,000 signatures/s calls held under two
/// signatures each, and the call's fixed cost (the script's run, the
/// connection's framing, the wake-ups on both sides) was paid per signature:
/// Redis spent 33 µs of CPU a signature, 14 to 15 µs with a millisecond's
/// linger (1 to 2 ms with tokio's timer): benches/BENCHMARKS.md. The linger
/// ends early once every connected client's signature is gathering: nobody
/// is left to join (`joiners.rs`).
const LINGER_BELOW: usize = 32;
/// The most signatures one call takes.
const BATCH_MAX: usize = 512;
/// Checks waiting for a call; senders wait past this.
const BACKLOG: usize = 65_536;

/// A limit's Redis key, the limit, and what it counts.
pub(crate) type KeyedLimit = (String, Limit, Scope);

/// One signature's check: the limits that apply to it, with their keys.
pub(crate) struct Check {
    pub(crate) petition_id: i64,
    pub(crate) identity: IdentityKey,
    pub(crate) limits: Vec<KeyedLimit>,
    /// `None` when Redis did not answer in time.
    pub(crate) reply: oneshot::Sender<Option<Verdict>>,
}

/// The keys of one petition share a hash tag, so each call, which holds one
/// petition's signatures, runs on Redis Cluster too.
pub(crate) struct Keys(String);

impl Keys {
    pub(crate) fn new(prefix: &str, petition_id: i64) -> Self {
        Self(format!("{{{prefix}:p:{petition_id}}}"))
    }

    /// The `i`th address limit's key (each limit keeps its own time).
    pub(crate) fn address(&self, client: IpAddr, i: usize) -> String {
        format!("{}:ip:{}:{i}", self.0, crate::local::address_key(client))
    }

    pub(crate) fn email_domain(&self, domain: &str) -> String {
        format!("{}:dom:{domain}", self.0)
    }

    pub(crate) fn petition(&self) -> String {
        format!("{}:all", self.0)
    }

    fn seen(&self) -> String {
        format!("{}:seen", self.0)
    }
}

/// A queue's receiving end, shared so that a task restarted after a death
/// takes over the same queue.
pub(crate) type SharedQueue<T> = Arc<tokio::sync::Mutex<mpsc::Receiver<T>>>;

/// Starts the task that gathers checks into calls; returns where to send them.
/// The task ends when the guard (the sender) is dropped.
pub(crate) fn spawn_checker(
    link: RedisLink,
    prefix: String,
    linger: Duration,
    joiners: Arc<Joiners>,
    tasks: &Supervisor,
) -> mpsc::Sender<Check> {
    let (tx, rx) = mpsc::channel::<Check>(BACKLOG);
    let rx: SharedQueue<Check> = Arc::new(tokio::sync::Mutex::new(rx));
    let prefix: Arc<str> = prefix.into();
    tasks.spawn("guard checks", Policy::Restart, move || {
        gather_checks(
            link.clone(),
            prefix.clone(),
            linger,
            joiners.clone(),
            rx.clone(),
        )
    });
    tx
}

async fn gather_checks(
    link: RedisLink,
    prefix: Arc<str>,
    linger: Duration,
    joiners: Arc<Joiners>,
    rx: SharedQueue<Check>,
) {
    let mut rx = rx.lock().await;
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut batch = Vec::with_capacity(BATCH_MAX);
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        if rx.recv_many(&mut batch, BATCH_MAX).await == 0 {
            return;
        }
        if batch.len() < LINGER_BELOW && !linger.is_zero() && !joiners.none_left(Stage::Gathering) {
            tokio::select! {
                () = tokio::time::sleep(linger) => {}
                () = joiners.until_none_left(Stage::Gathering) => {}
            }
            while batch.len() < BATCH_MAX {
                match rx.try_recv() {
                    Ok(check) => batch.push(check),
                    Err(_) => break,
                }
            }
        }
        let checks = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_MAX));
        let (link, prefix) = (link.clone(), prefix.clone());
        // One call's round trip, answering the requests it carries.
        tokio::spawn(async move {
            answer(&link, &prefix, checks).await;
            drop(permit);
        });
    }
}

/// One call per petition in the batch, all sent at once on the shared connection.
async fn answer(link: &RedisLink, prefix: &str, checks: Vec<Check>) {
    let mut by_petition: BTreeMap<i64, Vec<Check>> = BTreeMap::new();
    for check in checks {
        by_petition
            .entry(check.petition_id)
            .or_default()
            .push(check);
    }
    join_all(
        by_petition
            .into_iter()
            .map(|(petition_id, checks)| call(link, Keys::new(prefix, petition_id).seen(), checks)),
    )
    .await;
}

async fn call(link: &RedisLink, seen: String, checks: Vec<Check>) {
    let mut invocation = GUARD.key(seen);
    for check in &checks {
        invocation
            .arg(&check.identity.0[..])
            .arg(check.limits.len());
        for (key, limit, _) in &check.limits {
            invocation
                .key(key)
                .arg(
                    u64::try_from(limit.interval().as_micros())
                        .unwrap_or(u64::MAX)
                        .max(1),
                )
                .arg(limit.count);
        }
    }
    let answers: Option<Vec<u64>> = link
        .call(|mut conn| async move { invocation.invoke_async(&mut conn).await })
        .await;
    let mut answers = answers
        .filter(|a| a.len() == 3 * checks.len())
        .map(Vec::into_iter);
    for check in checks {
        let verdict = answers.as_mut().and_then(|a| {
            let (verdict, wait_us, limit) = (a.next()?, a.next()?, a.next()?);
            Some(match verdict {
                1 => Verdict::Seen,
                2 => Verdict::Limited {
                    retry_after: Duration::from_micros(wait_us),
                    scope: usize::try_from(limit)
                        .ok()
                        .and_then(|i| check.limits.get(i))
                        .map_or(Scope::Address, |(_, _, scope)| *scope),
                },
                _ => Verdict::Pass,
            })
        });
        let _ = check.reply.send(verdict);
    }
}

/// Adds committed identities to their petition's seen set: one command per
/// petition for every batch committed while the last command was under way.
pub(crate) async fn mark_seen_loop(
    link: RedisLink,
    prefix: Arc<str>,
    rx: SharedQueue<(i64, Vec<IdentityKey>)>,
) {
    let mut rx = rx.lock().await;
    let mut batches = Vec::new();
    while rx.recv_many(&mut batches, 64).await > 0 {
        let mut by_petition: BTreeMap<i64, Vec<IdentityKey>> = BTreeMap::new();
        for (petition_id, identities) in batches.drain(..) {
            by_petition
                .entry(petition_id)
                .or_default()
                .extend(identities);
        }
        for (petition_id, identities) in by_petition {
            mark_seen(&link, &prefix, petition_id, &identities).await;
        }
    }
}

/// The most identities one `SADD` carries, so that one command never holds
/// Redis for long.
const SADD_MAX: usize = 4096;

async fn mark_seen(link: &RedisLink, prefix: &str, petition_id: i64, identities: &[IdentityKey]) {
    let key = Keys::new(prefix, petition_id).seen();
    for chunk in identities.chunks(SADD_MAX) {
        let members: Vec<&[u8]> = chunk.iter().map(|k| &k.0[..]).collect();
        let key = &key;
        let _: Option<()> = link
            .call(|mut conn| async move {
                redis::cmd("SADD")
                    .arg(key)
                    .arg(&members)
                    .query_async(&mut conn)
                    .await
            })
            .await;
    }
}

/// Drops a petition's whole seen set: its signers' keyed hashes, once its
/// signers' data is erased. `UNLINK`: a set of a million members is freed
/// off Redis's main thread. `true` once Redis has done it.
pub(crate) async fn forget_petition(link: &RedisLink, prefix: &str, petition_id: i64) -> bool {
    let key = Keys::new(prefix, petition_id).seen();
    let key = &key;
    let deleted: Option<i64> = link
        .call(|mut conn| async move { redis::cmd("UNLINK").arg(key).query_async(&mut conn).await })
        .await;
    deleted.is_some()
}

/// Takes identities out of their petitions' seen sets (their signatures
/// were withdrawn, erased or expired: they may sign again). Whether Redis
/// took every command; when it is down, nothing is lost but the signer's
/// chance to sign again until the set is rebuilt or Redis restarts empty.
pub(crate) async fn forget_seen(
    link: &RedisLink,
    prefix: &str,
    identities: &[(i64, IdentityKey)],
) -> bool {
    let mut by_petition: BTreeMap<i64, Vec<&[u8]>> = BTreeMap::new();
    for (petition_id, key) in identities {
        by_petition
            .entry(*petition_id)
            .or_default()
            .push(&key.0[..]);
    }
    let mut all = true;
    for (petition_id, members) in by_petition {
        let key = Keys::new(prefix, petition_id).seen();
        for chunk in members.chunks(SADD_MAX) {
            let key = &key;
            let removed: Option<i64> = link
                .call(|mut conn| async move {
                    redis::cmd("SREM")
                        .arg(key)
                        .arg(chunk)
                        .query_async(&mut conn)
                        .await
                })
                .await;
            all &= removed.is_some();
        }
    }
    all
}
