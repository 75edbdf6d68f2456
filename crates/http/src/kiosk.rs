//! The kiosk page for event tablets, served at `/kiosk/`: plain HTML, CSS and
//! JavaScript in `crates/http/kiosk/`, built into the binary, with no build step.

use http::StatusCode;

use crate::call::{Answer, Call};
use crate::problem::ApiError;
use crate::reply::{full, page_headers, to_folder};

const INDEX: &str = include_str!("../kiosk/index.html");
const SCRIPT: &str = include_str!("../kiosk/kiosk.js");
const STYLE: &str = include_str!("../kiosk/kiosk.css");

/// Only its own files, and its own API: a signer's data can go nowhere else.
const POLICY: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
    style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'none'";

/// `/kiosk/{file}`: `file` is empty for the page itself.
pub async fn serve(call: Call<'_>) -> Answer {
    let (content_type, body) = match call.param("file") {
        "" | "index.html" => ("text/html; charset=utf-8", INDEX),
        "kiosk.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "kiosk.css" => ("text/css; charset=utf-8", STYLE),
        _ => return Err(ApiError::NotFound),
    };
    let mut response = full(StatusCode::OK, content_type, body);
    // A new release reaches the tablets at their next load.
    page_headers(&mut response, POLICY, "no-cache");
    Ok(response)
}

/// `/kiosk` without its slash: the page's relative links need it.
pub async fn to_page(_: Call<'_>) -> Answer {
    Ok(to_folder("/kiosk/"))
}
