//! The hosted signing page, `/p/{slug}`, and its thank-you state,
//! `/p/{slug}/thanks`: rendered here from `templates/sign.html` in the
//! reader's language, so that a campaign whose own site is blocked still has
//! a page on any host or mirror that serves the service. Its script and
//! style are `/assets/page.js` and `/assets/page.css`.

use askama::Template;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;
use undersigned_domain::{
    CaptchaPolicy, Country, PetitionStatus, SignerField, Target, Verification, right_to_left,
};
use undersigned_store::Petition;

use super::words::{PageWords, page_words};
use super::{page, paragraph, reader_locale};
use crate::call::{Answer, Call};
use crate::problem::ApiError;
use crate::query::Query;
use crate::reply::{full, page_headers};

/// Its own script and style; hCaptcha's widget when the petition asks for
/// one. Forms post to this service only; no one may frame it.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; \
    base-uri 'none'";
const POLICY_WITH_CAPTCHA: &str = "default-src 'none'; \
    script-src 'self' https://hcaptcha.com https://*.hcaptcha.com; \
    style-src 'self' https://hcaptcha.com https://*.hcaptcha.com; \
    connect-src 'self' https://hcaptcha.com https://*.hcaptcha.com; \
    frame-src https://hcaptcha.com https://*.hcaptcha.com; img-src 'self' data:; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// Counts and wording change; a reader a few seconds behind sees the count
/// catch up from the stream. Kept short so an edit shows soon.
const PAGE_CACHE: &str = "public, max-age=10";

/// A country in the form's list: its code, and its flag for the eye (a
/// screen reader reads the flag as the country's name).
struct CountryOption {
    code: &'static str,
    flag: String,
}

/// What the signer reads after signing.
struct Thanks {
    receipt: Option<String>,
    /// The signature counts once its signer follows the emailed link.
    confirm: bool,
}

#[derive(Template)]
#[template(path = "sign.html")]
struct SignPage<'a> {
    /// The way back to the service's root from this page's path.
    root: &'static str,
    lang: &'a str,
    dir: &'static str,
    slug: &'a str,
    title: &'a str,
    description: String,
    paragraphs: Vec<&'a str>,
    ask: Option<&'a str>,
    targets: &'a [Target],
    count: i64,
    goal: i64,
    /// The progress bar's value: the count, up to the goal.
    progress_value: i64,
    words: &'static PageWords,
    open: bool,
    postal_code: bool,
    city: bool,
    organizations: bool,
    countries: Vec<CountryOption>,
    captcha_sitekey: Option<&'a str>,
    confirm: bool,
    problem: Option<&'static str>,
    errors: Vec<(String, &'static str)>,
    thanks: Option<Thanks>,
    messages_json: String,
}

impl SignPage<'_> {
    /// What went wrong with `field` on the last try, if anything.
    fn error(&self, field: &str) -> Option<&'static str> {
        self.errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, message)| *message)
    }
}

/// `GET /p/{slug}`: the petition and its form.
pub async fn show(call: Call<'_>) -> Answer {
    render(call, None).await
}

/// `GET /p/{slug}/thanks?receipt=`: where the form lands once signed.
pub async fn thanks(call: Call<'_>) -> Answer {
    let receipt = Query::of(call.uri())
        .get("receipt")
        .and_then(|r| uuid::Uuid::parse_str(r).ok())
        .map(|r| r.to_string());
    render(call, Some(receipt)).await
}

async fn render(call: Call<'_>, thanks: Option<Option<String>>) -> Answer {
    let app = call.app;
    let query = Query::of(call.uri());
    let Some(petition) = app.catalog.by_slug(call.slug()).await? else {
        let words = page_words("en");
        let mut response = page(
            StatusCode::NOT_FOUND,
            "en",
            words.closed,
            &paragraph(words.closed),
        );
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(response);
    };
    let locale = reader_locale(&petition, call.headers(), query.get("locale"));
    let words = page_words(locale);
    let wanted = undersigned_domain::Locale::parse(locale).ok();
    let (_, wording) = match wanted.as_ref().and_then(|l| petition.wordings.find(l)) {
        Some(found) => found,
        None => (
            petition.wordings.locale.as_str(),
            &petition.wordings.default,
        ),
    };
    let count = app.ingest.counter().view(petition.id).total;
    // hCaptcha's script only where its form is: not on a thank-you page
    // (whose address names a receipt), nor on a petition not taking any.
    let open = is_open(&petition);
    let captcha = app
        .captcha
        .as_ref()
        .filter(|_| petition.web.captcha != CaptchaPolicy::Off && open && thanks.is_none());
    let (problem, errors) = faults(&query, words);
    let paragraphs: Vec<&str> = wording
        .text
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let page = SignPage {
        root: if thanks.is_some() { "../../" } else { "../" },
        lang: locale,
        dir: if right_to_left(locale) { "rtl" } else { "ltr" },
        slug: &petition.slug,
        title: &wording.title,
        description: description(&wording.text),
        paragraphs,
        ask: wording.ask.as_deref(),
        targets: &petition.targets,
        count,
        goal: petition.goal,
        progress_value: count.clamp(0, petition.goal),
        words,
        open,
        postal_code: petition.signers.required.contains(&SignerField::PostalCode),
        city: petition.signers.required.contains(&SignerField::City),
        organizations: petition.signers.organizations_may_sign,
        countries: Country::codes()
            .iter()
            .map(|&code| CountryOption {
                code,
                flag: flag(code),
            })
            .collect(),
        captcha_sitekey: captcha.map(|c| c.sitekey()),
        confirm: petition.web.verification == Verification::Email,
        problem,
        errors,
        thanks: thanks.map(|receipt| Thanks {
            receipt,
            confirm: petition.web.verification == Verification::Email,
        }),
        messages_json: messages(words),
    };
    let html = page.render().map_err(|_| ApiError::Internal)?;
    let mut response = full(StatusCode::OK, "text/html; charset=utf-8", html);
    let policy = if captcha.is_some() {
        POLICY_WITH_CAPTCHA
    } else {
        POLICY
    };
    // A thank-you page names a receipt: kept by no cache.
    let cache = if page.thanks.is_some() {
        "no-store"
    } else {
        PAGE_CACHE
    };
    page_headers(&mut response, policy, cache);
    let h = response.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Accept-Language"));
    // Not `no-referrer`: with it, browsers send `Origin: null` on the form's
    // POST, and the service could not tell its own page from a sandboxed
    // stranger's. Other sites still get no referrer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    Ok(response)
}

fn is_open(petition: &Petition) -> bool {
    petition.status == PetitionStatus::Open
        && petition
            .window
            .check(petition.status, chrono::Utc::now())
            .is_ok()
}

/// The first words of the text, for link previews.
fn description(text: &str) -> String {
    const MOST: usize = 200;
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MOST {
        return flat;
    }
    let cut: String = flat.chars().take(MOST).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{cut}…")
}

/// A country's flag: its two regional indicator symbols.
fn flag(code: &str) -> String {
    code.chars()
        .filter_map(|c| char::from_u32(0x1F1E6 + (u32::from(c) - u32::from('A'))))
        .collect()
}

/// The last try's faults, as the API's landing told them in the query:
/// `problem` and `errors` (`field.code,…`). Only codes travel, never what
/// the signer typed.
fn faults(
    query: &Query,
    words: &'static PageWords,
) -> (Option<&'static str>, Vec<(String, &'static str)>) {
    let errors: Vec<(String, &'static str)> = query
        .get("errors")
        .unwrap_or("")
        .split(',')
        .filter_map(|fault| fault.split_once('.'))
        .filter(|(field, _)| {
            field.len() <= 40 && field.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
        .take(20)
        .map(|(field, code)| (field.to_owned(), words.field_error(field, code)))
        .collect();
    let problem = query.get("problem").map(|p| problem_message(p, words));
    (problem, errors)
}

fn problem_message(problem: &str, words: &'static PageWords) -> &'static str {
    match problem {
        "invalid-fields" | "conflict" => words.field_invalid,
        "rate-limited" => words.too_many,
        "busy" | "unavailable" | "captcha-unavailable" => words.unavailable,
        "captcha-failed" => words.captcha_needed,
        "petition-not-open" => words.closed,
        _ => words.refused,
    }
}

/// The words page.js shows for the API's answers, by code.
fn messages(words: &'static PageWords) -> String {
    json!({
        "required": words.field_required,
        "too_long": words.field_too_long,
        "invalid": words.field_invalid,
        "undeliverable": words.email_undeliverable,
        "captcha": words.captcha_needed,
        "too_many": words.too_many,
        "unavailable": words.unavailable,
        "closed": words.closed,
        "refused": words.refused,
        "sending": words.sending,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_descriptions() {
        assert_eq!(flag("NL"), "🇳🇱");
        assert_eq!(description("Short.\n\nText."), "Short. Text.");
        let long = "word ".repeat(100);
        let d = description(&long);
        assert!(d.ends_with('…') && d.chars().count() <= 201, "{d}");
    }
}
