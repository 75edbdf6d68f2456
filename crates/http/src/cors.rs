//! Cross-origin requests from the campaign's own sites. A petition lists the
//! origins whose pages may post signatures from the browser; a browser on any
//! other site is refused, for a preflight and for a plain form post alike (a
//! form on a stranger's site cannot sign on its visitors' behalf). Credentials
//! are never allowed: signing needs no cookie.

use http::{HeaderMap, HeaderValue, Method, Response, header};
use undersigned_store::Petition;

use crate::problem::ApiError;
use crate::reply::{Body, no_content};

/// Request headers a signing page may send besides the CORS-safelisted ones.
const ALLOWED_HEADERS: [&str; 4] = [
    "content-type",
    "accept",
    "accept-language",
    "content-language",
];
/// How long a browser may reuse a preflight's answer.
const MAX_AGE_SECS: u32 = 600;

/// The request's `Origin` when the petition allows it, or when it is the
/// service's own (its signing page, on whichever host or mirror serves it);
/// `None` when the request carries none (not from a browser, or same-origin
/// navigation); 403 otherwise.
pub fn allowed_origin(
    petition: &Petition,
    headers: &HeaderMap,
) -> Result<Option<HeaderValue>, ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(None);
    };
    match origin.to_str() {
        Ok(o) if petition.web.allows(o) || own(o, headers) => Ok(Some(origin.clone())),
        _ => Err(ApiError::OriginNotAllowed),
    }
}

/// Whether `origin` names the host the request was sent to: a page this
/// service served. The scheme is not compared (a proxy in front may end TLS).
fn own(origin: &str, headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin.split_once("://"), host) {
        (Some((_, authority)), Some(host)) => {
            !authority.is_empty() && authority.eq_ignore_ascii_case(host.trim())
        }
        _ => false,
    }
}

/// Answers a preflight for signing: 204 with the grant, or 403 problem+json
/// (without CORS headers, so the browser stops there).
pub fn preflight(petition: &Petition, headers: &HeaderMap) -> Result<Response<Body>, ApiError> {
    let origin = allowed_origin(petition, headers)?.ok_or(ApiError::OriginNotAllowed)?;
    let method = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|m| m.to_str().ok());
    if method != Some(Method::POST.as_str()) {
        return Err(ApiError::OriginNotAllowed);
    }
    let requested = headers
        .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty());
    let mut granted = Vec::new();
    for name in requested {
        if !ALLOWED_HEADERS.contains(&name.as_str()) {
            return Err(ApiError::OriginNotAllowed);
        }
        granted.push(name);
    }
    let mut response = no_content();
    let h = response.headers_mut();
    grant(h, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    if let Ok(granted) = HeaderValue::from_str(&granted.join(", "))
        && !granted.is_empty()
    {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, granted);
    }
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(MAX_AGE_SECS),
    );
    h.append(
        header::VARY,
        HeaderValue::from_static("Access-Control-Request-Method, Access-Control-Request-Headers"),
    );
    Ok(response)
}

/// Lets the page read this answer (a receipt, or a problem and its Retry-After).
pub fn grant(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Retry-After"),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Public, credential-free data (counts, petition texts): readable from any page.
pub fn public(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(host: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static(host));
        headers
    }

    #[test]
    fn the_service_own_pages_are_its_origin_on_any_host_it_is_reached_by() {
        assert!(own("https://sign.example", &to("sign.example")));
        assert!(own(
            "http://mirror.example:8080",
            &to("Mirror.Example:8080")
        ));
        assert!(!own("https://sign.example.evil", &to("sign.example")));
        assert!(!own("https://sign.example:8443", &to("sign.example")));
        assert!(!own("null", &to("sign.example")));
        assert!(!own("https://", &to("")));
        assert!(!own("https://sign.example", &HeaderMap::new()));
    }
}
