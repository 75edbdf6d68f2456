//! The audit trail (admin): newest first, filtered, a page at a time.

use http::StatusCode;
use serde_json::{Value, json};
use undersigned_domain::FieldError;
use undersigned_store::{AuditFilter, Token};
use uuid::Uuid;

use crate::call::{Answer, Call};
use crate::problem::ApiError;
use crate::query::Query;
use crate::reply::json;

const PAGE_DEFAULT: i64 = 100;
const PAGE_MAX: i64 = 1_000;

/// `GET /v1/audit?petition=SLUG&action=PREFIX&token=ID&before=ID&limit=N`.
pub async fn list(call: Call<'_>, _: Token) -> Answer {
    let app = call.app;
    let query = Query::of(call.uri());
    let get = |name: &str| query.get(name);
    let mut errors = Vec::new();
    let mut filter = AuditFilter {
        limit: PAGE_DEFAULT,
        action_prefix: get("action")
            .filter(|a| !a.contains('\0'))
            .map(str::to_owned),
        ..AuditFilter::default()
    };
    if get("action").is_some_and(|a| a.contains('\0')) {
        errors.push(FieldError::new("action", "invalid"));
    }
    if let Some(slug) = get("petition") {
        match app.catalog.by_slug(slug).await? {
            Some(p) => filter.petition_id = Some(p.id),
            None => errors.push(FieldError::new("petition", "unknown")),
        }
    }
    if let Some(token) = get("token") {
        match Uuid::parse_str(token) {
            Ok(id) => filter.token_id = Some(id),
            Err(_) => errors.push(FieldError::new("token", "invalid")),
        }
    }
    if let Some(before) = get("before") {
        match before.parse() {
            Ok(id) => filter.before = Some(id),
            Err(_) => errors.push(FieldError::new("before", "not_an_integer")),
        }
    }
    filter.limit = query.limit(PAGE_DEFAULT, PAGE_MAX, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let entries = app.store.audit_trail(&filter).await?;
    let next = query.next_page(
        "/v1/audit",
        entries.len(),
        filter.limit,
        "before",
        entries.last().map(|x| x.id),
    );
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "at": e.at,
                "token": e.token_id,
                "action": e.action,
                "petition_id": e.petition_id,
                "detail": e.detail,
                "from": e.client_address.map(|a| a.to_string()),
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({ "entries": entries, "next": next }),
    ))
}
