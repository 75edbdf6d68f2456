//! Pages the service shows signers itself (confirming a signature, later
//! withdrawing it): small server-rendered HTML in the signer's language,
//! right to left where the script needs it, with relative links only so that
//! any host or mirror serving the service serves them too.

pub mod confirm;

use http::{HeaderMap, StatusCode, header};
use undersigned_domain::right_to_left;
use undersigned_mail::escape;
use undersigned_store::Petition;

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

/// The locale and title a signer reads a petition in: theirs when the
/// petition speaks it, else the petition's default.
pub fn wording_for<'p>(petition: &'p Petition, locale: Option<&str>) -> (&'p str, &'p str) {
    let (locale, wording) = locale
        .and_then(|l| undersigned_domain::Locale::parse(l).ok())
        .and_then(|l| petition.wordings.find(&l))
        .unwrap_or((&petition.wordings.locale, &petition.wordings.default));
    (locale, &wording.title)
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
