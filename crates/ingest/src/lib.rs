//! The signature path: identity key, guard, bounded queue, group-commit writers,
//! and the live counter. A signature is acknowledged only once its batch has
//! committed; duplicates are answered exactly like new signatures, and as late:
//! one that Redis already knows rides the next commit without writing, so its
//! answer cannot be told apart by its timing either.

mod blocks;
mod catalog;
mod confirmer;
mod counter;
mod metrics;
mod paper;
mod sealing;
mod writer;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{Mutex, Semaphore, mpsc, oneshot, watch};
use tracing::info;
use undersigned_domain::{
    Channel, Email, IdentityKey, Pepper, Signature, SignerToken, Verification,
};
use undersigned_guard::{Fanout, Guard, Scope, Stage, Subject, Verdict};
use undersigned_mail::{Letterhead, WithdrawalLetter};
use undersigned_store::{
    AuditEntry, Confirmation, Confirmed, Erased, PendingState, Petition, READ_DEADLINE, Resend,
    RowOutcome, SignatureRow, Store, StoreError,
};
use undersigned_supervisor::{Policy, Supervisor};
use uuid::Uuid;

pub use blocks::{BlockList, Screening, glob_matches, parse_range};
pub use catalog::Catalog;
pub use counter::{CountView, Counter};
pub use metrics::IngestMetrics;
pub use paper::{
    ImportReport, LineOutcome, PAPER_COLUMNS, PAPER_MAX_LINES, PaperError, PaperLine,
    read_paper_forms, read_paper_forms_reporting,
};

/// Sizes of the queue and the writers, and how signatures are confirmed.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Writers, each with its own Postgres connection: one fills while another commits.
    pub writers: usize,
    /// The most rows one transaction takes.
    pub batch_max: usize,
    /// How long a small batch waits for more rows before it is written: a
    /// little latency at moderate load for far fewer commits; zero: never.
    pub batch_linger: Duration,
    /// Signatures waiting for a writer; past this, signers get 503 and retry.
    pub queue_capacity: usize,
    pub confirming: Confirming,
}

#[derive(Debug, Error)]
pub enum SignError {
    #[error("rate limited per {}", scope.as_str())]
    RateLimited { retry_after: Duration, scope: Scope },
    #[error("the queue is full")]
    QueueFull,
    #[error("shutting down")]
    ShuttingDown,
    /// The client's `id` already names another signature.
    #[error("id already used for another signature")]
    IdReused,
    /// A block rule refuses it.
    #[error("refused by block rule {0}")]
    Blocked(i64),
    /// Its address is valid but no mail relay would take it, so it could
    /// never be confirmed.
    #[error("the address cannot receive mail")]
    Undeliverable,
    #[error("storage failed: {0}")]
    Storage(String),
}

/// How web signatures on a petition that confirms by email become pending:
/// the message that asks for confirmation, and how long it may wait.
#[derive(Debug, Clone)]
pub struct Confirming {
    pub letterhead: Letterhead,
    pub ttl: Duration,
    /// Notified when a batch has queued messages: this process's mailers
    /// send them at once instead of at their next look.
    pub mail_queued: Arc<tokio::sync::Notify>,
}

/// A signer's answer: the same shape whether the signature is new or a duplicate.
#[derive(Debug, Clone, Copy)]
pub struct Receipt {
    pub id: Uuid,
}

/// Where a batch of signatures collected offline comes from.
#[derive(Debug, Clone, Copy)]
pub struct Provenance {
    /// `Event` for a tablet's, `Paper` for typed-in forms.
    pub channel: Channel,
    pub event_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
}

/// One signature collected offline, with the time it was given.
#[derive(Debug, Clone)]
pub struct Collected {
    pub signature: Signature,
    /// `None`: now.
    pub signed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What became of one signature of a batch: the same whenever the batch is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filed {
    /// Stored and counted, now or by an earlier sending of the same signature.
    Accepted(Uuid),
    /// The signer had signed already, as another signature.
    Duplicate(Uuid),
    /// The client's id already names another signature.
    IdReused,
    /// A block rule refuses it.
    Blocked(i64),
}

pub(crate) struct Pending {
    /// `None`: a signer already known to have signed, who rides the next
    /// commit and writes nothing.
    row: Option<SignatureRow>,
    /// A signer already known, whose signature may be pending: sent a new
    /// confirmation link once the commit it rides is done.
    resend: Option<Resend>,
    reply: oneshot::Sender<Result<RowOutcome, SignError>>,
}

pub struct Ingest {
    pepper: Pepper,
    blocks: Arc<BlockList>,
    guard: Arc<Guard>,
    queue: mpsc::Sender<Pending>,
    stop: watch::Sender<bool>,
    counter: Arc<Counter>,
    announcer: Option<Arc<counter::Announcer>>,
    store: Store,
    metrics: IngestMetrics,
    capacity: usize,
    /// Closed (`recv` gives `None`) once every writer has ended: each writer
    /// task, and each future it runs, holds a sender.
    writers_ended: Mutex<mpsc::Receiver<()>>,
    tasks: Supervisor,
    confirming: Confirming,
    /// Confirmation links waiting for the confirmer's next group.
    links: mpsc::Sender<confirmer::Link>,
    /// Withdrawal requests being looked up, at most [`WITHDRAWALS_AT_ONCE`].
    withdrawals: Arc<Semaphore>,
    /// Seals the signatures of sealed petitions.
    sealer: Arc<sealing::Sealer>,
}

/// Withdrawal requests looked up at once, after their answers: more are
/// answered 503 (whatever their address), as a full queue is.
const WITHDRAWALS_AT_ONCE: usize = 64;

/// How long a signer (or a tablet's batch) waits for the writers' answer.
/// A writer gives up on a transaction Postgres does not answer within its own
/// deadline (`undersigned_store`'s `WRITE_DEADLINE`, 3 s), but a signer queued
/// behind that batch would wait for the next attempt too: past this, 503 and
/// a retry, which is answered as a duplicate if the write went through after
/// all. Nothing is acknowledged that is not stored. With the catalog's read
/// deadline (1 s) before it, no web signer waits more than 4 s on Postgres
/// (a tablet's batch also reads its event and its stored ids first, not yet
/// under a deadline).
const ANSWER_DEADLINE: Duration = Duration::from_secs(3);

/// The writers' answer for one row, or a storage error once `deadline` passes.
async fn answered(
    answer: oneshot::Receiver<Result<RowOutcome, SignError>>,
    deadline: tokio::time::Instant,
) -> Result<RowOutcome, SignError> {
    match tokio::time::timeout_at(deadline, answer).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(SignError::ShuttingDown),
        Err(_) => Err(SignError::Storage("no answer from postgres in time".into())),
    }
}

/// Too many withdrawal requests are being looked up; try again later.
#[derive(Debug, Error)]
#[error("too many withdrawal requests at once")]
pub struct WithdrawalsBusy;

impl Ingest {
    /// Loads the counts, then starts the writers (stopped by
    /// [`Ingest::drain`]) and, under `tasks`, the counter's listener, the rule
    /// reload and the invalidation jobs.
    pub async fn start(
        config: IngestConfig,
        store: Store,
        guard: Arc<Guard>,
        fanout: Option<Fanout>,
        pepper: Pepper,
        metrics: IngestMetrics,
        tasks: &Supervisor,
    ) -> Result<Arc<Self>, StoreError> {
        let IngestConfig {
            writers,
            batch_max,
            batch_linger,
            queue_capacity,
            confirming,
        } = config;
        let blocks = BlockList::start(store.clone(), tasks).await?;
        let counter = Arc::new(Counter::default());
        counter.merge_all(&store.count_cells().await?, &store.event_cells().await?);
        counter::spawn_refresh(counter.clone(), store.clone(), fanout.clone(), tasks);
        let announcer = fanout.map(|fanout| counter::Announcer::start(fanout, tasks));

        let (links, waiting) = mpsc::channel(confirmer::WAITING_MAX);
        let confirmer = Arc::new(confirmer::Confirmer {
            store: store.clone(),
            links: Arc::new(Mutex::new(waiting)),
            counter: counter.clone(),
            announcer: announcer.clone(),
        });
        tasks.spawn("confirmer", Policy::Restart, move || {
            let confirmer = confirmer.clone();
            async move { confirmer.run().await }
        });

        let (queue, queued) = mpsc::channel(queue_capacity.max(1));
        metrics
            .queue_capacity
            .set(i64::try_from(queue_capacity.max(1)).unwrap_or(i64::MAX));
        let queued = Arc::new(Mutex::new(queued));
        let (stop, stopped) = watch::channel(false);
        // Shards spread count rows over writers of all instances; two writers
        // that happen to share one only wait on each other, counts stay right.
        let first_shard: i16 = rand_shard();
        let small_commits: Arc<std::sync::Mutex<writer::Durations>> = Arc::default();
        let (alive, writers_ended) = mpsc::channel::<()>(1);
        let mail_queued = confirming.mail_queued.clone();
        for i in 0..writers.max(1) {
            let shard = (first_shard + i16::try_from(i).unwrap_or(0)) % writer::SHARDS;
            let (store, queued, stopped, guard, counter, announcer, metrics, small_commits) = (
                store.clone(),
                queued.clone(),
                stopped.clone(),
                guard.clone(),
                counter.clone(),
                announcer.clone(),
                metrics.clone(),
                small_commits.clone(),
            );
            let (alive, mail_queued) = (alive.clone(), mail_queued.clone());
            // A writer that dies (a panic: its batch's signers hear 503) is
            // logged and replaced by a fresh one on a fresh connection; the
            // others go on meanwhile. It ends for good once stopped and the
            // queue is empty.
            tasks.spawn("signature writer", Policy::Restart, move || {
                let writer = writer::Writer {
                    store: store.signature_writer(shard),
                    queued: queued.clone(),
                    stop: stopped.clone(),
                    batch_max: batch_max.max(1),
                    linger: batch_linger,
                    guard: guard.clone(),
                    counter: counter.clone(),
                    announcer: announcer.clone(),
                    metrics: metrics.clone(),
                    small_commits: Arc::clone(&small_commits),
                    mail_queued: mail_queued.clone(),
                };
                let alive = alive.clone();
                async move {
                    writer.run().await;
                    drop(alive);
                }
            });
        }
        // Pending signatures whose time ran out are erased soon after, a
        // chunk at a time (any instance may; they skip each other's rows).
        let expiry = Arc::new(Aftermath {
            store: store.clone(),
            counter: counter.clone(),
            announcer: announcer.clone(),
            guard: guard.clone(),
            metrics: metrics.clone(),
        });
        tasks.every(
            "pending signature expiry",
            (confirming.ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(60)),
            Policy::Restart,
            move || {
                let expiry = expiry.clone();
                async move { expiry.sweep().await }
            },
        );
        let sealer = Arc::new(sealing::Sealer::new(store.clone()));
        let retiring = sealer.clone();
        tasks.every(
            "dropping the keys of ended seal epochs",
            Duration::from_secs(60),
            Policy::Restart,
            move || {
                retiring.retire();
                std::future::ready(())
            },
        );
        let forget = guard.clone();
        tasks.every(
            "forgetting idle guard limits",
            Duration::from_secs(60),
            Policy::Restart,
            move || {
                forget.forget_idle();
                std::future::ready(())
            },
        );
        Ok(Arc::new(Self {
            pepper,
            blocks,
            guard,
            queue,
            stop,
            counter,
            announcer,
            store: store.clone(),
            metrics,
            capacity: queue_capacity.max(1),
            writers_ended: Mutex::new(writers_ended),
            tasks: tasks.clone(),
            confirming,
            withdrawals: Arc::new(Semaphore::new(WITHDRAWALS_AT_ONCE)),
            links,
            sealer,
        }))
    }

    /// Takes one signature through the guard and the queue, and answers once
    /// it is durable (a duplicate: once a commit is, as late as a new signer).
    pub async fn sign(
        &self,
        petition: &Petition,
        client: IpAddr,
        signature: Signature,
        channel: Channel,
    ) -> Result<Receipt, SignError> {
        let identity = self.pepper.signer(petition.id, &signature);
        let receipt = Receipt {
            id: signature.client_id.unwrap_or_else(Uuid::now_v7),
        };
        let screening = self.screen(petition, Some(client), &signature);
        let shadowed_by = match screening {
            Screening::Rejected(rule) => {
                self.metrics.rejected.inc();
                return Err(SignError::Blocked(rule));
            }
            Screening::Shadowed(rule) => Some(rule),
            Screening::Pass | Screening::Allowed => None,
        };
        let subject = Subject {
            petition_id: petition.id,
            client,
            identity: &identity,
            email_domain: signature.email.as_ref().map_or("", |e| e.domain()),
            exempt: screening == Screening::Allowed,
        };
        let confirmation =
            if channel == Channel::Web && petition.web.verification == Verification::Email {
                self.confirmation(&signature)?
            } else {
                None
            };
        let mut resend = None;
        // Counted from here to the answer, so that a linger knows whether
        // anyone is left to join (the guard's `joiners.rs`).
        let joiners = self.guard.joiners();
        let _gathering = joiners.waiting(Stage::Gathering);
        let mut row = match self.guard.check(subject).await {
            Verdict::Pass => Some(SignatureRow {
                shadowed_by,
                confirmation,
                ..row(
                    petition.id,
                    receipt.id,
                    identity,
                    Some(client),
                    signature,
                    channel,
                )
            }),
            // Answered without a round trip to Postgres, a duplicate took 3.3 ms
            // where a new signer took 8.1 (benches/BENCHMARKS.md): whether an
            // address had signed could be told by timing. It waits for the same
            // durable step instead, in the same queue, and shares its fate.
            Verdict::Seen => {
                self.metrics.duplicate.inc();
                resend = confirmation.map(|_| Resend {
                    petition_id: petition.id,
                    identity_key: identity.0,
                    email: (!petition.sealing.is_empty())
                        .then(|| signature.email.as_ref().map(|e| e.as_given().to_owned()))
                        .flatten(),
                });
                None
            }
            Verdict::Limited { retry_after, scope } => {
                self.metrics.rate_limited.inc();
                self.metrics.rejected.inc();
                return Err(SignError::RateLimited { retry_after, scope });
            }
        };
        if let Some(row) = &mut row
            && let Some(epoch) = self.sealing(petition).await?
        {
            sealing::seal(&epoch, row).map_err(|e| SignError::Storage(e.to_string()))?;
        }
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send(Pending { row, resend, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => SignError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => SignError::ShuttingDown,
            })
            .inspect_err(|_| self.metrics.rejected.inc())?;
        // Counted once in the queue, where a writer's next look finds it.
        let _queued = joiners.waiting(Stage::Queued);
        self.metrics.queue_depth.set(self.depth());
        let deadline = tokio::time::Instant::now() + ANSWER_DEADLINE;
        match answered(answer, deadline).await? {
            RowOutcome::Inserted | RowOutcome::Duplicate | RowOutcome::Retried => Ok(receipt),
            RowOutcome::IdReused => Err(SignError::IdReused),
        }
    }

    /// Takes a batch of signatures collected offline (a tablet's upload, a
    /// paper import) to Postgres and answers once every stored one is durable,
    /// with one result per signature, in order. The caller has authenticated
    /// and limited the sender: no captcha and no per-address limit applies (an
    /// event's tablets share one address). Nothing is short-cut by Redis's seen
    /// set either, so that a batch sent again, even while its first sending is
    /// still being written, gets the very same results.
    pub async fn sign_batch(
        &self,
        petition: &Petition,
        client: Option<IpAddr>,
        items: Vec<Collected>,
        from: Provenance,
    ) -> Result<Vec<Filed>, SignError> {
        let screenings: Vec<Screening> = items
            .iter()
            .map(|item| self.screen(petition, client, &item.signature))
            .collect();
        // A block rule made after a signature was stored does not change what
        // a resend of it hears: stored ones go on to the writer, which says so.
        let refused: Vec<Uuid> = items
            .iter()
            .zip(&screenings)
            .filter(|(_, s)| matches!(s, Screening::Rejected(_)))
            .filter_map(|(item, _)| item.signature.client_id)
            .collect();
        let stored = if refused.is_empty() {
            Default::default()
        } else {
            undersigned_store::within(READ_DEADLINE, self.store.stored_ids(&refused))
                .await
                .map_err(|e| SignError::Storage(e.to_string()))?
        };
        let epoch = if items.is_empty() {
            None
        } else {
            self.sealing(petition).await?
        };
        let mut filed: Vec<Option<Filed>> = vec![None; items.len()];
        let mut rows = Vec::with_capacity(items.len());
        for (i, (item, screening)) in items.into_iter().zip(screenings).enumerate() {
            let signature = item.signature;
            let shadowed_by = match screening {
                Screening::Rejected(_)
                    if signature.client_id.is_some_and(|id| stored.contains(&id)) =>
                {
                    None
                }
                Screening::Rejected(rule) => {
                    self.metrics.rejected.inc();
                    filed[i] = Some(Filed::Blocked(rule));
                    continue;
                }
                Screening::Shadowed(rule) => Some(rule),
                Screening::Pass | Screening::Allowed => None,
            };
            let identity = self.pepper.signer(petition.id, &signature);
            let id = signature.client_id.unwrap_or_else(Uuid::now_v7);
            let mut row = SignatureRow {
                shadowed_by,
                signed_at: item.signed_at,
                event_id: from.event_id,
                device_id: from.device_id,
                ..row(petition.id, id, identity, client, signature, from.channel)
            };
            if let Some(epoch) = &epoch {
                sealing::seal(epoch, &mut row).map_err(|e| SignError::Storage(e.to_string()))?;
            }
            rows.push((i, row));
        }
        // A whole share of the queue or none of it, so that a full queue turns
        // the batch away before any of it is written (a resend is safe anyway).
        while !rows.is_empty() {
            let chunk: Vec<_> = rows.drain(..rows.len().min(self.capacity)).collect();
            let permits = self.queue.try_reserve_many(chunk.len()).map_err(|e| {
                self.metrics.rejected.inc_by(chunk.len() as u64);
                match e {
                    mpsc::error::TrySendError::Full(()) => SignError::QueueFull,
                    mpsc::error::TrySendError::Closed(()) => SignError::ShuttingDown,
                }
            })?;
            let answers: Vec<_> = permits
                .zip(chunk)
                .map(|(permit, (i, row))| {
                    let (reply, answer) = oneshot::channel();
                    let id = row.id;
                    permit.send(Pending {
                        row: Some(row),
                        resend: None,
                        reply,
                    });
                    (i, id, answer)
                })
                .collect();
            self.metrics.queue_depth.set(self.depth());
            let deadline = tokio::time::Instant::now() + ANSWER_DEADLINE;
            for (i, id, answer) in answers {
                filed[i] = Some(match answered(answer, deadline).await? {
                    RowOutcome::Inserted | RowOutcome::Retried => Filed::Accepted(id),
                    RowOutcome::Duplicate => Filed::Duplicate(id),
                    RowOutcome::IdReused => Filed::IdReused,
                });
            }
        }
        filed
            .into_iter()
            .map(|f| f.ok_or_else(|| SignError::Storage("a signature got no outcome".into())))
            .collect()
    }

    /// The epoch that seals a sealed petition's rows (crates/seal); `None`
    /// for a petition that keeps them in clear.
    async fn sealing(
        &self,
        petition: &Petition,
    ) -> Result<Option<Arc<undersigned_seal::Epoch>>, SignError> {
        if petition.sealing.is_empty() {
            return Ok(None);
        }
        self.sealer
            .epoch(petition)
            .await
            .map(Some)
            .map_err(|e| SignError::Storage(e.to_string()))
    }

    /// What makes a web signature pending: its time to be confirmed. Its
    /// message, and the token its link carries, are the mailer's to make
    /// (crates/mail); an address no relay would take is refused now.
    fn confirmation(&self, signature: &Signature) -> Result<Option<Confirmation>, SignError> {
        let Some(email) = &signature.email else {
            return Ok(None);
        };
        if !Letterhead::deliverable(email.as_given()) {
            return Err(SignError::Undeliverable);
        }
        let ttl = chrono::Duration::from_std(self.confirming.ttl).unwrap_or(chrono::Duration::MAX);
        Ok(Some(Confirmation {
            pending_until: chrono::Utc::now() + ttl,
        }))
    }

    /// Follows a confirmation link: counts the pending signature its token
    /// (as written in the link) names, once, in the confirmer's next group,
    /// and shows the new count at once. `None` for a token nobody was sent, or text that is no token.
    pub async fn confirm(&self, token: &str) -> Result<Option<Confirmed>, StoreError> {
        let confirmed = match SignerToken::parse(token) {
            Some(token) => {
                let (reply, outcome) = oneshot::channel();
                let link = confirmer::Link {
                    hash: token.hash(),
                    reply,
                };
                self.links
                    .try_send(link)
                    .map_err(|_| StoreError::Unavailable("too many confirmations at once"))?;
                outcome
                    .await
                    .map_err(|_| StoreError::Unavailable("the confirmer stopped"))??
            }
            None => None,
        };
        let outcome = match &confirmed {
            None => "unknown",
            Some(c) if c.now => "confirmed",
            Some(c) => match c.signature.state {
                PendingState::Expired => "expired",
                PendingState::Confirmed | PendingState::Pending => "again",
            },
        };
        self.metrics
            .confirmations
            .with_label_values(&[outcome])
            .inc();
        // The confirmer showed the new count before it answered.
        Ok(confirmed)
    }

    /// Takes a request for a withdrawal link to the signer of `email` on
    /// `petition`, and looks it up after the caller has answered: the answer
    /// neither says nor, by how long it took, shows whether that address
    /// signed. A link goes out if it did (and has not had its messages for
    /// the day).
    pub fn request_withdrawal(
        self: &Arc<Self>,
        petition: Arc<Petition>,
        email: Email,
    ) -> Result<(), WithdrawalsBusy> {
        let permit = self
            .withdrawals
            .clone()
            .try_acquire_owned()
            .map_err(|_| WithdrawalsBusy)?;
        self.metrics.withdrawal_requests.inc();
        let ingest = self.clone();
        tokio::spawn(async move {
            if let Err(e) = ingest.send_withdrawal_link(&petition, &email).await {
                tracing::warn!(petition = petition.id, error = %e,
                    "a withdrawal request was not looked up");
            }
            drop(permit);
        });
        Ok(())
    }

    async fn send_withdrawal_link(
        &self,
        petition: &Petition,
        email: &Email,
    ) -> Result<(), StoreError> {
        let identity = self.pepper.identity(petition.id, email);
        let token = SignerToken::from_random(rand::random());
        let ttl = chrono::Duration::from_std(self.confirming.ttl).unwrap_or(chrono::Duration::MAX);
        let letterhead = &self.confirming.letterhead;
        let sent = self
            .store
            .request_withdrawal(
                petition.id,
                &identity.0,
                &token.hash(),
                chrono::Utc::now() + ttl,
                email.as_given(),
                |found| {
                    let (locale, title) = petition.title_for(found.locale.as_deref());
                    letterhead
                        .withdrawal(&WithdrawalLetter {
                            to: &found.email,
                            locale,
                            title,
                            receipt: found.id,
                            token: &token.encoded(),
                        })
                        .ok()
                },
            )
            .await?;
        if sent {
            self.metrics.mail_queued("withdrawal", 1);
            self.confirming.mail_queued.notify_one();
        }
        Ok(())
    }

    /// Follows a withdrawal link: erases the signature it names and
    /// uncounts it. `None` when the token names none (unknown, spent,
    /// expired, or text that is no token).
    pub async fn withdraw(&self, token: &str) -> Result<Option<Erased>, StoreError> {
        let Some(token) = SignerToken::parse(token) else {
            return Ok(None);
        };
        let erased = self.store.withdraw(&token.hash()).await?;
        if let Some(e) = &erased {
            self.aftermath().show(e, "withdrawal").await;
        }
        Ok(erased)
    }

    /// Erases every signature of `email` in every petition (a data
    /// subject's request), recording `audit` with the number erased.
    pub async fn erase(
        &self,
        email: &Email,
        audit: impl FnOnce(u64) -> AuditEntry,
    ) -> Result<u64, StoreError> {
        let keys: Vec<(i64, [u8; 32])> = self
            .store
            .petitions()
            .await?
            .iter()
            .map(|p| (p.id, self.pepper.identity(p.id, email).0))
            .collect();
        let erased = self.store.erase_identities(&keys, audit).await?;
        self.aftermath().show(&erased, "erasure").await;
        Ok(erased.signatures)
    }

    fn aftermath(&self) -> Aftermath {
        Aftermath {
            store: self.store.clone(),
            counter: self.counter.clone(),
            announcer: self.announcer.clone(),
            guard: self.guard.clone(),
            metrics: self.metrics.clone(),
        }
    }

    fn screen(
        &self,
        petition: &Petition,
        client: Option<IpAddr>,
        signature: &Signature,
    ) -> Screening {
        self.blocks.screen(
            petition.id,
            client,
            signature.email.as_ref().map(|e| e.canonical()),
        )
    }

    /// The live counter, served from memory.
    pub fn counter(&self) -> &Counter {
        &self.counter
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Runs an invalidation (or its undoing) to the end in the background,
    /// chunk by chunk, each chunk's count adjustment shown at once.
    pub fn run_invalidation(self: &Arc<Self>, id: i64) {
        let this = self.clone();
        self.tasks
            .spawn("invalidation job", Policy::Restart, move || {
                this.clone().invalidate(id)
            });
    }

    async fn invalidate(self: Arc<Self>, id: i64) {
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.store.invalidation_step(id).await {
                Ok(chunk) if chunk.signatures == 0 => {
                    info!(invalidation = id, "invalidation job finished");
                    return;
                }
                Ok(chunk) => {
                    backoff = Duration::from_secs(1);
                    self.counter.merge_all(&chunk.cells, &chunk.event_cells);
                    if let Some(announcer) = &self.announcer {
                        announcer.announce(&chunk.cells, &chunk.event_cells);
                    }
                }
                Err(e) => {
                    tracing::warn!(invalidation = id, error = %e, retry_in = ?backoff,
                                   "invalidation step failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
    }

    /// Resumes the invalidations a stop or a crash interrupted.
    pub async fn resume_invalidations(self: &Arc<Self>) -> Result<(), StoreError> {
        for job in self.store.unfinished_invalidations().await? {
            self.run_invalidation(job.id);
        }
        Ok(())
    }

    /// The block and allow rules in force.
    pub fn blocks(&self) -> &BlockList {
        &self.blocks
    }

    /// Signatures waiting for a writer now; also set as the queue-depth
    /// gauge, which a signature queued sets too.
    pub fn observe_depth(&self) {
        self.metrics.queue_depth.set(self.depth());
    }

    fn depth(&self) -> i64 {
        i64::try_from(self.capacity - self.queue.capacity()).unwrap_or(i64::MAX)
    }

    /// Refuses new signatures, writes every queued one to Postgres, then returns.
    pub async fn drain(&self) {
        self.stop.send_replace(true);
        let queued = self.depth();
        // Nothing is ever sent: `recv` returns once every sender is dropped.
        self.writers_ended.lock().await.recv().await;
        info!(queued, "signature queue drained");
    }
}

/// What erasing signatures leaves to do beyond Postgres: the live counter,
/// the other instances, Redis's seen sets (so that the signer may sign
/// again), the metrics; and the sweep that erases expired pending ones.
struct Aftermath {
    store: Store,
    counter: Arc<Counter>,
    announcer: Option<Arc<counter::Announcer>>,
    guard: Arc<Guard>,
    metrics: IngestMetrics,
}

impl Aftermath {
    /// Erases pending signatures whose time ran out, until none is left.
    async fn sweep(&self) {
        loop {
            match self.store.expire_pending(1000).await {
                Ok(e) if e.signatures == 0 => return,
                Ok(e) => {
                    info!(
                        signatures = e.signatures,
                        "erased pending signatures never confirmed"
                    );
                    self.show(&e, "expiry").await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "erasing expired pending signatures failed");
                    return;
                }
            }
        }
    }

    async fn show(&self, erased: &Erased, reason: &str) {
        if erased.signatures == 0 {
            return;
        }
        self.metrics
            .erased
            .with_label_values(&[reason])
            .inc_by(erased.signatures);
        self.counter.merge_all(&erased.cells, &erased.event_cells);
        if let Some(announcer) = &self.announcer {
            announcer.announce(&erased.cells, &erased.event_cells);
        }
        let identities: Vec<(i64, IdentityKey)> = erased
            .identities
            .iter()
            .map(|(p, k)| (*p, IdentityKey(*k)))
            .collect();
        if !self.guard.forget_seen(&identities).await {
            tracing::warn!(
                signers = identities.len(),
                "Redis did not take the erased signers out of its seen sets: they can sign \
                 again once it restarts or their petition's set is rebuilt"
            );
        }
    }
}

/// A signature as a row, neither shadowed nor collected offline.
fn row(
    petition_id: i64,
    id: Uuid,
    identity: undersigned_domain::IdentityKey,
    client: Option<IpAddr>,
    signature: Signature,
    channel: Channel,
) -> SignatureRow {
    SignatureRow {
        id,
        client_supplied: signature.client_id.is_some(),
        petition_id,
        identity_key: identity.0,
        full_name: signature.full_name.into_string(),
        email: signature.email.map(|e| e.as_given().to_owned()),
        country: signature.country,
        postal_code: signature.postal_code,
        city: signature.city.map(|c| c.into_string()),
        kind: signature.kind,
        organization: signature.organization.map(|o| o.into_string()),
        consent_updates: signature.consent_updates,
        locale: signature.locale.map(|l| l.as_str().to_owned()),
        channel,
        client_address: client,
        shadowed_by: None,
        signed_at: None,
        event_id: None,
        device_id: None,
        confirmation: None,
        sealed: None,
        email_domain: None,
    }
}

fn rand_shard() -> i16 {
    // The low bits of a fresh UUIDv4 are as good a random source as any here.
    i16::try_from(Uuid::new_v4().as_u128() % u128::from(writer::SHARDS.unsigned_abs())).unwrap_or(0)
}
