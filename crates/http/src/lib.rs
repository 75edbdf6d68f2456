//! HTTP transport on hyper 1: the v1 API, operators' endpoints (on their own
//! listener when configured), problem+json errors, and a server with connection
//! limits per client address, timeouts and graceful shutdown.

mod assets;
mod auth;
mod call;
mod captcha;
mod client_address;
mod config;
mod connections;
mod cors;
mod dashboard;
mod fields;
mod head_timer;
mod kiosk;
mod memory;
mod metrics;
mod openapi;
mod ops;
mod osdi;
mod pages;
mod problem;
mod query;
mod reply;
mod request;
mod router;
mod routes;
mod server;
mod shares;
mod streams;
mod v1;

use std::sync::Arc;

use prometheus::Registry;
use undersigned_guard::{DeviceLimit, Shield};
use undersigned_ingest::{Catalog, Ingest};
use undersigned_store::Store;
use undersigned_webhooks::Webhooks;

pub use captcha::{Captcha, CaptchaConfigError, CaptchaSecret, CaptchaSitekey, DEFAULT_VERIFY_URL};
pub use client_address::{ForwardedHeader, TrustedProxies};
pub use config::HttpConfig;
pub use fields::Fields;
pub use metrics::{HttpMetrics, SignalMetrics};
pub use ops::MetricsToken;
pub use problem::ApiError;
pub use request::BodyKind;
pub use routes::documented_operations;
pub use server::{LISTEN_BACKLOG, Listeners, MAX_HEAD_BYTES, MAX_HEADERS, listen, serve};
pub use streams::{StreamLimits, Streams};
pub use v1::batches::{BATCH_MAX, read_batch};
pub use v1::exports::AT_ONCE as EXPORTS_AT_ONCE;
pub use v1::petitions::new_petition_from;
pub use v1::signatures::parse_signature;

/// Everything a request may need, shared by all connections.
pub struct App {
    pub store: Store,
    pub ingest: Arc<Ingest>,
    pub catalog: Arc<Catalog>,
    pub registry: Registry,
    pub metrics: HttpMetrics,
    /// The per-address flood shield in front of signing.
    pub shield: Arc<Shield>,
    /// Each enrolled tablet's allowance.
    pub devices: Arc<DeviceLimit>,
    /// The live count streams open, and how many may be.
    streams: Arc<Streams>,
    /// hCaptcha, when a secret is configured.
    pub captcha: Option<Captcha>,
    pub exports: v1::exports::Exports,
    counts: Arc<v1::count::RenderedCounts>,
    /// Cancelled once the service stops accepting: live streams end then,
    /// instead of holding the grace period open.
    pub stopping: tokio_util::sync::CancellationToken,
    /// Signs and sends webhook messages (a test message from the API).
    pub webhooks: Arc<Webhooks>,
    /// Where the service's own links start: `https://sign.example`.
    pub public_url: String,
}

/// The limits kept in this process, apart from Redis's shared ones.
pub struct LocalLimits {
    pub shield: Arc<Shield>,
    pub devices: Arc<DeviceLimit>,
    pub streams: Arc<Streams>,
}

/// What the API reaches or signs with beyond its own stores.
pub struct Outward {
    /// hCaptcha, when a secret is configured.
    pub captcha: Option<Captcha>,
    /// The key delivery bundles are signed with.
    pub export_key: ed25519_dalek::SigningKey,
    /// The webhooks' signer and sender.
    pub webhooks: Arc<Webhooks>,
    /// Where the service's own links start: `https://sign.example`.
    pub public_url: String,
}

impl App {
    pub fn new(
        store: Store,
        ingest: Arc<Ingest>,
        registry: Registry,
        metrics: HttpMetrics,
        local: LocalLimits,
        Outward {
            captcha,
            export_key,
            webhooks,
            public_url,
        }: Outward,
    ) -> Self {
        Self {
            catalog: Arc::new(Catalog::new(store.clone())),
            store,
            ingest,
            registry,
            metrics,
            shield: local.shield,
            devices: local.devices,
            streams: local.streams,
            captcha,
            exports: v1::exports::Exports::new(export_key),
            counts: Default::default(),
            stopping: Default::default(),
            webhooks,
            public_url,
        }
    }
}
