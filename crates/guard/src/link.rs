//! A Redis connection that may be absent: every call has a deadline, and after a
//! failure Redis is skipped for a moment instead of being waited on by every request.
//!
//! One URL is one Redis; several, separated by commas, are the seed nodes of a
//! Redis Cluster. Every call the guard makes holds one petition's keys, which
//! share a hash tag (`script::Keys`), so each runs on the one primary that
//! owns the petition's slot and the cluster client routes it there, following
//! `MOVED` after a failover. Pub/sub needs no slot: a Redis Cluster passes
//! every `PUBLISH` to all its nodes, so the subscriber listens on any one
//! node and moves to the next when that one goes.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use tracing::warn;

/// How long one Redis call may take before the request goes on without it.
const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// How long Redis is skipped after a failed call.
const BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisState {
    Disabled,
    Up,
    Down,
}

impl RedisState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

/// A connection to one Redis, or to a Redis Cluster's nodes.
#[derive(Clone)]
pub enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

#[derive(Clone)]
pub struct RedisLink {
    connection: Connection,
    /// Where pub/sub listens: the one Redis, or each of the cluster's seed nodes.
    subscribers: Arc<[redis::Client]>,
    /// Milliseconds since `epoch` until which Redis is skipped; 0 when healthy.
    down_until: Arc<AtomicU64>,
    epoch: Instant,
}

impl RedisLink {
    /// Does not connect: the first call does, so a Redis that is down at start-up
    /// does not stop the service from starting. `urls` is one URL, or a Redis
    /// Cluster's seed nodes separated by commas (a node written without a
    /// scheme takes the first one's). A `rediss://` URL is TLS, its server's
    /// certificate checked against `root_certificate` (PEM) when given, else
    /// the system's roots.
    pub fn new(urls: &str, root_certificate: Option<Vec<u8>>) -> redis::RedisResult<Self> {
        // redis's rustls asks for the process's provider: ring, which `run`
        // installs first; here too, for a caller that starts no service.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let nodes = seed_nodes(urls);
        let certificates = || redis::TlsCertificates {
            client_tls: None,
            root_cert: root_certificate.clone(),
        };
        let subscribers = nodes
            .iter()
            .map(|url| match root_certificate {
                Some(_) => redis::Client::build_with_tls(url.as_str(), certificates()),
                None => redis::Client::open(url.as_str()),
            })
            .collect::<redis::RedisResult<Arc<[_]>>>()?;
        let connection = if let [client] = &subscribers[..] {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CALL_TIMEOUT))
                .set_response_timeout(Some(CALL_TIMEOUT))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(200));
            Connection::Single(ConnectionManager::new_lazy_with_config(
                client.clone(),
                config,
            )?)
        } else {
            let mut builder = ClusterClient::builder(nodes)
                .connection_timeout(CALL_TIMEOUT)
                .response_timeout(CALL_TIMEOUT)
                .retries(2)
                .min_retry_wait(10)
                .max_retry_wait(100);
            if root_certificate.is_some() {
                builder = builder.certs(certificates());
            }
            let config = ClusterConfig::new()
                .set_connection_timeout(CALL_TIMEOUT)
                .set_response_timeout(CALL_TIMEOUT);
            Connection::Cluster(
                builder
                    .build()?
                    .get_pending_async_connection_with_config(config),
            )
        };
        Ok(Self {
            connection,
            subscribers,
            down_until: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
        })
    }

    /// The client pub/sub uses on its `attempt`th try: the nodes in turn.
    pub(crate) fn subscriber(&self, attempt: usize) -> &redis::Client {
        &self.subscribers[attempt % self.subscribers.len()]
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn state(&self) -> RedisState {
        if self.down_until.load(Ordering::Relaxed) > self.now_ms() {
            RedisState::Down
        } else {
            RedisState::Up
        }
    }

    /// Asks Redis itself (a PING under the call deadline), for readiness: the
    /// state alone only says whether a call failed in the last second.
    pub async fn probe(&self) -> RedisState {
        let pong: Option<String> = self
            .call(|mut conn| async move { redis::cmd("PING").query_async(&mut conn).await })
            .await;
        if pong.is_some() {
            RedisState::Up
        } else {
            RedisState::Down
        }
    }

    /// Runs one call with a deadline; `None` when Redis is down, failed or slow.
    pub async fn call<T, F, Fut>(&self, f: F) -> Option<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if self.state() == RedisState::Down {
            return None;
        }
        match tokio::time::timeout(CALL_TIMEOUT, f(self.connection.clone())).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                self.mark_down(&e.to_string());
                None
            }
            Err(_) => {
                self.mark_down("timed out");
                None
            }
        }
    }

    fn mark_down(&self, reason: &str) {
        let until = self.now_ms() + u64::try_from(BACKOFF.as_millis()).unwrap_or(1000);
        let previous = self.down_until.swap(until, Ordering::Relaxed);
        if previous <= self.now_ms() {
            warn!(reason, "redis unavailable; going on without it");
        }
    }
}

/// The URLs in a comma-separated list; a node without a scheme takes the
/// first node's (`rediss://a:7000,b:7001`).
fn seed_nodes(urls: &str) -> Vec<String> {
    let mut nodes: Vec<String> = Vec::new();
    for node in urls.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let scheme = nodes
            .first()
            .and_then(|first| first.split_once("://"))
            .map_or("redis", |(scheme, _)| scheme);
        nodes.push(if node.contains("://") {
            node.to_owned()
        } else {
            format!("{scheme}://{node}")
        });
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_without_a_scheme_take_the_first_ones() {
        assert_eq!(
            seed_nodes("redis://127.0.0.1:6379"),
            ["redis://127.0.0.1:6379"]
        );
        assert_eq!(
            seed_nodes("rediss://a:7000, b:7001,,redis://c:7002"),
            ["rediss://a:7000", "rediss://b:7001", "redis://c:7002"]
        );
        assert_eq!(seed_nodes("a:1,b:2"), ["redis://a:1", "redis://b:2"]);
    }
}
