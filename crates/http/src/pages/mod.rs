//! Pages the service shows signers itself (confirming a signature, later
//! withdrawing it): small server-rendered HTML in the signer's language,
//! right to left where the script needs it, with relative links only so that
//! any host or mirror serving the service serves them too.

pub mod confirm;
pub mod sign;
pub mod withdraw;
pub mod words;

use http::{HeaderMap, StatusCode, header};
use std::sync::Arc;

use undersigned_domain::{Locale, Notices, accepted_locales, notices, right_to_left};
use undersigned_mail::escape;
use undersigned_store::Petition;

use crate::call::{Answer, Call};
use crate::problem::ApiError;
use crate::reply::{Body, full, page_headers};

/// Nothing loads from anywhere; forms post to this service only.
const POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;\
    padding:0 1rem;line-height:1.5;color:#1b1b1b;background:#fff}\
    button{font:inherit;padding:.6rem 1.2rem;border:0;border-radius:4px;background:#1a4d8f;\
    color:#fff;cursor:pointer}button:focus{outline:3px solid #f2b600;outline-offset:2px}";

/// Whether the caller asked for JSON rather than a page (an API client).
pub fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    accept.contains("json") && !accept.contains("text/html")
}

/// The petition a link's signature belongs to, with the link's finding;
/// `Err` answers a link that names nothing (or a petition gone): 404, as a
/// page in English (neither the signer's language nor the petition is
/// known), or as problem+json for a JSON client.
pub async fn linked_petition<T>(
    call: &Call<'_>,
    found: Option<T>,
    slug: impl Fn(&T) -> &str,
    heading: impl Fn(&Notices) -> &'static str,
) -> Result<(T, Arc<Petition>), Answer> {
    let petition = match &found {
        Some(f) => call
            .app
            .catalog
            .by_slug(slug(f))
            .await
            .map_err(|e| Err(e.into()))?,
        None => None,
    };
    match (found, petition) {
        (Some(found), Some(petition)) => Ok((found, petition)),
        _ if wants_json(call.headers()) => Err(Err(ApiError::NotFound)),
        _ => {
            let words = notices("en");
            Err(Ok(page(
                StatusCode::NOT_FOUND,
                "en",
                heading(words),
                &paragraph(words.unknown_link),
            )))
        }
    }
}

/// One paragraph of plain text.
pub fn paragraph(text: &str) -> String {
    format!("<p>{}</p>\n", escape(text))
}

/// The locale a reader gets a petition's page in: `?locale=`, then
/// `Accept-Language`, then the petition's default.
pub fn reader_locale<'p>(
    petition: &'p Petition,
    headers: &HeaderMap,
    asked: Option<&str>,
) -> &'p str {
    let mut wanted: Vec<Locale> = asked
        .and_then(|l| Locale::parse(l).ok())
        .into_iter()
        .collect();
    if let Some(header) = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    {
        wanted.extend(accepted_locales(header));
    }
    petition.wordings.pick(&wanted).0
}

/// A whole page: `heading` and `body` (already HTML) in `locale`.
pub fn page(status: StatusCode, locale: &str, heading: &str, body: &str) -> http::Response<Body> {
    let dir = if right_to_left(locale) { "rtl" } else { "ltr" };
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\" dir=\"{dir}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{heading}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{heading}</h1>\n{body}</main>\n\
         </body>\n</html>\n",
        lang = escape(locale),
        heading = escape(heading),
    );
    let mut response = full(status, "text/html; charset=utf-8", html);
    page_headers(&mut response, POLICY, "no-store");
    response
}
