//! The OpenAPI document against the running service: every operation it names
//! reaches a handler (never the unknown-route answer, never 405).

use reqwest::Method;
use serde_json::Value;
use undersigned_http::documented_operations;

use crate::support::{Namespace, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_reaches_a_handler() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("contract").await;
    let admin = app.admin_token().await;

    let doc: Value = app.get_json("/v1/openapi.json").await;
    for (method, template) in documented_operations() {
        assert!(
            doc["paths"][template][method.to_lowercase()].is_object(),
            "{method} {template} is documented"
        );
        let path = template
            .replace("{slug}", &slug)
            .replace("{id}", "00000000-0000-0000-0000-000000000000");
        let r = app
            .http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(&path),
            )
            .bearer_auth(&admin)
            .header("origin", "https://elsewhere.example")
            .header("access-control-request-method", "POST")
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), 405, "{method} {path}");
    }
    let metrics = app.metrics_text().await;
    let unknown: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("undersigned_http_requests_total{route=\"unknown\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(
        unknown, 0.0,
        "a documented operation fell through to no route"
    );
    app.stop().await;
    ns.clean().await;
}
