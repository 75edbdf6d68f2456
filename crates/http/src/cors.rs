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

/// The request's `Origin` when the petition allows it, or when it is one of
/// the service's own (its signing page, on its public address or a mirror:
/// `own`, see [`crate::HttpConfig::own_origins`]); `None` when the request
/// carries none (not from a browser, or same-origin navigation); 403
/// otherwise.
pub fn allowed_origin(
    petition: &Petition,
    headers: &HeaderMap,
    own: Option<&[String]>,
) -> Result<Option<HeaderValue>, ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(None);
    };
    match origin.to_str() {
        Ok(o) if petition.web.allows(o) || is_own(o, headers, own) => Ok(Some(origin.clone())),
        _ => Err(ApiError::OriginNotAllowed),
    }
}

/// Whether `origin` is one of the service's own pages. With its origins
/// configured, only those: a stranger's name pointed at the service (DNS
/// rebinding) must not pass for it. Without (a development set-up), the host
/// the request was sent to, whatever its scheme.
fn is_own(origin: &str, headers: &HeaderMap, own: Option<&[String]>) -> bool {
    if let Some(own) = own {
        return own.iter().any(|o| o.eq_ignore_ascii_case(origin));
    }
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
    let origin = allowed_origin(petition, headers, None)?.ok_or(ApiError::OriginNotAllowed)?;
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
    fn the_service_own_pages_are_its_configured_origins_or_in_development_its_host() {
        let own = |origin, host| is_own(origin, &to(host), None);
        assert!(own("https://sign.example", "sign.example"));
        assert!(own("http://mirror.example:8080", "Mirror.Example:8080"));
        assert!(!own("https://sign.example.evil", "sign.example"));
        assert!(!own("https://sign.example:8443", "sign.example"));
        assert!(!own("null", "sign.example"));
        assert!(!own("https://", ""));
        assert!(!is_own("https://sign.example", &HeaderMap::new(), None));
        // Configured: a name rebound to the service is not its own.
        let configured = [
            "https://sign.example".to_owned(),
            "https://mirror.example".to_owned(),
        ];
        let listed = |origin, host| is_own(origin, &to(host), Some(&configured));
        assert!(listed("https://mirror.example", "origin.internal"));
        assert!(!listed("http://rebound.example", "rebound.example"));
    }
}
