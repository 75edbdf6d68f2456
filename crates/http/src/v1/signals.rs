//! Suspicion signals (admin): the addresses and email domains signing a
//! petition fastest in the last hour, to find what to block or invalidate.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};
use undersigned_store::Signal;

use crate::problem::ApiError;
use crate::reply::{Body, json};
use crate::{App, auth};

/// Entries per list.
const TOP: i64 = 20;

fn list(signals: &[Signal], key: &str) -> Vec<Value> {
    signals
        .iter()
        .map(|s| json!({ key: s.key, "signatures": s.signatures }))
        .collect()
}

pub async fn show(
    app: &App,
    slug: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (petition, _) = auth::managed_petition(app, req.headers(), slug).await?;
    let signals = app.store.signals(petition.id, TOP).await?;
    Ok(json(
        StatusCode::OK,
        &json!({
            "petition": slug,
            "window_seconds": 3600,
            "addresses": list(&signals.addresses, "address"),
            "email_domains": list(&signals.email_domains, "email_domain"),
        }),
    ))
}
