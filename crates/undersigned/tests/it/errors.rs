//! Every error status, each with its problem+json body; and retries by id.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::limits;
use crate::support::{Namespace, TestApp, problem, problem_fields, receipt, rows, signer};

fn sign_url(app: &TestApp, slug: &str) -> String {
    app.url(&format!("/v1/petitions/{slug}/signatures"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_problems_and_lose_nothing() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("errors").await;
    let url = sign_url(&app, &slug);
    assert_eq!(app.sign(&slug, &signer(0)).await.status(), 202);

    // 400: not JSON, and JSON that is not an object.
    let r = app
        .post_raw(&url, Some("application/json"), "{\"full_name\":")
        .await;
    problem(r, 400).await;
    let r = app.post_raw(&url, Some("application/json"), "[1,2]").await;
    problem(r, 400).await;

    // 404: no such petition, and no such route.
    problem(app.sign("nope", &signer(1)).await, 404).await;
    problem(
        app.http.get(app.url("/v2/anything")).send().await.unwrap(),
        404,
    )
    .await;

    // 405 with Allow.
    let r = app.http.put(&url).send().await.unwrap();
    assert_eq!(r.headers()["allow"], "GET, HEAD, POST, OPTIONS");
    problem(r, 405).await;

    // 413: over 16 KiB, declared or not.
    let big =
        json!({"full_name": "x".repeat(17 * 1024), "email": "a@example.org", "country": "NL"});
    problem(app.sign(&slug, &big).await, 413).await;

    // 415: neither JSON nor a form.
    let r = app.post_raw(&url, Some("text/plain"), "hello").await;
    problem(r, 415).await;
    let r = app.post_raw(&url, None, "no content type").await;
    problem(r, 415).await;

    // 422: each bad field named, with its reason.
    let bad = json!({"full_name": " ", "email": "not-an-address", "country": "XX", "signer_kind": "robot",
                     "consent_updates": "perhaps", "id": "nope", "city": 12});
    let body = problem(app.sign(&slug, &bad).await, 422).await;
    let errors: Vec<(String, String)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().into(),
                e["code"].as_str().unwrap().into(),
            )
        })
        .collect();
    for expected in [
        ("city", "not_a_string"),
        ("full_name", "required"),
        ("email", "invalid"),
        ("country", "unknown_country"),
        ("signer_kind", "invalid"),
        ("consent_updates", "invalid"),
        ("id", "invalid"),
    ] {
        assert!(
            errors.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} in {errors:?}"
        );
    }
    let body = problem(app.sign(&slug, &json!({})).await, 422).await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 3, "{body}");

    // What was accepted before is still there, and counted once.
    assert_eq!(app.count(&slug).await["count"], 1);
    assert_eq!(rows(&ns.sql().await).await, 1);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_say_nothing_or_deface_get_422_with_the_reason() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("names").await;
    let url = sign_url(&app, &slug);
    let zalgo = format!("a{}", "\u{301}".repeat(199));

    let mut invisible = signer(0);
    invisible["full_name"] = json!("\u{200B}\u{200E}\u{61C}\u{FEFF}\u{E0041}\u{E007F}");
    invisible["signer_kind"] = json!("organization");
    invisible["organization"] = json!(zalgo);
    let body = problem(app.sign(&slug, &invisible).await, 422).await;
    assert_eq!(
        problem_fields(&body),
        [
            ("full_name".to_owned(), "no_letter".to_owned()),
            ("organization".to_owned(), "too_many_marks".to_owned())
        ]
    );

    let form = app
        .http
        .post(&url)
        .form(&[
            ("full_name", zalgo.as_str()),
            ("email", "form@example.org"),
            ("country", "NL"),
        ])
        .send()
        .await
        .unwrap();
    let body = problem(form, 422).await;
    assert_eq!(
        problem_fields(&body),
        [("full_name".to_owned(), "too_many_marks".to_owned())]
    );
    assert_eq!(rows(&ns.sql().await).await, 0);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_are_not_utf8_get_400_alike_in_a_form_and_in_json() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("not-utf8").await;
    let url = sign_url(&app, &slug);
    let form = app
        .post_raw(
            &url,
            Some("application/x-www-form-urlencoded"),
            "full_name=%FF%FE&email=form%40example.org&country=NL",
        )
        .await;
    let form = problem(form, 400).await;
    assert_eq!(form["type"], "/problems/malformed-body");
    assert_eq!(
        form["detail"],
        "The field \"full_name\" is not valid UTF-8."
    );

    let json = app
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(
            &b"{\"full_name\":\"\xFF\xFE\",\"email\":\"json@example.org\",\"country\":\"NL\"}"[..],
        )
        .send()
        .await
        .unwrap();
    assert_eq!(problem(json, 400).await["type"], form["type"]);

    assert_eq!(app.count(&slug).await["count"], 0);
    assert_eq!(rows(&ns.sql().await).await, 0);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_petition_that_is_not_open_refuses_signatures() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let token = app.admin_token().await;
    // Closed before anything reads it, so no cached copy says "open".
    let r = app
        .http
        .post(app.url("/v1/petitions"))
        .bearer_auth(&token)
        .json(&json!({"slug": "closed", "title": "Closed", "text": "Over.", "goal": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    ns.sql()
        .await
        .execute("UPDATE petitions SET status = 'closed'", &[])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    problem(app.sign("closed", &signer(0)).await, 409).await;
    assert_eq!(rows(&ns.sql().await).await, 0);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_petitions_needs_an_admin_token_and_valid_fields() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let url = app.url("/v1/petitions");
    let petition = json!({"slug": "p", "title": "T", "text": "Body", "goal": 100, "locale": "nl"});
    let r = app.http.post(&url).json(&petition).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    problem(r, 401).await;
    problem(
        app.http
            .post(&url)
            .bearer_auth("us_wrong")
            .json(&petition)
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;

    let token = app.admin_token().await;
    let r = app
        .http
        .post(&url)
        .bearer_auth(&token)
        .json(&petition)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["location"], "/v1/petitions/p");
    let created: Value = r.json().await.unwrap();
    assert_eq!(
        (
            created["status"].clone(),
            created["locale"].clone(),
            created["count"].clone()
        ),
        (json!("open"), json!("nl"), json!(0))
    );

    let again = problem(
        app.http
            .post(&url)
            .bearer_auth(&token)
            .json(&petition)
            .send()
            .await
            .unwrap(),
        409,
    )
    .await;
    assert_eq!(
        again["errors"][0],
        json!({"field": "slug", "code": "taken"})
    );
    let bad = json!({"slug": "Not A Slug", "title": "", "goal": "many"});
    let body = problem(
        app.http
            .post(&url)
            .bearer_auth(&token)
            .json(&bad)
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields.len(), 4, "{body}");
    for f in ["slug", "title", "text", "goal"] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }

    let shown: Value = app.get_json("/v1/petitions/p").await;
    for key in ["slug", "title", "text", "goal", "count", "status"] {
        assert!(shown.get(key).is_some(), "{key} in {shown}");
    }
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_over_its_limit_gets_429_with_retry_after() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| c.ip_limit = limits("2/60s")).await;
    let slug = app.petition("limited").await;
    assert_eq!(app.sign(&slug, &signer(0)).await.status(), 202);
    assert_eq!(app.sign(&slug, &signer(1)).await.status(), 202);
    let r = app.sign(&slug, &signer(2)).await;
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (25..=30).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    problem(r, 429).await;
    // Limits are per petition.
    let other = app.petition("other").await;
    assert_eq!(app.sign(&other, &signer(2)).await.status(), 202);
    assert_eq!(rows(&ns.sql().await).await, 3);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_and_keeps_what_it_accepted() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| {
        c.writers = 1;
        c.batch_max = 1;
        c.queue_capacity = 1;
    })
    .await;
    let slug = app.petition("busy").await;
    // Hold the writer inside its transaction: it waits on this lock.
    let mut blocker = ns.sql().await;
    let tx = blocker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE signatures IN EXCLUSIVE MODE")
        .await
        .unwrap();

    let first = tokio::spawn({
        let (http, url) = (app.http.clone(), sign_url(&app, &slug));
        async move { http.post(url).json(&signer(0)).send().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await; // taken by the writer
    let second = tokio::spawn({
        let (http, url) = (app.http.clone(), sign_url(&app, &slug));
        async move { http.post(url).json(&signer(1)).send().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await; // waiting in the queue
    let third = app.sign(&slug, &signer(2)).await;
    assert_eq!(third.headers()["retry-after"], "1");
    problem(third, 503).await;

    tx.rollback().await.unwrap();
    let first = receipt(first.await.unwrap()).await.expect("first accepted");
    let second = receipt(second.await.unwrap())
        .await
        .expect("second accepted");
    let sql = ns.sql().await;
    assert_eq!(crate::support::stored(&sql, &[first, second]).await, 2);
    assert_eq!(rows(&sql).await, 2);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_the_same_id_get_the_same_receipt() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("retries").await;
    let id = Uuid::new_v4();
    let mut body = signer(0);
    body["id"] = json!(id.to_string());
    let receipts = futures_util::future::join_all((0..5).map(|_| app.sign(&slug, &body))).await;
    for r in receipts {
        assert_eq!(receipt(r).await, Some(id));
    }
    assert_eq!(receipt(app.sign(&slug, &body).await).await, Some(id));
    assert_eq!(app.count(&slug).await["count"], 1);
    let sql = ns.sql().await;
    assert_eq!(rows(&sql).await, 1);

    // The same id for somebody else is a client bug, not a retry: refuse it.
    let mut other = signer(1);
    other["id"] = json!(id.to_string());
    let body = problem(app.sign(&slug, &other).await, 409).await;
    assert_eq!(
        body["errors"][0],
        json!({"field": "id", "code": "already_used"})
    );
    assert_eq!(rows(&sql).await, 1);

    // A duplicate without an id answers like a new signature, with a fresh receipt.
    let dup = receipt(app.sign(&slug, &signer(0)).await).await.unwrap();
    assert_ne!(dup, id);
    assert_eq!(app.count(&slug).await["count"], 1);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_endpoints_answer() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("ops").await;
    assert_eq!(app.sign(&slug, &signer(0)).await.status(), 202);
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready: Value = app.get_json("/readyz").await;
    assert_eq!(
        ready,
        json!({"status": "ready", "postgres": "up", "redis": "up"})
    );
    let metrics = app.metrics_text().await;
    for name in [
        "undersigned_signatures_total{outcome=\"accepted\"} 1",
        "undersigned_http_requests_total{route=\"sign\",status=\"202\"} 1",
        "undersigned_http_request_duration_seconds_bucket{route=\"sign\"",
        "undersigned_batch_rows_bucket",
        "undersigned_batch_commit_seconds_bucket",
        "undersigned_batch_retries_total{reason=\"deadlock\"} 0",
        "undersigned_queue_depth",
        // What the alerts in deploy/prometheus/alerts.yaml read.
        "undersigned_queue_capacity 50000",
        "undersigned_redis_state{state=\"up\"} 1",
        "undersigned_redis_state{state=\"down\"} 0",
        "undersigned_rate_limited_total 0",
        "process_resident_memory_bytes",
    ] {
        assert!(metrics.contains(name), "{name} missing from metrics");
    }
    // Metrics never carry signer data.
    assert!(!metrics.contains("example.org"));
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_failure_says_a_read_was_not_read_and_a_change_not_made() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("broken").await;
    let admin = app.admin_token().await;
    // The events' table goes missing under the running service.
    ns.sql()
        .await
        .batch_execute("ALTER TABLE events RENAME TO events_gone")
        .await
        .unwrap();
    let events = app.url(&format!("/v1/petitions/{slug}/events"));

    let read = app
        .http
        .get(&events)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(read.headers()["retry-after"], "1");
    let read = problem(read, 503).await;
    assert_eq!(
        (&read["type"], &read["detail"]),
        (
            &json!("/problems/unavailable"),
            &json!("The data could not be read now; please retry.")
        )
    );

    let now = chrono::Utc::now();
    let change = app
        .http
        .post(&events)
        .bearer_auth(&admin)
        .json(&json!({"name": "Stand", "starts_at": now,
                      "ends_at": now + chrono::Duration::hours(2)}))
        .send()
        .await
        .unwrap();
    let change = problem(change, 503).await;
    assert_eq!(
        change["detail"],
        "The change could not be saved now and was not made; please retry."
    );
    app.stop().await;
    ns.clean().await;
}
