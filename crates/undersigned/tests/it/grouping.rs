//! Signatures that arrive a little apart share one Redis call and one commit:
//! the guard and the writers linger when what they gathered is small, while
//! other clients connected could still send one. When every client connected
//! has a signature waiting, nobody waits for the linger.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::Client;
use undersigned::Supervisor;

use crate::durability::wait_ready;
use crate::shutdown::start_alone;
use crate::support::{Namespace, TestApp, idle_clients, private_redis, rows, signer};

/// Commands of one name that the Redis at `url` has run.
async fn commands(url: &str, name: &str) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    let prefix = format!("cmdstat_{name}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// A counter or histogram count from the service's metrics; 0 before its first.
async fn metric(app: &TestApp, name: &str) -> u64 {
    app.metric(name).await.unwrap_or(0.0) as u64
}

/// Signs signers `from..to`, one every 10 ms, and waits for every answer.
async fn sign_apart(app: &TestApp, slug: &str, from: usize, to: usize) {
    let answers = join_all((from..to).map(|i| async move {
        tokio::time::sleep(Duration::from_millis(10 * (i - from) as u64)).await;
        app.sign(slug, &signer(i)).await
    }))
    .await;
    for a in answers {
        assert_eq!(a.status(), 202);
    }
}

/// A service on a Redis of its own (whose commands are this test's alone),
/// both lingers set to `linger_ms`, and a petition signed once, so that the
/// guard's script is loaded and the counts below start from there.
struct Lingering {
    _redis: tokio::process::Child,
    url: String,
    ns: Namespace,
    app: TestApp,
    slug: String,
}

impl Lingering {
    async fn start(linger_ms: u64) -> Self {
        let (redis, url) = private_redis().await;
        let ns = Namespace::new();
        let app = TestApp::start(&ns, |c| {
            c.redis_url = url.clone();
            c.guard_linger_ms = linger_ms;
            c.batch_linger_ms = linger_ms;
        })
        .await;
        let slug = app.petition("lingering").await;
        sign_apart(&app, &slug, 0, 1).await;
        Self {
            _redis: redis,
            url,
            ns,
            app,
            slug,
        }
    }

    /// Guard calls, commits and rows committed so far.
    async fn tally(&self) -> (u64, u64, u64) {
        (
            commands(&self.url, "evalsha").await,
            metric(&self.app, "undersigned_batch_rows_count").await,
            metric(&self.app, "undersigned_batch_rows_sum").await,
        )
    }

    /// Signs ten more signers, 10 ms apart, with others connected who send
    /// nothing, and checks that all ten are stored; returns the guard calls
    /// and commits that took them.
    async fn sign_ten_apart(&self) -> (u64, u64) {
        let _others = idle_clients(&self.app.base, 2).await;
        let before = self.tally().await;
        sign_apart(&self.app, &self.slug, 1, 11).await;
        let after = self.tally().await;
        assert_eq!(after.2 - before.2, 10);
        assert_eq!(rows(&self.ns.sql().await).await, 11);
        (after.0 - before.0, after.1 - before.1)
    }

    async fn finish(self) {
        self.app.stop().await;
        self.ns.clean().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_arriving_apart_share_one_redis_call_and_one_commit() {
    let t = Lingering::start(300).await;
    // Ten signers over 90 ms: each alone would be a call and a commit.
    let (calls, commits) = t.sign_ten_apart().await;
    assert_eq!(calls, 1, "one guard call");
    assert_eq!(commits, 1, "one commit");
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_lingering_each_signature_arriving_alone_is_its_own_call_and_commit() {
    let t = Lingering::start(0).await;
    // The same ten signers over 90 ms: each is answered in a few
    // milliseconds, mostly before the next arrives.
    let (calls, commits) = t.sign_ten_apart().await;
    assert!(calls >= 5, "{calls} guard calls");
    assert!(commits >= 5, "{commits} commits");
    t.finish().await;
}

/// Eight signers at once on a service lingering half a second in the guard
/// and half a second in the writers, alone or beside one idle client;
/// returns how long the last answer took.
async fn eight_at_once(idle: usize) -> Duration {
    let ns = Namespace::new();
    let setup = TestApp::start(&ns, |_| {}).await;
    let slug = setup.petition("nobody-left").await;
    setup.stop().await;
    let mut config = ns.config();
    config.guard_linger_ms = 500;
    config.batch_linger_ms = 500;
    let (base, stop, service) = start_alone(config, Supervisor::new());
    // Each request on its own connection, closed after its answer.
    let http = Client::builder().pool_max_idle_per_host(0).build().unwrap();
    wait_ready(&http, &base).await;
    let _others = idle_clients(&base, idle).await;
    let url = format!("{base}/v1/petitions/{slug}/signatures");
    let started = Instant::now();
    // Each answer read at once, so that its connection closes then.
    let answers = join_all((0..8).map(|i| {
        let request = http.post(&url).json(&signer(i)).send();
        async move { request.await.map(|r| r.status()) }
    }))
    .await;
    let took = started.elapsed();
    for answer in answers {
        assert_eq!(answer.unwrap(), 202);
    }
    stop.send(()).unwrap();
    tokio::task::spawn_blocking(move || service.join().unwrap())
        .await
        .unwrap();
    assert_eq!(rows(&ns.sql().await).await, 8);
    ns.clean().await;
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_client_connected_waiting_nobody_waits_for_the_linger() {
    // Nobody else connected: the guard's call and the commit go as soon as
    // the eight are in, not after the half seconds.
    let alone = eight_at_once(0).await;
    assert!(alone < Duration::from_millis(700), "{alone:?}");
    // One more client connected, who might sign: both lingers are waited.
    let beside_one = eight_at_once(1).await;
    assert!(beside_one >= Duration::from_millis(900), "{beside_one:?}");
}
