//! The operators' listener: `/metrics` (which names email domains past a
//! threshold) served apart from the public address, the health checks on both.

use std::net::SocketAddr;

use tokio::net::TcpStream;

use crate::support::{Namespace, TestApp, problem};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_operator_listener_metrics_are_served_there_and_not_publicly() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| {
        c.operator_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    let operator = app.operator.clone().expect("an operator listener");
    let get = |url: String| app.http.get(url).send();

    problem(get(app.url("/metrics")).await.unwrap(), 404).await;
    let r = get(format!("{operator}/metrics")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("undersigned_http_requests_total{route=\"metrics\",status=\"200\"}")
    );
    for base in [&app.base, &operator] {
        for path in ["/healthz", "/readyz"] {
            let r = get(format!("{base}{path}")).await.unwrap();
            assert_eq!(r.status(), 200, "{base}{path}");
        }
    }
    // Only the operators' endpoints: the API stays on the public address.
    problem(
        get(format!("{operator}/v1/openapi.json")).await.unwrap(),
        404,
    )
    .await;
    assert_eq!(
        get(app.url("/v1/openapi.json")).await.unwrap().status(),
        200
    );

    let address = operator.trim_start_matches("http://").to_owned();
    app.stop().await;
    assert!(
        TcpStream::connect(&address).await.is_err(),
        "the operators' listener closed on shutdown"
    );
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_metrics_token_only_its_bearer_reads_the_metrics() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| {
        c.metrics_token = Some("the scraper's own token".parse().expect("a long token"));
    })
    .await;
    let metrics = || app.http.get(app.url("/metrics"));
    problem(metrics().send().await.unwrap(), 401).await;
    let wrong = metrics().bearer_auth("the scraper's own toke").send();
    problem(wrong.await.unwrap(), 401).await;
    let r = metrics()
        .bearer_auth("the scraper's own token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("undersigned_http_requests_total")
    );
    // The health checks need no token.
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.stop().await;
    ns.clean().await;
}
