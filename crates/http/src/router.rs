//! Which handler answers which method and path: matched against the route
//! table ([`crate::routes::ROUTES`]), with the right each route asks for
//! checked before its handler runs.

use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Instant;

use http::{HeaderValue, Request, Response, header};
use hyper::body::Incoming;

use crate::App;
use crate::call::{Answer, Call, Params};
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

/// The most segments a route's template has (the table's tests check it).
pub(crate) const MAX_SEGMENTS: usize = 6;

/// The routes whose templates have each number of segments, in the table's
/// order: a path is compared only with the templates of its length, about a
/// fifth of the table.
static BY_LENGTH: LazyLock<[Vec<usize>; MAX_SEGMENTS + 1]> = LazyLock::new(|| {
    let mut by_length: [Vec<usize>; MAX_SEGMENTS + 1] = Default::default();
    for (i, template) in TEMPLATES.iter().enumerate() {
        by_length[template.len()].push(i);
    }
    by_length
});

/// A path's segments, each with where it starts in the path: kept on the
/// stack, since every request is routed.
#[derive(Default)]
struct Segments<'p> {
    found: [(usize, &'p str); MAX_SEGMENTS],
    len: usize,
}

impl<'p> Segments<'p> {
    fn as_slice(&self) -> &[(usize, &'p str)] {
        &self.found[..self.len]
    }
}

/// The path's segments, `None` when it has more than any route.
fn segments(path: &str) -> Option<Segments<'_>> {
    let trimmed = path.trim_start_matches('/');
    let mut found = Segments::default();
    let mut start = path.len() - trimmed.len();
    for (i, b) in path.bytes().enumerate().skip(start) {
        if b == b'/' {
            *found.found.get_mut(found.len)? = (start, &path[start..i]);
            found.len += 1;
            start = i + 1;
        }
    }
    *found.found.get_mut(found.len)? = (start, &path[start..]);
    found.len += 1;
    Some(found)
}

/// Whether `template` matches the path's segments. Compared from the end,
/// where routes sharing a prefix differ, so a route that does not fit costs
/// a length comparison or two.
fn fits(template: &[Segment], segments: &[(usize, &str)]) -> bool {
    template.len() == segments.len()
        && template
            .iter()
            .zip(segments)
            .rev()
            .all(|(t, (_, s))| match t {
                Segment::Literal(l) => l == s,
                Segment::Variable(_) => true,
            })
}

/// The path's variable segments when `template` matches it, as places in the
/// path: nothing is copied.
fn matches(template: &[Segment], segments: &[(usize, &str)]) -> Option<Params> {
    if !fits(template, segments) {
        return None;
    }
    let mut params = Params::default();
    for (t, (start, s)) in template.iter().zip(segments) {
        if let Segment::Variable(name) = t {
            params.push(name, *start..*start + s.len());
        }
    }
    Some(params)
}

/// What the path asks for: a route (its index in [`ROUTES`] and the path's
/// variable segments), a path whose routes take other methods (the first
/// one's index and `Allow`), or nothing.
enum Found {
    Route(usize, Params),
    OtherMethods(usize, String),
    Nothing,
}

fn find(path: &str, method: &http::Method, surface: Surface) -> Found {
    let Some(segments) = segments(path) else {
        return Found::Nothing;
    };
    let segments = segments.as_slice();
    let templates = &*TEMPLATES;
    let on_path = || {
        BY_LENGTH[segments.len()]
            .iter()
            .map(|&i| (i, &ROUTES[i], &templates[i]))
            .filter(|(_, r, t)| fits(t, segments) && surface.answers(r))
    };
    let mut first = None;
    for (i, route, template) in on_path() {
        first.get_or_insert(i);
        if route.verb.answers(method) {
            return Found::Route(i, matches(template, segments).unwrap_or_default());
        }
    }
    match first {
        None => Found::Nothing,
        Some(i) => Found::OtherMethods(i, allow(on_path().map(|(_, r, _)| r))),
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
    let authorized = req.headers().contains_key(header::AUTHORIZATION);
    let (route, result) = dispatch(app, config, req, peer, surface).await;
    let mut response = result.unwrap_or_else(|e| e.answering(&method).into_response());
    // What a token was shown is kept by no cache, unless its handler said
    // otherwise: an organizer's data never lingers in a browser or proxy.
    if authorized && !response.headers().contains_key(header::CACHE_CONTROL) {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
    }
    // Stopping: the connection ends after this answer, and says so, so that
    // its client (a proxy) sends nothing more on it (`server::serve`).
    if app.stopping.is_cancelled() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    app.metrics
        .observe(route, response.status(), started.elapsed().as_secs_f64());
    response
}

/// The answer, and the index in [`ROUTES`] of the route that gave it (`None`
/// when no route's path fits).
async fn dispatch(
    app: &App,
    config: &HttpConfig,
    req: Request<Incoming>,
    peer: SocketAddr,
    surface: Surface,
) -> (Option<usize>, Answer) {
    let client = config.trusted_proxies.client(peer, req.headers());
    match find(req.uri().path(), req.method(), surface) {
        Found::Route(i, params) => {
            let call = Call::new(app, config, req, params, client);
            (Some(i), run(ROUTES[i].handler, call).await)
        }
        Found::OtherMethods(i, allowed) => (Some(i), Err(ApiError::MethodNotAllowed(allowed))),
        Found::Nothing => (None, Err(ApiError::NotFound)),
    }
}

/// Checks the right the route asks for, then runs its handler.
///
/// The checks' futures are on the heap: each reads a token from Postgres and
/// is 4 KiB, which every request's future would otherwise carry, the open
/// routes' too (signing, counter reads), and hyper moves a request's future
/// a few times (benches/BENCHMARKS.md, "Requests cost less").
async fn run(handler: Handler, call: Call<'_>) -> Answer {
    match handler {
        Handler::Open(f) => f(call).await,
        Handler::Admin(f) => {
            let token = Box::pin(call.admin()).await?;
            f(call, token).await
        }
        Handler::Organizer(f) => {
            let managed = Box::pin(call.managed()).await?;
            f(call, managed).await
        }
        Handler::Reader(f) => {
            let reading = Box::pin(call.reading()).await?;
            f(call, reading).await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{Found, MAX_SEGMENTS, Segment, Surface, TEMPLATES, find, matches};
    use crate::call::MAX_PARAMS;
    use crate::routes::{ROUTES, Verb, allow};

    use super::segments;

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
            let example_path = format!("/{}", example.join("/"));
            let example = segments(&example_path).expect("within MAX_SEGMENTS");
            let example = example.as_slice();
            let first = ROUTES
                .iter()
                .enumerate()
                .find(|(j, r)| {
                    r.verb.method() == route.verb.method()
                        && matches(&TEMPLATES[*j], example).is_some()
                })
                .map(|(j, _)| j);
            assert_eq!(first, Some(i), "{} is shadowed", route.path);
            // And the router, which compares a path only with the templates
            // of its length, finds it.
            let method = route.verb.method();
            assert!(
                matches!(find(&example_path, &method, Surface::Everything), Found::Route(j, _) if j == i),
                "{} {} is not found",
                route.verb.name(),
                route.path
            );
        }
    }

    #[test]
    fn variables_are_named_and_given_to_the_handler() {
        let i = ROUTES
            .iter()
            .position(|r| r.path == "/v1/petitions/{slug}/invalidations/{id}/undo")
            .unwrap();
        let path = "//v1/petitions/declaration/invalidations/42/undo";
        let params = matches(&TEMPLATES[i], segments(path).unwrap().as_slice()).unwrap();
        assert_eq!(params.get(path, "slug"), "declaration");
        assert_eq!(params.get(path, "id"), "42");
        assert_eq!(params.get(path, "file"), "");
        for template in TEMPLATES.iter() {
            let variables: Vec<_> = template
                .iter()
                .filter_map(|s| match s {
                    Segment::Variable(name) => Some(*name),
                    Segment::Literal(_) => None,
                })
                .collect();
            assert!(variables.len() <= MAX_PARAMS, "{variables:?}");
            for name in variables {
                assert!(
                    ["slug", "id", "file", "token"].contains(&name),
                    "{{{name}}}"
                );
            }
        }
    }

    #[test]
    fn paths_are_split_on_the_stack_within_the_longest_template() {
        assert_eq!(
            TEMPLATES.iter().map(Vec::len).max(),
            Some(MAX_SEGMENTS),
            "MAX_SEGMENTS is the longest template's length"
        );
        let split = |path| segments(path).map(|s| s.as_slice().to_vec());
        assert_eq!(split("/"), Some(vec![(1, "")]));
        assert_eq!(
            split("//v1/petitions/x/count"),
            Some(vec![(2, "v1"), (5, "petitions"), (15, "x"), (17, "count")])
        );
        assert_eq!(split("/a/b/c/d/e/f").map(|s| s.len()), Some(6));
        assert_eq!(split("/a/b/c/d/e/f/g"), None);
        let get = http::Method::GET;
        assert!(matches!(
            find("/v1/petitions/x/count", &get, Surface::Everything),
            Found::Route(..)
        ));
        assert!(matches!(
            find("/v1/petitions/x/count/a/b/c", &get, Surface::Everything),
            Found::Nothing
        ));
    }

    /// The size of the future `f` makes, without making one.
    fn future_size<A, F: std::future::Future>(_: impl FnOnce(A) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every request's future carries no token check's: those read Postgres
    /// and are 4 KiB each; inline, they made every request's future 6 KiB,
    /// which hyper moves a few times (`run`).
    #[test]
    fn a_requests_future_carries_no_token_check() {
        type Args<'a> = (
            &'a crate::App,
            &'a crate::config::HttpConfig,
            http::Request<hyper::body::Incoming>,
            std::net::SocketAddr,
            Surface,
        );
        let request = future_size(|a: Args<'_>| super::handle(a.0, a.1, a.2, a.3, a.4));
        let check = future_size(|call: &crate::call::Call<'_>| call.admin());
        assert!(check > 2048, "a token check's future is {check} bytes");
        assert!(request < check, "a request's future is {request} bytes");
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
