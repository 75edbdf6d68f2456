//! Creating and reading petitions.

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::json;
use undersigned_domain::{FieldError, NewPetition, NewPetitionInput};
use undersigned_store::{Petition, Role, StoreError};

use crate::fields::{Fields, validated};
use crate::problem::ApiError;
use crate::reply::{Body, json};
use crate::request::{body_kind, read_body};
use crate::server::HttpConfig;
use crate::{App, auth};

fn petition_json(app: &App, p: &Petition) -> serde_json::Value {
    json!({
        "slug": p.slug,
        "title": p.title,
        "text": p.text,
        "goal": p.goal,
        "count": app.ingest.counter().view(p.id).total,
        "status": p.status.as_str(),
        "locale": p.locale,
        "created_at": p.created_at,
    })
}

pub async fn create(
    app: &App,
    config: &HttpConfig,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (parts, body) = req.into_parts();
    auth::require(app, &parts.headers, Role::Admin).await?;
    let kind = body_kind(&parts.headers, false)?;
    let fields = Fields::parse(
        kind,
        &read_body(&parts.headers, body, config.body_read_timeout).await?,
    )?;
    let mut errors = Vec::new();
    let input = NewPetitionInput {
        slug: fields.text("slug", &mut errors),
        title: fields.text("title", &mut errors),
        text: fields.text("text", &mut errors),
        goal: fields.integer("goal", &mut errors),
        locale: fields.text("locale", &mut errors),
    };
    let petition = validated(errors, NewPetition::parse(input))?;
    let created = match app.store.create_petition(&petition).await {
        Ok(p) => p,
        Err(StoreError::Conflict) => {
            return Err(ApiError::Conflict(vec![FieldError::new("slug", "taken")]));
        }
        Err(e) => return Err(e.into()),
    };
    app.catalog.forget(&created.slug);
    tracing::info!(slug = %created.slug, goal = created.goal, "petition created");
    let mut response = json(StatusCode::CREATED, &petition_json(app, &created));
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/petitions/{}", created.slug)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn show(app: &App, slug: &str) -> Result<Response<Body>, ApiError> {
    let petition = app.catalog.by_slug(slug).await?.ok_or(ApiError::NotFound)?;
    let mut response = json(StatusCode::OK, &petition_json(app, &petition));
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=1"),
    );
    Ok(response)
}
