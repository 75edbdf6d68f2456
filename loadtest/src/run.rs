//! Driving load: closed loop (each connection sends as fast as it is answered)
//! or open loop (requests start on a fixed schedule, and latency is measured
//! from each request's intended start, so queueing in the service is not hidden).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Method, Request, header};
use http_body_util::Full;
use tokio::time::Instant;
use uuid::Uuid;

use crate::client::Conn;
use crate::signers;
use crate::tablets::{self, TabletOutcome, TabletPlan};

#[derive(Debug, Clone)]
pub struct Plan {
    pub target: SocketAddr,
    /// Where the signing connections go, in turn: the target, and any other
    /// instances of the same service.
    pub sign_targets: Vec<SocketAddr>,
    /// Where the counter reads go: the service, or the reference server.
    pub read_target: SocketAddr,
    pub slug: String,
    /// Signing connections.
    pub connections: usize,
    /// Signatures per second (open loop); `None` sends as fast as answered.
    pub rate: Option<f64>,
    pub duration: Duration,
    /// Stop after this many distinct signers.
    pub total: Option<u64>,
    /// The web signers' first number.
    pub first_signer: u64,
    /// Share of requests that re-send an earlier signer, written differently.
    pub duplicates: f64,
    /// Send `X-Forwarded-For` with varied addresses, as a load balancer would.
    pub forwarded_for: bool,
    /// Counter-reading connections.
    pub readers: usize,
    /// Counter reads per second (open loop); `None` reads as fast as answered.
    pub read_rate: Option<f64>,
    /// Event tablets sending batches, besides the web signers.
    pub tablets: Option<TabletPlan>,
    /// Also count, second by second, the requests slower than this.
    pub timeline: Option<Duration>,
    /// A signing request not answered within this is given up (its
    /// connection closed) and counted as timed out.
    pub timeout: Option<Duration>,
}

/// What one kind of request met.
pub struct Tally {
    /// Microseconds.
    pub latency: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub io_errors: u64,
    /// Requests given up after the plan's timeout.
    pub timeouts: u64,
    /// 503 answers without `Retry-After`.
    pub without_retry_after: u64,
    /// Second by second of the run, when asked for.
    pub timeline: Option<Timeline>,
}

/// Requests by the second of the run they were meant to start in: whether a
/// tail is spread over the run or gathered in a few seconds (the first ones,
/// when every connection opens at once, or a stall of the machine).
pub struct Timeline {
    origin: Instant,
    /// Microseconds: a request that took longer is slow.
    slow: u64,
    pub seconds: Vec<Second>,
}

impl Timeline {
    pub fn slow_ms(&self) -> f64 {
        self.slow as f64 / 1000.0
    }
}

#[derive(Clone, Copy, Default)]
pub struct Second {
    pub requests: u64,
    pub slow: u64,
    /// Microseconds.
    pub slowest: u64,
}

impl Tally {
    pub(crate) fn new() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds"),
            statuses: BTreeMap::new(),
            io_errors: 0,
            timeouts: 0,
            without_retry_after: 0,
            timeline: None,
        }
    }

    /// A tally that also keeps the run's timeline, when the plan asks for one.
    pub(crate) fn for_run(shared: &Shared) -> Self {
        let mut tally = Self::new();
        tally.timeline = shared.plan.timeline.map(|slow| Timeline {
            origin: shared.started,
            slow: u64::try_from(slow.as_micros()).unwrap_or(u64::MAX),
            seconds: Vec::new(),
        });
        tally
    }

    pub(crate) fn add(&mut self, other: &Tally) {
        let _ = self.latency.add(&other.latency);
        for (s, n) in &other.statuses {
            *self.statuses.entry(*s).or_default() += n;
        }
        self.io_errors += other.io_errors;
        self.timeouts += other.timeouts;
        self.without_retry_after += other.without_retry_after;
        if let Some(theirs) = &other.timeline {
            let ours = self.timeline.get_or_insert_with(|| Timeline {
                origin: theirs.origin,
                slow: theirs.slow,
                seconds: Vec::new(),
            });
            if ours.seconds.len() < theirs.seconds.len() {
                ours.seconds.resize(theirs.seconds.len(), Second::default());
            }
            for (o, t) in ours.seconds.iter_mut().zip(&theirs.seconds) {
                o.requests += t.requests;
                o.slow += t.slow;
                o.slowest = o.slowest.max(t.slowest);
            }
        }
    }

    /// Records the time since `since`, in microseconds.
    pub(crate) fn record_since(&mut self, since: Instant) {
        let micros = u64::try_from(since.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let _ = self.latency.record(micros);
        if let Some(timeline) = &mut self.timeline {
            let at = since.saturating_duration_since(timeline.origin).as_secs() as usize;
            if timeline.seconds.len() <= at {
                timeline.seconds.resize(at + 1, Second::default());
            }
            let second = &mut timeline.seconds[at];
            second.requests += 1;
            second.slow += u64::from(micros > timeline.slow);
            second.slowest = second.slowest.max(micros);
        }
    }

    pub fn count(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }

    pub fn requests(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.io_errors + self.timeouts
    }
}

pub struct Outcome {
    /// Until the last signing request was answered.
    pub elapsed: Duration,
    /// Until the last counter read was answered: later than `elapsed` when the
    /// readers fell behind their schedule.
    pub read_elapsed: Duration,
    pub sign: Tally,
    pub read: Tally,
    pub receipts: Vec<Uuid>,
    /// Distinct signers acknowledged at least once (on the web or from a
    /// tablet), sorted.
    pub acked: Vec<u64>,
    pub tablets: TabletOutcome,
}

pub(crate) struct Shared {
    pub(crate) plan: Plan,
    /// The next new signer; web signers and tablets draw from it alike.
    pub(crate) next: AtomicU64,
    pub(crate) stop: AtomicBool,
    pub(crate) started: Instant,
    pub(crate) deadline: Instant,
}

/// A small fast generator; statistical quality does not matter here.
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
}

struct SignWorker {
    conn: Conn,
    rng: XorShift,
    body: String,
    tally: Tally,
    receipts: Vec<Uuid>,
    acked: Vec<u64>,
}

impl SignWorker {
    /// Picks the next signer: `None` once the run has enough distinct signers.
    fn pick(&mut self, shared: &Shared) -> Option<(u64, u32)> {
        let sent = shared.next.load(Ordering::Relaxed);
        if sent > 0 && self.rng.chance(shared.plan.duplicates) {
            let earlier = self.rng.next() % sent;
            return Some((earlier, 1 + (self.rng.next() % 7) as u32));
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if shared.plan.total.is_some_and(|t| i >= t) {
            shared.stop.store(true, Ordering::Relaxed);
            return None;
        }
        Some((i, 0))
    }

    async fn sign(&mut self, shared: &Shared, signer: u64, variant: u32, since: Instant) {
        signers::body(shared.plan.first_signer + signer, variant, &mut self.body);
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("/v1/petitions/{}/signatures", shared.plan.slug))
            .header(header::HOST, "loadtest")
            .header(header::CONTENT_TYPE, "application/json");
        if shared.plan.forwarded_for {
            let a = signer.wrapping_mul(2_654_435_761);
            request = request.header(
                "x-forwarded-for",
                format!("10.{}.{}.{}", (a >> 16) & 255, (a >> 8) & 255, a & 255),
            );
        }
        let request = request
            .body(Full::new(Bytes::from(self.body.clone())))
            .expect("valid request");
        let answer = match shared.plan.timeout {
            None => Some(self.conn.send(request).await),
            Some(limit) => tokio::time::timeout(limit, self.conn.send(request))
                .await
                .ok(),
        };
        let failed = match answer {
            Some(Ok((status, body))) => {
                *self.tally.statuses.entry(status.as_u16()).or_default() += 1;
                if status.as_u16() == 202 {
                    if let Some(receipt) = receipt(&body) {
                        self.receipts.push(receipt);
                    }
                    self.acked.push(signer);
                } else if status.as_u16() == 503 && !self.conn.retry_after {
                    self.tally.without_retry_after += 1;
                }
                false
            }
            Some(Err(_)) => {
                self.tally.io_errors += 1;
                true
            }
            None => {
                self.conn.close();
                self.tally.timeouts += 1;
                true
            }
        };
        self.tally.record_since(since);
        if failed {
            // An instance that is down refuses at once: pause as a client
            // would, rather than spin on the cores the service runs on.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn receipt(body: &[u8]) -> Option<Uuid> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("\"receipt\":\"")? + 11;
    Uuid::parse_str(text.get(start..start + 36)?).ok()
}

/// When a worker sends: as soon as it is answered (closed loop), or on its
/// share of a fixed schedule (open loop). In the open loop worker `i` of `n`
/// owns slots `i`, `i + n`, `i + 2n`, … of the schedule at `rate` per second,
/// as in wrk2: every worker keeps its own time, so none waits for another to
/// hand it a slot (a shared queue of slots fell behind at 50,000 reads/s on
/// its own handoffs, measured in benches/BENCHMARKS.md). A worker behind its
/// schedule sends at once, and latency counts from the intended start.
#[derive(Clone, Copy)]
enum Pace {
    Closed,
    Open {
        start: Instant,
        rate: f64,
        slot: u64,
        step: u64,
    },
}

impl Pace {
    fn new(rate: Option<f64>, start: Instant, worker: usize, workers: usize) -> Self {
        match rate {
            None => Self::Closed,
            Some(rate) => Self::Open {
                start,
                rate,
                slot: worker as u64,
                step: workers.max(1) as u64,
            },
        }
    }

    /// Waits for the next request's intended start; `None` once the run is over.
    async fn next(&mut self, shared: &Shared) -> Option<Instant> {
        let intended = match self {
            Self::Closed => Instant::now(),
            Self::Open {
                start,
                rate,
                slot,
                step,
            } => {
                let intended = *start + Duration::from_secs_f64(*slot as f64 / *rate);
                *slot += *step;
                intended
            }
        };
        if intended >= shared.deadline || shared.stop.load(Ordering::Relaxed) {
            return None;
        }
        tokio::time::sleep_until(intended).await;
        Some(intended)
    }
}

pub async fn run(plan: Plan) -> Outcome {
    let started = Instant::now();
    let shared = Arc::new(Shared {
        started,
        deadline: started + plan.duration,
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        plan: plan.clone(),
    });

    let signers: Vec<_> = (0..plan.connections)
        .map(|w| {
            let shared = shared.clone();
            let mut pace = Pace::new(plan.rate, started, w, plan.connections);
            tokio::spawn(async move {
                let targets = &shared.plan.sign_targets;
                let mut worker = SignWorker {
                    conn: Conn::new(targets[w % targets.len()]),
                    rng: XorShift(
                        0x9E37_79B9_7F4A_7C15 ^ (w as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
                    ),
                    body: String::with_capacity(512),
                    tally: Tally::for_run(&shared),
                    receipts: Vec::new(),
                    acked: Vec::new(),
                };
                while let Some(since) = pace.next(&shared).await {
                    let Some((signer, variant)) = worker.pick(&shared) else {
                        break;
                    };
                    worker.sign(&shared, signer, variant, since).await;
                }
                worker
            })
        })
        .collect();
    let readers: Vec<_> = (0..plan.readers)
        .map(|r| {
            let shared = shared.clone();
            let mut pace = Pace::new(plan.read_rate, started, r, plan.readers);
            tokio::spawn(async move {
                let mut conn = Conn::new(shared.plan.read_target);
                let mut tally = Tally::for_run(&shared);
                let uri = format!("/v1/petitions/{}/count", shared.plan.slug);
                while let Some(since) = pace.next(&shared).await {
                    let request = Request::get(&uri)
                        .header(header::HOST, "loadtest")
                        .body(Full::new(Bytes::new()))
                        .expect("valid request");
                    match conn.send(request).await {
                        Ok((status, _)) => *tally.statuses.entry(status.as_u16()).or_default() += 1,
                        Err(_) => tally.io_errors += 1,
                    }
                    tally.record_since(since);
                }
                tally
            })
        })
        .collect();

    let tablet_workers: Vec<_> = plan
        .tablets
        .iter()
        .flat_map(|t| (0..t.tokens.len()).map(move |i| (t.clone(), i)))
        .map(|(tablet_plan, i)| {
            let shared = shared.clone();
            tokio::spawn(async move { tablets::drive(&shared, &tablet_plan, i).await })
        })
        .collect();

    let mut outcome = Outcome {
        elapsed: Duration::ZERO,
        read_elapsed: Duration::ZERO,
        sign: Tally::new(),
        read: Tally::new(),
        receipts: Vec::new(),
        acked: Vec::new(),
        tablets: TabletOutcome::new(),
    };
    for t in tablet_workers {
        outcome.tablets.add(t.await.expect("tablet worker"));
    }
    for s in signers {
        let w = s.await.expect("signing worker");
        outcome.sign.add(&w.tally);
        outcome.receipts.extend(w.receipts);
        outcome.acked.extend(w.acked);
    }
    outcome.elapsed = started.elapsed();
    for r in readers {
        outcome.read.add(&r.await.expect("reading worker"));
    }
    outcome.read_elapsed = started.elapsed();
    outcome.acked.extend(&outcome.tablets.acked);
    outcome.receipts.extend(&outcome.tablets.receipts);
    outcome.acked.sort_unstable();
    outcome.acked.dedup();
    outcome.tablets.acked.sort_unstable();
    outcome.tablets.acked.dedup();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeline_counts_each_request_in_the_second_it_was_meant_to_start() {
        let origin = Instant::now() - Duration::from_millis(2500);
        let mut tally = Tally::new();
        tally.timeline = Some(Timeline {
            origin,
            slow: 1_000_000,
            seconds: Vec::new(),
        });
        // Meant to start 0.2 s in, answered now: 2.3 s, slow.
        tally.record_since(origin + Duration::from_millis(200));
        // Meant to start now, answered at once.
        tally.record_since(Instant::now());
        let seconds = &tally.timeline.as_ref().unwrap().seconds;
        assert_eq!(seconds.len(), 3);
        assert_eq!((seconds[0].requests, seconds[0].slow), (1, 1));
        assert!(seconds[0].slowest >= 2_300_000, "{}", seconds[0].slowest);
        assert_eq!((seconds[1].requests, seconds[1].slow), (0, 0));
        assert_eq!((seconds[2].requests, seconds[2].slow), (1, 0));

        // Merged into the run's total, second by second.
        let mut total = Tally::new();
        total.add(&tally);
        total.add(&tally);
        let merged = &total.timeline.as_ref().unwrap().seconds;
        assert_eq!(
            merged
                .iter()
                .map(|s| (s.requests, s.slow))
                .collect::<Vec<_>>(),
            [(2, 2), (0, 0), (2, 0)]
        );
        assert_eq!(total.latency.len(), 4);
    }
}
