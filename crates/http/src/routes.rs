//! Every route the service answers, declared once: method, path template,
//! metric label, who may call it and its handler. The router dispatches from
//! this table, the HTTP metrics label requests by it, and tests hold it and
//! `openapi.json` to the same operations. Adding a route is one line here, its
//! handler, and its operation in `openapi.json` (crates/README.md).

use std::future::Future;
use std::pin::Pin;

use http::Method;
use undersigned_store::Token;

use crate::call::{Answer, Call, Managed, Reading};
use crate::{assets, dashboard, kiosk, openapi, ops, osdi, pages, v1};

/// A handler's answer to come. Boxed so that handlers of every shape fit one table.
pub(crate) type Reply<'a> = Pin<Box<dyn Future<Output = Answer> + Send + 'a>>;

/// A route's handler, by who may call it. The router checks the right before
/// the handler runs and passes on what it found.
#[derive(Clone, Copy)]
pub(crate) enum Handler {
    /// Anyone; a handler that takes a token checks it itself (signing, a
    /// tablet's upload, an event's organizers).
    Open(for<'a> fn(Call<'a>) -> Reply<'a>),
    /// Admins: 401 without a valid token, 403 with another role.
    Admin(for<'a> fn(Call<'a>, Token) -> Reply<'a>),
    /// The petition `{slug}` names (404 when none) and a token that may manage
    /// it: an admin's or one of its organizers' (401, 403 otherwise).
    Organizer(for<'a> fn(Call<'a>, Managed) -> Reply<'a>),
    /// The petition `{slug}` names (404 when none) and a token that may read
    /// its signatures: an admin's, its organizers', its coordinators' for
    /// their countries (401, 403 otherwise).
    Reader(for<'a> fn(Call<'a>, Reading) -> Reply<'a>),
}

#[cfg(test)]
impl Handler {
    /// Whether the router refuses a caller without a valid token (401) or
    /// with one lacking the right (403) before the handler runs.
    pub fn checks_a_token(self) -> bool {
        !matches!(self, Self::Open(_))
    }

    /// Whether the router looks the petition `{slug}` up first (404 when none).
    pub fn looks_up_the_petition(self) -> bool {
        matches!(self, Self::Organizer(_) | Self::Reader(_))
    }
}

/// A method as routes take it: `Get` answers HEAD too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    /// GET alone, for answers that cost too much to compute for headers only.
    GetWithoutHead,
    Post,
    Patch,
    Delete,
    Options,
}

impl Verb {
    pub fn answers(self, method: &Method) -> bool {
        match self {
            Self::Get => method == Method::GET || method == Method::HEAD,
            _ => *method == self.method(),
        }
    }

    pub fn method(self) -> Method {
        match self {
            Self::Get | Self::GetWithoutHead => Method::GET,
            Self::Post => Method::POST,
            Self::Patch => Method::PATCH,
            Self::Delete => Method::DELETE,
            Self::Options => Method::OPTIONS,
        }
    }

    /// The method's name, as `openapi.json` and `Allow` write it.
    pub fn name(self) -> &'static str {
        self.allowed()[0]
    }

    /// The methods it answers, as `Allow` lists them.
    fn allowed(self) -> &'static [&'static str] {
        match self {
            Self::Get => &["GET", "HEAD"],
            Self::GetWithoutHead => &["GET"],
            Self::Post => &["POST"],
            Self::Patch => &["PATCH"],
            Self::Delete => &["DELETE"],
            Self::Options => &["OPTIONS"],
        }
    }
}

/// Which listener answers a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    /// The public one.
    Public,
    /// The operators' one when there is one (else the public one).
    Operators,
    /// Both: health checks, which load balancers and operators both ask.
    Both,
}

/// One operation.
#[derive(Clone, Copy)]
pub(crate) struct Route {
    pub verb: Verb,
    /// The path, with `{name}` for a variable segment.
    pub path: &'static str,
    /// The `route` label of the HTTP metrics; routes may share one.
    pub label: &'static str,
    pub listener: Listener,
    /// Whether `openapi.json` documents it: every API operation does; the
    /// kiosk's page and files do not.
    pub documented: bool,
    pub handler: Handler,
}

/// Wraps a handler `async fn(Call, …) -> Answer` for the table.
macro_rules! handler {
    (open $f:path) => {
        Handler::Open(|call| Box::pin($f(call)))
    };
    (admin $f:path) => {
        Handler::Admin(|call, token| Box::pin($f(call, token)))
    };
    (organizer $f:path) => {
        Handler::Organizer(|call, managed| Box::pin($f(call, managed)))
    };
    (reader $f:path) => {
        Handler::Reader(|call, reading| Box::pin($f(call, reading)))
    };
}

/// One API route on the public listener.
macro_rules! route {
    ($verb:ident $path:literal, $label:literal, $who:ident $f:path) => {
        Route {
            verb: Verb::$verb,
            path: $path,
            label: $label,
            listener: Listener::Public,
            documented: true,
            handler: handler!($who $f),
        }
    };
}

/// The route table. Where two routes share a path, the first whose method
/// fits answers; a path none has is 404, a method none has is 405, counted
/// under the label of the path's first route.
pub(crate) static ROUTES: &[Route] = &[
    Route {
        listener: Listener::Both,
        ..route!(Get "/healthz", "healthz", open ops::health)
    },
    Route {
        listener: Listener::Both,
        ..route!(Get "/readyz", "readyz", open ops::ready)
    },
    Route {
        listener: Listener::Operators,
        ..route!(Get "/metrics", "metrics", open ops::metrics)
    },
    route!(Get "/v1/openapi.json", "openapi", open openapi::serve),
    route!(Get "/v1/petitions", "petitions", open v1::petitions::list),
    route!(Post "/v1/petitions", "create_petition", admin v1::petitions::create),
    route!(Get "/v1/petitions/{slug}", "petition", open v1::petitions::show),
    route!(Patch "/v1/petitions/{slug}", "petition", organizer v1::petitions::update),
    // Signing first: a wrong method here is counted under `sign`, as signing's
    // are the requests that matter on this path.
    route!(Post "/v1/petitions/{slug}/signatures", "sign", open v1::signatures::sign),
    route!(Get "/v1/petitions/{slug}/signatures", "signatures", reader v1::signatures::list),
    route!(Options "/v1/petitions/{slug}/signatures", "sign", open v1::signatures::preflight),
    route!(Post "/v1/petitions/{slug}/signatures:import", "imports", admin v1::imports::import),
    route!(Get "/v1/petitions/{slug}/count", "count", open v1::count::show),
    // Not HEAD: a stream has no end for a request of its headers to wait on.
    route!(GetWithoutHead "/v1/petitions/{slug}/count/stream", "count_stream", open v1::count::stream),
    route!(Get "/v1/petitions/{slug}/history", "history", open v1::history::show),
    // Not HEAD: an export is audited and runs a snapshot, which a request for
    // headers only should not cost.
    route!(GetWithoutHead "/v1/petitions/{slug}/export", "export", reader v1::exports::export),
    route!(Get "/v1/export-key", "export", open v1::exports::key),
    route!(Get "/v1/petitions/{slug}/signals", "signals", organizer v1::signals::show),
    route!(Get "/v1/blocks", "blocks", admin v1::blocks::list),
    route!(Post "/v1/blocks", "blocks", admin v1::blocks::create),
    route!(Delete "/v1/blocks/{id}", "blocks", admin v1::blocks::remove),
    route!(Get "/v1/petitions/{slug}/invalidations", "invalidations", organizer v1::invalidations::list),
    route!(Post "/v1/petitions/{slug}/invalidations", "invalidations", organizer v1::invalidations::create),
    route!(Get "/v1/petitions/{slug}/invalidations/{id}", "invalidations", organizer v1::invalidations::show),
    route!(Post "/v1/petitions/{slug}/invalidations/{id}/undo", "invalidations", organizer v1::invalidations::undo),
    route!(Get "/v1/tokens", "tokens", admin v1::tokens::list),
    route!(Post "/v1/tokens", "tokens", admin v1::tokens::create),
    route!(Delete "/v1/tokens/{id}", "tokens", admin v1::tokens::revoke),
    route!(Get "/v1/petitions/{slug}/events", "events", organizer v1::events::list),
    route!(Post "/v1/petitions/{slug}/events", "events", organizer v1::events::create),
    route!(Post "/v1/events/{id}/enrollment-codes", "events", open v1::events::enrollment_code),
    route!(Get "/v1/events/{id}/devices", "events", open v1::events::devices),
    route!(Post "/v1/events/{id}/signatures:batch", "event_batches", open v1::batches::upload),
    route!(Post "/v1/devices", "devices", open v1::events::enroll),
    route!(Delete "/v1/devices/{id}", "devices", open v1::events::revoke),
    route!(Get "/v1/audit", "audit", admin v1::audit::list),
    route!(Get "/v1/webhooks", "webhooks", open v1::webhooks::list),
    route!(Post "/v1/webhooks", "webhooks", open v1::webhooks::create),
    route!(Delete "/v1/webhooks/{id}", "webhooks", open v1::webhooks::remove),
    route!(Get "/v1/webhooks/{id}/deliveries", "webhooks", open v1::webhooks::deliveries),
    route!(Post "/v1/webhooks/{id}/test", "webhooks", open v1::webhooks::test),
    // A signer's link: GET shows it and changes nothing, POST confirms.
    route!(Get "/confirm/{token}", "confirm", open pages::confirm::show),
    route!(Post "/confirm/{token}", "confirm", open pages::confirm::confirm),
    route!(Post "/v1/petitions/{slug}/withdrawals", "withdrawals", open v1::withdrawals::request),
    route!(Get "/withdraw", "withdraw", open pages::withdraw::form),
    // The link a withdrawal request sends: GET shows it, POST withdraws.
    route!(Get "/withdraw/{token}", "withdraw", open pages::withdraw::show),
    route!(Post "/withdraw/{token}", "withdraw", open pages::withdraw::withdraw),
    route!(Post "/v1/erasures", "erasures", admin v1::erasures::erase),
    // OSDI 1.1 (crates/http/src/osdi.rs): its own specification describes
    // it, not this service's OpenAPI document.
    Route {
        documented: false,
        ..route!(Get "/osdi/v1", "osdi", open osdi::entry)
    },
    Route {
        documented: false,
        ..route!(Get "/osdi/v1/petitions", "osdi", open osdi::petitions)
    },
    Route {
        documented: false,
        ..route!(Get "/osdi/v1/petitions/{slug}", "osdi", open osdi::petition)
    },
    Route {
        documented: false,
        ..route!(Get "/osdi/v1/petitions/{slug}/signatures", "osdi", open osdi::signatures)
    },
    Route {
        documented: false,
        ..route!(Post "/osdi/v1/petitions/{slug}/signatures", "osdi", open osdi::record)
    },
    Route {
        documented: false,
        ..route!(Get "/osdi/v1/petitions/{slug}/signatures/{id}", "osdi", open osdi::signature)
    },
    Route {
        documented: false,
        ..route!(Post "/osdi/v1/petitions/{slug}/record_signature_helper", "osdi", open osdi::record)
    },
    // The hosted signing page and its files: HTML, not part of the API.
    Route {
        documented: false,
        ..route!(Get "/p/{slug}", "page", open pages::sign::show)
    },
    Route {
        documented: false,
        ..route!(Get "/p/{slug}/thanks", "page", open pages::sign::thanks)
    },
    Route {
        documented: false,
        ..route!(Get "/assets/{file}", "assets", open assets::serve)
    },
    Route {
        documented: false,
        ..route!(Get "/widget.js", "assets", open assets::widget)
    },
    // The organizers' dashboard: a page, reading the API with its reader's token.
    Route {
        documented: false,
        ..route!(Get "/dashboard", "dashboard", open dashboard::to_page)
    },
    Route {
        documented: false,
        ..route!(Get "/dashboard/{file}", "dashboard", open dashboard::serve)
    },
    Route {
        documented: false,
        ..route!(Get "/dashboard/vendor/{file}", "dashboard", open dashboard::vendor)
    },
    Route {
        documented: false,
        ..route!(Get "/kiosk", "kiosk", open kiosk::to_page)
    },
    Route {
        documented: false,
        ..route!(Get "/kiosk/{file}", "kiosk", open kiosk::serve)
    },
];

/// The label of requests no route answers.
pub(crate) const UNKNOWN_LABEL: &str = "unknown";

/// The operations `openapi.json` must document, as (method, path template).
pub fn documented_operations() -> Vec<(&'static str, &'static str)> {
    ROUTES
        .iter()
        .filter(|r| r.documented)
        .map(|r| (r.verb.name(), r.path))
        .collect()
}

/// The `Allow` header of a path the routes in `matching` share.
pub(crate) fn allow<'r>(matching: impl Iterator<Item = &'r Route>) -> String {
    const ORDER: [&str; 6] = ["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"];
    let verbs: Vec<Verb> = matching.map(|r| r.verb).collect();
    ORDER
        .into_iter()
        .filter(|m| verbs.iter().any(|v| v.allowed().contains(m)))
        .collect::<Vec<_>>()
        .join(", ")
}
