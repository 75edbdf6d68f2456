//! What a handler is given, and the steps most handlers begin with (the
//! handler prelude): who is calling, with which right to which petition, and
//! the fields of the body they sent.
//!
//! The route table ([`crate::routes`]) says which right a route asks for; the
//! router checks it before the handler runs and hands over what it found (the
//! caller's token, the petition), so no handler repeats the check.

use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;

use http::request::Parts;
use http::{HeaderMap, Request, Response, Uri};
use hyper::body::Incoming;
use undersigned_guard::Scope;
use undersigned_store::{Actor, Petition, Role, Token};

use crate::config::HttpConfig;
use crate::fields::Fields;
use crate::problem::ApiError;
use crate::reply::Body;
use crate::request::MAX_BODY;
use crate::{App, auth};

/// What a handler answers.
pub(crate) type Answer = Result<Response<Body>, ApiError>;

/// One request on its way to its handler.
pub(crate) struct Call<'a> {
    pub app: &'a App,
    pub config: &'a HttpConfig,
    pub parts: Parts,
    body: Option<Incoming>,
    /// The client's address, as the router worked it out behind trusted
    /// proxies (a field, not a request extension: those cost a map a request).
    client: IpAddr,
    /// The path's variable segments, by the names the route's template gives
    /// them (`{slug}`, `{id}`).
    params: Params,
}

/// Variable segments in one route's template, at most.
pub(crate) const MAX_PARAMS: usize = 2;

/// A path's variable segments: each template's name, and where the value is
/// in the path.
#[derive(Debug, Default, Clone)]
pub(crate) struct Params {
    found: [(&'static str, Range<usize>); MAX_PARAMS],
    len: usize,
}

impl Params {
    /// Notes one (the route table's tests keep templates within [`MAX_PARAMS`]).
    pub fn push(&mut self, name: &'static str, at: Range<usize>) {
        if let Some(slot) = self.found.get_mut(self.len) {
            *slot = (name, at);
            self.len += 1;
        }
    }

    /// The value of `{name}` in `path` (empty when the template names none).
    pub fn get<'p>(&self, path: &'p str, name: &str) -> &'p str {
        self.found[..self.len]
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, at)| path.get(at.clone()))
            .unwrap_or("")
    }
}

/// The petition a route's `{slug}` names, and the caller's token, which may
/// manage it: an admin's, or one of the petition's organizers'.
pub(crate) struct Managed {
    pub petition: Arc<Petition>,
    pub token: Token,
}

/// The petition a route's `{slug}` names, and the caller's token, which may
/// read its signatures.
pub(crate) struct Reading {
    pub petition: Arc<Petition>,
    pub token: Token,
    /// The countries it may read (`None`: all).
    pub scope: Option<Vec<String>>,
}

impl<'a> Call<'a> {
    pub fn new(
        app: &'a App,
        config: &'a HttpConfig,
        req: Request<Incoming>,
        params: Params,
        client: IpAddr,
    ) -> Self {
        let (parts, body) = req.into_parts();
        Self {
            app,
            config,
            parts,
            body: Some(body),
            client,
            params,
        }
    }

    /// The path segment the route's template names `{name}` (empty when it
    /// names none, which the table's tests rule out).
    pub fn param(&self, name: &str) -> &str {
        self.params.get(self.parts.uri.path(), name)
    }

    /// `{slug}`: the petition's name in the path.
    pub fn slug(&self) -> &str {
        self.param("slug")
    }

    /// `{id}`: an event's, a token's, a rule's or a job's id in the path.
    pub fn id(&self) -> &str {
        self.param("id")
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    pub fn uri(&self) -> &Uri {
        &self.parts.uri
    }

    /// The client's address, as the router worked it out behind trusted proxies.
    pub fn client(&self) -> IpAddr {
        self.client
    }

    /// Who acts with `token`, for the audit trail.
    pub fn actor(&self, token: &Token) -> Actor {
        auth::actor(token, self.client)
    }

    /// The caller's token, whatever its role: 401 without a valid one.
    pub async fn authenticate(&self) -> Result<Token, ApiError> {
        auth::authenticate(self.app, self.headers()).await
    }

    /// The flood shield, for the routes anyone may hammer (signing, a
    /// tablet's enrollment): 429 for a client over its rate, before its body
    /// is read or the database asked.
    pub fn shield(&self) -> Result<(), ApiError> {
        self.app
            .shield
            .check(self.client())
            .map_err(|wait| ApiError::RateLimited(wait, Scope::Address))
    }

    /// The body, once.
    pub fn take_body(&mut self) -> Result<Incoming, ApiError> {
        self.body
            .take()
            .ok_or_else(|| ApiError::Malformed("The request body could not be read.".into()))
    }

    /// The body's JSON fields (at most [`MAX_BODY`] bytes), refusing any field
    /// not in `known` (400, naming it and the known ones).
    pub async fn fields(&mut self, known: &[&str]) -> Result<Fields, ApiError> {
        self.fields_up_to(MAX_BODY, known).await
    }

    /// As [`Call::fields`], for the few requests that carry lists: at most `max` bytes.
    pub async fn fields_up_to(&mut self, max: usize, known: &[&str]) -> Result<Fields, ApiError> {
        let fields = self.any_fields(max).await?;
        fields.only(known)?;
        Ok(fields)
    }

    /// The body's JSON fields (at most `max` bytes), whatever they are: for
    /// a body whose fields another specification defines (OSDI's).
    pub async fn any_fields(&mut self, max: usize) -> Result<Fields, ApiError> {
        let body = self.take_body()?;
        Fields::read_json(
            &self.parts.headers,
            body,
            self.config.body_read_timeout,
            max,
        )
        .await
    }

    /// The prelude of an admins' route: 401 without a valid token, 403 with another role.
    pub async fn admin(&self) -> Result<Token, ApiError> {
        auth::require(self.app, self.headers(), Role::Admin).await
    }

    /// The prelude of an organizers' route: 404 when `{slug}` names no
    /// petition, then 401 without a valid token, 403 with one that may not
    /// manage it.
    pub async fn managed(&self) -> Result<Managed, ApiError> {
        let petition = self.petition().await?;
        let token = auth::require_petition(self.app, self.headers(), petition.id).await?;
        Ok(Managed { petition, token })
    }

    /// The prelude of a route reading signer data: 404 when `{slug}` names no
    /// petition, then 401 without a valid token, 403 with one that may not
    /// read it.
    pub async fn reading(&self) -> Result<Reading, ApiError> {
        let petition = self.petition().await?;
        let (token, scope) = auth::require_reader(self.app, self.headers(), petition.id).await?;
        Ok(Reading {
            petition,
            token,
            scope,
        })
    }

    /// The petition `{slug}` names: 404 when none.
    pub async fn petition(&self) -> Result<Arc<Petition>, ApiError> {
        self.app
            .catalog
            .by_slug(self.slug())
            .await?
            .ok_or(ApiError::NotFound)
    }
}
