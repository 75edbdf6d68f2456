//! Every error answer: RFC 9457 problem+json, with the status mapped in one place.

use std::time::Duration;

use http::{HeaderValue, Method, Response, StatusCode, header};
use serde::Serialize;
use undersigned_domain::{FieldError, NotSigning};
use undersigned_guard::Scope;

use crate::captcha::CaptchaRefusal;
use crate::reply::{Body, full};
use crate::streams::StreamRefusal;

/// Why a request failed, as far as the client should know.
#[derive(Debug)]
pub enum ApiError {
    Malformed(String),
    Unauthorized,
    Forbidden,
    /// A browser on a site the petition does not list posted (or asked to).
    OriginNotAllowed,
    /// A block rule refuses this signature.
    Blocked,
    Captcha(CaptchaRefusal),
    NotFound,
    MethodNotAllowed(String),
    BodyTimeout,
    NotOpen(NotSigning),
    Conflict(Vec<FieldError>),
    /// The event ended more than a day ago: a tablet enrolled now could do nothing.
    EventOver,
    /// A link (to confirm a signature) whose time ran out.
    LinkExpired,
    TooLarge,
    UnsupportedMediaType,
    Invalid(Vec<FieldError>),
    /// Over a limit; the wait passes it.
    RateLimited(Duration, Scope),
    QueueFull,
    /// As many exports as allowed at once are running.
    ExportsBusy,
    /// An export format that does not fit the petition: `true` when the
    /// petition is sealed (only `format=sealed` fits), `false` when it is
    /// not (`format=sealed` does not).
    SealedExport(bool),
    /// The petition's signers' personal data was erased by its retention;
    /// the detail says when and why.
    PersonalDataErased(String),
    /// A live count stream over the instance's budget or its reader's share.
    Streams(StreamRefusal),
    /// Storage failed; what the client is told depends on what it asked for.
    Unavailable(Undone),
    Internal,
}

/// What a storage failure kept from happening, as the client hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undone {
    /// A signature was not recorded.
    Signature,
    /// An answer could not be read.
    Read,
    /// A change (anything but a signature) was not made.
    Change,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
    /// Which limit: `address`, `email_domain` or `petition`.
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<&'static str>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::OriginNotAllowed | Self::Blocked => StatusCode::FORBIDDEN,
            Self::Captcha(CaptchaRefusal::Unreachable | CaptchaRefusal::Misconfigured) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Captcha(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            // 409, not 410: the event is still there (its tablets can be
            // listed); only its state refuses new ones.
            Self::NotOpen(_) | Self::Conflict(_) | Self::EventOver | Self::SealedExport(_) => {
                StatusCode::CONFLICT
            }
            Self::LinkExpired | Self::PersonalDataErased(_) => StatusCode::GONE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited(..) | Self::Streams(StreamRefusal::Address) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Streams(StreamRefusal::Service) => StatusCode::SERVICE_UNAVAILABLE,
            Self::QueueFull | Self::ExportsBusy | Self::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// (type, title, detail) of the problem.
    fn describe(&self) -> (&'static str, &'static str, &str) {
        match self {
            Self::Malformed(detail) => ("/problems/malformed-body", "Malformed body", detail),
            Self::Unauthorized => (
                "/problems/unauthorized",
                "Unauthorized",
                "A valid token is required: Authorization: Bearer <token>.",
            ),
            Self::Forbidden => (
                "/problems/forbidden",
                "Forbidden",
                "This token may not do that.",
            ),
            Self::Blocked => (
                "/problems/refused",
                "Signature refused",
                "This signature cannot be accepted.",
            ),
            Self::OriginNotAllowed => (
                "/problems/origin-not-allowed",
                "Origin not allowed",
                "This petition does not take signatures from pages on this site.",
            ),
            Self::Captcha(CaptchaRefusal::Unreachable | CaptchaRefusal::Misconfigured) => (
                "/problems/captcha-unavailable",
                "Captcha unavailable",
                "The captcha could not be checked right now and the signature was not recorded; please retry.",
            ),
            Self::Captcha(_) => (
                "/problems/captcha-failed",
                "Captcha not solved",
                "Signing here needs a solved captcha; see errors.",
            ),
            Self::NotFound => (
                "/problems/not-found",
                "Not found",
                "Nothing is at this address.",
            ),
            Self::MethodNotAllowed(allow) => (
                "/problems/method-not-allowed",
                "Method not allowed",
                allow.as_str(),
            ),
            Self::BodyTimeout => (
                "/problems/body-timeout",
                "Request body too slow",
                "The request body did not arrive in time.",
            ),
            Self::NotOpen(NotSigning::NotOpen) => (
                "/problems/petition-not-open",
                "Petition not open",
                "This petition is not open for signing.",
            ),
            Self::NotOpen(NotSigning::NotYet) => (
                "/problems/petition-not-open",
                "Petition not open yet",
                "This petition does not take signatures before its opening time (opens_at).",
            ),
            Self::NotOpen(NotSigning::Closed) => (
                "/problems/petition-not-open",
                "Petition closed",
                "This petition stopped taking signatures at its closing time (closes_at).",
            ),
            Self::Conflict(_) => (
                "/problems/conflict",
                "Conflict",
                "A value is already taken.",
            ),
            Self::EventOver => (
                "/problems/event-over",
                "Event over",
                "This event ended more than a day ago; a tablet enrolled for it now could not sign.",
            ),
            Self::LinkExpired => (
                "/problems/link-expired",
                "Link expired",
                "This link has expired: the signature it was for was never counted, and is erased.",
            ),
            Self::TooLarge => (
                "/problems/body-too-large",
                "Body too large",
                "The request body is over the limit (16 KiB; 4 MiB for an invalidation).",
            ),
            Self::UnsupportedMediaType => (
                "/problems/unsupported-media-type",
                "Unsupported media type",
                "Send application/json or application/x-www-form-urlencoded.",
            ),
            Self::Invalid(_) => (
                "/problems/invalid-fields",
                "Invalid fields",
                "Some fields are missing or invalid; see errors.",
            ),
            Self::RateLimited(_, Scope::Address) => (
                "/problems/rate-limited",
                "Too many signatures",
                "Too many signatures from this address; retry after the delay in Retry-After.",
            ),
            Self::RateLimited(_, Scope::EmailDomain) => (
                "/problems/rate-limited",
                "Too many signatures",
                "Too many signatures with addresses at this email domain; retry after the delay in Retry-After.",
            ),
            Self::RateLimited(_, Scope::Petition) => (
                "/problems/rate-limited",
                "Too many signatures",
                "This petition is taking too many signatures right now; retry after the delay in Retry-After.",
            ),
            Self::RateLimited(_, Scope::Device) => (
                "/problems/rate-limited",
                "Too many signatures",
                "This tablet has sent more signatures than it may for now; keep them and retry after the delay in Retry-After.",
            ),
            Self::QueueFull => (
                "/problems/busy",
                "Busy",
                "The service is taking many signatures right now; retry after the delay in Retry-After.",
            ),
            Self::ExportsBusy => (
                "/problems/exports-busy",
                "Exports busy",
                "As many exports as this service runs at once are running; retry after the delay in Retry-After.",
            ),
            Self::SealedExport(true) => (
                "/problems/sealed-petition",
                "Sealed petition",
                "This petition's signer data is sealed to its campaign's keys and cannot be read \
                 here: export it with format=sealed and open it with `undersigned unseal`.",
            ),
            Self::PersonalDataErased(detail) => (
                "/problems/personal-data-erased",
                "Personal data erased",
                detail,
            ),
            Self::SealedExport(false) => (
                "/problems/not-sealed",
                "Petition not sealed",
                "format=sealed is for sealed petitions; this one keeps its signer data in clear: \
                 ask for csv, jsonl, pdf or bundle.",
            ),
            Self::Streams(StreamRefusal::Service) => (
                "/problems/streams-busy",
                "Streams busy",
                "This service keeps as many live count streams open as it may; poll the count, or retry after the delay in Retry-After.",
            ),
            Self::Streams(StreamRefusal::Address) => (
                "/problems/too-many-streams",
                "Too many streams",
                "This address keeps as many live count streams open as it may; poll the count, or retry after the delay in Retry-After.",
            ),
            // One type, so that a client retries all three alike; the detail
            // says what did not happen.
            Self::Unavailable(Undone::Signature) => (
                "/problems/unavailable",
                "Temporarily unavailable",
                "The signature could not be stored now and was not recorded; please retry.",
            ),
            Self::Unavailable(Undone::Read) => (
                "/problems/unavailable",
                "Temporarily unavailable",
                "The data could not be read now; please retry.",
            ),
            Self::Unavailable(Undone::Change) => (
                "/problems/unavailable",
                "Temporarily unavailable",
                "The change could not be saved now and was not made; please retry.",
            ),
            Self::Internal => (
                "/problems/internal",
                "Internal error",
                "Something went wrong on our side.",
            ),
        }
    }

    /// The problem's short name (its type's last segment), and the fields at fault:
    /// what an HTML form's error page is told.
    pub fn summary(&self) -> (&'static str, Vec<&str>) {
        let kind = self.describe().0;
        let fields = match self {
            Self::Invalid(e) | Self::Conflict(e) => e.iter().map(|e| e.field.as_ref()).collect(),
            Self::Captcha(_) => vec!["captcha"],
            _ => Vec::new(),
        };
        (kind.rsplit('/').next().unwrap_or(kind), fields)
    }

    /// The seconds to wait before retrying (`Retry-After`), when a retry can
    /// succeed: whole seconds, rounded up so a client never retries too early.
    pub fn retry_after(&self) -> Option<u64> {
        let wait = match self {
            Self::RateLimited(wait, _) => *wait,
            Self::QueueFull | Self::Unavailable(_) => Duration::from_secs(1),
            Self::ExportsBusy => Duration::from_secs(10),
            Self::Streams(_) => Duration::from_secs(30),
            Self::Captcha(CaptchaRefusal::Unreachable | CaptchaRefusal::Misconfigured) => {
                Duration::from_secs(5)
            }
            _ => return None,
        };
        let seconds = wait.as_millis().div_ceil(1000).max(1);
        Some(u64::try_from(seconds).unwrap_or(u64::MAX))
    }

    /// This error as the answer to a request with `method`: a storage failure
    /// while answering a safe method (GET, HEAD, OPTIONS: they change nothing)
    /// is a failed read.
    pub fn answering(self, method: &Method) -> Self {
        match self {
            Self::Unavailable(Undone::Change) if method.is_safe() => {
                Self::Unavailable(Undone::Read)
            }
            other => other,
        }
    }

    /// This error as the answer to a signer: whatever storage failed on the
    /// way, the signature was not recorded.
    pub fn signing(self) -> Self {
        match self {
            Self::Unavailable(_) => Self::Unavailable(Undone::Signature),
            other => other,
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        let (kind, title, detail) = self.describe();
        let single = match &self {
            Self::Captcha(CaptchaRefusal::Missing) => [FieldError::new("captcha", "required")],
            Self::EventOver => [FieldError::new("event", "over")],
            Self::SealedExport(true) => [FieldError::new("format", "use_format_sealed")],
            Self::SealedExport(false) => [FieldError::new("format", "petition_not_sealed")],
            _ => [FieldError::new("captcha", "failed")],
        };
        let errors = match &self {
            Self::Invalid(e) | Self::Conflict(e) => e.as_slice(),
            Self::Captcha(CaptchaRefusal::Missing | CaptchaRefusal::Failed)
            | Self::EventOver
            | Self::SealedExport(_) => &single[..],
            _ => &[],
        };
        let body = serde_json::to_vec(&Problem {
            kind,
            title,
            status: status.as_u16(),
            detail,
            errors,
            limit: match &self {
                Self::RateLimited(_, scope) => Some(scope.as_str()),
                _ => None,
            },
        })
        .unwrap_or_default();
        let mut response = full(status, "application/problem+json", body);
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Self::MethodNotAllowed(allow) = &self
            && let Ok(allow) = HeaderValue::from_str(allow)
        {
            headers.insert(header::ALLOW, allow);
        }
        if let Self::Unauthorized = self {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A storage error is a change not made until the request says otherwise
/// ([`ApiError::answering`], [`ApiError::signing`]): the router knows the
/// method, the handler below it does not need to.
impl From<undersigned_store::StoreError> for ApiError {
    fn from(e: undersigned_store::StoreError) -> Self {
        tracing::error!(error = %e, "storage error");
        Self::Unavailable(Undone::Change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(e: ApiError) -> String {
        let (_, _, detail) = e.describe();
        detail.to_owned()
    }

    #[test]
    fn a_storage_failure_is_told_as_what_the_request_did_not_get() {
        let failed = || ApiError::Unavailable(Undone::Change);
        for safe in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert_eq!(
                detail(failed().answering(&safe)),
                "The data could not be read now; please retry.",
                "{safe}"
            );
        }
        for unsafe_ in [Method::POST, Method::PATCH, Method::DELETE] {
            assert_eq!(
                detail(failed().answering(&unsafe_)),
                "The change could not be saved now and was not made; please retry.",
                "{unsafe_}"
            );
        }
        assert_eq!(
            detail(failed().signing()),
            "The signature could not be stored now and was not recorded; please retry."
        );
        // Not a storage failure: unchanged either way.
        assert_eq!(
            ApiError::NotFound
                .answering(&Method::GET)
                .signing()
                .status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(failed().retry_after(), Some(1));
    }
}
