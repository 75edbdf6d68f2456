//! API tokens (admin): issued with a role and a scope, shown once, listed
//! without their secret, revoked at once.

use chrono::{DateTime, Utc};
use http::StatusCode;
use serde_json::{Value, json};
use undersigned_domain::{Country, FieldError};
use undersigned_store::{AuditEntry, NewToken, Role, Token, TokenRecord};
use uuid::Uuid;

use crate::call::{Answer, Call};
use crate::fields::{check, validated};
use crate::problem::ApiError;
use crate::reply::{json, no_content};

fn record_json(r: &TokenRecord) -> Value {
    json!({
        "id": r.token.id,
        "role": r.token.role.as_str(),
        "petitions": r.petitions,
        "countries": r.token.countries,
        "event_id": r.token.event_id,
        "label": r.label,
        "created_at": r.created_at,
        "expires_at": r.expires_at,
        "revoked_at": r.revoked_at,
        "last_used_at": r.last_used_at,
    })
}

/// The scope each role needs: organizers one petition or more, coordinators
/// exactly one and at least one country, admins none.
fn scope_errors(role: Role, petitions: usize, countries: usize) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match role {
        Role::Admin => {
            if petitions > 0 {
                errors.push(FieldError::new("petitions", "not_for_admin"));
            }
            if countries > 0 {
                errors.push(FieldError::new("countries", "not_for_admin"));
            }
        }
        Role::Organizer | Role::Device => {
            if petitions == 0 {
                errors.push(FieldError::new("petitions", "required"));
            }
            if countries > 0 {
                errors.push(FieldError::new("countries", "coordinators_only"));
            }
        }
        Role::Coordinator => {
            if petitions != 1 {
                errors.push(FieldError::new("petitions", "exactly_one"));
            }
            if countries == 0 {
                errors.push(FieldError::new("countries", "required"));
            }
        }
    }
    errors
}

/// `POST /v1/tokens` (admins): the secret is in this answer only.
pub async fn create(mut call: Call<'_>, admin: Token) -> Answer {
    let app = call.app;
    let fields = call
        .fields(&["role", "petitions", "countries", "expires_at"])
        .await?;
    let mut errors = Vec::new();
    let role = fields.text("role", &mut errors);
    let slugs = fields.list("petitions", &mut errors).unwrap_or_default();
    let countries = fields.list("countries", &mut errors).unwrap_or_default();
    let expires = fields.text("expires_at", &mut errors);

    let mut invalid = Vec::new();
    let role = check(
        &mut invalid,
        "role",
        role.as_deref()
            .ok_or("required")
            .and_then(|r| Role::parse(r.trim()).ok_or("invalid")),
    );
    let mut petition_ids = Vec::new();
    for slug in &slugs {
        match app.catalog.by_slug(slug.trim()).await? {
            Some(p) if !petition_ids.contains(&p.id) => petition_ids.push(p.id),
            Some(_) => {}
            None => invalid.push(FieldError::new("petitions", "unknown")),
        }
    }
    let countries: Option<Vec<String>> = countries
        .iter()
        .map(|c| Country::parse(c).map(|c| c.as_str().to_owned()))
        .collect();
    let countries = check(&mut invalid, "countries", countries.ok_or("invalid"));
    let expires_at = match expires {
        None => None,
        Some(t) => check(
            &mut invalid,
            "expires_at",
            DateTime::parse_from_rfc3339(t.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| "invalid")
                .and_then(|t| {
                    if t > Utc::now() {
                        Ok(t)
                    } else {
                        Err("in_the_past")
                    }
                }),
        ),
    };
    if let (Some(role), Some(countries)) = (role, &countries) {
        invalid.extend(scope_errors(role, petition_ids.len(), countries.len()));
    }
    let new = match (role, countries) {
        (Some(role), Some(countries)) if invalid.is_empty() => Ok(NewToken {
            role,
            petition_ids,
            countries,
            expires_at,
        }),
        _ => Err(invalid),
    };
    let new = validated(errors, new)?;
    let audit = AuditEntry::new(
        &call.actor(&admin),
        "token.create",
        json!({"role": new.role.as_str(), "petitions": slugs, "countries": new.countries}),
    );
    let (token, secret) = app.store.create_token(&new, Some(audit)).await?;
    tracing::info!(token = %token.id, role = token.role.as_str(), "token issued");
    Ok(json(
        StatusCode::CREATED,
        &json!({
            "id": token.id,
            "token": secret,
            "role": token.role.as_str(),
            "petitions": slugs,
            "countries": token.countries,
            "expires_at": new.expires_at,
        }),
    ))
}

/// `GET /v1/tokens` (admins): never a secret.
pub async fn list(call: Call<'_>, _: Token) -> Answer {
    let tokens: Vec<Value> = call
        .app
        .store
        .tokens()
        .await?
        .iter()
        .map(record_json)
        .collect();
    Ok(json(StatusCode::OK, &json!({ "tokens": tokens })))
}

/// `DELETE /v1/tokens/{id}` (admins): refused at once on every instance. Not
/// the token the request carries (409): an admin going down the list of
/// tokens would lock themselves out mid-way; another admin token or
/// `undersigned token revoke` revokes it.
pub async fn revoke(call: Call<'_>, admin: Token) -> Answer {
    let id = Uuid::parse_str(call.id()).map_err(|_| ApiError::NotFound)?;
    if id == admin.id {
        return Err(ApiError::Conflict(vec![FieldError::new(
            "id",
            "the_token_in_use",
        )]));
    }
    let audit = AuditEntry::new(&call.actor(&admin), "token.revoke", json!({"token": id}));
    if !call.app.store.revoke_token(id, audit).await? {
        return Err(ApiError::NotFound);
    }
    tracing::info!(token = %id, "token revoked");
    Ok(no_content())
}
