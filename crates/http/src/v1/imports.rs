//! Paper forms typed in later: `POST /v1/petitions/{slug}/signatures:import`
//! (admins), a CSV answered line by line; `?dry_run=true` only checks.

use http::{StatusCode, header};
use serde_json::{Value, json};
use undersigned_domain::{FieldError, NotSigning, PetitionStatus};
use undersigned_ingest::{ImportReport, LineOutcome, read_paper_forms};
use undersigned_store::{AuditEntry, Token};

use crate::call::{Answer, Call};
use crate::problem::ApiError;
use crate::query::Query;
use crate::reply::json;
use crate::request::read_body_up_to;
use crate::v1::signatures::refusal;

/// A day's typing, and room: 10,000 lines of a few hundred bytes.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// `POST /v1/petitions/{slug}/signatures:import` (admins).
pub async fn import(mut call: Call<'_>, token: Token) -> Answer {
    let app = call.app;
    let petition = call.petition().await?;
    if petition.status != PetitionStatus::Open {
        return Err(ApiError::NotOpen(NotSigning::NotOpen));
    }
    let dry_run = match Query::of(call.uri()).get("dry_run") {
        None | Some("false" | "0") => false,
        Some("true" | "1" | "") => true,
        Some(_) => {
            return Err(ApiError::Invalid(vec![FieldError::new(
                "dry_run", "invalid",
            )]));
        }
    };
    let is_csv = call
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/csv"));
    if !is_csv {
        return Err(ApiError::UnsupportedMediaType);
    }
    let actor = call.actor(&token);
    let body = call.take_body()?;
    let file = read_body_up_to(
        call.headers(),
        body,
        call.config.body_read_timeout,
        MAX_BODY,
    )
    .await?;
    let lines = read_paper_forms(&file, &petition, chrono::Utc::now())
        .map_err(|e| ApiError::Invalid(vec![e.field_error()]))?;
    let report = app
        .ingest
        .import(&petition, lines, dry_run)
        .await
        .map_err(refusal)?;
    let [accepted, duplicate, invalid] = report.tally();
    app.store
        .audit(
            &AuditEntry::new(
                &actor,
                "signatures.import",
                json!({"dry_run": dry_run, "lines": report.lines.len(), "accepted": accepted,
                       "duplicate": duplicate, "invalid": invalid}),
            )
            .about(petition.id),
        )
        .await?;
    Ok(json(StatusCode::OK, &report_json(&report)))
}

/// The report: totals, then each line's fate (line numbers only, never a
/// signer's data).
pub fn report_json(report: &ImportReport) -> Value {
    let [accepted, duplicate, invalid] = report.tally();
    let lines: Vec<Value> = report
        .lines
        .iter()
        .map(|(line, outcome)| {
            let (status, errors) = match outcome {
                LineOutcome::Accepted => ("accepted", &[][..]),
                LineOutcome::Duplicate => ("duplicate", &[][..]),
                LineOutcome::Invalid(errors) => ("invalid", &errors[..]),
            };
            let errors: Vec<Value> = errors
                .iter()
                .map(|e| json!({"field": e.field, "code": e.code}))
                .collect();
            json!({"line": line, "status": status, "errors": errors})
        })
        .collect();
    json!({"dry_run": report.dry_run, "accepted": accepted, "duplicate": duplicate,
           "invalid": invalid, "lines": lines})
}
