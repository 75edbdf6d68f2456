//! The layered limits: the in-process shield, then the Redis limits per address,
//! per email domain and per petition, each with its 429 and an accurate
//! Retry-After; forwarding headers believed only from trusted proxies; limits
//! shared by instances.

use std::time::Duration;

use reqwest::Response;
use serde_json::json;

use crate::support::{Namespace, TestApp, problem, retry_after, rows, signer};
use crate::support::{limit, limits};

/// Asserts a 429 for `limit` whose Retry-After lies in `seconds`.
async fn limited(r: Response, limit: &str, seconds: std::ops::RangeInclusive<u64>) {
    let wait = retry_after(&r);
    let body = problem(r, 429).await;
    assert_eq!(body["limit"], limit, "{body}");
    assert!(
        seconds.contains(&wait),
        "Retry-After {wait}, expected {seconds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_forwarding_header_does_not_bypass_the_address_limit() {
    let ns = Namespace::new();
    // No trusted proxies (the default): the socket's address is the client's.
    let app = TestApp::start(&ns, |c| c.ip_limit = limits("2/60s")).await;
    let slug = app.petition("spoofed").await;
    assert_eq!(
        app.sign_from(&slug, &signer(0), "203.0.113.1")
            .await
            .status(),
        202
    );
    assert_eq!(
        app.sign_from(&slug, &signer(1), "203.0.113.2")
            .await
            .status(),
        202
    );
    let r = app
        .http
        .post(app.url(&format!("/v1/petitions/{slug}/signatures")))
        .header("forwarded", "for=203.0.113.3")
        .header("x-forwarded-for", "203.0.113.3")
        .json(&signer(2))
        .send()
        .await
        .unwrap();
    limited(r, "address", 25..=30).await;
    assert_eq!(rows(&ns.sql().await).await, 2);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| {
        c.ip_limit = limits("2/60s");
        c.trusted_proxies = "127.0.0.1/32, ::1".parse().expect("proxies");
    })
    .await;
    let slug = app.petition("proxied").await;
    for (i, client) in ["198.51.100.1", "198.51.100.2", "198.51.100.1"]
        .iter()
        .enumerate()
    {
        assert_eq!(app.sign_from(&slug, &signer(i), client).await.status(), 202);
    }
    // A client prepending a fake hop is still known by the hop the proxy added,
    // and a Forwarded header of its own (the proxy writes X-Forwarded-For) is ignored.
    let r = app
        .sign_from(&slug, &signer(3), "192.0.2.99, 198.51.100.1")
        .await;
    limited(r, "address", 25..=30).await;
    let r = app
        .http
        .post(app.url(&format!("/v1/petitions/{slug}/signatures")))
        .header("forwarded", "for=192.0.2.77")
        .header("x-forwarded-for", "198.51.100.1")
        .json(&signer(3))
        .send()
        .await
        .unwrap();
    limited(r, "address", 25..=30).await;
    assert_eq!(rows(&ns.sql().await).await, 3);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_limit_and_a_sustained_limit_both_apply() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| c.ip_limit = limits("2/2s,3/1h")).await;
    let slug = app.petition("burst").await;
    assert_eq!(app.sign(&slug, &signer(0)).await.status(), 202);
    assert_eq!(app.sign(&slug, &signer(1)).await.status(), 202);
    // The burst is spent: one more after a second.
    limited(app.sign(&slug, &signer(2)).await, "address", 1..=1).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.sign(&slug, &signer(2)).await.status(), 202);
    // Three in an hour: the next one in twenty minutes, whatever the burst allows.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    limited(app.sign(&slug, &signer(3)).await, "address", 1190..=1200).await;
    assert_eq!(rows(&ns.sql().await).await, 3);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_domain_over_its_limit_gets_429_and_big_providers_are_exempt() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| {
        c.domain_limit = limit("2/1h");
        c.domain_limit_exempt = ["gmail.com".to_owned()].into();
    })
    .await;
    let slug = app.petition("domains").await;
    let at = |i: usize, email: &str| {
        let mut s = signer(i);
        s["email"] = json!(email);
        s
    };
    assert_eq!(
        app.sign(&slug, &at(0, "a@fake-domain.test")).await.status(),
        202
    );
    assert_eq!(
        app.sign(&slug, &at(1, "b@FAKE-domain.test")).await.status(),
        202
    );
    limited(
        app.sign(&slug, &at(2, "c@fake-domain.test")).await,
        "email_domain",
        1790..=1800,
    )
    .await;
    assert_eq!(app.sign(&slug, &at(3, "d@other.test")).await.status(), 202);
    for i in 4..8 {
        let email = format!("signer.{i}@googlemail.com");
        assert_eq!(
            app.sign(&slug, &at(i, &email)).await.status(),
            202,
            "exempt"
        );
    }
    assert_eq!(rows(&ns.sql().await).await, 7);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_petition_over_its_overall_limit_gets_429() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| c.petition_limit = limit("3/1m")).await;
    let slug = app.petition("overall").await;
    for i in 0..3 {
        assert_eq!(app.sign(&slug, &signer(i)).await.status(), 202);
    }
    limited(app.sign(&slug, &signer(3)).await, "petition", 19..=20).await;
    let other = app.petition("elsewhere").await;
    assert_eq!(app.sign(&other, &signer(3)).await.status(), 202);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shield_turns_a_flood_away_before_reading_the_body() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| c.shield_limit = limit("2/10s")).await;
    let slug = app.petition("shielded").await;
    let url = app.url(&format!("/v1/petitions/{slug}/signatures"));
    assert_eq!(app.sign(&slug, &signer(0)).await.status(), 202);
    assert_eq!(
        app.post_raw(&url, Some("application/json"), "{")
            .await
            .status(),
        400
    );
    // A malformed body is not even read: the shield answers first.
    let r = app.post_raw(&url, Some("application/json"), "{").await;
    limited(r, "address", 5..=5).await;
    assert_eq!(rows(&ns.sql().await).await, 1);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_address_limit() {
    let ns = Namespace::new();
    let a = TestApp::start(&ns, |c| c.ip_limit = limits("2/60s")).await;
    let b = TestApp::start(&ns, |c| c.ip_limit = limits("2/60s")).await;
    let slug = a.petition("shared-limit").await;
    assert_eq!(a.sign(&slug, &signer(0)).await.status(), 202);
    assert_eq!(b.sign(&slug, &signer(1)).await.status(), 202);
    limited(a.sign(&slug, &signer(2)).await, "address", 25..=30).await;
    limited(b.sign(&slug, &signer(3)).await, "address", 25..=30).await;
    assert_eq!(rows(&ns.sql().await).await, 2);
    a.stop().await;
    b.stop().await;
    ns.clean().await;
}
