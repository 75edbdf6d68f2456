//! Reading request bodies: bounded in size and in time, typed by Content-Type.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::problem::ApiError;

/// The largest body any endpoint accepts.
pub const MAX_BODY: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
}

/// The body's kind from Content-Type; 415 for anything else.
pub fn body_kind(headers: &HeaderMap, form_allowed: bool) -> Result<BodyKind, ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(BodyKind::Json)
    } else if form_allowed && essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(BodyKind::Form)
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// The whole body, at most [`MAX_BODY`] bytes, arriving within `timeout`.
pub async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    read_body_up_to(headers, body, timeout, MAX_BODY).await
}

/// The whole body, at most `max` bytes: for the few admin requests that carry lists.
pub async fn read_body_up_to(
    headers: &HeaderMap,
    body: Incoming,
    timeout: Duration,
    max: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(ApiError::TooLarge);
    }
    match tokio::time::timeout(timeout, Limited::new(body, max).collect()).await {
        Err(_) => Err(ApiError::BodyTimeout),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::TooLarge),
        Ok(Err(_)) => Err(ApiError::Malformed(
            "The request body could not be read.".into(),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}
