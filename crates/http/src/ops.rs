//! Operators' endpoints: liveness, readiness, metrics.

use std::time::Duration;

use http::{Response, StatusCode};
use prometheus::{Encoder, TextEncoder};
use serde_json::json;

use crate::App;
use crate::problem::ApiError;
use crate::reply::{Body, full, json};

pub fn health() -> Response<Body> {
    json(StatusCode::OK, &json!({"status": "ok"}))
}

/// Not ready only when Postgres is unreachable: without Redis the service still
/// takes signatures correctly, only with more work for Postgres.
pub async fn ready(app: &App) -> Response<Body> {
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
    json(
        status,
        &json!({
            "status": state,
            "postgres": if postgres_up { "up" } else { "down" },
            "redis": redis,
        }),
    )
}

pub fn metrics(app: &App) -> Response<Body> {
    let mut buffer = Vec::with_capacity(16 * 1024);
    match TextEncoder::new().encode(&app.registry.gather(), &mut buffer) {
        Ok(()) => full(StatusCode::OK, "text/plain; version=0.0.4", buffer),
        Err(_) => ApiError::Internal.into_response(),
    }
}
