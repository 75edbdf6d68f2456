//! A Redis connection that may be absent: every call has a deadline, and after a
//! failure Redis is skipped for a moment instead of being waited on by every request.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
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

#[derive(Clone)]
pub struct RedisLink {
    client: redis::Client,
    manager: ConnectionManager,
    /// Milliseconds since `epoch` until which Redis is skipped; 0 when healthy.
    down_until: Arc<AtomicU64>,
    epoch: Instant,
}

impl RedisLink {
    /// Does not connect: the first call does, so a Redis that is down at start-up
    /// does not stop the service from starting. A `rediss://` URL is TLS,
    /// its server's certificate checked against `root_certificate` (PEM)
    /// when given, else the system's roots.
    pub fn new(url: &str, root_certificate: Option<Vec<u8>>) -> redis::RedisResult<Self> {
        // redis's rustls asks for the process's provider, which two in the
        // build (ring, and aws-lc-rs for hCaptcha's client) leave unchosen.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = match root_certificate {
            Some(root_cert) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            )?,
            None => redis::Client::open(url)?,
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Self {
            client,
            manager,
            down_until: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
        })
    }

    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
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
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if self.state() == RedisState::Down {
            return None;
        }
        match tokio::time::timeout(CALL_TIMEOUT, f(self.manager.clone())).await {
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
