//! Bulk invalidation of a petition's signatures (admin): started, followed and
//! undone here, run in the background.

use chrono::{DateTime, Utc};
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::{Value, json};
use undersigned_domain::{Country, FieldError, Text};
use undersigned_ingest::parse_range;
use undersigned_store::{Criteria, Invalidation, Petition};
use uuid::Uuid;

use crate::fields::{Fields, validated};
use crate::problem::ApiError;
use crate::reply::{Body, json};

use crate::server::HttpConfig;
use crate::{App, auth};

/// Receipts one invalidation may list.
const RECEIPTS_MAX: usize = 100_000;
/// A body holding that many receipts (39 bytes each in JSON).
const BODY_MAX: usize = 4 * 1024 * 1024;

fn job_json(slug: &str, job: &Invalidation) -> Value {
    json!({
        "id": job.id,
        "petition": slug,
        "criteria": job.criteria,
        "reason": job.reason,
        "state": job.state,
        "affected": job.affected,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "undone_at": job.undone_at,
    })
}

fn accepted(slug: &str, job: &Invalidation) -> Response<Body> {
    let mut response = json(StatusCode::ACCEPTED, &job_json(slug, job));
    if let Ok(location) =
        HeaderValue::from_str(&format!("/v1/petitions/{slug}/invalidations/{}", job.id))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn criteria(fields: &Fields, errors: &mut Vec<FieldError>) -> Criteria {
    let mut invalid = |field, code| errors.push(FieldError::new(field, code));
    let mut type_errors = Vec::new();
    let time = |name: &'static str, type_errors: &mut Vec<FieldError>| {
        fields.text(name, type_errors).map(|t| {
            DateTime::parse_from_rfc3339(t.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| name)
        })
    };
    let mut c = Criteria::default();
    if let Some(range) = fields.text("address_range", &mut type_errors) {
        match parse_range(&range) {
            Some(net) => c.address_range = Some(net.to_string()),
            None => invalid("address_range", "invalid"),
        }
    }
    if let Some(domain) = fields.text("email_domain", &mut type_errors) {
        let domain = domain.trim().to_ascii_lowercase();
        if domain.is_empty() || domain.len() > 253 {
            invalid("email_domain", "invalid");
        } else {
            c.email_domain = Some(domain);
        }
    }
    if let Some(country) = fields.text("country", &mut type_errors) {
        match Country::parse(&country) {
            Some(country) => c.country = Some(country.as_str().to_owned()),
            None => invalid("country", "invalid"),
        }
    }
    match time("signed_after", &mut type_errors) {
        Some(Ok(t)) => c.signed_after = Some(t),
        Some(Err(field)) => invalid(field, "invalid"),
        None => {}
    }
    match time("signed_before", &mut type_errors) {
        Some(Ok(t)) => c.signed_before = Some(t),
        Some(Err(field)) => invalid(field, "invalid"),
        None => {}
    }
    if let Some(receipts) = fields.list("receipts", &mut type_errors) {
        match receipts
            .iter()
            .map(|r| Uuid::parse_str(r.trim()))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(ids) if !ids.is_empty() && ids.len() <= RECEIPTS_MAX => c.receipts = Some(ids),
            Ok(ids) if ids.is_empty() => invalid("receipts", "empty"),
            Ok(_) => invalid("receipts", "too_many"),
            Err(_) => invalid("receipts", "invalid"),
        }
    }
    errors.extend(type_errors);
    c
}

pub async fn create(
    app: &App,
    config: &HttpConfig,
    slug: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (parts, body) = req.into_parts();
    let (petition, token) = auth::managed_petition(app, &parts.headers, slug).await?;
    let fields =
        Fields::read_json(&parts.headers, body, config.body_read_timeout, BODY_MAX).await?;
    fields.only(&[
        "address_range",
        "email_domain",
        "country",
        "signed_after",
        "signed_before",
        "receipts",
        "reason",
    ])?;
    let mut errors = Vec::new();
    let criteria = criteria(&fields, &mut errors);
    let reason = fields.text("reason", &mut errors);
    let mut invalid = Vec::new();
    if criteria == Criteria::default() && errors.is_empty() {
        // Invalidating a whole petition is not a bulk correction.
        invalid.push(FieldError::new("criteria", "required"));
    }
    let reason = Text::parse(reason.as_deref().unwrap_or(""), 500)
        .map_err(|code| invalid.push(FieldError::new("reason", code)))
        .ok();
    let reason = validated(errors, reason.filter(|_| invalid.is_empty()).ok_or(invalid))?;
    let job = app
        .store
        .create_invalidation(
            petition.id,
            &criteria,
            reason.as_str(),
            &auth::actor(&token, &parts.extensions),
        )
        .await?;
    app.ingest.run_invalidation(job.id);
    tracing::info!(invalidation = job.id, petition = %slug, "invalidation started");
    Ok(accepted(slug, &job))
}

pub async fn list(
    app: &App,
    slug: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (petition, _) = auth::managed_petition(app, req.headers(), slug).await?;
    let jobs: Vec<Value> = app
        .store
        .invalidations(petition.id)
        .await?
        .iter()
        .map(|j| job_json(slug, j))
        .collect();
    Ok(json(StatusCode::OK, &json!({ "invalidations": jobs })))
}

async fn job(app: &App, petition: &Petition, id: &str) -> Result<Invalidation, ApiError> {
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound)?;
    app.store
        .invalidation(petition.id, id)
        .await?
        .ok_or(ApiError::NotFound)
}

pub async fn show(
    app: &App,
    slug: &str,
    id: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (petition, _) = auth::managed_petition(app, req.headers(), slug).await?;
    Ok(json(
        StatusCode::OK,
        &job_json(slug, &job(app, &petition, id).await?),
    ))
}

pub async fn undo(
    app: &App,
    slug: &str,
    id: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (petition, token) = auth::managed_petition(app, req.headers(), slug).await?;
    let found = job(app, &petition, id).await?;
    let by = auth::actor(&token, req.extensions());
    match app.store.begin_undo(petition.id, found.id, &by).await? {
        None => Err(ApiError::NotFound),
        Some(false) => Err(ApiError::Conflict(vec![FieldError::new(
            "state", "not_done",
        )])),
        Some(true) => {
            app.ingest.run_invalidation(found.id);
            Ok(accepted(slug, &job(app, &petition, id).await?))
        }
    }
}
