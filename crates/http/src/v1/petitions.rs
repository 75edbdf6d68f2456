//! Creating, changing and reading petitions.

use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use undersigned_domain::{
    CaptchaPolicy, FieldError, Locale, MailTextInput, NewPetition, NewPetitionInput, SignerRules,
    Slug, Target, TargetInput, TranslationChanges, WebSettingsInput, Window, WordingInput,
    accepted_locales, parse_ask, parse_goal, parse_milestones, parse_retention_days, parse_status,
    parse_text, parse_time, parse_title,
};
use undersigned_store::{
    AuditEntry, Petition, PetitionUpdate, READ_DEADLINE, Role, StoreError, Token, within,
};

use crate::call::{Answer, Call, Managed};
use crate::fields::{Fields, validated};
use crate::problem::ApiError;
use crate::query::Query;
use crate::reply::json;
use crate::{App, auth, cors};

/// Who reads a petition, which decides what they see.
struct Reader<'a> {
    /// The locales asked for, best first.
    wanted: &'a [Locale],
    /// The petition's organizers and admins also see every translation and
    /// how to contact its targets.
    organizer: bool,
}

fn petition_json(app: &App, p: &Petition, reader: Reader) -> Value {
    let (locale, wording) = p.wordings.pick(reader.wanted);
    let mut body = json!({
        "slug": p.slug,
        "locale": locale,
        "default_locale": p.wordings.locale,
        "locales": p.wordings.locales(),
        "title": wording.title,
        "text": wording.text,
        "ask": wording.ask,
        "goal": p.goal,
        "count": app.ingest.counter().view(p.id).total,
        "status": p.status.as_str(),
        "created_at": p.created_at,
        "opens_at": p.window.opens_at,
        "closes_at": p.window.closes_at,
        "targets": p.targets.iter().map(|t| target_json(t, reader.organizer)).collect::<Vec<_>>(),
        "required_fields": p.signers.required.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
        "organizations_may_sign": p.signers.organizations_may_sign,
        "email_optional_offline": p.signers.email_optional_offline,
        "allowed_origins": p.web.allowed_origins,
        "thank_you_url": p.web.thank_you_url,
        "error_url": p.web.error_url,
        "captcha": p.web.captcha.as_str(),
        "captcha_fail_open": p.web.captcha_fail_open,
        "verification": p.web.verification.as_str(),
        "confirmed_url": p.web.confirmed_url,
        // Public keys: a signer may see that their data is sealed, and to whom.
        "sealing_key": p.sealing,
        // How long a signer's data is kept after the petition closes (null:
        // as long as the petition), and whether it is gone already.
        "retention_days": p.retention_days,
        "personal_data_erased_at": p.personal_data_erased_at,
        // Counts announced to webhooks once each when reached.
        "milestones": p.milestones,
        // What a form needs to render the widget: present only when signing
        // here does ask for a captcha.
        "captcha_sitekey": app.captcha.as_ref()
            .filter(|_| p.web.captcha == CaptchaPolicy::Required)
            .map(|c| c.sitekey()),
    });
    if reader.organizer {
        body["erasure_due_at"] = json!(p.erasure_due_at());
        body["translations"] = json!(p.wordings.translations);
        body["confirmation_texts"] = json!(p.web.confirmation_texts);
    }
    body
}

fn target_json(t: &Target, with_contact: bool) -> Value {
    let mut target = json!({"name": t.name, "country": t.country});
    if with_contact {
        target["contact"] = json!(t.contact);
    }
    target
}

fn web_input(fields: &Fields, errors: &mut Vec<FieldError>) -> WebSettingsInput {
    WebSettingsInput {
        allowed_origins: fields.list("allowed_origins", errors),
        thank_you_url: fields.text("thank_you_url", errors),
        error_url: fields.text("error_url", errors),
        captcha: fields.text("captcha", errors),
        captcha_fail_open: fields.boolean("captcha_fail_open", errors),
        verification: fields.text("verification", errors),
        confirmed_url: fields.text("confirmed_url", errors),
        confirmation_texts: confirmation_texts_input(fields, errors),
    }
}

fn wording_input(fields: &Fields, errors: &mut Vec<FieldError>) -> WordingInput {
    WordingInput {
        title: fields.text("title", errors),
        text: fields.text("text", errors),
        ask: fields.text("ask", errors),
    }
}

/// Reads the fields of an object inside a field: `translations.fr.title`,
/// `targets[2].name`. A value that is not an object is `not_an_object`, and
/// read as an empty one, so the others keep their places and are all checked.
fn inner<T>(
    at: String,
    value: &Value,
    errors: &mut Vec<FieldError>,
    read: impl FnOnce(&Fields, &mut Vec<FieldError>) -> T,
) -> T {
    let map = match value {
        Value::Object(map) => map.clone(),
        _ => {
            errors.push(FieldError::new(at.clone(), "not_an_object"));
            Default::default()
        }
    };
    let mut inner_errors = Vec::new();
    let read = read(&Fields::Json(map), &mut inner_errors);
    errors.extend(inner_errors.into_iter().map(|e| e.within(&at)));
    read
}

/// `{"fr": {"title", "text", "ask"}, "de": null, …}`: translations to set or remove.
fn translations_input(fields: &Fields, errors: &mut Vec<FieldError>) -> TranslationChanges {
    let Some(value) = fields.value("translations") else {
        return Vec::new();
    };
    let Value::Object(map) = value else {
        errors.push(FieldError::new("translations", "not_an_object"));
        return Vec::new();
    };
    map.iter()
        .map(|(tag, wording)| {
            if wording.is_null() {
                return (tag.clone(), None);
            }
            // A tag that is no locale is reported by the domain, by that name.
            let at = match Locale::parse(tag) {
                Ok(l) => format!("translations.{}", l.as_str()),
                Err(_) => "translations".into(),
            };
            (tag.clone(), Some(inner(at, wording, errors, wording_input)))
        })
        .collect()
}

/// `{"fr": {"subject", "body"}, "de": null, …}`: the confirmation email's
/// words to set or remove, by locale.
fn confirmation_texts_input(
    fields: &Fields,
    errors: &mut Vec<FieldError>,
) -> Vec<(String, Option<MailTextInput>)> {
    let Some(value) = fields.value("confirmation_texts") else {
        return Vec::new();
    };
    let Value::Object(map) = value else {
        errors.push(FieldError::new("confirmation_texts", "not_an_object"));
        return Vec::new();
    };
    map.iter()
        .map(|(tag, text)| {
            if text.is_null() {
                return (tag.clone(), None);
            }
            let read = inner(
                format!("confirmation_texts.{tag}"),
                text,
                errors,
                |f, errors| MailTextInput {
                    subject: f.text("subject", errors),
                    body: f.text("body", errors),
                },
            );
            (tag.clone(), Some(read))
        })
        .collect()
}

/// `sealing_key`: one `age` recipient or a list of them; `null` (`Some(None)`)
/// asks for none.
fn sealing_input(fields: &Fields, errors: &mut Vec<FieldError>) -> Option<Option<Vec<String>>> {
    if !fields.has("sealing_key") {
        return None;
    }
    match fields.value("sealing_key") {
        None => Some(None),
        Some(Value::String(key)) => Some(Some(vec![key.clone()])),
        Some(Value::Array(keys)) if keys.iter().all(Value::is_string) => Some(Some(
            keys.iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect(),
        )),
        _ => {
            errors.push(FieldError::new("sealing_key", "not_a_key_or_list_of_keys"));
            None
        }
    }
}

/// `retention_days`: a number of days, or `null` (`Some(None)`) for as long
/// as the petition is kept.
fn retention_input(fields: &Fields, errors: &mut Vec<FieldError>) -> Option<Option<i64>> {
    if !fields.has("retention_days") {
        return None;
    }
    match fields.value("retention_days") {
        None => Some(None),
        Some(_) => fields.integer("retention_days", errors).map(Some),
    }
}

/// `milestones`: a list of counts (`null` or `[]`: none).
fn milestones_input(fields: &Fields, errors: &mut Vec<FieldError>) -> Option<Vec<i64>> {
    match fields.value("milestones") {
        None if fields.has("milestones") => Some(Vec::new()),
        None => None,
        Some(Value::Array(items)) => {
            let counts: Option<Vec<i64>> = items.iter().map(Value::as_i64).collect();
            if counts.is_none() {
                errors.push(FieldError::new("milestones", "not_a_list_of_integers"));
            }
            counts
        }
        Some(_) => {
            errors.push(FieldError::new("milestones", "not_a_list_of_integers"));
            None
        }
    }
}

/// `[{"name", "country", "contact"}, …]`, in order.
fn targets_input(fields: &Fields, errors: &mut Vec<FieldError>) -> Option<Vec<TargetInput>> {
    let value = fields.value("targets")?;
    let Value::Array(items) = value else {
        errors.push(FieldError::new("targets", "not_a_list_of_objects"));
        return None;
    };
    let targets = items.iter().enumerate().map(|(i, item)| {
        inner(format!("targets[{i}]"), item, errors, |f, errors| {
            TargetInput {
                name: f.text("name", errors),
                country: f.text("country", errors),
                contact: f.text("contact", errors),
            }
        })
    });
    Some(targets.collect())
}

/// A petition to create from a document as `POST /v1/petitions` takes it: the
/// command line's `petition create` reads it with the same checks.
pub fn new_petition_from(
    document: serde_json::Map<String, Value>,
) -> Result<NewPetition, ApiError> {
    let fields = Fields::Json(document);
    fields.only(&CREATABLE)?;
    new_petition(&fields)
}

fn new_petition(fields: &Fields) -> Result<NewPetition, ApiError> {
    let mut errors = Vec::new();
    let input = NewPetitionInput {
        slug: fields.text("slug", &mut errors),
        wording: wording_input(fields, &mut errors),
        locale: fields.text("locale", &mut errors),
        translations: translations_input(fields, &mut errors),
        goal: fields.integer("goal", &mut errors),
        status: fields.text("status", &mut errors),
        opens_at: fields.text("opens_at", &mut errors),
        closes_at: fields.text("closes_at", &mut errors),
        targets: targets_input(fields, &mut errors).unwrap_or_default(),
        required_fields: fields
            .list("required_fields", &mut errors)
            .unwrap_or_default(),
        organizations_may_sign: fields.boolean("organizations_may_sign", &mut errors),
        email_optional_offline: fields.boolean("email_optional_offline", &mut errors),
        web: web_input(fields, &mut errors),
        sealing: sealing_input(fields, &mut errors).flatten(),
        retention_days: retention_input(fields, &mut errors),
        milestones: milestones_input(fields, &mut errors),
    };
    validated(errors, NewPetition::parse(input))
}

/// `POST /v1/petitions` (admins).
pub async fn create(mut call: Call<'_>, token: Token) -> Answer {
    let app = call.app;
    let fields = call.fields(&CREATABLE).await?;
    let petition = new_petition(&fields)?;
    let audit = AuditEntry::new(
        &call.actor(&token),
        "petition.create",
        json!({"slug": petition.slug}),
    );
    let created = match app.store.create_petition(&petition, audit).await {
        Ok(p) => p,
        Err(StoreError::Conflict) => {
            return Err(ApiError::Conflict(vec![FieldError::new("slug", "taken")]));
        }
        Err(e) => return Err(e.into()),
    };
    app.catalog.forget(&created.slug);
    tracing::info!(slug = %created.slug, goal = created.goal, "petition created");
    let mut response = json(
        StatusCode::CREATED,
        &petition_json(app, &created, ORGANIZER),
    );
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/petitions/{}", created.slug)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// An organizer's view in the default locale, as creation and changes answer.
const ORGANIZER: Reader = Reader {
    wanted: &[],
    organizer: true,
};

/// The fields a change may carry; `slug` and `locale` (the default) stay.
pub(crate) const CHANGEABLE: [&str; 23] = [
    "title",
    "text",
    "ask",
    "translations",
    "goal",
    "status",
    "opens_at",
    "closes_at",
    "targets",
    "required_fields",
    "organizations_may_sign",
    "email_optional_offline",
    "allowed_origins",
    "thank_you_url",
    "error_url",
    "captcha",
    "captcha_fail_open",
    "verification",
    "confirmed_url",
    "confirmation_texts",
    "sealing_key",
    "retention_days",
    "milestones",
];

/// What a new petition may carry: the changeable fields, its slug and its
/// default locale.
const CREATABLE: [&str; CHANGEABLE.len() + 2] = {
    let mut all = [""; CHANGEABLE.len() + 2];
    all[0] = "slug";
    all[1] = "locale";
    let mut i = 0;
    while i < CHANGEABLE.len() {
        all[i + 2] = CHANGEABLE[i];
        i += 1;
    }
    all
};

/// `PATCH /v1/petitions/{slug}` (its organizers): the fields sent change, the
/// others stay; `translations` sets or (with `null`) removes the locales it names.
pub async fn update(mut call: Call<'_>, Managed { petition, token }: Managed) -> Answer {
    let app = call.app;
    let slug = petition.slug.as_str();
    let fields = call.fields(&CHANGEABLE).await?;
    let mut type_errors = Vec::new();
    let errors = &mut type_errors;
    let title = fields.text("title", errors);
    let text = fields.text("text", errors);
    let ask = fields.nullable_text("ask", errors);
    let translations = translations_input(&fields, errors);
    let goal = fields.integer("goal", errors);
    let status = fields.text("status", errors);
    let opens_at = fields.nullable_text("opens_at", errors);
    let closes_at = fields.nullable_text("closes_at", errors);
    let targets = targets_input(&fields, errors);
    let targets = if fields.has("targets") {
        Some(targets.unwrap_or_default())
    } else {
        None
    };
    let required = fields.list("required_fields", errors);
    let organizations_may_sign = fields.boolean("organizations_may_sign", errors);
    let email_optional_offline = fields.boolean("email_optional_offline", errors);
    let web = web_input(&fields, errors);
    let sealing = sealing_input(&fields, errors);
    let retention = retention_input(&fields, errors);
    let milestones = milestones_input(&fields, errors);
    // Who may open the signers' data, and keeping it for as long as the
    // petition, are an admin's calls: an organizer naming their own key
    // would read every address from then on.
    if (sealing.is_some() || retention == Some(None)) && token.role != Role::Admin {
        return Err(ApiError::Forbidden);
    }
    let changed: Vec<&str> = CHANGEABLE
        .iter()
        .copied()
        .filter(|name| fields.has(name))
        .collect();
    let mut detail = json!({"fields": changed});
    if !translations.is_empty() {
        detail["locales"] = translations.iter().map(|(tag, _)| tag.as_str()).collect();
    }
    let audit = AuditEntry::new(&call.actor(&token), "petition.update", detail);
    let updated = app
        .store
        .update_petition(slug, audit, |current| {
            // Type errors and the domain's are joined by `validated`, which
            // reports a wrongly typed field once, and nothing inside it.
            let mut errors = Vec::new();
            let mut next = PetitionUpdate::from(current);
            let mut check = |field, result: Result<(), &'static str>| {
                if let Err(code) = result {
                    errors.push(FieldError::new(field, code));
                }
            };
            let default = &mut next.wordings.default;
            if let Some(t) = &title {
                check(
                    "title",
                    parse_title(t).map(|t| default.title = t.into_string()),
                );
            }
            if let Some(t) = &text {
                check(
                    "text",
                    parse_text(t).map(|t| default.text = t.into_string()),
                );
            }
            match &ask {
                None => {}
                Some(None) => default.ask = None,
                Some(Some(a)) if a.trim().is_empty() => default.ask = None,
                Some(Some(a)) => {
                    check(
                        "ask",
                        parse_ask(a).map(|a| default.ask = Some(a.into_string())),
                    );
                }
            }
            if let Some(g) = goal {
                check("goal", parse_goal(g).map(|g| next.goal = g));
            }
            if let Some(s) = &status {
                check("status", parse_status(s).map(|s| next.status = s));
            }
            if let Some(names) = &required {
                check(
                    "required_fields",
                    SignerRules::parse_required(names).map(|r| next.signers.required = r),
                );
            }
            if let Some(may) = organizations_may_sign {
                next.signers.organizations_may_sign = may;
            }
            if let Some(optional) = email_optional_offline {
                next.signers.email_optional_offline = optional;
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
            if let Err(e) = next.wordings.change_translations(translations) {
                errors.extend(e);
            }
            if let Some(targets) = targets {
                match Target::parse_list(targets) {
                    Ok(targets) => next.targets = targets,
                    Err(e) => errors.extend(e),
                }
            }
            match current.web.apply(web) {
                Ok(web) => next.web = web,
                Err(e) => errors.extend(e),
            }
            // Recipients may change (a coordinator joins, a key is replaced:
            // the next epoch is sealed to the new list), but whether a
            // petition is sealed is chosen when it is created, so that its
            // signatures are all sealed or all in clear.
            let sealed = match (&sealing, current.sealing.is_empty()) {
                (None, _) => Ok(()),
                (Some(Some(keys)), false) => {
                    undersigned_seal::parse_recipients(keys).map(|k| next.sealing = k)
                }
                (Some(_), _) => Err("chosen_at_creation"),
            };
            if let Err(code) = sealed {
                errors.push(FieldError::new("sealing_key", code));
            }
            match retention {
                None => {}
                Some(None) => next.retention_days = None,
                Some(Some(days)) => match parse_retention_days(days) {
                    Ok(days) => next.retention_days = Some(days),
                    Err(code) => errors.push(FieldError::new("retention_days", code)),
                },
            }
            if let Some(counts) = &milestones {
                match parse_milestones(counts) {
                    Ok(counts) => next.milestones = counts,
                    Err(code) => errors.push(FieldError::new("milestones", code)),
                }
            }
            // Its signers' data is gone: it cannot take signatures again,
            // whose duplicates it could no longer tell.
            if current.personal_data_erased_at.is_some()
                && next.window.check(next.status, chrono::Utc::now()).is_ok()
            {
                errors.push(FieldError::new("status", "personal_data_erased"));
            }
            validated(
                type_errors,
                if errors.is_empty() {
                    Ok(next)
                } else {
                    Err(errors)
                },
            )
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    app.catalog.forget(&updated.slug);
    tracing::info!(slug = %updated.slug, "petition changed");
    Ok(json(
        StatusCode::OK,
        &petition_json(app, &updated, ORGANIZER),
    ))
}

/// Petitions a page of `GET /v1/petitions`, by default and at most.
const LIST_DEFAULT: i64 = 100;
const LIST_MAX: i64 = 1_000;

/// `GET /v1/petitions?after=SLUG&limit=N`: the petitions a token may see
/// (every one for an admin, its own for an organizer or coordinator), oldest
/// first, a page at a time (after the petition `after` names; an unknown one
/// gives an empty page), with their counts: what the organizers' dashboard
/// offers to pick from.
pub async fn list(call: Call<'_>) -> Answer {
    let app = call.app;
    let token = call.authenticate().await?;
    if token.role == Role::Device {
        return Err(ApiError::Forbidden);
    }
    let query = Query::of(call.uri());
    let mut errors = Vec::new();
    let limit = query.limit(LIST_DEFAULT, LIST_MAX, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let only = (token.role != Role::Admin).then_some(token.petition_ids.as_slice());
    let page = match query.get("after") {
        // Not a slug (a NUL byte, say): no petition is named, the page is empty.
        Some(after) if Slug::parse(after).is_err() => Vec::new(),
        after => within(READ_DEADLINE, app.store.petition_page(only, after, limit)).await?,
    };
    let counter = app.ingest.counter();
    let listed: Vec<Value> = page
        .iter()
        .map(|(id, slug, title, status, goal)| {
            json!({
                "slug": slug,
                "title": title,
                "status": status,
                "goal": goal,
                "count": counter.view(*id).total,
            })
        })
        .collect();
    let next = query.next_page(
        "/v1/petitions",
        page.len(),
        limit,
        "after",
        page.last().map(|p| &p.1),
    );
    let mut response = json(
        StatusCode::OK,
        &json!({ "petitions": listed, "next": next }),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

/// `GET /v1/petitions/{slug}?locale=xx`: in the locale asked for (else the
/// best of `Accept-Language`, else the default). Public and briefly cacheable;
/// with the token of one of its organizers, their view, never cached. Any
/// other valid token (a coordinator's, a tablet's) sees what anyone sees; a
/// token that is not valid is 401, since presenting one is a client's bug.
pub async fn show(call: Call<'_>) -> Answer {
    let app = call.app;
    let petition = call.petition().await?;
    let wanted = wanted_locales(&call)?;
    let organizer = if call.headers().contains_key(header::AUTHORIZATION) {
        let token = call.authenticate().await?;
        auth::holds(&token, petition.id, &[Role::Organizer]).is_ok()
    } else {
        false
    };
    let reader = Reader {
        wanted: &wanted,
        organizer,
    };
    let body = petition_json(app, &petition, reader);
    let mut response = json(StatusCode::OK, &body);
    let headers = response.headers_mut();
    if let Some(served) = body["locale"]
        .as_str()
        .and_then(|l| HeaderValue::from_str(l).ok())
    {
        headers.insert(header::CONTENT_LANGUAGE, served);
    }
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept-Language, Authorization"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if organizer {
            "private, no-store"
        } else {
            "public, max-age=1"
        }),
    );
    cors::public(headers);
    Ok(response)
}

/// `?locale=` when given (a bad one is 422), then `Accept-Language`.
fn wanted_locales(call: &Call) -> Result<Vec<Locale>, ApiError> {
    let query = Query::of(call.uri());
    let mut wanted = match query.get("locale") {
        None => Vec::new(),
        Some(tag) => vec![
            Locale::parse(tag)
                .map_err(|code| ApiError::Invalid(vec![FieldError::new("locale", code)]))?,
        ],
    };
    wanted.extend(accept_language(call.headers()));
    Ok(wanted)
}

fn accept_language(headers: &HeaderMap) -> Vec<Locale> {
    headers
        .get_all(header::ACCEPT_LANGUAGE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(accepted_locales)
        .collect()
}
