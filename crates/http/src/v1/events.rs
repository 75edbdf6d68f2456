//! Street events and their tablets: an organizer creates an event and hands
//! out one-time enrollment codes; a tablet exchanges a code for a device token
//! bound to the event; the organizer lists the event's tablets and revokes any.

use chrono::Utc;
use http::{Response, StatusCode, header};
use serde_json::{Value, json};
use undersigned_domain::{FieldError, Text};
use undersigned_store::{
    AuditEntry, Device, ENROLLMENT_CODE_LIFETIME, Event, EventInput, NewEvent, Role, Token,
};
use uuid::Uuid;

use crate::auth;
use crate::call::{Answer, Call, Managed};
use crate::fields::{check, validated};
use crate::problem::ApiError;
use crate::reply::{Body, json, no_content};

fn event_json(event: &Event, slug: &str) -> Value {
    let e = &event.details;
    json!({
        "id": event.id,
        "petition": slug,
        "name": e.name,
        "place": e.place,
        "country": e.country,
        "starts_at": e.starts_at,
        "ends_at": e.ends_at,
        "created_at": event.created_at,
    })
}

fn device_json(d: &Device) -> Value {
    json!({
        "id": d.id,
        "label": d.label,
        "created_at": d.created_at,
        "revoked_at": d.revoked_at,
        "last_used_at": d.last_used_at,
    })
}

/// `POST /v1/petitions/{slug}/events` (the petition's organizers).
pub async fn create(mut call: Call<'_>, Managed { petition, token }: Managed) -> Answer {
    let app = call.app;
    let fields = call
        .fields(&["name", "place", "country", "starts_at", "ends_at"])
        .await?;
    let mut errors = Vec::new();
    let input = EventInput {
        name: fields.text("name", &mut errors),
        place: fields.text("place", &mut errors),
        country: fields.text("country", &mut errors),
        starts_at: fields.text("starts_at", &mut errors),
        ends_at: fields.text("ends_at", &mut errors),
    };
    let new = validated(errors, NewEvent::parse(petition.id, input, Utc::now()))?;
    let audit = AuditEntry::new(
        &call.actor(&token),
        "event.create",
        json!({"name": new.name, "country": new.country, "starts_at": new.starts_at,
               "ends_at": new.ends_at}),
    )
    .about(petition.id);
    let event = app.store.create_event(&new, audit).await?;
    Ok(json(
        StatusCode::CREATED,
        &event_json(&event, &petition.slug),
    ))
}

/// `GET /v1/petitions/{slug}/events` (the petition's organizers).
pub async fn list(call: Call<'_>, Managed { petition, .. }: Managed) -> Answer {
    let events: Vec<Value> = call
        .app
        .store
        .events(petition.id)
        .await?
        .iter()
        .map(|e| event_json(e, &petition.slug))
        .collect();
    Ok(json(StatusCode::OK, &json!({ "events": events })))
}

/// The event `id` names, and the caller's token when it may manage it: 401
/// without a valid token (before anything is said of the event), 404 for an
/// event that does not exist, 403 for another petition's.
async fn managed_event(call: &Call<'_>) -> Result<(Event, Token), ApiError> {
    let token = call.authenticate().await?;
    let id = Uuid::parse_str(call.id()).map_err(|_| ApiError::NotFound)?;
    let event = call.app.store.event(id).await?.ok_or(ApiError::NotFound)?;
    auth::holds(&token, event.details.petition_id, &[Role::Organizer])?;
    Ok((event, token))
}

/// An answer that holds a secret: never kept by a cache.
fn secret(value: &Value) -> Response<Body> {
    let mut response = json(StatusCode::CREATED, value);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("private, no-store"),
    );
    response
}

/// `POST /v1/events/{id}/enrollment-codes` (the petition's organizers): a
/// one-time code, shown this once.
pub async fn enrollment_code(call: Call<'_>) -> Answer {
    let (event, token) = managed_event(&call).await?;
    if !event.enrolls_tablets_at(Utc::now()) {
        return Err(ApiError::EventOver);
    }
    let expires_at = Utc::now() + ENROLLMENT_CODE_LIFETIME;
    let audit = AuditEntry::new(
        &call.actor(&token),
        "event.enrollment_code",
        json!({"event": event.id, "expires_at": expires_at}),
    )
    .about(event.details.petition_id);
    let code = call
        .app
        .store
        .create_enrollment_code(event.id, expires_at, audit)
        .await?;
    // Opening the link on a tablet enrolls it without typing the code.
    let url = format!("{}/kiosk/#enroll={code}", call.app.public_url);
    Ok(secret(&json!({
        "code": code,
        "expires_at": expires_at,
        "event_id": event.id,
        "url": url,
        "qr_svg": qr_svg(&url),
    })))
}

/// The QR code of `url` as an SVG document, for an organizer to show or
/// print: in the answer, since the code in it is a secret shown once (a
/// URL of its own would put it in logs).
fn qr_svg(url: &str) -> String {
    use qrcode::render::svg;
    // A link of a few dozen characters always fits; a public URL too long
    // for a QR code (over 2,000 characters) gets none.
    qrcode::QrCode::with_error_correction_level(url, qrcode::EcLevel::M)
        .map(|qr| {
            qr.render::<svg::Color>()
                .min_dimensions(256, 256)
                .quiet_zone(true)
                .build()
        })
        .unwrap_or_default()
}

/// `GET /v1/events/{id}/devices` (the petition's organizers).
pub async fn devices(call: Call<'_>) -> Answer {
    let (event, _) = managed_event(&call).await?;
    let devices: Vec<Value> = call
        .app
        .store
        .devices(event.id)
        .await?
        .iter()
        .map(device_json)
        .collect();
    Ok(json(StatusCode::OK, &json!({ "devices": devices })))
}

/// `POST /v1/devices` with `{"code","label"}`, no token: a tablet enrolls.
/// An unknown, spent or expired code is 422 `code invalid`, all alike.
pub async fn enroll(mut call: Call<'_>) -> Answer {
    let app = call.app;
    // Anyone may try a code: the flood shield turns a guesser away.
    call.shield()?;
    let client = call.client();
    let fields = call.fields(&["code", "label"]).await?;
    let mut errors = Vec::new();
    let code = fields.text("code", &mut errors);
    let label = fields.text("label", &mut errors);
    let mut invalid = Vec::new();
    let code = check(&mut invalid, "code", code.ok_or("required"));
    let label = check(
        &mut invalid,
        "label",
        label.ok_or("required").and_then(|l| Text::parse(&l, 100)),
    );
    let (code, label) = validated(
        errors,
        match (code, label) {
            (Some(c), Some(l)) if invalid.is_empty() => Ok((c, l)),
            _ => Err(invalid),
        },
    )?;
    // The tablet has no token yet: the store records the entry as its own.
    let actor = undersigned_store::Actor {
        token_id: None,
        client_address: Some(client),
    };
    let audit = AuditEntry::new(&actor, "device.enroll", json!({"label": label.as_str()}));
    let Some(enrolled) = app
        .store
        .enroll_device(&code, label.as_str(), audit)
        .await?
    else {
        tracing::info!("an enrollment code was refused");
        return Err(ApiError::Invalid(vec![FieldError::new("code", "invalid")]));
    };
    tracing::info!(device = %enrolled.device.id, event = %enrolled.event.id, "tablet enrolled");
    // What the tablet shows: the event, and the petition it signs.
    let slug = app
        .store
        .petition_by_id(enrolled.event.details.petition_id)
        .await?
        .map(|p| p.slug)
        .unwrap_or_default();
    Ok(secret(&json!({
        "token": enrolled.token,
        "device_id": enrolled.device.id,
        "event_id": enrolled.event.id,
        "expires_at": enrolled.expires_at,
        "event": event_json(&enrolled.event, &slug),
    })))
}

/// `DELETE /v1/devices/{id}` (the organizers of the device's event's
/// petition): its later uploads are refused; what it sent stays.
pub async fn revoke(call: Call<'_>) -> Answer {
    let app = call.app;
    let token = call.authenticate().await?;
    let id = Uuid::parse_str(call.id()).map_err(|_| ApiError::NotFound)?;
    let event = app
        .store
        .device_event(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    auth::holds(&token, event.details.petition_id, &[Role::Organizer])?;
    let audit = AuditEntry::new(
        &call.actor(&token),
        "device.revoke",
        json!({"device": id, "event": event.id}),
    )
    .about(event.details.petition_id);
    if !app.store.revoke_token(id, audit).await? {
        return Err(ApiError::NotFound);
    }
    tracing::info!(device = %id, "tablet revoked");
    Ok(no_content())
}
