//! The organizers' dashboard, served at `/dashboard/`: one read-only page in
//! `crates/http/dashboard/` (HTML, CSS, JavaScript, no build step) and the
//! front-end libraries `deploy/vendor` copied into its `vendor/` from the
//! npm registry at the versions its package-lock.json pins, each with its
//! licence. All of it is built into the binary; the page reads the API with
//! the token its reader pastes in.

use http::StatusCode;

use crate::call::{Answer, Call};
use crate::problem::ApiError;
use crate::reply::{full, page_headers, to_folder};

/// Its own files, and its own API.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'none'";

/// `/dashboard/{file}`: empty for the page itself.
pub async fn serve(call: Call<'_>) -> Answer {
    let (content_type, body): (&str, &'static [u8]) = match call.param("file") {
        "" | "index.html" => (
            "text/html; charset=utf-8",
            include_bytes!("../dashboard/index.html"),
        ),
        "dashboard.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("../dashboard/dashboard.js"),
        ),
        "dashboard.css" => (
            "text/css; charset=utf-8",
            include_bytes!("../dashboard/dashboard.css"),
        ),
        _ => return Err(ApiError::NotFound),
    };
    answer(content_type, body, "no-cache")
}

/// `/dashboard/vendor/{file}`: the libraries, and their licences.
pub async fn vendor(call: Call<'_>) -> Answer {
    let file = call.param("file");
    let (content_type, body): (&str, &'static [u8]) = match file {
        "uPlot.iife.min.js" => (JS, include_bytes!("../dashboard/vendor/uPlot.iife.min.js")),
        "uPlot.min.css" => (
            "text/css; charset=utf-8",
            include_bytes!("../dashboard/vendor/uPlot.min.css"),
        ),
        "internmap.min.js" => (JS, include_bytes!("../dashboard/vendor/internmap.min.js")),
        "d3-array.min.js" => (JS, include_bytes!("../dashboard/vendor/d3-array.min.js")),
        "d3-geo.min.js" => (JS, include_bytes!("../dashboard/vendor/d3-geo.min.js")),
        "topojson-client.min.js" => (
            JS,
            include_bytes!("../dashboard/vendor/topojson-client.min.js"),
        ),
        "countries-110m.json" => (
            "application/json",
            include_bytes!("../dashboard/vendor/countries-110m.json"),
        ),
        "iso-3166-codes.json" => (
            "application/json",
            include_bytes!("../dashboard/vendor/iso-3166-codes.json"),
        ),
        _ => return Err(ApiError::NotFound),
    };
    // Pinned versions: a day's caching costs nothing.
    answer(content_type, body, "public, max-age=86400")
}

const JS: &str = "text/javascript; charset=utf-8";

fn answer(content_type: &'static str, body: &'static [u8], cache: &'static str) -> Answer {
    let mut response = full(StatusCode::OK, content_type, body);
    page_headers(&mut response, POLICY, cache);
    Ok(response)
}

/// `/dashboard` without its slash: the page's relative links need it.
pub async fn to_page(_: Call<'_>) -> Answer {
    Ok(to_folder("/dashboard/"))
}
