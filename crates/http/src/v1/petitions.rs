//! Creating, changing and reading petitions.

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::{Value, json};
use undersigned_domain::{
    CaptchaPolicy, FieldError, NewPetition, NewPetitionInput, PetitionStatus, WebSettingsInput,
    Window, parse_goal, parse_text, parse_time, parse_title,
};
use undersigned_store::{AuditEntry, Petition, PetitionUpdate, Role, StoreError};

use crate::fields::{Fields, validated};
use crate::problem::ApiError;
use crate::reply::{Body, json};
use crate::request::MAX_BODY;
use crate::server::HttpConfig;
use crate::{App, auth, cors};

fn petition_json(app: &App, p: &Petition) -> Value {
    json!({
        "slug": p.slug,
        "title": p.title,
        "text": p.text,
        "goal": p.goal,
        "count": app.ingest.counter().view(p.id).total,
        "status": p.status.as_str(),
        "locale": p.locale,
        "created_at": p.created_at,
        "opens_at": p.window.opens_at,
        "closes_at": p.window.closes_at,
        "allowed_origins": p.web.allowed_origins,
        "thank_you_url": p.web.thank_you_url,
        "error_url": p.web.error_url,
        "captcha": p.web.captcha.as_str(),
        "captcha_fail_open": p.web.captcha_fail_open,
        // What a form needs to render the widget: present only when signing
        // here does ask for a captcha.
        "captcha_sitekey": app.captcha.as_ref()
            .filter(|_| p.web.captcha == CaptchaPolicy::Required)
            .map(|c| c.sitekey()),
    })
}

fn web_input(fields: &Fields, errors: &mut Vec<FieldError>) -> WebSettingsInput {
    WebSettingsInput {
        allowed_origins: fields.list("allowed_origins", errors),
        thank_you_url: fields.text("thank_you_url", errors),
        error_url: fields.text("error_url", errors),
        captcha: fields.text("captcha", errors),
        captcha_fail_open: fields.boolean("captcha_fail_open", errors),
    }
}

pub async fn create(
    app: &App,
    config: &HttpConfig,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (parts, body) = req.into_parts();
    let token = auth::require(app, &parts.headers, Role::Admin).await?;
    let fields =
        Fields::read_json(&parts.headers, body, config.body_read_timeout, MAX_BODY).await?;
    let mut errors = Vec::new();
    let input = NewPetitionInput {
        slug: fields.text("slug", &mut errors),
        title: fields.text("title", &mut errors),
        text: fields.text("text", &mut errors),
        goal: fields.integer("goal", &mut errors),
        locale: fields.text("locale", &mut errors),
        opens_at: fields.text("opens_at", &mut errors),
        closes_at: fields.text("closes_at", &mut errors),
        web: web_input(&fields, &mut errors),
    };
    let petition = validated(errors, NewPetition::parse(input))?;
    let created = match app.store.create_petition(&petition).await {
        Ok(p) => p,
        Err(StoreError::Conflict) => {
            return Err(ApiError::Conflict(vec![FieldError::new("slug", "taken")]));
        }
        Err(e) => return Err(e.into()),
    };
    app.store
        .audit(
            &AuditEntry::new(
                &auth::actor(&token, &parts.extensions),
                "petition.create",
                json!({"slug": created.slug}),
            )
            .about(created.id),
        )
        .await?;
    app.catalog.forget(&created.slug);
    tracing::info!(slug = %created.slug, goal = created.goal, "petition created");
    let mut response = json(StatusCode::CREATED, &petition_json(app, &created));
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/petitions/{}", created.slug)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The fields a change may carry.
const CHANGEABLE: [&str; 11] = [
    "title",
    "text",
    "goal",
    "status",
    "opens_at",
    "closes_at",
    "allowed_origins",
    "thank_you_url",
    "error_url",
    "captcha",
    "captcha_fail_open",
];

/// `PATCH /v1/petitions/{slug}`: the fields sent change, the others stay.
pub async fn update(
    app: &App,
    config: &HttpConfig,
    slug: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (parts, body) = req.into_parts();
    let petition = app.catalog.by_slug(slug).await?.ok_or(ApiError::NotFound)?;
    let token = auth::require_petition(app, &parts.headers, petition.id).await?;
    let fields =
        Fields::read_json(&parts.headers, body, config.body_read_timeout, MAX_BODY).await?;
    fields.only(&CHANGEABLE)?;
    let mut errors = Vec::new();
    let title = fields.text("title", &mut errors);
    let text = fields.text("text", &mut errors);
    let goal = fields.integer("goal", &mut errors);
    let status = fields.text("status", &mut errors);
    let opens_at = fields.nullable_text("opens_at", &mut errors);
    let closes_at = fields.nullable_text("closes_at", &mut errors);
    let web = web_input(&fields, &mut errors);
    let changed: Vec<&str> = CHANGEABLE
        .iter()
        .copied()
        .filter(|name| match &fields {
            Fields::Json(map) => map.contains_key(*name),
            Fields::Form(map) => map.contains_key(*name),
        })
        .collect();
    let audit = AuditEntry::new(
        &auth::actor(&token, &parts.extensions),
        "petition.update",
        json!({"fields": changed}),
    );
    let updated = app
        .store
        .update_petition(slug, audit, |current| {
            let mut errors = errors;
            let mut next = PetitionUpdate::from(current);
            let mut check = |field, result: Result<(), &'static str>| {
                if let Err(code) = result {
                    errors.push(FieldError::new(field, code));
                }
            };
            if let Some(t) = &title {
                check(
                    "title",
                    parse_title(t).map(|t| next.title = t.into_string()),
                );
            }
            if let Some(t) = &text {
                check("text", parse_text(t).map(|t| next.text = t.into_string()));
            }
            if let Some(g) = goal {
                check("goal", parse_goal(g).map(|g| next.goal = g));
            }
            if let Some(s) = &status {
                check(
                    "status",
                    PetitionStatus::parse(s.trim())
                        .ok_or("invalid")
                        .map(|s| next.status = s),
                );
            }
            let changed_time = |change: &Option<Option<String>>, held| match change {
                None => Ok(held),
                Some(None) => Ok(None),
                Some(Some(t)) => parse_time(t).map(Some),
            };
            match (
                changed_time(&opens_at, current.window.opens_at),
                changed_time(&closes_at, current.window.closes_at),
            ) {
                (Ok(opens), Ok(closes)) => {
                    check(
                        "closes_at",
                        Window::new(opens, closes).map(|w| next.window = w),
                    );
                }
                (opens, closes) => {
                    check("opens_at", opens.map(drop));
                    check("closes_at", closes.map(drop));
                }
            }
            match current.web.apply(web) {
                Ok(web) => next.web = web,
                Err(e) => errors.extend(e),
            }
            validated(errors, Ok(next))
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    app.catalog.forget(&updated.slug);
    tracing::info!(slug = %updated.slug, "petition changed");
    Ok(json(StatusCode::OK, &petition_json(app, &updated)))
}

pub async fn show(app: &App, slug: &str) -> Result<Response<Body>, ApiError> {
    let petition = app.catalog.by_slug(slug).await?.ok_or(ApiError::NotFound)?;
    let mut response = json(StatusCode::OK, &petition_json(app, &petition));
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=1"),
    );
    cors::public(response.headers_mut());
    Ok(response)
}
