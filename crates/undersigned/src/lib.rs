//! The undersigned service: configuration and wiring. `main` only parses
//! arguments; `run` is a library function taking bound listeners and a
//! shutdown future, so tests start the real service on port 0.

pub mod config;
mod tasks;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prometheus::Registry;
use thiserror::Error;
use tracing::{info, warn};
use undersigned_domain::Pepper;
use undersigned_guard::{DeviceLimit, Fanout, Guard, RedisLink, Shield};
use undersigned_http::{
    App, HttpMetrics, Listeners, LocalLimits, Outward, SignalMetrics, Streams, serve,
};
use undersigned_ingest::{Ingest, IngestMetrics};
use undersigned_mail::MailMetrics;
use undersigned_store::{Store, StoreError};
pub use undersigned_supervisor::{Policy, Supervisor, TaskFailure};
use undersigned_webhooks::{WebhookMetrics, Webhooks};

pub use config::{Config, ConfigError, ExportKey, LogFormat};
use config::{written_limit, written_limits};

#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("redis: {0}")]
    Redis(#[from] undersigned_guard::RedisError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Task(#[from] TaskFailure),
    #[error(transparent)]
    Mail(#[from] undersigned_mail::TransportError),
    #[error("webhooks' HTTP client: {0}")]
    Webhooks(#[from] undersigned_webhooks::ClientError),
}

/// The signature path without a server, for the command line (paper
/// imports): the same checks and writers, no Redis. A running service learns
/// the new counts at its next reload from Postgres, within seconds.
pub struct OfflineIngest {
    pub store: Store,
    pub ingest: Arc<Ingest>,
    /// Its background tasks: the rule reload, the count refresh.
    tasks: Supervisor,
}

impl OfflineIngest {
    /// Writes every queued signature, then stops the background tasks.
    pub async fn close(self) {
        self.ingest.drain().await;
        self.tasks.shutdown().await;
    }
}

/// Starts the signature path without a server; [`OfflineIngest::close`] ends it.
pub async fn offline_ingest(config: &Config) -> Result<OfflineIngest, StartError> {
    let (store, pepper) = open_store(config).await?;
    let tasks = Supervisor::new();
    let guard = Arc::new(Guard::new(
        None,
        &config.redis_prefix,
        config.limits(),
        Duration::ZERO,
        &tasks,
    ));
    // Paper and tablets count at once: nothing here asks for confirmation.
    let ingest = Ingest::start(
        config.ingest(config.listen),
        store.clone(),
        guard,
        None,
        pepper,
        IngestMetrics::register(&Registry::new())?,
        &tasks,
    )
    .await?;
    Ok(OfflineIngest {
        store,
        ingest,
        tasks,
    })
}

/// Opens the database (creating and migrating it when needed) and resolves the pepper.
pub async fn open_store(config: &Config) -> Result<(Store, Pepper), StartError> {
    let mut store = Store::open(&config.database_url, config.pool_size).await?;
    if let Some(replica) = &config.replica_url {
        // One connection for each export that may run at once, and a spare.
        store = store.with_replica(replica, undersigned_http::EXPORTS_AT_ONCE + 1)?;
    }
    let secret = match &config.identity_pepper {
        Some(secret) => {
            // A pepper this database generated before: another one now would
            // give every signer who signed a new identity key, so that each
            // could sign again.
            if store
                .pepper_stored_before()
                .await?
                .is_some_and(|stored| stored != secret.expose())
            {
                return Err(ConfigError::PepperDiffers.into());
            }
            secret.expose().to_owned()
        }
        None => {
            let (secret, generated) = store.stored_pepper().await?;
            if generated {
                warn!(
                    "UNDERSIGNED_IDENTITY_PEPPER is not set: generated one and stored it in the \
                     database; set it in the environment to keep it apart from the data"
                );
            }
            secret
        }
    };
    let pepper = Pepper::new(secret.as_bytes()).ok_or(ConfigError::WeakPepper)?;
    Ok((store, pepper))
}

/// The key that signs export bundles: configured, or generated once and kept
/// in the database like the pepper.
pub async fn open_export_key(
    config: &Config,
    store: &Store,
) -> Result<ed25519_dalek::SigningKey, StartError> {
    let key = match &config.export_signing_key {
        Some(key) => key.clone(),
        None => {
            let (seed, generated) = store.stored_export_key().await?;
            if generated {
                warn!(
                    "UNDERSIGNED_EXPORT_SIGNING_KEY is not set: generated one and stored it in \
                     the database; set it in the environment to keep it apart from the data"
                );
            }
            ExportKey::from_stored(&seed)?
        }
    };
    Ok(key.into_signing_key())
}

/// Binds the public listener and, when configured, the operators' one.
pub fn bind(config: &Config) -> Result<Listeners, StartError> {
    Ok(Listeners::bind(config.listen, config.operator_listen)?)
}

/// Serves on `listeners` until `shutdown` completes, then finishes requests in
/// flight, writes every queued signature and stops every background task
/// before returning.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    run_supervised(config, listeners, shutdown, Supervisor::new()).await
}

/// [`run`], with the background tasks under `tasks`, which the caller may
/// watch (how many are live) or add to. A task with [`Policy::Fatal`] that
/// dies stops the service like `shutdown` does, and is the error returned.
pub async fn run_supervised(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    tasks: Supervisor,
) -> Result<(), StartError> {
    let served = serve_under(config, listeners, shutdown, &tasks).await;
    tasks.shutdown().await;
    served
}

async fn serve_under(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    tasks: &Supervisor,
) -> Result<(), StartError> {
    // One rustls provider for every TLS client of the process: redis's and
    // hCaptcha's reqwest ask for the process's own (reqwest is built without
    // one of its own), Postgres's names it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let shield = Arc::new(Shield::new(config.shield_limit));
    let devices = Arc::new(DeviceLimit::new(config.device_limit));
    let streams = Streams::new(config.streams());
    let (store, pepper) = open_store(&config).await?;

    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    let root = config.redis_root_certificate()?;
    let link = config
        .redis_url()
        .map(|url| RedisLink::new(url, root))
        .transpose()?;
    let guard = Arc::new(Guard::new(
        link.clone(),
        &config.redis_prefix,
        config.limits(),
        Duration::from_millis(config.guard_linger_ms),
        tasks,
    ));
    let fanout = link.map(|l| Fanout::new(l, &config.redis_prefix, "counts"));
    let ingest_config = config.ingest(listeners.public.local_addr()?);
    let mail_queued = ingest_config.confirming.mail_queued.clone();
    let letterhead = ingest_config.confirming.letterhead.clone();
    let ingest = Ingest::start(
        ingest_config,
        store.clone(),
        guard.clone(),
        fanout,
        pepper.clone(),
        IngestMetrics::register(&registry)?,
        tasks,
    )
    .await?;
    ingest.resume_invalidations().await?;
    let metrics = HttpMetrics::register(&registry)?;
    let webhooks = Arc::new(Webhooks::new(
        store.clone(),
        &pepper,
        config.webhooks(),
        WebhookMetrics::register(&registry)?,
    )?);
    tasks::start(
        tasks,
        &config,
        &store,
        guard,
        SignalMetrics::register(&registry)?,
        LocalLimits {
            shield: shield.clone(),
            devices: devices.clone(),
            streams: streams.clone(),
        },
        tasks::Mailing {
            metrics: MailMetrics::register(&registry)?,
            queued: mail_queued,
            letterhead,
            pepper,
        },
    )?;
    tasks::start_webhooks(tasks, &store, webhooks.clone());
    let export_key = open_export_key(&config, &store).await?;
    let app = Arc::new(App::new(
        store,
        ingest.clone(),
        registry,
        metrics,
        LocalLimits {
            shield,
            devices,
            streams,
        },
        Outward {
            captcha: config.captcha()?,
            export_key,
            webhooks: webhooks.clone(),
            public_url: config.public_base(listeners.public.local_addr()?),
        },
    ));

    let operator = match &listeners.operator {
        Some(listener) => listener.local_addr()?.to_string(),
        None => {
            if config.metrics_token.is_none() && !listeners.public.local_addr()?.ip().is_loopback()
            {
                warn!(
                    "/metrics is served to anyone on the public address: set \
                     UNDERSIGNED_OPERATOR_LISTEN to serve it apart, or UNDERSIGNED_METRICS_TOKEN"
                );
            }
            "none".into()
        }
    };
    info!(
        address = %listeners.public.local_addr()?,
        operator = %operator,
        database_tls = app.store.tls().as_str(),
        replica = if config.replica_url.is_some() { "on" } else { "off" },
        redis = if config.redis_url().is_some() { "on" } else { "off" },
        ip_limit = %written_limits(&config.ip_limit),
        domain_limit = %written_limit(config.domain_limit),
        petition_limit = %written_limit(config.petition_limit),
        shield_limit = %written_limit(config.shield_limit),
        device_limit = %written_limit(config.device_limit),
        connections_per_address = config.max_connections_per_address,
        captcha = if config.hcaptcha_secret.is_none() { "off" } else { "hcaptcha" },
        metrics_token = if config.metrics_token.is_some() { "on" } else { "off" },
        "serving"
    );
    let mut failed = None;
    let stop = async {
        tokio::select! {
            () = shutdown => {}
            failure = tasks.failure() => failed = Some(failure),
        }
    };
    serve(listeners, app, config.http(), stop).await;
    if let Err(e) = webhooks.release().await {
        warn!(error = %e, "letting go of this instance's webhooks failed: others take them when the hold runs out");
    }
    ingest.drain().await;
    match failed {
        Some(failure) => Err(failure.into()),
        None => {
            info!("stopped");
            Ok(())
        }
    }
}
