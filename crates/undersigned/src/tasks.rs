//! The service's own periodic tasks, each started by one call with its name,
//! its period and what its death means. The lower crates start theirs under
//! the same [`Supervisor`] (the guard's Redis queues, the count refresh and
//! announcer, the rule reload, the invalidation jobs), so [`crate::run`] stops
//! them all at once.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};
use undersigned_domain::Pepper;
use undersigned_guard::Guard;
use undersigned_http::{LocalLimits, SignalMetrics};
use undersigned_mail::{Letterhead, MailMetrics, Mailer, Transport, TransportError};
use undersigned_store::Store;
use undersigned_supervisor::{Policy, Supervisor};
use undersigned_webhooks::Webhooks;

use crate::Config;

/// How often enrollment codes past their time are deleted.
const CODE_SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// How often the events every webhook's cursor has passed are deleted.
const WEBHOOK_SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often milestones reached and petitions closed are looked for.
const MILESTONES_EVERY: Duration = Duration::from_secs(1);
/// How often the in-process shield and tablet limits drop idle entries.
const FORGET_IDLE_EVERY: Duration = Duration::from_secs(10);

/// Mailers per process, sharing the relay's quota; those of every instance
/// share the outbox.
const MAILERS: usize = 4;

/// Where messages go: the relay, or files on a development machine.
fn mail_transport(config: &Config) -> Result<Transport, TransportError> {
    match &config.smtp_url {
        Some(url) => Transport::smtp(url.as_str()),
        None => Ok(Transport::Files(config.mail_dir.clone())),
    }
}

/// What the mailers share: their metrics, the signal that messages were
/// queued here, the letterhead they compose letters with, and the pepper
/// they make confirmation links with.
pub(crate) struct Mailing {
    pub metrics: MailMetrics,
    pub queued: Arc<tokio::sync::Notify>,
    pub letterhead: Letterhead,
    pub pepper: Pepper,
}

pub(crate) fn start(
    tasks: &Supervisor,
    config: &Config,
    store: &Store,
    guard: Arc<Guard>,
    signals: SignalMetrics,
    local: LocalLimits,
    mail: Mailing,
) -> Result<(), TransportError> {
    let Mailing {
        metrics,
        queued,
        letterhead,
        pepper,
    } = mail;
    let letterhead = Arc::new(letterhead);
    let transport = Arc::new(mail_transport(config)?);
    match &*transport {
        Transport::Smtp(_) | Transport::Relay(_) => info!("sending mail through the SMTP relay"),
        Transport::Files(dir) => {
            let folder = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            if config.public_url.as_ref().is_some_and(|u| !u.is_local()) {
                // Files are a development stand-in for a relay: they hold
                // signers' addresses and stay until deleted, whatever the
                // signers withdraw or erase.
                warn!(folder = %folder.display(),
                      "UNDERSIGNED_SMTP_URL is not set but UNDERSIGNED_PUBLIC_URL is public: \
                       signers' messages are written as .eml files, and stay there until \
                       deleted; set a relay");
            } else {
                info!(folder = %folder.display(),
                      "UNDERSIGNED_SMTP_URL is not set: mail is written as .eml files");
            }
        }
    }
    let rate = undersigned_mail::rate(config.mail_rate);
    for _ in 0..MAILERS {
        let mailer = Arc::new(Mailer::new(
            store.clone(),
            transport.clone(),
            rate.clone(),
            metrics.clone(),
            queued.clone(),
            letterhead.clone(),
            pepper.clone(),
        ));
        tasks.spawn("mailer", Policy::Restart, move || {
            let mailer = mailer.clone();
            async move { mailer.run().await }
        });
    }

    // Each refresh is one grouped read of the last hour's rows.
    let signal_store = store.clone();
    let signals = Arc::new(signals);
    tasks.every(
        "suspicion signals refresh",
        Duration::from_secs(config.signals_refresh_secs.max(1)),
        Policy::Restart,
        move || {
            let (store, signals) = (signal_store.clone(), signals.clone());
            async move {
                match store.all_signals(5).await {
                    Ok(all) => signals.show(&all),
                    Err(e) => warn!(error = %e, "reading suspicion signals failed"),
                }
            }
        },
    );

    let sweep_store = store.clone();
    tasks.every(
        "enrollment code sweep",
        CODE_SWEEP_EVERY,
        Policy::Restart,
        move || {
            let store = sweep_store.clone();
            async move {
                match store.forget_expired_codes().await {
                    Ok(0) => {}
                    Ok(n) => info!(codes = n, "forgot expired enrollment codes"),
                    Err(e) => warn!(error = %e, "forgetting expired enrollment codes failed"),
                }
            }
        },
    );

    let (retention_store, retention_guard) = (store.clone(), guard);
    let addresses_kept = Duration::from_secs(u64::from(config.address_retention_days) * 86_400);
    tasks.every(
        "retention sweep",
        Duration::from_secs(config.retention_interval_secs),
        Policy::Restart,
        move || {
            let (store, guard) = (retention_store.clone(), retention_guard.clone());
            async move {
                if let Err(e) = store.sweep_retention().await {
                    warn!(error = %e, "erasing petitions past their retention failed");
                }
                // The petitions just erased, and those of the last day again.
                match store.recently_erased().await {
                    Ok(erased) => {
                        for petition in erased {
                            if !guard.forget_petition(petition).await {
                                warn!(petition, "Redis kept an erased petition's seen set");
                            }
                        }
                    }
                    Err(e) => warn!(error = %e, "reading the petitions erased lately failed"),
                }
                match store.sweep_addresses(addresses_kept).await {
                    Ok(0) => {}
                    Ok(n) => info!(
                        addresses = n,
                        "erased client addresses past their retention"
                    ),
                    Err(e) => warn!(error = %e, "erasing old client addresses failed"),
                }
            }
        },
    );
    tasks.every(
        "forgetting idle local limits",
        FORGET_IDLE_EVERY,
        Policy::Restart,
        move || {
            local.shield.forget_idle();
            local.devices.forget_idle();
            std::future::ready(())
        },
    );
    Ok(())
}

/// The webhooks' courier, which delivers what the store queued, and the
/// reporter that queues the milestones reached and the closings, once each
/// whichever instance sees them first (crates/store/src/webhooks.rs).
pub(crate) fn start_webhooks(tasks: &Supervisor, store: &Store, webhooks: Arc<Webhooks>) {
    tasks.spawn("webhook courier", Policy::Restart, move || {
        webhooks.clone().run()
    });
    let report_store = store.clone();
    tasks.every(
        "milestones and closings",
        MILESTONES_EVERY,
        Policy::Restart,
        move || {
            let store = report_store.clone();
            async move {
                match store.report_milestones_and_closings().await {
                    Ok((0, 0)) => {}
                    Ok((milestones, closings)) => {
                        info!(
                            milestones,
                            closings, "milestones reached and petitions closed"
                        )
                    }
                    Err(e) => warn!(error = %e, "reporting milestones and closings failed"),
                }
            }
        },
    );
    let sweep_store = store.clone();
    tasks.every(
        "webhook events sweep",
        WEBHOOK_SWEEP_EVERY,
        Policy::Restart,
        move || {
            let store = sweep_store.clone();
            async move {
                if let Err(e) = store.sweep_webhook_events().await {
                    warn!(error = %e, "sweeping webhook events every cursor passed failed");
                }
            }
        },
    );
}
