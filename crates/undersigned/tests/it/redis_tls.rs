//! Redis over TLS (`rediss://`), against a redis-server of the test's own
//! that speaks only TLS, with a certificate chain the test makes: the
//! service's duplicates and counts go through it when its CA is the one
//! named, and Redis is down to the service (which goes on with Postgres)
//! when the name reached is not the certificate's or the CA named signed
//! nothing of the server's.

use serde_json::{Value, json};

use crate::support::{Namespace, TestApp, count_reaches, private_redis_tls, signer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_its_ca_carries_the_guard_and_with_another_ca_is_refused() {
    let (_redis, url, certificates) = private_redis_tls().await;
    let ns = Namespace::new();
    let ca = certificates.path().join("ca.crt");
    let app = TestApp::start(&ns, |c| {
        c.redis_url = url.clone();
        c.redis_ca = Some(ca.clone());
    })
    .await;
    let ready: Value = app.get_json("/readyz").await;
    assert_eq!(ready["redis"], "up", "{ready}");
    let slug = app.petition("over-tls").await;
    for _ in 0..2 {
        assert_eq!(app.sign(&slug, &signer(0)).await.status(), 202);
    }
    assert_eq!(app.sign(&slug, &signer(1)).await.status(), 202);
    count_reaches(&app, &slug, 2).await;
    // The guard's keys are on the TLS server: it saw the signers.
    let client = redis::Client::build_with_tls(
        url.as_str(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(std::fs::read(&ca).unwrap()),
        },
    )
    .unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: i64 = redis::cmd("DBSIZE")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(keys > 0, "{keys} keys");
    app.stop().await;

    // The right CA, but a name the certificate does not hold: refused too.
    let by_name = url.replace("127.0.0.1", "localhost");
    let app = TestApp::start(&ns, |c| {
        c.redis_url = by_name.clone();
        c.redis_ca = Some(ca.clone());
    })
    .await;
    let ready: Value = app.get_json("/readyz").await;
    assert_eq!(ready["redis"], "down", "{ready}");
    app.stop().await;

    // A file that holds no certificate is refused before anything starts.
    let mut config = ns.config();
    config.redis_url = url.clone();
    config.redis_ca = Some(certificates.path().join("ca.key"));
    let refused = config.redis_root_certificate().err().map(|e| e.to_string());
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("no PEM certificate")),
        "{refused:?}"
    );

    // A CA that signed nothing of the server's: no handshake, Redis down,
    // and signing goes on with Postgres alone.
    let stranger = certificates.path().join("stranger.crt");
    let app = TestApp::start(&ns, |c| {
        c.redis_url = url.clone();
        c.redis_ca = Some(stranger.clone());
    })
    .await;
    let ready: Value = app.get_json("/readyz").await;
    assert_eq!(
        (ready["postgres"].clone(), ready["redis"].clone()),
        (json!("up"), json!("down"))
    );
    assert_eq!(app.sign(&slug, &signer(2)).await.status(), 202);
    count_reaches(&app, &slug, 3).await;
    // What the alert UndersignedRedisDown reads.
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("undersigned_redis_state{state=\"down\"} 1"),
        "{metrics}"
    );
    app.stop().await;
    ns.clean().await;
}
