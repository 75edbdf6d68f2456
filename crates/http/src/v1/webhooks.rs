//! Webhooks (Standard Webhooks): admins subscribe endpoints to any
//! petition's events or all petitions'; organizers to their own petitions'.
//! The signing secret is shown once, when the webhook is made.

use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use undersigned_domain::FieldError;
use undersigned_store::{AuditEntry, NewWebhook, Role, Token, WEBHOOK_EVENTS, Webhook};
use undersigned_webhooks::Secret;
use uuid::Uuid;

use crate::call::{Answer, Call};
use crate::fields::check;
use crate::problem::ApiError;
use crate::reply::{json, no_content};

/// Deliveries listed at most.
const DELIVERIES_LISTED: i64 = 100;
/// Webhooks on one petition at most, and on every petition: each adds a
/// row to every signature's transaction and a courier loop to every
/// instance.
const WEBHOOKS_MAX: i64 = 10;

fn webhook_json(w: &Webhook) -> Value {
    json!({
        "id": w.id,
        "url": w.url,
        "events": w.events,
        "petition": w.petition,
        "include_personal_data": w.include_personal_data,
        "created_at": w.created_at,
        "delivered": w.delivered,
        "last_delivered_at": w.last_delivered_at,
        "pending": w.pending,
        "dead": w.dead,
    })
}

/// Whether `token` may see and change `webhook`: an admin, or an organizer
/// holding its petition. A webhook on every petition, or one that carries
/// signers' personal data (which only an admin may ask for), is an admin's
/// alone: its URL may hold the receiver's credentials.
fn may_manage(token: &Token, webhook: &Webhook) -> bool {
    token.role == Role::Admin
        || (token.role == Role::Organizer
            && !webhook.include_personal_data
            && webhook
                .petition_id
                .is_some_and(|p| token.petition_ids.contains(&p)))
}

/// The webhook `{id}` names, if the caller may manage it: 404 for one that
/// does not exist or that the caller may not see alike, so that ids cannot
/// be probed; 403 for a role that manages none.
async fn managed(call: &Call<'_>) -> Result<(Token, Webhook), ApiError> {
    let token = call.authenticate().await?;
    if !matches!(token.role, Role::Admin | Role::Organizer) {
        return Err(ApiError::Forbidden);
    }
    let id = Uuid::parse_str(call.id()).map_err(|_| ApiError::NotFound)?;
    let webhook = call
        .app
        .store
        .webhook(id)
        .await?
        .filter(|w| may_manage(&token, w))
        .ok_or(ApiError::NotFound)?;
    Ok((token, webhook))
}

/// `POST /v1/webhooks` `{"url","events","petition"?,"include_personal_data"?}`.
pub async fn create(mut call: Call<'_>) -> Answer {
    let token = call.authenticate().await?;
    if !matches!(token.role, Role::Admin | Role::Organizer) {
        return Err(ApiError::Forbidden);
    }
    let app = call.app;
    let fields = call
        .fields(&["url", "events", "petition", "include_personal_data"])
        .await?;
    let mut errors = Vec::new();
    let url = fields.text("url", &mut errors);
    let events = fields.list("events", &mut errors);
    let slug = fields.text("petition", &mut errors);
    let personal = fields
        .boolean("include_personal_data", &mut errors)
        .unwrap_or(false);
    let mut invalid = Vec::new();
    let url = check(&mut invalid, "url", url.ok_or("required"));
    let events = check(
        &mut invalid,
        "events",
        match events {
            None => Err("required"),
            Some(list) if list.is_empty() => Err("empty"),
            Some(list) if list.iter().any(|e| !WEBHOOK_EVENTS.contains(&e.trim())) => {
                Err("unknown_event")
            }
            Some(list) => {
                let mut list: Vec<String> = list.iter().map(|e| e.trim().to_owned()).collect();
                list.sort();
                list.dedup();
                Ok(list)
            }
        },
    );
    // Who may subscribe to what: an organizer only to a petition of theirs,
    // and only an admin to signers' names and addresses.
    let petition = match &slug {
        None => None,
        Some(slug) => match app.catalog.by_slug(slug.trim()).await? {
            Some(p) => Some(p),
            None => {
                invalid.push(FieldError::new("petition", "unknown"));
                None
            }
        },
    };
    if token.role != Role::Admin {
        let holds = petition
            .as_ref()
            .is_some_and(|p| token.petition_ids.contains(&p.id));
        if (slug.is_none() || (petition.is_some() && !holds)) || personal {
            return Err(ApiError::Forbidden);
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let targets = app.webhooks.targets();
    let url = match url.map(|u| targets.check_url(&u)) {
        None => None,
        Some(Ok(url)) => match targets.check_resolved(&url).await {
            Ok(()) => Some(url),
            Err(refusal) => {
                invalid.push(FieldError::new("url", refusal.code()));
                None
            }
        },
        Some(Err(refusal)) => {
            invalid.push(FieldError::new("url", refusal.code()));
            None
        }
    };
    let (Some(url), Some(events), true) = (url, events, invalid.is_empty()) else {
        return Err(ApiError::Invalid(invalid));
    };
    if app
        .store
        .webhooks_on(petition.as_ref().map(|p| p.id))
        .await?
        >= WEBHOOKS_MAX
    {
        return Err(ApiError::Conflict(vec![FieldError::new(
            "petition",
            "too_many_webhooks",
        )]));
    }
    let id = Uuid::now_v7();
    let secret = Secret::generate();
    let new = NewWebhook {
        id,
        url: url.to_string(),
        events,
        petition_id: petition.as_ref().map(|p| p.id),
        include_personal_data: personal,
        secret_sealed: app.webhooks.seal().seal(id, &secret),
        created_by: Some(token.id),
    };
    let mut audit = AuditEntry::new(
        &call.actor(&token),
        "webhook.create",
        json!({
            "webhook": id,
            "host": url.host_str(),
            "events": new.events,
            "include_personal_data": personal,
        }),
    );
    if let Some(p) = &petition {
        audit = audit.about(p.id);
    }
    let created = app.store.create_webhook(&new, audit).await?;
    app.webhooks.changed();
    tracing::info!(webhook = %id, "webhook created");
    let mut body = webhook_json(&created);
    body["secret"] = secret.encoded().into();
    let mut response = json(StatusCode::CREATED, &body);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/webhooks/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /v1/webhooks`: an admin's all, an organizer's those of their petitions.
pub async fn list(call: Call<'_>) -> Answer {
    let token = call.authenticate().await?;
    let petitions = match token.role {
        Role::Admin => None,
        Role::Organizer => Some(token.petition_ids.as_slice()),
        _ => return Err(ApiError::Forbidden),
    };
    let webhooks: Vec<Value> = call
        .app
        .store
        .webhooks(petitions)
        .await?
        .iter()
        .filter(|w| may_manage(&token, w))
        .map(webhook_json)
        .collect();
    Ok(json(StatusCode::OK, &json!({ "webhooks": webhooks })))
}

/// `DELETE /v1/webhooks/{id}`: the webhook and every message owed to it.
pub async fn remove(call: Call<'_>) -> Answer {
    let (token, webhook) = managed(&call).await?;
    let mut audit = AuditEntry::new(
        &call.actor(&token),
        "webhook.delete",
        json!({"webhook": webhook.id}),
    );
    if let Some(p) = webhook.petition_id {
        audit = audit.about(p);
    }
    if !call.app.store.delete_webhook(webhook.id, audit).await? {
        return Err(ApiError::NotFound);
    }
    call.app.webhooks.changed();
    tracing::info!(webhook = %webhook.id, "webhook deleted");
    Ok(no_content())
}

/// `GET /v1/webhooks/{id}/deliveries`: what was delivered (a count and the
/// last time: delivered messages leave no row), and the messages whose
/// tries failed, waiting for a retry or given up on, with their last try.
pub async fn deliveries(call: Call<'_>) -> Answer {
    let (_, webhook) = managed(&call).await?;
    let deliveries: Vec<Value> = call
        .app
        .store
        .webhook_deliveries(webhook.id, DELIVERIES_LISTED)
        .await?
        .iter()
        .map(|d| {
            json!({
                "id": undersigned_webhooks::payload::message_id(d.message, d.position),
                "type": d.kind,
                "occurred_at": d.occurred_at,
                "state": d.state,
                "attempts": d.attempts,
                "last_attempt_at": d.last_attempt_at,
                "last_status": d.last_status,
                "last_error": d.last_error,
                "next_attempt_at": d.next_attempt_at,
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({
            "webhook": webhook.id,
            "delivered": webhook.delivered,
            "last_delivered_at": webhook.last_delivered_at,
            "pending": webhook.pending,
            "dead": webhook.dead,
            "deliveries": deliveries,
        }),
    ))
}

/// `POST /v1/webhooks/{id}/test`: a `webhook.test` message now, and what
/// the endpoint answered.
pub async fn test(call: Call<'_>) -> Answer {
    let (_, webhook) = managed(&call).await?;
    let Some((message, outcome)) = call.app.webhooks.test(webhook.id).await? else {
        return Err(ApiError::NotFound);
    };
    let (delivered, status, error) = match outcome {
        Ok(status) => (true, Some(status), None),
        Err(failure) => (false, failure.status(), Some(failure.to_string())),
    };
    Ok(json(
        StatusCode::OK,
        &json!({
            "webhook_id": message,
            "delivered": delivered,
            "status": status,
            "error": error,
        }),
    ))
}
