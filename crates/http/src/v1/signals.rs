//! Suspicion signals (admin): the addresses and email domains signing a
//! petition fastest in the last hour, to find what to block or invalidate.

use http::StatusCode;
use serde_json::{Value, json};
use undersigned_store::Signal;

use crate::call::{Answer, Call, Managed};
use crate::reply::json;

/// Entries per list.
const TOP: i64 = 20;

fn list(signals: &[Signal], key: &str) -> Vec<Value> {
    signals
        .iter()
        .map(|s| json!({ key: s.key, "signatures": s.signatures }))
        .collect()
}

/// `GET /v1/petitions/{slug}/signals` (its organizers).
pub async fn show(call: Call<'_>, Managed { petition, .. }: Managed) -> Answer {
    let signals = call.app.store.signals(petition.id, TOP).await?;
    Ok(json(
        StatusCode::OK,
        &json!({
            "petition": petition.slug,
            "window_seconds": 3600,
            "addresses": list(&signals.addresses, "address"),
            "email_domains": list(&signals.email_domains, "email_domain"),
        }),
    ))
}
