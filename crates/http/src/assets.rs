//! The files the service's own pages load, served at `/assets/{file}`, and
//! the widget campaigns embed, `/widget.js`: plain CSS and JavaScript in
//! `crates/http/assets/`, built into the binary, with no build step.

use std::sync::LazyLock;

use http::StatusCode;
use serde_json::{Map, Value, json};
use undersigned_domain::Country;

use crate::pages::words::every_language;

use crate::call::{Answer, Call};
use crate::problem::ApiError;
use crate::reply::{Body, full, page_headers};

/// A script or style sheet runs nothing of anyone else's.
const POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Short, so that a new release reaches readers within minutes.
const CACHE: &str = "public, max-age=300";

/// `/assets/{file}`.
pub async fn serve(call: Call<'_>) -> Answer {
    let (content_type, body) = match call.param("file") {
        "page.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../assets/page.js"),
        ),
        "page.css" => (
            "text/css; charset=utf-8",
            include_str!("../assets/page.css"),
        ),
        _ => return Err(ApiError::NotFound),
    };
    Ok(script_or_style(content_type, body))
}

fn script_or_style(content_type: &'static str, body: &'static str) -> http::Response<Body> {
    let mut response = full(StatusCode::OK, content_type, body);
    page_headers(&mut response, POLICY, CACHE);
    crate::cors::public(response.headers_mut());
    response
}

/// The widget, with the service's countries and its words in every
/// language it speaks written in once.
static WIDGET: LazyLock<String> = LazyLock::new(|| {
    let words: Map<String, Value> = every_language()
        .map(|w| {
            let errors = json!({
                "required": w.field_required,
                "too_long": w.field_too_long,
                "invalid": w.field_invalid,
                "undeliverable": w.email_undeliverable,
            });
            let said = json!({
                "signatures": w.signatures, "full_name": w.full_name, "email": w.email,
                "country": w.country, "choose": w.choose, "consent": w.consent,
                "submit": w.submit, "thanks_heading": w.thanks_heading,
                "too_many": w.too_many, "unavailable": w.unavailable, "refused": w.refused,
                "sign_on_page": w.sign_on_page, "errors": errors,
            });
            (w.language.to_owned(), said)
        })
        .collect();
    include_str!("../assets/widget.js")
        .replacen("/*COUNTRIES*/[]", &json!(Country::codes()).to_string(), 1)
        .replacen("/*WORDS*/{}", &Value::Object(words).to_string(), 1)
});

/// `/widget.js`: for any site to include.
pub async fn widget(_: Call<'_>) -> Answer {
    Ok(script_or_style(
        "text/javascript; charset=utf-8",
        WIDGET.as_str(),
    ))
}
