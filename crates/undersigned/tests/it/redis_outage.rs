//! Without Redis, or with Redis gone mid-run, counts stay exact and nothing is lost.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::support::limits;
use crate::support::{Namespace, TestApp, again, private_redis, receipt, rows, signer, stored};

/// Signs all bodies concurrently; every one must be acknowledged.
async fn sign_all(app: &TestApp, slug: &str, bodies: &[Value]) -> Vec<uuid::Uuid> {
    let answers = join_all(bodies.iter().map(|b| app.sign(slug, b))).await;
    let mut receipts = Vec::new();
    for a in answers {
        assert_eq!(a.status(), 202);
        receipts.push(receipt(a).await.unwrap());
    }
    receipts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_counts_stay_exact() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| {
        c.redis_url = String::new();
        c.ip_limit = limits("3/60s");
    })
    .await;
    let ready: Value = app.get_json("/readyz").await;
    assert_eq!(ready["redis"], "disabled");
    let slug = app.petition("no-redis").await;
    // The in-process limiter stands in for Redis's.
    for i in 0..3 {
        assert_eq!(app.sign(&slug, &signer(i)).await.status(), 202);
    }
    assert_eq!(app.sign(&slug, &signer(3)).await.status(), 429);
    app.stop().await;

    let app = TestApp::start(&ns, |c| c.redis_url = String::new()).await;
    let mut bodies: Vec<Value> = (3..303).map(signer).collect();
    bodies.extend((0..100).map(again));
    let receipts = sign_all(&app, &slug, &bodies).await;
    let sql = ns.sql().await;
    assert_eq!(rows(&sql).await, 303);
    assert_eq!(app.count(&slug).await["count"], 303);
    // Of a signer and their concurrent duplicate, whichever committed first holds
    // the row: 300 new signers here, each with exactly one stored receipt.
    assert_eq!(stored(&sql, &receipts).await, 300);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopping_mid_run_loses_and_double_counts_nothing() {
    let (mut redis, url) = private_redis().await;
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| c.redis_url = url.clone()).await;
    let slug = app.petition("outage").await;
    let first = sign_all(&app, &slug, &(0..300).map(signer).collect::<Vec<_>>()).await;

    redis.start_kill().unwrap();
    redis.wait().await.unwrap();
    let mut bodies: Vec<Value> = (300..600).map(signer).collect();
    bodies.extend((0..150).map(again));
    bodies.extend((300..350).map(again));
    let second = sign_all(&app, &slug, &bodies).await;

    let ready: Value = app.get_json("/readyz").await;
    assert_eq!(
        (ready["postgres"].clone(), ready["redis"].clone()),
        (json!("up"), json!("down"))
    );
    let sql = ns.sql().await;
    assert_eq!(rows(&sql).await, 600);
    assert_eq!(stored(&sql, &first).await, 300);
    assert_eq!(stored(&sql, &second).await, 300);
    assert_eq!(app.count(&slug).await["count"], 600);
    app.stop().await;
    ns.clean().await;
}
