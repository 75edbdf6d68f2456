//! Operators' endpoints: liveness, readiness, metrics.

use std::fmt;
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use prometheus::{Encoder, TextEncoder};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use undersigned_store::{READ_DEADLINE, within};

use crate::auth::bearer;
use crate::call::{Answer, Call};
use crate::problem::ApiError;
use crate::reply::{full, json};

pub async fn health(_: Call<'_>) -> Answer {
    Ok(json(StatusCode::OK, &json!({"status": "ok"})))
}

/// Not ready only when Postgres is unreachable: without Redis the service still
/// takes signatures correctly, only with more work for Postgres.
pub async fn ready(call: Call<'_>) -> Answer {
    let app = call.app;
    let postgres_up = matches!(
        tokio::time::timeout(Duration::from_secs(2), app.store.ping()).await,
        Ok(Ok(()))
    );
    let redis = app.ingest.guard().probe_redis().await.as_str();
    let (status, state) = if postgres_up {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    Ok(json(
        status,
        &json!({
            "status": state,
            "postgres": if postgres_up { "up" } else { "down" },
            "redis": redis,
        }),
    ))
}

/// The bearer token `/metrics` asks for, kept only as its SHA-256.
#[derive(Clone)]
pub struct MetricsToken([u8; 32]);

impl MetricsToken {
    pub fn new(secret: &str) -> Self {
        Self(Sha256::digest(secret.trim().as_bytes()).into())
    }

    /// Whether `headers` carry the token. Digests of equal length are compared
    /// in constant time, so the answer's timing tells nothing of the token.
    fn admits(&self, headers: &HeaderMap) -> bool {
        bearer(headers).is_some_and(|presented| {
            let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
            bool::from(digest.ct_eq(&self.0))
        })
    }
}

impl fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}

/// The Prometheus text; with a token configured, only for its bearer (401 otherwise).
pub async fn metrics(call: Call<'_>) -> Answer {
    let token = call.config.metrics_token.as_ref();
    if token.is_some_and(|t| !t.admits(call.headers())) {
        return Err(ApiError::Unauthorized);
    }
    // Each petition's count from the live counter, named by its slug: one
    // short read of the petitions' names a scrape. Without Postgres the
    // gauges keep their last values.
    let app = call.app;
    if let Ok(petitions) = within(READ_DEADLINE, app.store.petition_slugs()).await {
        let counter = app.ingest.counter();
        app.metrics.petitions(
            petitions
                .into_iter()
                .map(|(id, slug)| (slug, counter.view(id).total)),
        );
    }
    app.metrics.streams_open(app.streams.open());
    // Set when a signature is queued, and read now too: a queue the writers
    // emptied since then must not read as full.
    app.ingest.observe_depth();
    app.metrics
        .redis(app.ingest.guard().probe_redis().await.as_str());
    let mut buffer = Vec::with_capacity(16 * 1024);
    match TextEncoder::new().encode(&call.app.registry.gather(), &mut buffer) {
        Ok(()) => Ok(full(StatusCode::OK, "text/plain; version=0.0.4", buffer)),
        Err(_) => Err(ApiError::Internal),
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, header};

    use super::*;

    fn bearing(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn the_metrics_token_admits_its_bearer_only() {
        let token = MetricsToken::new("scrape me, prometheus");
        assert!(token.admits(&bearing("Bearer scrape me, prometheus")));
        assert!(!token.admits(&bearing("Bearer scrape me, prometheu")));
        assert!(!token.admits(&bearing("Basic scrape me, prometheus")));
        assert!(!token.admits(&HeaderMap::new()));
        assert_eq!(format!("{token:?}"), "MetricsToken(..)");
    }
}
