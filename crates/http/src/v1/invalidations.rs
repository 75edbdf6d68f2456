//! Bulk invalidation of a petition's signatures (admin): started, followed and
//! undone here, run in the background.

use chrono::{DateTime, Utc};
use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};
use undersigned_domain::{Country, FieldError, Text};
use undersigned_ingest::parse_range;
use undersigned_store::{Criteria, Invalidation, Petition};
use uuid::Uuid;

use crate::App;
use crate::call::{Answer, Call, Managed};
use crate::fields::{Fields, validated};
use crate::problem::ApiError;
use crate::reply::{Body, json};

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

/// `POST /v1/petitions/{slug}/invalidations` (its organizers): started, answered at once.
pub async fn create(mut call: Call<'_>, Managed { petition, token }: Managed) -> Answer {
    let app = call.app;
    let slug = petition.slug.as_str();
    let fields = call
        .fields_up_to(
            BODY_MAX,
            &[
                "address_range",
                "email_domain",
                "country",
                "signed_after",
                "signed_before",
                "receipts",
                "reason",
            ],
        )
        .await?;
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
        .create_invalidation(petition.id, &criteria, reason.as_str(), &call.actor(&token))
        .await?;
    app.ingest.run_invalidation(job.id);
    tracing::info!(invalidation = job.id, petition = %slug, "invalidation started");
    Ok(accepted(slug, &job))
}

/// `GET /v1/petitions/{slug}/invalidations` (its organizers).
pub async fn list(call: Call<'_>, Managed { petition, .. }: Managed) -> Answer {
    let slug = petition.slug.as_str();
    let jobs: Vec<Value> = call
        .app
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

/// `GET /v1/petitions/{slug}/invalidations/{id}` (its organizers).
pub async fn show(call: Call<'_>, Managed { petition, .. }: Managed) -> Answer {
    let found = job(call.app, &petition, call.id()).await?;
    Ok(json(StatusCode::OK, &job_json(&petition.slug, &found)))
}

/// `POST /v1/petitions/{slug}/invalidations/{id}/undo` (its organizers).
pub async fn undo(call: Call<'_>, Managed { petition, token }: Managed) -> Answer {
    let app = call.app;
    let slug = petition.slug.as_str();
    let id = call.id();
    let found = job(app, &petition, id).await?;
    let by = call.actor(&token);
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
