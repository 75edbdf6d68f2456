//! Building responses.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{Either, Full, StreamBody};
use serde::Serialize;

use crate::problem::ApiError;

/// A whole answer, or one streamed as it is made (exports).
pub type Body = Either<Full<Bytes>, Streamed>;

/// The chunks of a streamed answer; an error cuts the answer short, so the
/// client sees it incomplete instead of taking it for whole.
pub type Streamed = StreamBody<
    std::pin::Pin<
        Box<
            dyn futures_util::Stream<Item = Result<hyper::body::Frame<Bytes>, std::io::Error>>
                + Send,
        >,
    >,
>;

pub fn full(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(Either::Left(Full::new(body.into())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => full(status, "application/json", body),
        Err(_) => ApiError::Internal.into_response(),
    }
}

/// The headers of a page the service serves itself: what it may load
/// (`policy`), no type sniffing, no `Referer` to other sites (a page's
/// address may hold a token), and how it is cached.
pub fn page_headers(response: &mut Response<Body>, policy: &'static str, cache: &'static str) {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
}

/// 204 No Content: a removal done.
pub fn no_content() -> Response<Body> {
    full(StatusCode::NO_CONTENT, "text/plain; charset=utf-8", "")
}

/// `308` to one of the service's own pages: a page's folder without its
/// trailing slash (`/kiosk`, `/dashboard`), which its relative links need.
pub fn to_folder(location: &'static str) -> Response<Body> {
    let mut response = full(
        StatusCode::PERMANENT_REDIRECT,
        "text/plain; charset=utf-8",
        "",
    );
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(location));
    response
}

/// 303 See Other: where a browser goes after a plain HTML form post.
pub fn see_other(location: &str) -> Response<Body> {
    let mut response = full(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    match HeaderValue::from_str(location) {
        Ok(location) => {
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        Err(_) => ApiError::Internal.into_response(),
    }
}
