//! The signature path's metrics; label handles are resolved once, here.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct IngestMetrics {
    pub accepted: IntCounter,
    pub duplicate: IntCounter,
    pub rejected: IntCounter,
    pub rate_limited: IntCounter,
    pub batch_rows: Histogram,
    pub batch_commit_seconds: Histogram,
    /// Batches written again, by why: duplicate (a race or a forgetful
    /// Redis sent it the careful way), deadlock, serialization.
    pub batch_retries: IntCounterVec,
    pub queue_depth: IntGauge,
    pub queue_capacity: IntGauge,
    /// Confirmation links followed, by what they found.
    pub confirmations: IntCounterVec,
    /// Signatures whose data was erased, by why: withdrawal, erasure, expiry.
    pub erased: IntCounterVec,
    /// Withdrawal links asked for (whether or not the address signed).
    pub withdrawal_requests: IntCounter,
    /// Messages queued in the outbox, by kind.
    queued: IntCounterVec,
}

impl IngestMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let signatures = IntCounterVec::new(
            Opts::new("undersigned_signatures_total", "Signatures by outcome"),
            &["outcome"],
        )?;
        let rate_limited = IntCounter::new(
            "undersigned_rate_limited_total",
            "Signatures refused by a rate limit",
        )?;
        let batch_rows = Histogram::with_opts(
            HistogramOpts::new("undersigned_batch_rows", "Rows per committed batch").buckets(vec![
                1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
            ]),
        )?;
        let batch_commit_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "undersigned_batch_commit_seconds",
                "Time to write and commit one batch",
            )
            .buckets(prometheus::exponential_buckets(0.0005, 2.0, 14)?),
        )?;
        let batch_retries = IntCounterVec::new(
            Opts::new(
                "undersigned_batch_retries_total",
                "Batches written again: duplicate (the careful way), deadlock, serialization",
            ),
            &["reason"],
        )?;
        for reason in ["duplicate", "deadlock", "serialization"] {
            batch_retries.with_label_values(&[reason]);
        }
        registry.register(Box::new(batch_retries.clone()))?;
        let queue_depth =
            IntGauge::new("undersigned_queue_depth", "Signatures waiting for a writer")?;
        let queue_capacity = IntGauge::new(
            "undersigned_queue_capacity",
            "Signatures that may wait for a writer before new ones get 503 (UNDERSIGNED_QUEUE_CAPACITY)",
        )?;
        registry.register(Box::new(signatures.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(batch_rows.clone()))?;
        registry.register(Box::new(batch_commit_seconds.clone()))?;
        let confirmations = IntCounterVec::new(
            Opts::new(
                "undersigned_confirmations_total",
                "Confirmation links followed: confirmed, again (confirmed before), expired, unknown",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(queue_capacity.clone()))?;
        registry.register(Box::new(confirmations.clone()))?;
        let erased = IntCounterVec::new(
            Opts::new(
                "undersigned_erased_signatures_total",
                "Signatures whose signer's data was erased: withdrawal, erasure (on request), expiry (never confirmed)",
            ),
            &["reason"],
        )?;
        let withdrawal_requests = IntCounter::new(
            "undersigned_withdrawal_requests_total",
            "Withdrawal links asked for, whether or not the address had signed",
        )?;
        registry.register(Box::new(erased.clone()))?;
        registry.register(Box::new(withdrawal_requests.clone()))?;
        let queued = IntCounterVec::new(
            Opts::new(
                "undersigned_mail_queued_total",
                "Messages queued in the outbox with the change that makes them due, by kind",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(queued.clone()))?;
        Ok(Self {
            accepted: signatures.with_label_values(&["accepted"]),
            duplicate: signatures.with_label_values(&["duplicate"]),
            rejected: signatures.with_label_values(&["rejected"]),
            rate_limited,
            batch_rows,
            batch_commit_seconds,
            batch_retries,
            queue_depth,
            queue_capacity,
            confirmations,
            erased,
            withdrawal_requests,
            queued,
        })
    }

    pub fn mail_queued(&self, kind: &str, n: u64) {
        self.queued.with_label_values(&[kind]).inc_by(n);
    }
}
