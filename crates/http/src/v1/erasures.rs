//! `POST /v1/erasures`: a data subject's request for erasure, carried out by
//! an admin. Every signature of the address, in every petition, is erased and
//! uncounted; the audit trail records that it happened and how many, never
//! the address.

use http::StatusCode;
use serde_json::json;
use undersigned_store::{AuditEntry, Token};

use crate::call::{Answer, Call};
use crate::problem::{ApiError, Undone};
use crate::reply::json;

const KNOWN: [&str; 1] = ["email"];

pub async fn erase(mut call: Call<'_>, admin: Token) -> Answer {
    let fields = call.fields(&KNOWN).await?;
    let email = fields.email()?;
    let actor = call.actor(&admin);
    let erased = call
        .app
        .ingest
        .erase(&email, |n| {
            AuditEntry::new(&actor, "signer.erase", json!({"erased": n}))
        })
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "an erasure failed; nothing was erased");
            ApiError::Unavailable(Undone::Change)
        })?;
    Ok(json(StatusCode::OK, &json!({"erased": erased})))
}
