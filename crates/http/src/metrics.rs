//! Request metrics, with every label handle resolved at start-up.

use http::StatusCode;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};
use undersigned_store::PetitionSignals;

use crate::connections::Refusal;
use crate::routes::{ROUTES, UNKNOWN_LABEL};
use crate::streams::StreamRefusal;

/// Every status the service answers with.
const STATUSES: [u16; 19] = [
    200, 201, 202, 204, 303, 304, 400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 429, 500, 503,
];

/// The `route` labels, in the order of [`ROUTES`], then the one of requests
/// no route answers.
fn labels() -> impl Iterator<Item = &'static str> {
    ROUTES
        .iter()
        .map(|r| r.label)
        .chain(std::iter::once(UNKNOWN_LABEL))
}

pub struct HttpMetrics {
    captcha: IntCounterVec,
    /// By route (an index in [`ROUTES`], the unknown route last), then status.
    requests: Vec<[IntCounter; STATUSES.len()]>,
    other_status: Vec<IntCounter>,
    durations: Vec<Histogram>,
    /// Connections closed unanswered: over their address's share, or asking
    /// for the reserve while holding one already.
    refused_connections: [IntCounter; 2],
    /// Each petition's count, set from the live counter when scraped.
    petition_signatures: IntGaugeVec,
    /// Redis as the scrape found it: one of up, down, disabled is 1.
    redis: IntGaugeVec,
    /// Live count streams open, set when scraped, and those refused.
    streams_open: IntGauge,
    refused_streams: [IntCounter; 2],
}

impl HttpMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "undersigned_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["route", "status"],
        )?;
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "undersigned_http_request_duration_seconds",
                "Time from request to response, by route",
            )
            .buckets(prometheus::exponential_buckets(0.0001, 2.5, 14)?),
            &["route"],
        )?;
        let captcha = IntCounterVec::new(
            Opts::new(
                "undersigned_captcha_checks_total",
                "hCaptcha checks by outcome: passed, missing, failed, unreachable, \
                 and accepted_unverified (unreachable, petition fails open)",
            ),
            &["outcome"],
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                "undersigned_http_connections_refused_total",
                "Connections closed at once, by reason: their client address held its \
                 share (address), or only the reserve was left and it held one (reserve)",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(captcha.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(durations.clone()))?;
        let petition_signatures = IntGaugeVec::new(
            Opts::new(
                "undersigned_petition_signatures",
                "Each petition's count as its live counter shows it (people and organizations)",
            ),
            &["petition"],
        )?;
        let redis = IntGaugeVec::new(
            Opts::new(
                "undersigned_redis_state",
                "Redis as a PING at the scrape found it: the state's series is 1 (up, down, \
                 or disabled when no UNDERSIGNED_REDIS_URL is set), the others 0",
            ),
            &["state"],
        )?;
        let streams_open = IntGauge::new(
            "undersigned_count_streams_open",
            "Live count streams (Server-Sent Events) open on this instance",
        )?;
        let refused_streams = IntCounterVec::new(
            Opts::new(
                "undersigned_count_streams_refused_total",
                "Live count streams refused, by reason: the instance kept as many as \
                 UNDERSIGNED_MAX_STREAMS (service), or the reader's address its share (address)",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(petition_signatures.clone()))?;
        registry.register(Box::new(streams_open.clone()))?;
        registry.register(Box::new(redis.clone()))?;
        registry.register(Box::new(refused_streams.clone()))?;
        Ok(Self {
            redis,
            streams_open,
            refused_streams: [StreamRefusal::Service, StreamRefusal::Address]
                .map(|r| refused_streams.with_label_values(&[r.label()])),
            petition_signatures,
            refused_connections: [Refusal::Address, Refusal::Reserve]
                .map(|r| refused.with_label_values(&[r.label()])),
            captcha,
            requests: labels()
                .map(|r| STATUSES.map(|s| requests.with_label_values(&[r, &s.to_string()])))
                .collect(),
            other_status: labels()
                .map(|r| requests.with_label_values(&[r, "other"]))
                .collect(),
            durations: labels()
                .map(|r| durations.with_label_values(&[r]))
                .collect(),
        })
    }

    pub fn captcha(&self, outcome: &'static str) {
        self.captcha.with_label_values(&[outcome]).inc();
    }

    /// A request answered by the route at `route` in [`ROUTES`] (`None`: by none).
    pub fn observe(&self, route: Option<usize>, status: StatusCode, seconds: f64) {
        let i = route.unwrap_or(ROUTES.len());
        match STATUSES.iter().position(|&s| s == status.as_u16()) {
            Some(j) => self.requests[i][j].inc(),
            None => self.other_status[i].inc(),
        }
        self.durations[i].observe(seconds);
    }

    /// Replaces the petitions' counts with these, by slug.
    pub(crate) fn petitions(&self, counts: impl Iterator<Item = (String, i64)>) {
        self.petition_signatures.reset();
        for (slug, count) in counts {
            self.petition_signatures
                .with_label_values(&[slug.as_str()])
                .set(count);
        }
    }

    pub(crate) fn connection_refused(&self, refusal: Refusal) {
        self.refused_connections[refusal as usize].inc();
    }

    pub(crate) fn redis(&self, state: &'static str) {
        for each in ["up", "down", "disabled"] {
            self.redis
                .with_label_values(&[each])
                .set(i64::from(each == state));
        }
    }

    pub(crate) fn streams_open(&self, open: usize) {
        self.streams_open
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    pub(crate) fn stream_refused(&self, refusal: StreamRefusal) {
        self.refused_streams[refusal as usize].inc();
    }
}

/// The suspicion signals as gauges, for the operators' dashboards and alerts.
/// Addresses are personal data (and would make one series per address), so
/// their counts are labelled by rank and only the admin endpoint names them.
/// A domain is named only past [`DOMAIN_LABEL_MIN`] signatures in the hour: a
/// family's own domain never reaches an unauthenticated `/metrics`.
pub const DOMAIN_LABEL_MIN: i64 = 20;

pub struct SignalMetrics {
    addresses: IntGaugeVec,
    domains: IntGaugeVec,
}

impl SignalMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let addresses = IntGaugeVec::new(
            Opts::new(
                "undersigned_signal_address_signatures",
                "Signatures in the last hour from a petition's fastest client addresses, by rank",
            ),
            &["petition", "rank"],
        )?;
        let domains = IntGaugeVec::new(
            Opts::new(
                "undersigned_signal_email_domain_signatures",
                "Signatures in the last hour from a petition's fastest email domains",
            ),
            &["petition", "domain"],
        )?;
        registry.register(Box::new(addresses.clone()))?;
        registry.register(Box::new(domains.clone()))?;
        Ok(Self { addresses, domains })
    }

    /// Replaces every series with these signals.
    pub fn show(&self, all: &[PetitionSignals]) {
        self.addresses.reset();
        self.domains.reset();
        for p in all {
            for (rank, s) in p.signals.addresses.iter().enumerate() {
                self.addresses
                    .with_label_values(&[p.slug.as_str(), &(rank + 1).to_string()])
                    .set(s.signatures);
            }
            for s in p
                .signals
                .email_domains
                .iter()
                .filter(|s| s.signatures >= DOMAIN_LABEL_MIN)
            {
                self.domains
                    .with_label_values(&[p.slug.as_str(), s.key.as_str()])
                    .set(s.signatures);
            }
        }
    }
}
