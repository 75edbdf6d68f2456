//! Signing a petition: from the campaign's forms (JSON with `fetch`, or a plain
//! HTML form that lands on the petition's thank-you or error page) and from
//! authenticated callers.

use std::net::IpAddr;

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde_json::json;
use undersigned_domain::{
    CaptchaPolicy, Channel, Country, FieldError, Signature, SignatureInput, SignerRules, parse_time,
};
use undersigned_ingest::{Receipt, SignError};
use undersigned_store::{AuditEntry, Petition, SignatureFilter};
use uuid::Uuid;

use crate::call::{Answer, Call, Reading};
use crate::captcha::CaptchaRefusal;
use crate::fields::{Fields, Picked, TakeFields, validated};
use crate::problem::{ApiError, Undone};
use crate::query::Query;
use crate::reply::{Body, full, json, see_other};
use crate::request::{BodyKind, body_kind, read_body};
use crate::{App, auth, cors};

/// `POST /v1/petitions/{slug}/signatures`: anyone, with a captcha when the
/// petition asks for one; a token with a right to the petition skips it.
pub async fn sign(mut call: Call<'_>) -> Answer {
    let app = call.app;
    let client = call.client();
    call.shield()?;
    let petition = call.petition().await.map_err(ApiError::signing)?;
    let body = call.take_body()?;
    let parts = &call.parts;
    let kind = body_kind(&parts.headers, true);
    let to_page = matches!(kind, Ok(BodyKind::Form)) && accepts_html(&parts.headers);
    let mut origin = None;
    // A form from the service's own signing page (/p/{slug}) lands back there.
    let mut hosted = false;
    let result = async {
        // Refused before the body is read; a plain form from a stranger's site
        // still lands on the error page, not on raw JSON.
        origin = cors::allowed_origin(
            &petition,
            &parts.headers,
            call.config.own_origins.as_deref(),
        )?;
        let kind = kind?;
        let body = read_body(&parts.headers, body, call.config.body_read_timeout).await?;
        hosted = to_page
            && form_urlencoded::parse(&body)
                .any(|(name, value)| name == "landing" && value == "page");
        petition
            .window
            .check(petition.status, chrono::Utc::now())
            .map_err(ApiError::NotOpen)?;
        let (signature, captcha) = parse_signature(kind, &body, &petition.signers)?;
        // Authenticated callers with a right to this petition (its devices and
        // organizers, admins) never solve captchas; other tokens are refused.
        let authenticated = if parts.headers.contains_key(header::AUTHORIZATION) {
            auth::require_signer(app, &parts.headers, petition.id).await?;
            true
        } else {
            false
        };
        if !authenticated {
            check_captcha(app, &petition, captcha.as_deref(), client).await?;
        }
        app.ingest
            .sign(&petition, client, signature, Channel::Web)
            .await
            .map_err(refusal)
    }
    .await
    .map_err(ApiError::signing);
    let mut response = if hosted {
        landing(&petition, result)
    } else {
        answer(&petition, result, to_page)
    };
    if let Some(origin) = origin {
        cors::grant(response.headers_mut(), origin);
    }
    Ok(response)
}

/// `OPTIONS /v1/petitions/{slug}/signatures`: a browser asking whether a page
/// on another site may post signatures.
pub async fn preflight(call: Call<'_>) -> Answer {
    let petition = call.petition().await?;
    cors::preflight(&petition, call.headers())
}

/// Why the ingest path did not take a signature, as the client hears it.
pub(crate) fn refusal(e: SignError) -> ApiError {
    match e {
        SignError::RateLimited { retry_after, scope } => ApiError::RateLimited(retry_after, scope),
        SignError::QueueFull => ApiError::QueueFull,
        SignError::ShuttingDown | SignError::Storage(_) => ApiError::Unavailable(Undone::Signature),
        SignError::Blocked(_) => ApiError::Blocked,
        SignError::IdReused => ApiError::Conflict(vec![FieldError::new("id", "already_used")]),
        SignError::Undeliverable => {
            ApiError::Invalid(vec![FieldError::new("email", "undeliverable")])
        }
    }
}

/// A receipt or a problem; for a plain HTML form, a 303 to the page configured
/// for it instead, when there is one.
fn answer(petition: &Petition, result: Result<Receipt, ApiError>, to_page: bool) -> Response<Body> {
    match result {
        Ok(receipt) => match petition.web.thank_you_url.as_ref().filter(|_| to_page) {
            Some(page) => see_other(&page.with_query(&[("receipt", &receipt.id.to_string())])),
            // Written at once rather than through a JSON value: this is the
            // answer to nearly every signature (benches/BENCHMARKS.md).
            None => full(
                StatusCode::ACCEPTED,
                "application/json",
                format!(r#"{{"receipt":"{}","status":"accepted"}}"#, receipt.id),
            ),
        },
        Err(e) => match petition.web.error_url.as_ref().filter(|_| to_page) {
            Some(page) => {
                let (problem, fields) = e.summary();
                let fields = fields.join(",");
                let wait = e.retry_after();
                let wait_text = wait.map(|s| s.to_string());
                let mut query = vec![("problem", problem)];
                if !fields.is_empty() {
                    query.push(("fields", &fields));
                }
                // The page cannot read headers: it is told the wait in its query.
                if let Some(seconds) = &wait_text {
                    query.push(("retry_after", seconds));
                }
                let mut response = see_other(&page.with_query(&query));
                if let Some(seconds) = wait {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                response
            }
            None => e.into_response(),
        },
    }
}

/// A plain form from the signing page: a 303 to its thanks page, or back to
/// the page with the problem and each field's fault (never what was typed).
/// Relative to this path, `/v1/petitions/{slug}/signatures`, so that any host
/// or mirror keeps the signer on itself.
fn landing(petition: &Petition, result: Result<Receipt, ApiError>) -> Response<Body> {
    let slug = &petition.slug;
    let mut query = form_urlencoded::Serializer::new(String::new());
    let e = match result {
        Ok(receipt) => {
            query.append_pair("receipt", &receipt.id.to_string());
            return see_other(&format!("../../../p/{slug}/thanks?{}", query.finish()));
        }
        Err(e) => e,
    };
    let (problem, _) = e.summary();
    query.append_pair("problem", problem);
    let faults: Vec<String> = match &e {
        ApiError::Invalid(errors) | ApiError::Conflict(errors) => errors
            .iter()
            .map(|f| format!("{}.{}", f.field, f.code))
            .collect(),
        ApiError::Captcha(_) => vec!["captcha.failed".into()],
        _ => Vec::new(),
    };
    if !faults.is_empty() {
        query.append_pair("errors", &faults.join(","));
    }
    let mut response = see_other(&format!("../../../p/{slug}?{}#sign", query.finish()));
    if let Some(seconds) = e.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

async fn check_captcha(
    app: &App,
    petition: &Petition,
    token: Option<&str>,
    client: IpAddr,
) -> Result<(), ApiError> {
    let Some(captcha) = app.captcha.as_ref() else {
        return Ok(());
    };
    if petition.web.captcha == CaptchaPolicy::Off {
        return Ok(());
    }
    let outcome = captcha.verify(token, client).await;
    let fail_open = petition.web.captcha_fail_open;
    app.metrics.captcha(match outcome {
        Ok(()) => "passed",
        Err(CaptchaRefusal::Missing) => "missing",
        Err(CaptchaRefusal::Failed) => "failed",
        Err(CaptchaRefusal::Unreachable) if fail_open => "accepted_unverified",
        Err(CaptchaRefusal::Unreachable) => "unreachable",
        Err(CaptchaRefusal::Misconfigured) => "misconfigured",
    });
    match outcome {
        Err(CaptchaRefusal::Unreachable) if fail_open => Ok(()),
        other => other.map_err(ApiError::Captcha),
    }
}

/// A browser submitting a form without JavaScript asks for a page.
pub(crate) fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            let essence = media.split(';').next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case("text/html")
                || essence.eq_ignore_ascii_case("application/xhtml+xml")
        })
}

/// A signature from a JSON or form body, every field checked and normalized,
/// and the captcha token if one came (`captcha`, or hCaptcha's own form field).
pub fn parse_signature(
    kind: BodyKind,
    body: &[u8],
    rules: &SignerRules,
) -> Result<(Signature, Option<String>), ApiError> {
    match kind {
        BodyKind::Json => signature_from(&mut Picked::parse(&SIGNING_FIELDS, body)?, rules),
        BodyKind::Form => signature_from(&mut Fields::parse(kind, body)?, rules),
    }
}

/// Every field a signature's body is read for: the captcha's and
/// [`signature_input`]'s.
const SIGNING_FIELDS: [&str; 12] = [
    "captcha",
    "h-captcha-response",
    "full_name",
    "email",
    "country",
    "postal_code",
    "city",
    "signer_kind",
    "organization",
    "consent_updates",
    "locale",
    "id",
];

fn signature_from(
    fields: &mut impl TakeFields,
    rules: &SignerRules,
) -> Result<(Signature, Option<String>), ApiError> {
    let mut errors = Vec::new();
    let captcha = fields
        .take_text("captcha", &mut errors)
        .or_else(|| fields.take_text("h-captcha-response", &mut errors));
    let input = signature_input(fields, &mut errors);
    Ok((validated(errors, Signature::parse(input, rules))?, captcha))
}

/// A signature's fields, as sent, taken out of `fields` (each is read once:
/// moved, not copied).
pub(crate) fn signature_input(
    fields: &mut impl TakeFields,
    errors: &mut Vec<FieldError>,
) -> SignatureInput {
    SignatureInput {
        full_name: fields.take_text("full_name", errors),
        email: fields.take_text("email", errors),
        country: fields.take_text("country", errors),
        postal_code: fields.take_text("postal_code", errors),
        city: fields.take_text("city", errors),
        signer_kind: fields.take_text("signer_kind", errors),
        organization: fields.take_text("organization", errors),
        consent_updates: fields.take_flag("consent_updates", errors),
        locale: fields.take_text("locale", errors),
        id: fields.take_text("id", errors),
    }
}

/// Signatures per page, by default and at most.
const PAGE_DEFAULT: i64 = 100;
const PAGE_MAX: i64 = 1_000;

/// `GET /v1/petitions/{slug}/signatures?country=&channel=&signed_after=&signed_before=&after=&limit=`:
/// signer data for organizers, scoped by role, each page recorded in the audit trail.
pub async fn list(call: Call<'_>, reading: Reading) -> Answer {
    let (petition, token, scope) = (reading.petition, reading.token, reading.scope);
    let app = call.app;
    let slug = petition.slug.as_str();
    let query = Query::of(call.uri());
    let get = |name: &str| query.get(name);
    let mut errors = Vec::new();
    let mut filter = SignatureFilter {
        countries: scope.clone(),
        limit: PAGE_DEFAULT,
        ..SignatureFilter::default()
    };
    if let Some(country) = get("country") {
        match Country::parse(country) {
            // A coordinator asking for a country outside its scope is refused.
            Some(c)
                if scope
                    .as_ref()
                    .is_some_and(|s| !s.iter().any(|x| x == c.as_str())) =>
            {
                return Err(ApiError::Forbidden);
            }
            Some(c) => filter.countries = Some(vec![c.as_str().to_owned()]),
            None => errors.push(FieldError::new("country", "invalid")),
        }
    }
    if let Some(channel) = get("channel") {
        match Channel::parse(channel) {
            Some(c) => filter.channel = Some(c),
            None => errors.push(FieldError::new("channel", "invalid")),
        }
    }
    for (name, slot) in [
        ("signed_after", &mut filter.signed_after),
        ("signed_before", &mut filter.signed_before),
    ] {
        if let Some(t) = get(name) {
            match parse_time(t) {
                Ok(t) => *slot = Some(t),
                Err(code) => errors.push(FieldError::new(name, code)),
            }
        }
    }
    if let Some(after) = get("after") {
        match Uuid::parse_str(after) {
            Ok(id) => filter.after = Some(id),
            Err(_) => errors.push(FieldError::new("after", "invalid")),
        }
    }
    filter.limit = query.limit(PAGE_DEFAULT, PAGE_MAX, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let page = app.store.signatures_page(petition.id, &filter).await?;
    app.store
        .audit(
            &AuditEntry::new(
                &call.actor(&token),
                "signatures.list",
                json!({
                    "countries": filter.countries,
                    "channel": filter.channel.map(|c| c.as_str()),
                    "signed_after": filter.signed_after,
                    "signed_before": filter.signed_before,
                    "rows": page.len(),
                }),
            )
            .about(petition.id),
        )
        .await?;
    let next = query.next_page(
        &format!("/v1/petitions/{slug}/signatures"),
        page.len(),
        filter.limit,
        "after",
        page.last().map(|x| x.id),
    );
    let signatures: Vec<serde_json::Value> = page
        .iter()
        .map(|s| {
            json!({
                "receipt": s.id,
                "full_name": s.full_name,
                "email": s.email,
                "country": s.country,
                "postal_code": s.postal_code,
                "city": s.city,
                "signer_kind": s.kind,
                "organization": s.organization,
                "consent_updates": s.consent_updates,
                "locale": s.locale,
                "channel": s.channel,
                "signed_at": s.signed_at,
                "state": s.state,
            })
        })
        .collect();
    let mut response = json(
        StatusCode::OK,
        &json!({"signatures": signatures, "next": next}),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_posting_forms_want_pages() {
        let mut h = HeaderMap::new();
        assert!(!accepts_html(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            ),
        );
        assert!(accepts_html(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!accepts_html(&h));
    }

    #[test]
    fn the_captcha_token_comes_from_either_field() {
        let form = b"full_name=A&email=a%40example.org&country=NL&h-captcha-response=tok";
        let (_, token) = parse_signature(BodyKind::Form, form, &SignerRules::default()).unwrap();
        assert_eq!(token.as_deref(), Some("tok"));
        let json = br#"{"full_name":"A","email":"a@example.org","country":"NL","captcha":"t2"}"#;
        let (_, token) = parse_signature(BodyKind::Json, json, &SignerRules::default()).unwrap();
        assert_eq!(token.as_deref(), Some("t2"));
    }

    /// A JSON body read in one pass gives what the whole body parsed into a
    /// map gives: the same signature, the same field errors.
    #[test]
    fn a_json_body_picked_reads_as_the_whole_body_parsed() {
        let bodies: [&[u8]; 5] = [
            br#"{"full_name":"Ana Lima","email":"ana@example.org","country":"BR",
                "postal_code":"01000","city":"S\u00e3o Paulo","signer_kind":"person",
                "organization":null,"consent_updates":true,"locale":"pt","id":"k-1",
                "captcha":"c","h-captcha-response":"h","unknown":{"nested":["x",1,2.5,null]}}"#,
            br#"{"full_name":5,"email":null,"country":["NL"],"city":{"a":1},
                "consent_updates":null,"locale":true,"signer_kind":"robot"}"#,
            br#"{"email":"a@example.org","email":"b@example.org","country":"NL","full_name":"B"}"#,
            br#"{"em\u0061il":"c@example.org","country":"NL","full_name":"C","consent_updates":"on"}"#,
            br#"{"signer_kind":"organization","organization":"Acme","email":"d@example.org",
                "country":"NL","full_name":"D","consent_updates":1}"#,
        ];
        let rules = SignerRules::default();
        for body in bodies {
            let whole = signature_from(&mut Fields::parse(BodyKind::Json, body).unwrap(), &rules);
            let picked = signature_from(&mut Picked::parse(&SIGNING_FIELDS, body).unwrap(), &rules);
            assert_eq!(
                format!("{picked:?}"),
                format!("{whole:?}"),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
