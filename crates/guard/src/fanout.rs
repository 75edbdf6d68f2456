//! Announcing changes to every instance over Redis pub/sub.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tracing::{info, warn};
use undersigned_supervisor::{Policy, Supervisor};

use crate::RedisLink;

/// What a subscriber receives.
#[derive(Debug)]
pub enum Announcement {
    /// (Re)subscribed: anything published while not subscribed was missed.
    Subscribed,
    Payload(Vec<u8>),
}

/// Publishes and receives opaque payloads on one channel.
#[derive(Clone)]
pub struct Fanout {
    link: RedisLink,
    channel: String,
    subscribed: Arc<AtomicBool>,
}

impl Fanout {
    pub fn new(link: RedisLink, prefix: &str, topic: &str) -> Self {
        Self {
            link,
            channel: format!("{prefix}:{topic}"),
            subscribed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Publishes one payload; `false` when Redis did not take it, so the caller
    /// can keep it and try again.
    pub async fn publish(&self, payload: &str) -> bool {
        let channel = &self.channel;
        let published: Option<i64> = self
            .link
            .call(|mut conn| async move {
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(payload)
                    .query_async(&mut conn)
                    .await
            })
            .await;
        published.is_some()
    }

    /// Whether announcements are arriving now; when not, receivers should poll.
    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    /// Every payload published by any instance (this one included), for as long
    /// as the receiver is kept; reconnects by itself after Redis comes back, and
    /// says so, since payloads published meanwhile were missed. The listener
    /// runs under `tasks`.
    pub fn subscribe(&self, tasks: &Supervisor) -> mpsc::Receiver<Announcement> {
        let (tx, rx) = mpsc::channel(1024);
        let this = self.clone();
        tasks.spawn("count announcements listener", Policy::Restart, move || {
            this.clone().listen_while_received(tx.clone())
        });
        rx
    }

    async fn listen_while_received(self, tx: mpsc::Sender<Announcement>) {
        let mut attempt = 0;
        while !tx.is_closed() {
            if let Err(e) = self.listen(self.link.subscriber(attempt), &tx).await {
                warn!(error = %e, "count announcements interrupted");
            }
            // A cluster's next node, in case this one is gone.
            attempt = attempt.wrapping_add(1);
            self.subscribed.store(false, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn listen(
        &self,
        node: &redis::Client,
        tx: &mpsc::Sender<Announcement>,
    ) -> redis::RedisResult<()> {
        let mut pubsub = tokio::time::timeout(Duration::from_secs(1), node.get_async_pubsub())
            .await
            .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "connect timed out")))??;
        pubsub.subscribe(&self.channel).await?;
        self.subscribed.store(true, Ordering::Relaxed);
        info!(channel = %self.channel, "listening for count announcements");
        if tx.send(Announcement::Subscribed).await.is_err() {
            return Ok(());
        }
        let mut messages = pubsub.on_message();
        while let Some(msg) = messages.next().await {
            if tx
                .send(Announcement::Payload(msg.get_payload_bytes().to_vec()))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
        Ok(())
    }
}
