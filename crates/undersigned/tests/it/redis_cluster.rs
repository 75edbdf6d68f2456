//! Two instances on a real Redis Cluster of six nodes (three primaries, three
//! replicas) that the test starts: the seen set, the limits and the fan-out
//! shared across the cluster, and a primary killed mid-run.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::support::{
    Namespace, TestApp, again, count_reaches, counted_on_both, free_port, limits, petition_id,
    receipt, retry_after, rows, signer, stored,
};

/// A Redis Cluster of the test's own on 127.0.0.1; its nodes die with it.
struct RedisCluster {
    nodes: Vec<(u16, Child)>,
    /// The seed list as the service takes it: every node, separated by commas.
    url: String,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = free_port();
            // The bus port too: its default, the port plus 10,000, is past
            // 65,535 for the upper fifth of the ephemeral ports, and then the
            // node does not start.
            let bus = free_port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-port", &bus.to_string()])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("redis-server is installed");
            nodes.push((port, child));
        }
        for (port, _) in &nodes {
            wait_for(|| async { cli(*port, &["PING"]).await == "PONG" }, "a node").await;
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|(p, _)| format!("127.0.0.1:{p}"))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .await
            .expect("redis-cli is installed");
        assert!(created.success(), "redis-cli --cluster create");
        let url = addresses
            .iter()
            .map(|a| format!("redis://{a}"))
            .collect::<Vec<_>>()
            .join(",");
        let cluster = Self {
            nodes,
            url,
            _dir: dir,
        };
        cluster.settled(6).await;
        cluster
    }

    /// Waits until every live node says the cluster is whole and `linked`
    /// nodes (primaries and replicas in sync) serve it.
    async fn settled(&self, linked: usize) {
        wait_for(
            || async {
                let mut ok = 0;
                for (port, _) in &self.nodes {
                    let info = cli(*port, &["CLUSTER", "INFO"]).await;
                    if !info.contains("cluster_state:ok") {
                        continue;
                    }
                    let replication = cli(*port, &["INFO", "replication"]).await;
                    if replication.contains("role:master")
                        || replication.contains("master_link_status:up")
                    {
                        ok += 1;
                    }
                }
                ok == linked
            },
            "the cluster to settle",
        )
        .await;
    }

    /// The port of the primary that serves `key`'s slot now.
    async fn primary_of(&self, key: &str) -> u16 {
        let any = self.nodes[0].0;
        let slot: u16 = cli(any, &["CLUSTER", "KEYSLOT", key])
            .await
            .parse()
            .unwrap();
        let nodes = cli(any, &["CLUSTER", "NODES"]).await;
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let serves = fields[8..].iter().any(|range| {
                let (low, high) = range.split_once('-').unwrap_or((range, range));
                (low.parse().unwrap_or(u16::MAX)..=high.parse().unwrap_or(0)).contains(&slot)
            });
            if serves {
                let address = fields[1].split('@').next().unwrap();
                return address.rsplit_once(':').unwrap().1.parse().unwrap();
            }
        }
        panic!("no primary serves slot {slot}");
    }

    /// Kills a node outright (SIGKILL: no goodbye to the cluster).
    async fn kill(&mut self, port: u16) {
        let at = self.nodes.iter().position(|(p, _)| *p == port).unwrap();
        let (_, mut child) = self.nodes.remove(at);
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }

    /// The members of a set, asked of the primary that holds it.
    async fn cardinality(&self, key: &str) -> i64 {
        let port = self.primary_of(key).await;
        cli(port, &["SCARD", key]).await.parse().unwrap_or(-1)
    }
}

async fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .await
        .expect("redis-cli is installed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn wait_for<F, Fut>(mut done: F, what: &str)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "waited for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The seen set's key, as `undersigned_guard`'s keys are written.
fn seen_key(ns: &Namespace, petition: i64) -> String {
    format!("{{{}:p:{petition}}}:seen", ns.prefix)
}

/// The value of a series that must be in `/metrics`.
async fn metric(app: &TestApp, name: &str) -> f64 {
    app.metric(name)
        .await
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_a_redis_cluster_share_the_seen_set_the_limits_and_the_counts() {
    let cluster = RedisCluster::start().await;
    let ns = Namespace::new();
    let start = || {
        TestApp::start(&ns, |c| {
            c.redis_url = cluster.url.clone();
            c.ip_limit = limits("2/60s");
            c.trusted_proxies = "127.0.0.1/32".parse().expect("proxies");
        })
    };
    let (app_a, app_b) = (start().await, start().await);
    let ready: Value = app_a.get_json("/readyz").await;
    assert_eq!(ready["redis"], "up");
    let slug = app_a.petition("clustered").await;
    let seen = seen_key(&ns, petition_id(&ns, &slug).await);
    let address = |i: usize| format!("10.1.{}.{}", i / 200, i % 200 + 1);

    // A takes 100 signers; once their identities are in the cluster's seen
    // set, the same signers written differently at B stop at Redis: B's
    // writers get none of them.
    let (a, b, s) = (&app_a, &app_b, slug.as_str());
    let first =
        join_all((0..100).map(|i| async move { a.sign_from(s, &signer(i), &address(i)).await }));
    assert!(first.await.iter().all(|r| r.status() == 202));
    wait_for(
        || async { cluster.cardinality(&seen).await == 100 },
        "100 seen",
    )
    .await;
    let again_at_b =
        join_all((0..100).map(|i| async move { b.sign_from(s, &again(i), &address(i)).await }));
    assert!(again_at_b.await.iter().all(|r| r.status() == 202));
    assert_eq!(
        metric(b, "undersigned_signatures_total{outcome=\"duplicate\"}").await,
        100.0
    );
    assert_eq!(metric(b, "undersigned_batch_rows_count").await, 0.0);

    // One address's limit counts its signatures at both instances.
    let one = "198.51.100.7";
    assert_eq!(a.sign_from(s, &signer(500), one).await.status(), 202);
    assert_eq!(b.sign_from(s, &signer(501), one).await.status(), 202);
    for app in [a, b] {
        let refused = app.sign_from(s, &signer(502), one).await;
        assert_eq!(refused.status(), 429);
        assert!((25..=30).contains(&retry_after(&refused)));
    }

    // Counts reach both instances through the cluster's pub/sub.
    assert_eq!(rows(&ns.sql().await).await, 102);
    let acknowledged = Instant::now();
    counted_on_both((a, b), s, 102, acknowledged, Duration::from_secs(2)).await;
    app_a.stop().await;
    app_b.stop().await;
    drop(cluster);
    ns.clean().await;
}

/// What the signers running against both instances were told.
#[derive(Default)]
struct Told {
    receipts: Vec<uuid::Uuid>,
    unavailable: usize,
    other: Vec<u16>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_killed_mid_run_loses_nothing_acknowledged() {
    let mut cluster = RedisCluster::start().await;
    let ns = Namespace::new();
    let start = || TestApp::start(&ns, |c| c.redis_url = cluster.url.clone());
    let (a, b) = (Arc::new(start().await), Arc::new(start().await));
    let slug = a.petition("failover").await;
    let seen = seen_key(&ns, petition_id(&ns, &slug).await);
    let primary = cluster.primary_of(&seen).await;

    // Eight signers' loops, unique signers alternating between the instances.
    let running = Arc::new(AtomicBool::new(true));
    let loops: Vec<_> = (0..8)
        .map(|k| {
            let (a, b, slug, running) = (a.clone(), b.clone(), slug.clone(), running.clone());
            tokio::spawn(async move {
                let mut told = Told::default();
                let mut i = k;
                while running.load(Ordering::Relaxed) {
                    let app = if i % 2 == 0 { &a } else { &b };
                    let answer = app.sign(&slug, &signer(i)).await;
                    match answer.status().as_u16() {
                        202 => told.receipts.push(receipt(answer).await.unwrap()),
                        503 if retry_after(&answer) > 0 => told.unavailable += 1,
                        status => told.other.push(status),
                    }
                    i += 8;
                }
                told
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.kill(primary).await;
    // The replica takes over after the node timeout (1 s) and a vote.
    cluster.settled(5).await;
    let failed_over = Instant::now();
    assert_ne!(cluster.primary_of(&seen).await, primary);
    tokio::time::sleep(Duration::from_secs(1)).await;
    running.store(false, Ordering::Relaxed);
    let mut told = Told::default();
    for done in join_all(loops).await {
        let done = done.unwrap();
        told.receipts.extend(done.receipts);
        told.unavailable += done.unavailable;
        told.other.extend(done.other);
    }
    eprintln!(
        "primary killed: {} acknowledged, {} answered 503 with Retry-After",
        told.receipts.len(),
        told.unavailable
    );
    assert!(told.other.is_empty(), "other answers: {:?}", told.other);
    assert!(told.receipts.len() > 100, "signing went on");

    // Postgres holds every acknowledged signature, and the count agrees.
    let sql = ns.sql().await;
    assert_eq!(
        stored(&sql, &told.receipts).await,
        told.receipts.len() as i64
    );
    assert_eq!(rows(&sql).await, told.receipts.len() as i64);
    for app in [&a, &b] {
        count_reaches(app, &slug, told.receipts.len() as i64).await;
    }

    // The new primary serves the guard again: a signer seen after the
    // failover is caught at Redis by the other instance.
    wait_for(
        || async {
            let ready: Value = b.get_json("/readyz").await;
            ready["redis"] == "up"
        },
        "Redis up again",
    )
    .await;
    let marked = cluster.cardinality(&seen).await;
    assert_eq!(a.sign(&slug, &signer(1_000_000)).await.status(), 202);
    wait_for(
        || async { cluster.cardinality(&seen).await == marked + 1 },
        "the new signer seen",
    )
    .await;
    let written = metric(&b, "undersigned_batch_rows_sum").await;
    assert_eq!(b.sign(&slug, &again(1_000_000)).await.status(), 202);
    assert_eq!(metric(&b, "undersigned_batch_rows_sum").await, written);
    eprintln!("guard back {:?} after the failover", failed_over.elapsed());

    for app in [a, b] {
        Arc::into_inner(app).unwrap().stop().await;
    }
    drop(cluster);
    ns.clean().await;
}
