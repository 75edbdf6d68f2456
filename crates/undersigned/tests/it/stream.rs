//! The live count stream (`GET /v1/petitions/{slug}/count/stream`): its
//! framing, coalescing, heartbeats, every instance's changes, and its end.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;

use crate::support::{Namespace, TestApp, problem, signer};

/// What a stream sent: an event's data, or a comment.
#[derive(Debug)]
enum Sent {
    Count(Value),
    Comment(String),
}

/// A stream as a browser's `EventSource` reads it: frames end with a blank line.
struct Stream {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

/// Asks for a stream as the reader at `client` (behind the trusted proxy
/// the tests' client is), or as the client itself.
async fn ask(app: &TestApp, slug: &str, client: Option<&str>) -> reqwest::Response {
    let mut request = app
        .http
        .get(app.url(&format!("/v1/petitions/{slug}/count/stream")))
        .header("accept", "text/event-stream");
    if let Some(client) = client {
        request = request.header("x-forwarded-for", client);
    }
    request.send().await.unwrap()
}

impl Stream {
    async fn open(app: &TestApp, slug: &str) -> Self {
        Self::open_for(app, slug, None).await
    }

    async fn open_for(app: &TestApp, slug: &str, client: Option<&str>) -> Self {
        let response = ask(app, slug, client).await;
        assert_eq!(response.status(), 200);
        let h = response.headers();
        assert_eq!(h["content-type"], "text/event-stream");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["access-control-allow-origin"], "*");
        assert_eq!(h["x-accel-buffering"], "no");
        Self {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next frame, `None` once the stream has ended; panics after `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Sent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = self.buffer.drain(..end + 2).collect();
                return Some(parse(std::str::from_utf8(&frame).unwrap()));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("nothing in {wait:?}"))
                .unwrap();
            match chunk {
                Some(bytes) => self.buffer.extend_from_slice(&bytes),
                None => {
                    assert!(self.buffer.is_empty(), "cut short: {:?}", self.buffer);
                    return None;
                }
            }
        }
    }

    /// The next event, skipping heartbeats.
    async fn next_count(&mut self, wait: Duration) -> Value {
        loop {
            match self.next(wait).await {
                Some(Sent::Count(count)) => return count,
                Some(Sent::Comment(_)) => {}
                None => panic!("the stream ended"),
            }
        }
    }
}

/// One frame: `event: count` and one `data:` line, or a comment line.
fn parse(frame: &str) -> Sent {
    let lines: Vec<&str> = frame.trim_end_matches('\n').split('\n').collect();
    match lines.as_slice() {
        [comment] if comment.starts_with(':') => Sent::Comment(comment[1..].trim().to_owned()),
        ["event: count", data] => Sent::Count(
            serde_json::from_str(data.strip_prefix("data: ").expect("a data line")).unwrap(),
        ),
        _ => panic!("not a frame of ours: {frame:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_sends_the_count_then_each_change_coalesced_and_heartbeats() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| c.stream_heartbeat_secs = 1).await;
    let slug = app.petition("streamed").await;
    for i in 0..3 {
        assert_eq!(app.sign(&slug, &signer(i)).await.status(), 202);
    }
    crate::support::count_reaches(&app, &slug, 3).await;

    // At once: the same JSON as the counter's.
    let mut stream = Stream::open(&app, &slug).await;
    let first = stream.next_count(Duration::from_secs(2)).await;
    assert_eq!(first, app.count(&slug).await);
    assert_eq!(first["count"], 3);

    // 100 signatures in about a second: at most two events, the last with all.
    let started = Instant::now();
    let app_ref = &app;
    let slug_ref = slug.as_str();
    for wave in 0..4 {
        let answers = join_all((0..25).map(|i| async move {
            app_ref
                .sign(slug_ref, &signer(3 + wave * 25 + i))
                .await
                .status()
        }))
        .await;
        assert!(answers.iter().all(|s| *s == 202), "{answers:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    let mut events = Vec::new();
    loop {
        let count = stream.next_count(Duration::from_secs(3)).await;
        events.push(count["count"].as_i64().unwrap());
        if count["count"] == 103 {
            break;
        }
    }
    assert!(events.len() <= 2, "events {events:?}");
    assert!(events.windows(2).all(|w| w[0] < w[1]), "{events:?}");

    // Nothing changes: a comment a second, and no event.
    let quiet = Instant::now();
    for _ in 0..2 {
        match stream.next(Duration::from_millis(1800)).await {
            Some(Sent::Comment(text)) => assert_eq!(text, "heartbeat"),
            other => panic!("expected a heartbeat, got {other:?}"),
        }
    }
    assert!(quiet.elapsed() >= Duration::from_millis(1500));

    // An unknown petition is a problem, not a stream.
    let missing = app
        .http
        .get(app.url("/v1/petitions/nobody-made-this/count/stream"))
        .send()
        .await
        .unwrap();
    problem(missing, 404).await;
    drop(stream);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_instance_streams_the_signatures_another_took() {
    let ns = Namespace::new();
    let a = TestApp::start(&ns, |_| {}).await;
    let b = TestApp::start(&ns, |_| {}).await;
    let slug = a.petition("two-streams").await;
    let mut on_b = Stream::open(&b, &slug).await;
    assert_eq!(on_b.next_count(Duration::from_secs(2)).await["count"], 0);

    let signed = Instant::now();
    assert_eq!(a.sign(&slug, &signer(0)).await.status(), 202);
    let seen = on_b.next_count(Duration::from_secs(2)).await;
    assert_eq!(
        (seen["count"].as_i64(), seen["people"].as_i64()),
        (Some(1), Some(1))
    );
    assert!(signed.elapsed() < Duration::from_secs(2));
    drop(on_b);
    a.stop().await;
    b.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_end_when_the_service_stops_without_holding_its_grace_period() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| c.shutdown_grace_secs = 30).await;
    let slug = app.petition("stopping").await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = Stream::open(&app, &slug).await;
        stream.next_count(Duration::from_secs(2)).await;
        streams.push(stream);
    }
    let stopping = Instant::now();
    let stopped = tokio::spawn(app.stop());
    for stream in &mut streams {
        assert!(stream.next(Duration::from_secs(5)).await.is_none());
    }
    stopped.await.unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "{:?}",
        stopping.elapsed()
    );
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_keep_to_their_budget_and_each_address_to_its_share() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| {
        c.trusted_proxies = "127.0.0.1".parse().expect("proxies");
        c.max_streams = Some(3);
        c.max_streams_per_address = 2;
        c.stream_heartbeat_secs = 1;
    })
    .await;
    let slug = app.petition("budgeted").await;
    let mut first = Stream::open_for(&app, &slug, Some("192.0.2.1")).await;
    first.next_count(Duration::from_secs(2)).await;
    let _second = Stream::open_for(&app, &slug, Some("192.0.2.1")).await;

    // The address's share is taken: 429, and signing still answers.
    let r = ask(&app, &slug, Some("192.0.2.1")).await;
    assert_eq!(r.headers()["retry-after"], "30");
    let p = problem(r, 429).await;
    assert_eq!(p["type"], "/problems/too-many-streams");
    assert_eq!(app.sign(&slug, &signer(0)).await.status(), 202);

    // Another reader gets the last of the budget, and the next none: 503.
    let _third = Stream::open_for(&app, &slug, Some("198.51.100.7")).await;
    let r = ask(&app, &slug, Some("203.0.113.9")).await;
    assert_eq!(r.headers()["retry-after"], "30");
    let p = problem(r, 503).await;
    assert_eq!(p["type"], "/problems/streams-busy");
    // The counter itself is not a stream, and answers.
    assert_eq!(app.count(&slug).await["count"], 1);

    // A reader who leaves frees a place (noticed at the next heartbeat).
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    let last = loop {
        let r = ask(&app, &slug, Some("203.0.113.9")).await;
        if r.status() == 200 {
            break r;
        }
        assert_eq!(r.status(), 503);
        assert!(Instant::now() < deadline, "no place freed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let metrics = app.metrics_text().await;
    for line in [
        "undersigned_count_streams_open 3",
        "undersigned_count_streams_refused_total{reason=\"address\"} 1",
    ] {
        assert!(metrics.contains(line), "{line}: {metrics}");
    }
    drop(last);
    app.stop().await;
    ns.clean().await;
}
