//! The audit trail (admin): newest first, filtered, a page at a time.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};
use undersigned_domain::FieldError;
use undersigned_store::{AuditFilter, Role};
use uuid::Uuid;

use crate::problem::ApiError;
use crate::reply::{Body, json};
use crate::{App, auth};

const PAGE_DEFAULT: i64 = 100;
const PAGE_MAX: i64 = 1_000;

/// `GET /v1/audit?petition=SLUG&action=PREFIX&token=ID&before=ID&limit=N`.
pub async fn list(app: &App, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    auth::require(app, req.headers(), Role::Admin).await?;
    let query: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut errors = Vec::new();
    let mut filter = AuditFilter {
        limit: PAGE_DEFAULT,
        action_prefix: get("action").map(str::to_owned),
        ..AuditFilter::default()
    };
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
    if let Some(limit) = get("limit") {
        match limit.parse::<i64>() {
            Ok(n) if (1..=PAGE_MAX).contains(&n) => filter.limit = n,
            _ => errors.push(FieldError::new("limit", "out_of_range")),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let entries = app.store.audit_trail(&filter).await?;
    let next = (i64::try_from(entries.len()).unwrap_or(0) == filter.limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten()
        .map(|last| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in query.iter().filter(|(k, _)| k != "before") {
                q.append_pair(k, v);
            }
            q.append_pair("before", &last.to_string());
            format!("/v1/audit?{}", q.finish())
        });
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
