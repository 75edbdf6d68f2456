//! The Open Supporter Data Interface (OSDI 1.1), as Action Network speaks
//! it, so that tools built for it read petitions and signatures here and
//! record signatures: the API entry point, petitions, their signatures
//! (paged by number, a coordinator's limited to their countries) and the
//! record signature helper, which signs through the same path as
//! `POST /v1/petitions/{slug}/signatures` (validation, deduplication,
//! confirmation by email and limits alike).
//!
//! Callers present a token of this service in `OSDI-API-Token` (or as a
//! bearer token), with the rights it has on the v1 API. Answers are
//! HAL+JSON. A request the helper cannot take is 400 with OSDI's error
//! object (`osdi:error`, each field named as OSDI names it); what OSDI does
//! not describe (401, 403, 404, limits, a closed petition) is problem+json,
//! as everywhere else.
//!
//! A signer is a signature's embedded `osdi:person` (this service keeps no
//! people apart from their signatures); the name is split at its last
//! space into `given_name` and `family_name`, and the address's `status` is
//! `subscribed` when the signer asked to be kept informed. A sealed
//! petition's signers, and a withdrawn signer, have no person.

use chrono::{DateTime, SecondsFormat, Utc};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};
use undersigned_domain::{Channel, FieldError, Signature, SignatureInput};
use undersigned_store::{
    AuditEntry, Petition, READ_DEADLINE, Role, SignatureRecord, Token, within,
};
use uuid::Uuid;

use crate::auth;
use crate::call::{Answer, Call};
use crate::fields::Fields;
use crate::problem::ApiError;
use crate::query::Query;
use crate::reply::{Body, json};
use crate::request::MAX_BODY;
use crate::v1::signatures::refusal;

/// The OSDI version spoken.
const OSDI_VERSION: &str = "1.1";
/// The system name in identifiers (`undersigned:<receipt>`) and curies.
const NAMESPACE: &str = "undersigned";
/// Records a page holds by default, and at most.
const PER_PAGE: i64 = 25;
const MAX_PAGE_SIZE: i64 = 100;
/// How long a page of signatures may take to read (a count and an offset:
/// a deep page of a large petition costs the rows before it; an export
/// serves a whole petition).
const PAGE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);
/// Where the link relations are described.
const DOCS: &str = "https://opensupporter.github.io/osdi-docs/";

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Where links point: the public URL's origin when one is configured, else
/// paths, resolved by the client against its request (never the `Host` a
/// request names, which its sender chooses).
fn base(call: &Call<'_>) -> String {
    let origin = call
        .config
        .own_origins
        .as_ref()
        .and_then(|o| o.first())
        .map_or("", String::as_str);
    format!("{origin}/osdi/v1")
}

fn href(url: String) -> Value {
    json!({ "href": url })
}

fn curies() -> Value {
    json!([{ "name": "osdi", "href": format!("{DOCS}{{rel}}"), "templated": true }])
}

/// A HAL answer. Signers' data is never kept by a cache.
fn hal(status: StatusCode, value: &Value, personal: bool) -> Response {
    let mut response = json(status, value);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/hal+json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if personal {
            "private, no-store"
        } else {
            "max-age=0, private, must-revalidate"
        }),
    );
    response
}

type Response = http::Response<Body>;

/// The caller's token, from `OSDI-API-Token` or `Authorization: Bearer`.
async fn token(call: &Call<'_>) -> Result<Token, ApiError> {
    let presented = call
        .headers()
        .get("osdi-api-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .or_else(|| auth::bearer(call.headers()));
    auth::valid(call.app, presented).await
}

/// A token that may see this petition: an admin's, or one holding it (not
/// a tablet's).
fn may_see(token: &Token, petition_id: i64) -> Result<(), ApiError> {
    match token.role {
        Role::Admin => Ok(()),
        Role::Device => Err(ApiError::Forbidden),
        _ if token.petition_ids.contains(&petition_id) => Ok(()),
        _ => Err(ApiError::Forbidden),
    }
}

/// `page` and `per_page` (1 to 100) from the query.
fn paging(call: &Call<'_>) -> Result<(i64, i64), ApiError> {
    let query = Query::of(call.uri());
    let mut errors = Vec::new();
    let mut number = |name: &'static str, default: i64, max: i64| match query.get(name) {
        None => default,
        Some(n) => match n.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(name, "out_of_range"));
                default
            }
        },
    };
    let page = number("page", 1, i64::from(i32::MAX));
    let per_page = number("per_page", PER_PAGE, MAX_PAGE_SIZE);
    if errors.is_empty() {
        Ok((page, per_page))
    } else {
        Err(ApiError::Invalid(errors))
    }
}

/// A collection's paging fields and links, its items' links under `rel`.
fn collection(
    base: &str,
    path: &str,
    (page, per_page): (i64, i64),
    total: i64,
    rel: &str,
    items: Vec<Value>,
) -> Value {
    let pages = (total + per_page - 1) / per_page;
    let at = |p: i64| href(format!("{base}{path}?page={p}&per_page={per_page}"));
    let mut links = Map::new();
    links.insert("self".into(), at(page));
    if page < pages {
        links.insert("next".into(), at(page + 1));
    }
    if page > 1 {
        links.insert("prev".into(), at(page - 1));
    }
    links.insert(
        rel.into(),
        items
            .iter()
            .map(|i| i["_links"]["self"].clone())
            .collect::<Vec<_>>()
            .into(),
    );
    links.insert("curies".into(), curies());
    json!({
        "total_pages": pages,
        "per_page": per_page,
        "page": page,
        "total_records": total,
        "_links": links,
        "_embedded": { rel: items },
    })
}

/// `GET /osdi/v1`: the API entry point.
pub async fn entry(call: Call<'_>) -> Answer {
    token(&call).await?;
    let base = base(&call);
    Ok(hal(
        StatusCode::OK,
        &json!({
            "motd": "undersigned: petitions and their signatures",
            "vendor_name": "undersigned",
            "product_name": "undersigned",
            "osdi_version": OSDI_VERSION,
            "max_pagesize": MAX_PAGE_SIZE,
            "namespace": NAMESPACE,
            "_links": {
                "curies": curies(),
                "self": { "href": base, "title": "This API entry point" },
                "osdi:petitions": {
                    "href": format!("{base}/petitions"),
                    "title": "The collection of petitions in the system",
                },
                "docs": { "href": DOCS, "title": "Documentation" },
            },
        }),
        false,
    ))
}

fn petition_json(call: &Call<'_>, base: &str, p: &Petition) -> Value {
    let at = format!("{base}/petitions/{}", p.slug);
    let wording = &p.wordings.default;
    json!({
        "identifiers": [format!("{NAMESPACE}:{}", p.slug)],
        "origin_system": "undersigned",
        "created_date": time(p.created_at),
        "modified_date": time(p.created_at),
        "name": p.slug,
        "title": wording.title,
        "description": wording.text,
        "summary": wording.ask,
        "petition_text": wording.text,
        "total_signatures": call.app.ingest.counter().view(p.id).total,
        "target": p.targets.iter().map(|t| json!({"name": t.name})).collect::<Vec<_>>(),
        "_links": {
            "self": href(at.clone()),
            "osdi:signatures": href(format!("{at}/signatures")),
            "osdi:record_signature_helper": href(format!("{at}/signatures")),
        },
    })
}

/// `GET /osdi/v1/petitions`: the petitions the token may see.
pub async fn petitions(call: Call<'_>) -> Answer {
    let token = token(&call).await?;
    if token.role == Role::Device {
        return Err(ApiError::Forbidden);
    }
    let (page, per_page) = paging(&call)?;
    let only = (token.role != Role::Admin).then_some(token.petition_ids.as_slice());
    // Petitions are few: read the slugs, then the page's petitions.
    let all = within(
        READ_DEADLINE,
        call.app
            .store
            .petition_page(only, None, i64::from(i32::MAX)),
    )
    .await?;
    let base = base(&call);
    let mut items = Vec::new();
    let skip = usize::try_from((page - 1) * per_page).unwrap_or(usize::MAX);
    for (_, slug, ..) in all.iter().skip(skip).take(per_page as usize) {
        if let Some(p) = call.app.catalog.by_slug(slug).await? {
            items.push(petition_json(&call, &base, &p));
        }
    }
    let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
    Ok(hal(
        StatusCode::OK,
        &collection(
            &base,
            "/petitions",
            (page, per_page),
            total,
            "osdi:petitions",
            items,
        ),
        false,
    ))
}

/// `GET /osdi/v1/petitions/{slug}`.
pub async fn petition(call: Call<'_>) -> Answer {
    let token = token(&call).await?;
    let petition = call.petition().await?;
    may_see(&token, petition.id)?;
    Ok(hal(
        StatusCode::OK,
        &petition_json(&call, &base(&call), &petition),
        false,
    ))
}

/// The signer as OSDI's person, when their data is there in clear.
fn person_json(r: &SignatureRecord) -> Option<Value> {
    let name = r.full_name.trim();
    if name.is_empty() {
        return None;
    }
    let (given, family) = name.rsplit_once(' ').unwrap_or((name, ""));
    let status = if r.consent_updates {
        "subscribed"
    } else {
        "unsubscribed"
    };
    let emails: Vec<Value> = r
        .email
        .iter()
        .map(|e| json!({"address": e, "primary": true, "status": status}))
        .collect();
    let mut person = json!({
        "given_name": given.trim_end(),
        "family_name": family,
        "email_addresses": emails,
        "postal_addresses": [{
            "primary": true,
            "postal_code": r.postal_code,
            "locality": r.city,
            "country": r.country,
        }],
        "languages_spoken": r.locale.iter().collect::<Vec<_>>(),
    });
    if let Some(organization) = &r.organization {
        person["employer"] = json!(organization);
    }
    Some(person)
}

fn signature_json(base: &str, slug: &str, r: &SignatureRecord) -> Value {
    let petition = format!("{base}/petitions/{slug}");
    let mut signature = json!({
        "identifiers": [format!("{NAMESPACE}:{}", r.id)],
        "origin_system": "undersigned",
        "created_date": time(r.signed_at),
        "modified_date": time(r.signed_at),
        "action_date": time(r.signed_at),
        "_links": {
            "self": href(format!("{petition}/signatures/{}", r.id)),
            "osdi:petition": href(petition),
        },
    });
    if let Some(person) = person_json(r) {
        signature["_embedded"] = json!({ "osdi:person": person });
    }
    signature
}

/// The petition `{slug}` names and what the token may read of its
/// signatures: all of them, or a coordinator's countries.
async fn reading(
    call: &Call<'_>,
) -> Result<(Token, std::sync::Arc<Petition>, Option<Vec<String>>), ApiError> {
    let token = token(call).await?;
    let petition = call.petition().await?;
    let scope = auth::reader_scope(&token, petition.id)?;
    Ok((token, petition, scope))
}

/// `GET /osdi/v1/petitions/{slug}/signatures`: counted signatures, a page
/// at a time, each page in the audit trail.
pub async fn signatures(call: Call<'_>) -> Answer {
    let (token, petition, scope) = reading(&call).await?;
    let (page, per_page) = paging(&call)?;
    // A deep page costs the rows before it: bounded, as any read.
    let (total, records) = within(
        PAGE_DEADLINE,
        call.app.store.counted_signatures(
            petition.id,
            scope.as_deref(),
            (page - 1).saturating_mul(per_page),
            per_page,
        ),
    )
    .await?;
    audit_read(&call, &token, &petition, &scope, records.len()).await?;
    let base = base(&call);
    let items = records
        .iter()
        .map(|r| signature_json(&base, &petition.slug, r))
        .collect();
    let path = format!("/petitions/{}/signatures", petition.slug);
    Ok(hal(
        StatusCode::OK,
        &collection(
            &base,
            &path,
            (page, per_page),
            total,
            "osdi:signatures",
            items,
        ),
        true,
    ))
}

/// `GET /osdi/v1/petitions/{slug}/signatures/{id}`: one counted signature.
pub async fn signature(call: Call<'_>) -> Answer {
    let (token, petition, scope) = reading(&call).await?;
    let receipt = Uuid::parse_str(call.id()).map_err(|_| ApiError::NotFound)?;
    let record = call
        .app
        .store
        .counted_signature(petition.id, scope.as_deref(), receipt)
        .await?
        .ok_or(ApiError::NotFound)?;
    audit_read(&call, &token, &petition, &scope, 1).await?;
    Ok(hal(
        StatusCode::OK,
        &signature_json(&base(&call), &petition.slug, &record),
        true,
    ))
}

async fn audit_read(
    call: &Call<'_>,
    token: &Token,
    petition: &Petition,
    scope: &Option<Vec<String>>,
    rows: usize,
) -> Result<(), ApiError> {
    call.app
        .store
        .audit(
            &AuditEntry::new(
                &call.actor(token),
                "signatures.list",
                json!({"api": "osdi", "countries": scope, "rows": rows}),
            )
            .about(petition.id),
        )
        .await?;
    Ok(())
}

/// Where OSDI's person keeps each field a signature has.
fn osdi_property(field: &str) -> &'static str {
    match field {
        "full_name" => "person.given_name",
        "email" => "person.email_addresses.address",
        "country" => "person.postal_addresses.country",
        "postal_code" => "person.postal_addresses.postal_code",
        "city" => "person.postal_addresses.locality",
        "locale" => "person.languages_spoken",
        "organization" => "person.employer",
        _ => "person",
    }
}

/// The 400 OSDI gives a request it cannot take.
fn osdi_error(errors: &[FieldError]) -> Response {
    let descriptions: Vec<Value> = errors
        .iter()
        .map(|e| {
            json!({
                "error_code": e.code.to_ascii_uppercase(),
                "description": format!("{}: {}", osdi_property(&e.field), e.code.replace('_', " ")),
                "properties": [osdi_property(&e.field)],
            })
        })
        .collect();
    let mut response = json(
        StatusCode::BAD_REQUEST,
        &json!({
            "request_type": "atomic",
            "response_code": 400,
            "resource_status": [{
                "resource": "osdi:signature",
                "response_code": 400,
                "error_descriptions": descriptions,
            }],
        }),
    );
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/hal+json"),
    );
    response
}

/// The primary entry of a list of OSDI objects, else its first.
fn primary(list: Option<&Value>) -> Option<&Map<String, Value>> {
    let items = list?.as_array()?;
    items
        .iter()
        .filter_map(Value::as_object)
        .find(|o| o.get("primary") == Some(&Value::Bool(true)))
        .or_else(|| items.iter().find_map(Value::as_object))
}

fn text(o: Option<&Map<String, Value>>, name: &str) -> Option<String> {
    o?.get(name)?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A signature's fields from OSDI's person: the names joined, the primary
/// (or first) email and postal address, the first language spoken; the
/// address's `status` of `subscribed` is consent to updates.
fn signature_input(person: &Map<String, Value>) -> SignatureInput {
    let name: Vec<String> = ["given_name", "additional_name", "family_name"]
        .iter()
        .filter_map(|n| text(Some(person), n))
        .collect();
    let email = primary(person.get("email_addresses"));
    let postal = primary(person.get("postal_addresses"));
    let language = person
        .get("languages_spoken")
        .and_then(Value::as_array)
        .and_then(|l| l.first())
        .and_then(Value::as_str)
        .map(str::to_owned);
    let organization = text(Some(person), "employer");
    SignatureInput {
        full_name: (!name.is_empty()).then(|| name.join(" ")),
        email: text(email, "address"),
        country: text(postal, "country"),
        postal_code: text(postal, "postal_code"),
        city: text(postal, "locality"),
        signer_kind: None,
        organization,
        consent_updates: Some((text(email, "status").as_deref() == Some("subscribed")).to_string()),
        locale: language,
        id: None,
    }
}

/// `POST /osdi/v1/petitions/{slug}/signatures` (and `…/record_signature_helper`):
/// the record signature helper, for an admin or the petition's organizers
/// and tablets. 200 with the signature, whether the person had signed
/// already or not (duplicates are answered as new signatures are).
pub async fn record(mut call: Call<'_>) -> Answer {
    // The flood shield first, as for the form.
    call.shield()?;
    let token = token(&call).await?;
    let petition = call.petition().await?;
    auth::holds(&token, petition.id, &[Role::Device, Role::Organizer])?;
    let client = call.client();
    let Fields::Json(document) = call.any_fields(MAX_BODY).await? else {
        return Err(ApiError::UnsupportedMediaType);
    };
    let Some(Value::Object(person)) = document.get("person") else {
        return Ok(osdi_error(&[FieldError::new("person", "required")]));
    };
    petition
        .window
        .check(petition.status, Utc::now())
        .map_err(ApiError::NotOpen)?;
    let signature = match Signature::parse(signature_input(person), &petition.signers) {
        Ok(signature) => signature,
        Err(errors) => return Ok(osdi_error(&errors)),
    };
    let receipt = call
        .app
        .ingest
        .sign(&petition, client, signature, Channel::Web)
        .await
        .map_err(refusal)?;
    let now = time(Utc::now());
    let base = base(&call);
    let at = format!("{base}/petitions/{}", petition.slug);
    Ok(hal(
        StatusCode::OK,
        &json!({
            "identifiers": [format!("{NAMESPACE}:{}", receipt.id)],
            "origin_system": "undersigned",
            "created_date": now,
            "modified_date": now,
            "action_date": now,
            "_links": {
                "self": href(format!("{at}/signatures/{}", receipt.id)),
                "osdi:petition": href(at),
            },
        }),
        true,
    ))
}
