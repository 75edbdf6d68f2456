//! Which handler answers which method and path: matched against the route
//! table ([`crate::routes::ROUTES`]), with the right each route asks for
//! checked before its handler runs.

use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Instant;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::App;
use crate::auth::ClientAddress;
use crate::call::{Answer, Call};
use crate::config::HttpConfig;
use crate::problem::ApiError;
use crate::reply::Body;
use crate::routes::{Handler, Listener, ROUTES, Route, allow};

/// Which routes a listener answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Surface {
    /// The public listener when there is no operators' one: every route.
    Everything,
    /// The public listener beside an operators' one: all but the operators' routes.
    Public,
    /// The operators' listener: only the operators' routes and health checks.
    Operator,
}

impl Surface {
    fn answers(self, route: &Route) -> bool {
        match (self, route.listener) {
            (Self::Everything, _) | (_, Listener::Both) => true,
            (Self::Public, listener) => listener == Listener::Public,
            (Self::Operator, listener) => listener == Listener::Operators,
        }
    }
}

/// One segment of a route's path template.
#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Literal(&'static str),
    /// `{name}`: any one segment, given to the handler by that name.
    Variable(&'static str),
}

/// Each route's template, split once.
static TEMPLATES: LazyLock<Vec<Vec<Segment>>> = LazyLock::new(|| {
    ROUTES
        .iter()
        .map(|r| {
            r.path
                .trim_start_matches('/')
                .split('/')
                .map(
                    |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => Segment::Variable(name),
                        None => Segment::Literal(s),
                    },
                )
                .collect()
        })
        .collect()
});

/// Whether `template` matches the path's segments.
fn fits(template: &[Segment], segments: &[&str]) -> bool {
    template.len() == segments.len()
        && template.iter().zip(segments).all(|(t, s)| match t {
            Segment::Literal(l) => l == s,
            Segment::Variable(_) => true,
        })
}

/// The path's variable segments when `template` matches it: checked first,
/// so the routes that do not fit cost no allocation.
fn matches(template: &[Segment], segments: &[&str]) -> Option<Vec<(&'static str, String)>> {
    if !fits(template, segments) {
        return None;
    }
    let params = template.iter().zip(segments).filter_map(|(t, s)| match t {
        Segment::Variable(name) => Some((*name, (*s).to_owned())),
        Segment::Literal(_) => None,
    });
    Some(params.collect())
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

/// The answer, and the index in [`ROUTES`] of the route that gave it (`None`
/// when no route's path fits).
async fn dispatch(
    app: &App,
    config: &HttpConfig,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    surface: Surface,
) -> (Option<usize>, Answer) {
    let client = config.trusted_proxies.client(peer, req.headers());
    req.extensions_mut().insert(ClientAddress(client));
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let templates = &*TEMPLATES;
    let mut first_on_path = None;
    for (i, (route, template)) in ROUTES.iter().zip(templates).enumerate() {
        if !fits(template, &segments) || !surface.answers(route) {
            continue;
        }
        first_on_path.get_or_insert(i);
        if route.verb.answers(req.method()) {
            let params = matches(template, &segments).unwrap_or_default();
            let call = Call::new(app, config, req, params);
            return (Some(i), run(route.handler, call).await);
        }
    }
    match first_on_path {
        None => (None, Err(ApiError::NotFound)),
        Some(i) => {
            let on_path = ROUTES
                .iter()
                .zip(templates)
                .filter(|(r, t)| surface.answers(r) && fits(t, &segments));
            let allowed = allow(on_path.map(|(r, _)| r));
            (Some(i), Err(ApiError::MethodNotAllowed(allowed)))
        }
    }
}

/// Checks the right the route asks for, then runs its handler.
async fn run(handler: Handler, call: Call<'_>) -> Answer {
    match handler {
        Handler::Open(f) => f(call).await,
        Handler::Admin(f) => {
            let token = call.admin().await?;
            f(call, token).await
        }
        Handler::Organizer(f) => {
            let managed = call.managed().await?;
            f(call, managed).await
        }
        Handler::Reader(f) => {
            let reading = call.reading().await?;
            f(call, reading).await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{Segment, TEMPLATES, matches};
    use crate::routes::{ROUTES, Verb, allow};

    fn split(path: &str) -> Vec<&str> {
        path.trim_start_matches('/').split('/').collect()
    }

    #[test]
    fn every_route_is_reachable_and_declared_once() {
        let mut seen = BTreeSet::new();
        for (i, route) in ROUTES.iter().enumerate() {
            assert!(route.path.starts_with('/'), "{}", route.path);
            assert!(
                seen.insert((route.verb.method(), route.path)),
                "{:?} {} is declared twice",
                route.verb,
                route.path
            );
            // No earlier route with the same method takes this one's paths.
            let example: Vec<String> = TEMPLATES[i]
                .iter()
                .map(|s| match s {
                    Segment::Literal(l) => (*l).to_owned(),
                    Segment::Variable(name) => format!("x-{name}"),
                })
                .collect();
            let example: Vec<&str> = example.iter().map(String::as_str).collect();
            let first = ROUTES
                .iter()
                .enumerate()
                .find(|(j, r)| {
                    r.verb.method() == route.verb.method()
                        && matches(&TEMPLATES[*j], &example).is_some()
                })
                .map(|(j, _)| j);
            assert_eq!(first, Some(i), "{} is shadowed", route.path);
        }
    }

    #[test]
    fn variables_are_named_and_given_to_the_handler() {
        let i = ROUTES
            .iter()
            .position(|r| r.path == "/v1/petitions/{slug}/invalidations/{id}/undo")
            .unwrap();
        let params = matches(
            &TEMPLATES[i],
            &split("/v1/petitions/declaration/invalidations/42/undo"),
        )
        .unwrap();
        assert_eq!(
            params,
            vec![("slug", "declaration".to_owned()), ("id", "42".to_owned())]
        );
        for template in TEMPLATES.iter() {
            for segment in template {
                if let Segment::Variable(name) = segment {
                    assert!(["slug", "id", "file"].contains(name), "{{{name}}}");
                }
            }
        }
    }

    #[test]
    fn allow_lists_a_paths_methods_in_one_order() {
        let on = |path: &'static str| ROUTES.iter().filter(move |r| r.path == path);
        assert_eq!(
            allow(on("/v1/petitions/{slug}/signatures")),
            "GET, HEAD, POST, OPTIONS"
        );
        assert_eq!(allow(on("/v1/petitions/{slug}")), "GET, HEAD, PATCH");
        assert_eq!(allow(on("/v1/petitions/{slug}/export")), "GET");
        assert!(ROUTES.iter().any(|r| r.verb == Verb::GetWithoutHead));
    }
}
