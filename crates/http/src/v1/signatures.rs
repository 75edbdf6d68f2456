//! Signing a petition.

use std::net::SocketAddr;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use undersigned_domain::{Channel, FieldError, PetitionStatus, Signature, SignatureInput};
use undersigned_guard::Scope;
use undersigned_ingest::SignError;

use crate::App;
use crate::fields::{Fields, validated};
use crate::problem::ApiError;
use crate::reply::{Body, json};
use crate::request::{BodyKind, body_kind, read_body};
use crate::server::HttpConfig;

pub async fn sign(
    app: &App,
    config: &HttpConfig,
    slug: &str,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    let client = config.trusted_proxies.client(peer, req.headers());
    // The flood shield turns a client away before its body is read.
    app.shield
        .check(client)
        .map_err(|wait| ApiError::RateLimited(wait, Scope::Address))?;
    let petition = app.catalog.by_slug(slug).await?.ok_or(ApiError::NotFound)?;
    let (parts, body) = req.into_parts();
    let kind = body_kind(&parts.headers, true)?;
    let body = read_body(&parts.headers, body, config.body_read_timeout).await?;
    if petition.status != PetitionStatus::Open {
        return Err(ApiError::NotOpen);
    }
    let signature = parse_signature(kind, &body)?;
    let receipt = app
        .ingest
        .sign(&petition, client, signature, Channel::Web)
        .await
        .map_err(|e| match e {
            SignError::RateLimited { retry_after, scope } => {
                ApiError::RateLimited(retry_after, scope)
            }
            SignError::QueueFull => ApiError::QueueFull,
            SignError::ShuttingDown | SignError::Storage(_) => ApiError::Unavailable,
            SignError::IdReused => ApiError::Conflict(vec![FieldError::new("id", "already_used")]),
        })?;
    Ok(json(
        StatusCode::ACCEPTED,
        &json!({"status": "accepted", "receipt": receipt.id}),
    ))
}

/// A signature from a JSON or form body: every field checked and normalized.
pub fn parse_signature(kind: BodyKind, body: &[u8]) -> Result<Signature, ApiError> {
    let fields = Fields::parse(kind, body)?;
    let mut errors = Vec::new();
    let input = SignatureInput {
        full_name: fields.text("full_name", &mut errors),
        email: fields.text("email", &mut errors),
        country: fields.text("country", &mut errors),
        postal_code: fields.text("postal_code", &mut errors),
        city: fields.text("city", &mut errors),
        signer_kind: fields.text("signer_kind", &mut errors),
        organization: fields.text("organization", &mut errors),
        consent_updates: fields.flag("consent_updates", &mut errors),
        locale: fields.text("locale", &mut errors),
        id: fields.text("id", &mut errors),
    };
    validated(errors, Signature::parse(input))
}
