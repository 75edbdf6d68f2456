//! Which handler answers which method and path.

use std::net::SocketAddr;
use std::time::Instant;

use http::{Method, Request, Response};
use hyper::body::Incoming;

use crate::auth::ClientAddress;
use crate::metrics::Route;
use crate::problem::ApiError;
use crate::reply::Body;
use crate::server::HttpConfig;
use crate::{App, kiosk, ops, v1};

/// Every operation the router answers (HEAD goes with GET), by method and path
/// template: the list `openapi.json` is checked against.
pub const ROUTES: [(&str, &str); 33] = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/v1/openapi.json"),
    ("POST", "/v1/petitions"),
    ("GET", "/v1/petitions/{slug}"),
    ("PATCH", "/v1/petitions/{slug}"),
    ("POST", "/v1/petitions/{slug}/signatures"),
    ("GET", "/v1/petitions/{slug}/signatures"),
    ("OPTIONS", "/v1/petitions/{slug}/signatures"),
    ("GET", "/v1/petitions/{slug}/count"),
    ("GET", "/v1/petitions/{slug}/export"),
    ("GET", "/v1/export-key"),
    ("GET", "/v1/petitions/{slug}/signals"),
    ("GET", "/v1/petitions/{slug}/invalidations"),
    ("POST", "/v1/petitions/{slug}/invalidations"),
    ("GET", "/v1/petitions/{slug}/invalidations/{id}"),
    ("POST", "/v1/petitions/{slug}/invalidations/{id}/undo"),
    ("GET", "/v1/blocks"),
    ("POST", "/v1/blocks"),
    ("DELETE", "/v1/blocks/{id}"),
    ("GET", "/v1/tokens"),
    ("POST", "/v1/tokens"),
    ("DELETE", "/v1/tokens/{id}"),
    ("GET", "/v1/audit"),
    ("POST", "/v1/petitions/{slug}/events"),
    ("GET", "/v1/petitions/{slug}/events"),
    ("POST", "/v1/events/{id}/enrollment-codes"),
    ("GET", "/v1/events/{id}/devices"),
    ("POST", "/v1/devices"),
    ("DELETE", "/v1/devices/{id}"),
    ("POST", "/v1/events/{id}/signatures:batch"),
    ("POST", "/v1/petitions/{slug}/signatures:import"),
];

/// Which routes a listener answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Surface {
    /// The public listener when there is no operators' one: every route.
    Everything,
    /// The public listener beside an operators' one: all but `/metrics`.
    Public,
    /// The operators' listener: `/healthz`, `/readyz`, `/metrics`.
    Operator,
}

impl Surface {
    fn answers(self, segments: &[&str]) -> bool {
        match self {
            Self::Everything => true,
            Self::Public => segments != ["metrics"],
            Self::Operator => matches!(segments, ["healthz" | "readyz" | "metrics"]),
        }
    }
}

pub(crate) async fn handle(
    app: &App,
    config: &HttpConfig,
    req: Request<Incoming>,
    peer: SocketAddr,
    surface: Surface,
) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let (route, result) = dispatch(app, config, req, peer, surface).await;
    let response = result.unwrap_or_else(|e| e.answering(&method).into_response());
    app.metrics
        .observe(route, response.status(), started.elapsed().as_secs_f64());
    response
}

async fn dispatch(
    app: &App,
    config: &HttpConfig,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    surface: Surface,
) -> (Route, Result<Response<Body>, ApiError>) {
    let client = config.trusted_proxies.client(peer, req.headers());
    req.extensions_mut().insert(ClientAddress(client));
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if !surface.answers(&segments) {
        return (Route::Unknown, Err(ApiError::NotFound));
    }
    let method = req.method().clone();
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    match segments.as_slice() {
        ["healthz"] => (
            Route::Health,
            if get {
                Ok(ops::health())
            } else {
                not_allowed("GET, HEAD")
            },
        ),
        ["readyz"] => (
            Route::Ready,
            if get {
                Ok(ops::ready(app).await)
            } else {
                not_allowed("GET, HEAD")
            },
        ),
        ["metrics"] => (
            Route::Metrics,
            if get {
                ops::metrics(app, config.metrics_token.as_ref(), req.headers())
            } else {
                not_allowed("GET, HEAD")
            },
        ),
        ["v1", "openapi.json"] => (
            Route::OpenApi,
            if get {
                Ok(crate::openapi::serve())
            } else {
                not_allowed("GET, HEAD")
            },
        ),
        ["v1", "petitions"] => (
            Route::CreatePetition,
            if post {
                v1::petitions::create(app, config, req).await
            } else {
                not_allowed("POST")
            },
        ),
        ["v1", "petitions", slug] => (
            Route::Petition,
            if get {
                v1::petitions::show(app, slug, &req).await
            } else if method == Method::PATCH {
                v1::petitions::update(app, config, slug, req).await
            } else {
                not_allowed("GET, HEAD, PATCH")
            },
        ),
        ["v1", "petitions", slug, "signatures"] => (
            if get { Route::Signatures } else { Route::Sign },
            if post {
                v1::signatures::sign(app, config, slug, req, client).await
            } else if method == Method::OPTIONS {
                preflight(app, slug, req.headers()).await
            } else if get {
                v1::signatures::list(app, slug, req).await
            } else {
                not_allowed("GET, HEAD, POST, OPTIONS")
            },
        ),
        ["v1", "petitions", slug, "signatures:import"] => (
            Route::Imports,
            if post {
                v1::imports::import(app, config, slug, req).await
            } else {
                not_allowed("POST")
            },
        ),
        ["v1", "petitions", slug, "count"] => (
            Route::Count,
            if get {
                v1::count::show(app, slug, req.headers()).await
            } else {
                not_allowed("GET, HEAD")
            },
        ),
        ["v1", "petitions", slug, "export"] => (
            Route::Export,
            // Not HEAD: an export is audited and runs a snapshot, which a
            // request for headers only should not cost.
            if method == Method::GET {
                v1::exports::export(app, slug, req).await
            } else {
                not_allowed("GET")
            },
        ),
        ["v1", "export-key"] => (
            Route::Export,
            if get {
                Ok(v1::exports::key(app))
            } else {
                not_allowed("GET, HEAD")
            },
        ),
        ["v1", "petitions", slug, "signals"] => (
            Route::Signals,
            if get {
                v1::signals::show(app, slug, req).await
            } else {
                not_allowed("GET, HEAD")
            },
        ),
        ["v1", "blocks"] => (
            Route::Blocks,
            if get {
                v1::blocks::list(app, req).await
            } else if post {
                v1::blocks::create(app, config, req).await
            } else {
                not_allowed("GET, HEAD, POST")
            },
        ),
        ["v1", "blocks", id] => (
            Route::Blocks,
            if method == Method::DELETE {
                v1::blocks::remove(app, id, req).await
            } else {
                not_allowed("DELETE")
            },
        ),
        ["v1", "petitions", slug, "invalidations"] => (
            Route::Invalidations,
            if get {
                v1::invalidations::list(app, slug, req).await
            } else if post {
                v1::invalidations::create(app, config, slug, req).await
            } else {
                not_allowed("GET, HEAD, POST")
            },
        ),
        ["v1", "petitions", slug, "invalidations", id] => (
            Route::Invalidations,
            if get {
                v1::invalidations::show(app, slug, id, req).await
            } else {
                not_allowed("GET, HEAD")
            },
        ),
        ["v1", "petitions", slug, "invalidations", id, "undo"] => (
            Route::Invalidations,
            if post {
                v1::invalidations::undo(app, slug, id, req).await
            } else {
                not_allowed("POST")
            },
        ),
        ["v1", "tokens"] => (
            Route::Tokens,
            if get {
                v1::tokens::list(app, req).await
            } else if post {
                v1::tokens::create(app, config, req).await
            } else {
                not_allowed("GET, HEAD, POST")
            },
        ),
        ["v1", "tokens", id] => (
            Route::Tokens,
            if method == Method::DELETE {
                v1::tokens::revoke(app, id, req).await
            } else {
                not_allowed("DELETE")
            },
        ),
        ["v1", "petitions", slug, "events"] => (
            Route::Events,
            if get {
                v1::events::list(app, slug, req).await
            } else if post {
                v1::events::create(app, config, slug, req).await
            } else {
                not_allowed("GET, HEAD, POST")
            },
        ),
        ["v1", "events", id, "enrollment-codes"] => (
            Route::Events,
            if post {
                v1::events::enrollment_code(app, id, req).await
            } else {
                not_allowed("POST")
            },
        ),
        ["v1", "events", id, "devices"] => (
            Route::Events,
            if get {
                v1::events::devices(app, id, req).await
            } else {
                not_allowed("GET, HEAD")
            },
        ),
        ["v1", "events", id, "signatures:batch"] => (
            Route::Batches,
            if post {
                v1::batches::upload(app, config, id, req).await
            } else {
                not_allowed("POST")
            },
        ),
        ["v1", "devices"] => (
            Route::Devices,
            if post {
                v1::events::enroll(app, config, req).await
            } else {
                not_allowed("POST")
            },
        ),
        ["v1", "devices", id] => (
            Route::Devices,
            if method == Method::DELETE {
                v1::events::revoke(app, id, req).await
            } else {
                not_allowed("DELETE")
            },
        ),
        ["kiosk"] => (Route::Kiosk, Ok(kiosk::to_page())),
        ["kiosk", file] => (Route::Kiosk, kiosk::serve(&method, file)),
        ["v1", "audit"] => (
            Route::Audit,
            if get {
                v1::audit::list(app, req).await
            } else {
                not_allowed("GET, HEAD")
            },
        ),
        _ => (Route::Unknown, Err(ApiError::NotFound)),
    }
}

/// A browser asking whether a page on another site may post signatures.
async fn preflight(
    app: &App,
    slug: &str,
    headers: &http::HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let petition = app.catalog.by_slug(slug).await?.ok_or(ApiError::NotFound)?;
    crate::cors::preflight(&petition, headers)
}

fn not_allowed(allow: &'static str) -> Result<Response<Body>, ApiError> {
    Err(ApiError::MethodNotAllowed(allow))
}
