//! A signer who signed already is answered like a new one, and as late: the
//! answer waits for a commit, so a duplicate cannot be told apart by timing.

use std::time::Duration;

use crate::support::{Namespace, TestApp, signer};

/// Waits until the petition's seen set in Redis holds `n` signers, so that
/// the next repeat is caught by Redis rather than by the insert.
pub(crate) async fn seen_reaches(ns: &Namespace, petition: i64, n: usize) {
    let client = redis::Client::open(crate::support::REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{{{}:p:{petition}}}:seen", ns.prefix);
    for _ in 0..200 {
        let members: usize = redis::cmd("SCARD")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if members >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{key} never held {n} signers");
}

/// A commit count from the service's metrics.
async fn commits(app: &TestApp) -> u64 {
    let text = app.metrics_text().await;
    text.lines()
        .find_map(|l| l.strip_prefix("undersigned_batch_commit_seconds_count "))
        .map_or(0, |v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_signer_caught_by_redis_is_answered_after_a_commit() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("timing").await;
    assert_eq!(app.sign(&slug, &signer(1)).await.status(), 202);
    seen_reaches(&ns, crate::support::petition_id(&ns, &slug).await, 1).await;

    let before = commits(&app).await;
    assert_eq!(app.sign(&slug, &signer(1)).await.status(), 202);
    // The commit's metric is recorded before any of its signers is answered.
    assert_eq!(
        commits(&app).await - before,
        1,
        "one commit, writing nothing"
    );
    assert_eq!(app.count(&slug).await["count"], 1);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_signer_waits_for_the_commit_under_way() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| c.writers = 1).await;
    let slug = app.petition("timing").await;
    assert_eq!(app.sign(&slug, &signer(1)).await.status(), 202);
    seen_reaches(&ns, crate::support::petition_id(&ns, &slug).await, 1).await;

    // The only writer is held up by a lock on the table a new signer goes to.
    let sql = ns.sql().await;
    sql.batch_execute("BEGIN; LOCK TABLE signatures IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let url = app.url(&format!("/v1/petitions/{slug}/signatures"));
    let sign_in_background = |i: usize| {
        let (http, url) = (app.http.clone(), url.clone());
        tokio::spawn(async move {
            http.post(url)
                .json(&signer(i))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let new = sign_in_background(2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let repeat = sign_in_background(1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !repeat.is_finished(),
        "the repeat was answered before any commit"
    );
    assert!(!new.is_finished());

    sql.batch_execute("COMMIT").await.unwrap();
    assert_eq!(repeat.await.unwrap(), 202);
    assert_eq!(new.await.unwrap(), 202);
    assert_eq!(app.count(&slug).await["count"], 2);
    app.stop().await;
    ns.clean().await;
}
