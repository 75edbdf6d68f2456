//! What the HTTP layer is configured with: read by the server and by the
//! handlers, so it lives apart from both.

use std::time::Duration;

use crate::client_address::TrustedProxies;
use crate::ops::MetricsToken;

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Open connections at most; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Open connections from one client address (an IPv6 /64) at most; more
    /// are closed at once. Trusted proxies are held to `max_connections` alone.
    pub max_connections_per_address: usize,
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body.
    pub body_read_timeout: Duration,
    /// Time requests in flight get to finish once a stop is asked for.
    pub shutdown_grace: Duration,
    /// Time, within the grace, a connection idle at a stop is left for its
    /// client to close before the service closes it.
    pub shutdown_idle: Duration,
    /// Time between comments on a live count stream with nothing to send,
    /// so that proxies and browsers keep it open.
    pub stream_heartbeat: Duration,
    /// Peers whose forwarding headers name the client.
    pub trusted_proxies: TrustedProxies,
    /// The origins of the service's own pages (its public URL's and its
    /// mirrors'), which may post signatures to any petition; `None` (no
    /// public URL configured: a development set-up) takes the host each
    /// request names.
    pub own_origins: Option<Vec<String>>,
    /// The bearer token `/metrics` asks for, if any.
    pub metrics_token: Option<MetricsToken>,
}
