//! Two instances on one Postgres and one Redis.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::support::{Namespace, TestApp, counted_on_both, rows, signer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_across_instances_are_caught_and_counters_converge_within_a_second() {
    let ns = Namespace::new();
    let a = TestApp::start(&ns, |_| {}).await;
    let b = TestApp::start(&ns, |_| {}).await;
    let slug = a.petition("shared").await;

    // Each signer signs once on A and once, written differently, on B.
    let on_b = |i: usize| -> Value {
        let mut s = signer(i);
        s["email"] = json!(format!(" {} ", s["email"].as_str().unwrap().to_uppercase()));
        s
    };
    let (app_a, app_b) = (a, b);
    let (a, b, slug) = (&app_a, &app_b, slug.as_str());
    let answers = join_all((0..300).map(|i| async move {
        let (first, second) = (signer(i), on_b(i));
        let (x, y) = tokio::join!(a.sign(slug, &first), b.sign(slug, &second));
        (x.status(), y.status())
    }))
    .await;
    assert!(answers.iter().all(|&(x, y)| x == 202 && y == 202));
    let more = join_all((300..400).map(|i| async move { b.sign(slug, &signer(i)).await })).await;
    assert!(more.iter().all(|r| r.status() == 202));
    let acknowledged = Instant::now();

    assert_eq!(rows(&ns.sql().await).await, 400);
    counted_on_both((a, b), slug, 400, acknowledged, Duration::from_secs(1)).await;
    app_a.stop().await;
    app_b.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_migrating_together_both_start() {
    let ns = Namespace::new();
    let (a, b) = tokio::join!(TestApp::start(&ns, |_| {}), TestApp::start(&ns, |_| {}));
    let slug = a.petition("together").await;
    assert_eq!(b.sign(&slug, &signer(0)).await.status(), 202);
    a.stop().await;
    b.stop().await;
    ns.clean().await;
}
