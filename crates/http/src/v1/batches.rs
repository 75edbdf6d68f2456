//! Tablets' uploads: `POST /v1/events/{id}/signatures:batch`. A tablet collects
//! signatures offline and sends them in batches when it can; each batch is
//! answered item by item once the accepted ones are durable, and answered the
//! same however often it is sent.

use http::StatusCode;
use serde_json::{Value, json};
use undersigned_domain::{Channel, FieldError, NotSigning, PetitionStatus, Signature, parse_time};
use undersigned_guard::{DeviceRefusal, Scope};
use undersigned_ingest::{Collected, Filed, Provenance};
use undersigned_store::{Event, Petition, READ_DEADLINE, Role, within};
use uuid::Uuid;

use crate::call::{Answer, Call};
use crate::fields::{Fields, merged};
use crate::problem::ApiError;
use crate::reply::json;
use crate::v1::signatures::{refusal, signature_input};

/// Signatures in one batch, at most.
pub const BATCH_MAX: usize = 500;
/// A batch's body, at most: 500 signatures of about a kilobyte each, and room.
const MAX_BODY: usize = 1024 * 1024;

/// `POST /v1/events/{id}/signatures:batch`: the event's enrolled tablets only.
pub async fn upload(mut call: Call<'_>) -> Answer {
    let app = call.app;
    // 401 for a revoked or expired tablet, before anything else is said.
    let token = call.authenticate().await?;
    let id = Uuid::parse_str(call.id()).map_err(|_| ApiError::NotFound)?;
    if token.role != Role::Device || token.event_id != Some(id) {
        return Err(ApiError::Forbidden);
    }
    // A tablet waits on each read at most READ_DEADLINE, as a web signer does.
    let event = within(READ_DEADLINE, app.store.event(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let petition = within(
        READ_DEADLINE,
        app.store.petition_by_id(event.details.petition_id),
    )
    .await?
    .ok_or(ApiError::NotFound)?;
    let client = call.client();
    let fields = call.fields_up_to(MAX_BODY, &["signatures"]).await?;
    let (items, checked) = read_batch(&fields, &event, &petition, chrono::Utc::now())?;
    if petition.status != PetitionStatus::Open {
        return Err(ApiError::NotOpen(NotSigning::NotOpen));
    }
    let valid = checked.iter().filter(|c| c.is_ok()).count();
    // Signatures stored by an earlier sending of this batch cost nothing
    // again, so that a tablet whose answer was lost hears the same.
    let ids: Vec<Uuid> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok()?.signature.client_id)
        .collect();
    let stored = within(READ_DEADLINE, app.store.stored_ids(&ids))
        .await?
        .len();
    app.devices
        .check(token.id, valid.saturating_sub(stored))
        .map_err(|refusal| match refusal {
            DeviceRefusal::Wait(wait) => ApiError::RateLimited(wait, Scope::Device),
            DeviceRefusal::TooMany => ApiError::TooLarge,
        })?;

    let mut results: Vec<Option<Value>> = vec![None; items.len()];
    let mut batch = Vec::with_capacity(valid);
    let mut positions = Vec::with_capacity(valid);
    for (i, (item, check)) in items.iter().zip(checked).enumerate() {
        match check {
            Ok(collected) => {
                positions.push(i);
                batch.push(collected);
            }
            Err(errors) => results[i] = Some(result(item_id(item), "invalid", &errors)),
        }
    }
    let filed = app
        .ingest
        .sign_batch(
            &petition,
            Some(client),
            batch,
            Provenance {
                channel: Channel::Event,
                event_id: Some(event.id),
                device_id: Some(token.id),
            },
        )
        .await
        .map_err(refusal)?;
    for (i, filed) in positions.into_iter().zip(filed) {
        results[i] = Some(match filed {
            Filed::Accepted(id) => result(Some(id.to_string()), "accepted", &[]),
            Filed::Duplicate(id) => result(Some(id.to_string()), "duplicate", &[]),
            Filed::IdReused => result(
                item_id(&items[i]),
                "invalid",
                &[FieldError::new("id", "already_used")],
            ),
            Filed::Blocked(_) => result(
                item_id(&items[i]),
                "invalid",
                &[FieldError::new("signature", "blocked")],
            ),
        });
    }
    let results: Vec<Value> = results.into_iter().flatten().collect();
    tracing::info!(event = %event.id, device = %token.id, items = items.len(), valid,
                   "tablet batch stored");
    Ok(json(StatusCode::OK, &json!({ "results": results })))
}

/// One item of a batch, ready to store or refused with its reasons.
pub type Checked = Result<Collected, Vec<FieldError>>;

/// A batch's items as sent, and each one checked against the event and its
/// petition at `now`: what a tablet's body says, before anything is stored
/// (also the entry of the `tablet_batch` fuzz target).
pub fn read_batch(
    fields: &Fields,
    event: &Event,
    petition: &Petition,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<Value>, Vec<Checked>), ApiError> {
    let items = batch_items(fields)?;
    let checked = items
        .iter()
        .map(|item| collected(item, event, petition, now))
        .collect();
    Ok((items, checked))
}

/// The batch's items: `{"signatures": [...]}`, at most [`BATCH_MAX`].
fn batch_items(fields: &Fields) -> Result<Vec<Value>, ApiError> {
    let invalid = |code| ApiError::Invalid(vec![FieldError::new("signatures", code)]);
    match fields.value("signatures") {
        None => Err(invalid("required")),
        Some(Value::Array(items)) if items.len() > BATCH_MAX => Err(invalid("too_many")),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(invalid("not_a_list")),
    }
}

/// One item checked: its id and signing time, then its fields as the
/// petition asks them of a signature collected offline.
fn collected(
    item: &Value,
    event: &Event,
    petition: &Petition,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Collected, Vec<FieldError>> {
    let Value::Object(map) = item else {
        return Err(vec![FieldError::new("signature", "not_an_object")]);
    };
    let mut fields = Fields::Json(map.clone());
    let mut errors = Vec::new();
    let input = signature_input(&mut fields, &mut errors);
    let id_given = input.id.as_deref().is_some_and(|id| !id.trim().is_empty());
    let signed_at = fields.text("signed_at", &mut errors);
    let mut item_errors = Vec::new();
    if !id_given && !errors.iter().any(|e| e.field == "id") {
        item_errors.push(FieldError::new("id", "required"));
    }
    let signed_at = match signed_at.as_deref().map(parse_time) {
        None if !errors.iter().any(|e| e.field == "signed_at") => {
            item_errors.push(FieldError::new("signed_at", "required"));
            None
        }
        None => None,
        Some(Err(code)) => {
            item_errors.push(FieldError::new("signed_at", code));
            None
        }
        Some(Ok(t)) => match event.check_signed_at(t, now).and_then(|()| {
            petition
                .window
                .check(PetitionStatus::Open, t)
                .map_err(|_| "petition_not_open")
        }) {
            Ok(()) => Some(t),
            Err(code) => {
                item_errors.push(FieldError::new("signed_at", code));
                None
            }
        },
    };
    errors.extend(item_errors);
    let signature = merged(errors, Signature::parse_offline(input, &petition.signers))?;
    Ok(Collected {
        signature,
        signed_at,
    })
}

/// The item's id as sent, when it is one.
fn item_id(item: &Value) -> Option<String> {
    item.get("id").and_then(Value::as_str).map(str::to_owned)
}

fn result(id: Option<String>, status: &str, errors: &[FieldError]) -> Value {
    let errors: Vec<Value> = errors
        .iter()
        .map(|e| json!({"field": e.field, "code": e.code}))
        .collect();
    json!({"id": id, "status": status, "errors": errors})
}
