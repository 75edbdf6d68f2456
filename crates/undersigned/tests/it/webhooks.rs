//! Webhooks (issue 23): a local endpoint checks each message with the
//! Standard Webhooks algorithm, sees a message again with the same id after
//! a 500 and a timeout, sees nothing of a batch that rolled back, hears of a
//! milestone once however many instances sign concurrently, and of
//! withdrawals, invalidations and closing; targets inside the network are
//! refused, at creation and at delivery; a dead endpoint holds only its own
//! messages; personal data only for consenting signers, to an admin's
//! webhook that asked.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use undersigned::Config;
use undersigned_store::Role;

use crate::support::{
    Namespace, TestApp, petition_id, problem, problem_fields, receipt, scoped, signer,
};
use crate::webhook_receiver::{Receiver, Reply};

/// Deliveries to 127.0.0.1, tried for 300 ms, retried after 100 ms, as
/// fast as the endpoint answers.
fn local_webhooks(c: &mut Config) {
    c.webhook_allow_private = true;
    c.webhook_timeout_ms = 300;
    c.webhook_first_retry_ms = 100;
    c.webhook_rate = None;
}

/// Creates a webhook with `token`; its answer (with the secret).
async fn subscribe(app: &TestApp, token: &str, body: Value) -> Value {
    let r = app
        .http
        .post(app.url("/v1/webhooks"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    r.json().await.unwrap()
}

async fn deliveries(app: &TestApp, token: &str, id: &str) -> Value {
    app.get_json_as(&format!("/v1/webhooks/{id}/deliveries"), token)
        .await
}

/// An instance delivering to 127.0.0.1, a petition counting at once, an
/// admin's token and an endpoint that accepts every message, subscribed to
/// `events` (of every petition).
async fn hooked(slug: &str, events: Value) -> (Namespace, TestApp, String, Receiver) {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, local_webhooks).await;
    app.petition(slug).await;
    let admin = app.admin_token().await;
    let endpoint = Receiver::accepting().await;
    subscribe(&app, &admin, json!({"url": endpoint.url, "events": events})).await;
    (ns, app, admin, endpoint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_signed_and_retried_with_the_same_id_after_a_500_and_a_timeout() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, local_webhooks).await;
    let slug = app.petition("hooked").await;
    let admin = app.admin_token().await;
    // Each message: a 500 first, then no answer in time, then accepted.
    let endpoint = Receiver::start(|try_| match try_ {
        1 => Reply::Status(500),
        2 => Reply::Hang(Duration::from_secs(2)),
        _ => Reply::Status(204),
    })
    .await;
    let hook = subscribe(
        &app,
        &admin,
        json!({"url": endpoint.url, "events": ["signature.counted"], "petition": slug}),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(hook["events"], json!(["signature.counted"]));
    assert_eq!(hook["petition"], json!(slug));

    let mut receipts = BTreeSet::new();
    for i in 0..3 {
        let mut body = signer(i);
        body["consent_updates"] = json!(true);
        receipts.insert(
            receipt(app.sign(&slug, &body).await)
                .await
                .unwrap()
                .to_string(),
        );
    }
    let delivered = endpoint.wait_delivered(3).await;
    let now = chrono::Utc::now().timestamp();
    let mut tries: BTreeMap<String, Vec<Reply>> = BTreeMap::new();
    for r in endpoint.received() {
        assert!(r.verifies(secret), "a try of {} does not verify", r.id);
        assert!(!r.verifies("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        assert!((now - r.timestamp).abs() < 60, "timestamp {}", r.timestamp);
        tries.entry(r.id.clone()).or_default().push(r.answered);
    }
    assert_eq!(tries.len(), 3, "one id per message: {tries:?}");
    for (id, answers) in &tries {
        assert!(id.starts_with("msg_"));
        assert!(
            matches!(
                answers[..],
                [Reply::Status(500), Reply::Hang(_), Reply::Status(204)]
            ),
            "{id}: {answers:?}"
        );
    }
    let heard: BTreeSet<String> = delivered
        .iter()
        .map(|r| {
            assert_eq!(r.kind(), "signature.counted");
            assert_eq!(r.body["data"]["petition"], json!(slug));
            // The webhook did not ask for personal data: none, consent or not.
            assert!(r.body["data"].get("person").is_none(), "{}", r.body);
            assert!(!String::from_utf8_lossy(&r.raw).contains("example.org"));
            r.body["data"]["receipt"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(heard, receipts);

    // Delivered messages leave no row; the endpoint's tally says so.
    let id = hook["id"].as_str().unwrap();
    for _ in 0..50 {
        if deliveries(&app, &admin, id).await["delivered"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed = deliveries(&app, &admin, id).await;
    assert_eq!(listed["delivered"], 3, "{listed}");
    assert_eq!(listed["pending"], 0);
    assert_eq!(listed["deliveries"], json!([]));
    // The events every cursor passed go at the next sweep.
    let store = undersigned_store::Store::connect(&ns.database_url(), 1).unwrap();
    store.sweep_webhook_events().await.unwrap();
    let events: i64 = ns
        .sql()
        .await
        .query_one("SELECT count(*) FROM webhook_events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 0);
    assert_eq!(
        app.metric("undersigned_webhook_deliveries_total{outcome=\"retried\"}")
            .await,
        Some(6.0)
    );
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_reported_for_a_batch_that_rolled_back() {
    let slug = "rolled-back";
    let (ns, app, _, endpoint) = hooked(slug, json!(["signature.counted"])).await;
    // Postgres refuses this signer's row: their batch's transaction rolls
    // back whole, its messages with it.
    ns.sql()
        .await
        .batch_execute(
            "CREATE FUNCTION refuse_ada() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'refused for the test'; END $$;
             CREATE TRIGGER refuse_ada BEFORE INSERT ON signatures FOR EACH ROW
                 WHEN (NEW.full_name = 'Ada Rolled Back') EXECUTE FUNCTION refuse_ada();",
        )
        .await
        .unwrap();
    let refused = app
        .sign(
            slug,
            &json!({"full_name": "Ada Rolled Back", "email": "ada@example.org", "country": "GB"}),
        )
        .await;
    assert!(refused.status().is_server_error(), "{}", refused.status());
    let counted = receipt(app.sign(slug, &signer(1)).await).await.unwrap();
    let delivered = endpoint.wait_delivered(1).await;
    // Time for a stray message to arrive, had one been queued.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(endpoint.received().len(), 1, "{:?}", endpoint.received());
    assert_eq!(delivered[0].body["data"]["receipt"], json!(counted));
    let queued: i64 = ns
        .sql()
        .await
        .query_one("SELECT count(*) FROM webhook_deliveries", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(queued, 0);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_milestone_is_announced_once_when_two_instances_sign_past_it() {
    let ns = Namespace::new();
    let a = TestApp::start(&ns, local_webhooks).await;
    let b = TestApp::start(&ns, local_webhooks).await;
    let slug = a
        .petition_with(
            "milestones",
            json!({"verification": "none", "milestones": [100, 50, 100000]}),
        )
        .await;
    assert_eq!(
        a.get_json(&format!("/v1/petitions/{slug}")).await["milestones"],
        json!([50, 100, 100000])
    );
    let admin = a.admin_token().await;
    let endpoint = Receiver::accepting().await;
    let hook = subscribe(
        &a,
        &admin,
        json!({"url": endpoint.url, "events": ["petition.milestone"], "petition": slug}),
    )
    .await;
    let statuses: Vec<u16> = futures_util::stream::iter(0..120)
        .map(|i| {
            let (app, slug) = (if i % 2 == 0 { &a } else { &b }, &slug);
            async move { app.sign(slug, &signer(i)).await.status().as_u16() }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    let delivered = endpoint.wait_delivered(2).await;
    // Both instances look every second: time for a second announcement.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let heard: Vec<(i64, i64)> = endpoint
        .received()
        .iter()
        .map(|r| {
            assert!(r.verifies(hook["secret"].as_str().unwrap()));
            assert_eq!(r.kind(), "petition.milestone");
            let data = &r.body["data"];
            (
                data["milestone"].as_i64().unwrap(),
                data["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(heard.len(), 2, "{heard:?}");
    let milestones: BTreeSet<i64> = heard.iter().map(|h| h.0).collect();
    assert_eq!(milestones, BTreeSet::from([50, 100]));
    assert!(heard.iter().all(|(m, count)| count >= m && *count <= 120));
    assert_eq!(delivered.len(), 2);
    a.stop().await;
    b.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_hear_of_withdrawals_invalidations_and_closing() {
    let slug = "lifecycle";
    let events = json!([
        "signature.counted",
        "signature.withdrawn",
        "signature.invalidated",
        "petition.closed"
    ]);
    let (ns, app, admin, endpoint) = hooked(slug, events).await;
    let kept = receipt(app.sign(slug, &signer(0)).await).await.unwrap();
    let invalid = receipt(app.sign(slug, &signer(1)).await).await.unwrap();
    let erased = receipt(app.sign(slug, &signer(2)).await).await.unwrap();
    endpoint.wait_delivered(3).await;

    let r = app
        .http
        .post(app.url(&format!("/v1/petitions/{slug}/invalidations")))
        .bearer_auth(&admin)
        .json(&json!({"receipts": [invalid], "reason": "a bot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    endpoint.wait_delivered(4).await;
    let r = app
        .http
        .post(app.url("/v1/erasures"))
        .bearer_auth(&admin)
        .json(&json!({"email": signer(2)["email"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    endpoint.wait_delivered(5).await;
    let r = app
        .http
        .patch(app.url(&format!("/v1/petitions/{slug}")))
        .bearer_auth(&admin)
        .json(&json!({"status": "closed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let delivered = endpoint.wait_delivered(6).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let heard: Vec<(String, Value)> = endpoint
        .received()
        .iter()
        .map(|r| (r.kind().to_owned(), r.body["data"]["receipt"].clone()))
        .collect();
    assert_eq!(heard.len(), 6, "{heard:?}");
    assert_eq!(
        heard[3..],
        [
            ("signature.invalidated".to_owned(), json!(invalid)),
            ("signature.withdrawn".to_owned(), json!(erased)),
            ("petition.closed".to_owned(), Value::Null),
        ]
    );
    assert!(heard[..3].iter().all(|(k, _)| k == "signature.counted"));
    assert!(heard.iter().any(|(_, r)| *r == json!(kept)));
    assert!(delivered[5].body["data"]["closed_at"].is_string());
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_goes_only_to_an_admins_webhook_that_asked_and_only_of_consenting_signers() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, local_webhooks).await;
    let slug = app.petition("personal").await;
    let admin = app.admin_token().await;
    let organizer = app
        .token(scoped(Role::Organizer, petition_id(&ns, &slug).await, &[]))
        .await;
    let endpoint = Receiver::accepting().await;
    let mut body = json!({"url": endpoint.url, "events": ["signature.counted"],
                          "petition": slug, "include_personal_data": true});
    let refused = app
        .http
        .post(app.url("/v1/webhooks"))
        .bearer_auth(&organizer)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    subscribe(&app, &admin, body.clone()).await;
    body["include_personal_data"] = json!(false);
    subscribe(&app, &organizer, body).await;

    let mut informed = signer(0);
    informed["consent_updates"] = json!(true);
    informed["locale"] = json!("fr");
    app.sign(&slug, &informed).await;
    app.sign(&slug, &signer(1)).await;
    // Two messages for each signature: one per webhook.
    let delivered = endpoint.wait_delivered(4).await;
    let people: Vec<&Value> = delivered
        .iter()
        .filter_map(|r| r.body["data"].get("person"))
        .collect();
    assert_eq!(people.len(), 1, "{delivered:?}");
    assert_eq!(people[0]["email"], informed["email"]);
    assert_eq!(people[0]["full_name"], informed["full_name"]);
    assert_eq!(people[0]["locale"], "fr");
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_manage_which_webhooks() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, local_webhooks).await;
    let ours = app.petition("ours").await;
    let theirs = app.petition("theirs").await;
    let admin = app.admin_token().await;
    let organizer = app
        .token(scoped(Role::Organizer, petition_id(&ns, &ours).await, &[]))
        .await;
    let coordinator = app
        .token(scoped(
            Role::Coordinator,
            petition_id(&ns, &ours).await,
            &["FR"],
        ))
        .await;
    let endpoint = Receiver::accepting().await;
    let post = |token: &str, body: Value| {
        app.http
            .post(app.url("/v1/webhooks"))
            .bearer_auth(token.to_owned())
            .json(&body)
            .send()
    };
    let events = json!(["petition.closed"]);
    for (token, body, status) in [
        (
            &organizer,
            json!({"url": endpoint.url, "events": events}),
            403,
        ),
        (
            &organizer,
            json!({"url": endpoint.url, "events": events, "petition": theirs}),
            403,
        ),
        (
            &coordinator,
            json!({"url": endpoint.url, "events": events, "petition": ours}),
            403,
        ),
    ] {
        assert_eq!(post(token, body).await.unwrap().status(), status);
    }
    let no_token = app.http.get(app.url("/v1/webhooks")).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    let bad = post(
        &admin,
        json!({"url": "not a url", "events": ["signature.signed"], "petition": "nowhere"}),
    )
    .await
    .unwrap();
    let mut fields = problem_fields(&problem(bad, 422).await);
    fields.sort();
    assert_eq!(
        fields,
        [
            ("events".to_owned(), "unknown_event".to_owned()),
            ("petition".to_owned(), "unknown".to_owned()),
            ("url".to_owned(), "invalid".to_owned()),
        ]
    );

    let mine = subscribe(
        &app,
        &organizer,
        json!({"url": endpoint.url, "events": events, "petition": ours}),
    )
    .await;
    let everything = subscribe(&app, &admin, json!({"url": endpoint.url, "events": events})).await;
    // An admin's webhook with signers' data on the organizer's petition is
    // the admin's alone.
    let personal = subscribe(
        &app,
        &admin,
        json!({"url": endpoint.url, "events": events, "petition": ours,
               "include_personal_data": true}),
    )
    .await;
    let list = |token: String| {
        let app = &app;
        async move {
            let answer = app.get_json_as("/v1/webhooks", &token).await;
            answer["webhooks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["id"].clone())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(organizer.clone()).await, [mine["id"].clone()]);
    assert_eq!(
        list(admin.clone()).await,
        [
            mine["id"].clone(),
            everything["id"].clone(),
            personal["id"].clone()
        ]
    );
    // Nobody sees a secret again.
    assert!(app.get_json("/v1/openapi.json").await.is_object());
    let listed = app.get_json_as("/v1/webhooks", &admin).await;
    assert!(listed["webhooks"][0].get("secret").is_none());
    // An organizer's test message, and a webhook they may not see is unknown.
    let tested: Value = app
        .http
        .post(app.url(&format!(
            "/v1/webhooks/{}/test",
            mine["id"].as_str().unwrap()
        )))
        .bearer_auth(&organizer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tested["delivered"], true, "{tested}");
    assert_eq!(tested["status"], 204);
    let test = endpoint.wait_delivered(1).await;
    assert_eq!(test[0].kind(), "webhook.test");
    assert_eq!(test[0].id, tested["webhook_id"].as_str().unwrap());
    assert!(test[0].verifies(mine["secret"].as_str().unwrap()));
    let delete = |token: &str, id: &Value| {
        app.http
            .delete(app.url(&format!("/v1/webhooks/{}", id.as_str().unwrap())))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(
        delete(&organizer, &everything["id"])
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(delete(&organizer, &mine["id"]).await.unwrap().status(), 204);
    assert_eq!(delete(&organizer, &mine["id"]).await.unwrap().status(), 404);
    assert_eq!(
        delete(&organizer, &personal["id"]).await.unwrap().status(),
        404
    );
    // Ten webhooks on a petition at most.
    for _ in 0..9 {
        subscribe(
            &app,
            &organizer,
            json!({"url": endpoint.url, "events": events, "petition": ours}),
        )
        .await;
    }
    let eleventh = post(
        &organizer,
        json!({"url": endpoint.url, "events": events, "petition": ours}),
    )
    .await
    .unwrap();
    assert_eq!(
        problem_fields(&problem(eleventh, 409).await),
        [("petition".to_owned(), "too_many_webhooks".to_owned())]
    );
    let audited: i64 = ns
        .sql()
        .await
        .query_one(
            "SELECT count(*) FROM audit_log WHERE action IN ('webhook.create', 'webhook.delete')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audited, 13);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_inside_the_network_are_refused_at_creation_and_at_delivery() {
    let ns = Namespace::new();
    let strict = TestApp::start(&ns, |c| {
        c.webhook_timeout_ms = 300;
        c.webhook_first_retry_ms = 100;
    })
    .await;
    let admin = strict.admin_token().await;
    for (url, code) in [
        ("http://crm.example.org/hooks", "https_required"),
        ("https://127.0.0.1/hooks", "private_address"),
        ("https://10.1.2.3/hooks", "private_address"),
        (
            "https://169.254.169.254/latest/meta-data/",
            "private_address",
        ),
        ("https://[::1]/hooks", "private_address"),
        // A name that resolves to 127.0.0.1, and one that does not
        // resolve: alike, so that nobody learns which names exist inside.
        ("https://localhost:8443/hooks", "not_public"),
        ("https://nowhere.invalid/hooks", "not_public"),
    ] {
        let r = strict
            .http
            .post(strict.url("/v1/webhooks"))
            .bearer_auth(&admin)
            .json(&json!({"url": url, "events": ["petition.closed"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            problem_fields(&problem(r, 422).await),
            [("url".to_owned(), code.to_owned())],
            "{url}"
        );
    }
    strict.stop().await;

    // Made where private targets were allowed, to a name that resolves
    // inside, then delivered where they are not: the resolved address is
    // checked when the connection opens, and nothing reaches the endpoint.
    let lax = TestApp::start(&ns, local_webhooks).await;
    let slug = lax.petition("inside").await;
    let endpoint = Receiver::accepting().await;
    let hook = subscribe(
        &lax,
        &admin,
        json!({"url": format!("https://localhost:{}/hooks", endpoint.port),
               "events": ["signature.counted"]}),
    )
    .await;
    lax.stop().await;
    let strict = TestApp::start(&ns, |c| {
        c.webhook_timeout_ms = 300;
        c.webhook_first_retry_ms = 100;
    })
    .await;
    strict.sign(&slug, &signer(0)).await;
    let id = hook["id"].as_str().unwrap();
    let mut listed = json!(null);
    for _ in 0..100 {
        listed = deliveries(&strict, &admin, id).await;
        if listed["deliveries"][0]["attempts"].as_i64() >= Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let message = &listed["deliveries"][0];
    assert_eq!(message["state"], "pending", "{listed}");
    assert_eq!(message["last_status"], Value::Null);
    assert_eq!(message["last_error"], "could not connect");
    assert!(message["next_attempt_at"].is_string());
    assert!(endpoint.received().is_empty());
    strict.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_holds_only_its_own_messages_until_they_are_dead_letters() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| {
        local_webhooks(c);
        c.webhook_timeout_ms = 2_000;
    })
    .await;
    let slug = app.petition("dead-end").await;
    let admin = app.admin_token().await;
    let hanging = Receiver::start(|_| Reply::Hang(Duration::from_secs(30))).await;
    let healthy = Receiver::accepting().await;
    let events = json!(["signature.counted"]);
    let dead = subscribe(&app, &admin, json!({"url": hanging.url, "events": events})).await;
    subscribe(&app, &admin, json!({"url": healthy.url, "events": events})).await;
    let started = std::time::Instant::now();
    for i in 0..20 {
        assert_eq!(app.sign(&slug, &signer(i)).await.status(), 202);
    }
    healthy.wait_delivered(20).await;
    // Well before the hanging endpoint's first tries give up.
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );

    // Once their first tries failed, messages on their last try, failing,
    // become dead letters.
    let id = dead["id"].as_str().unwrap();
    for _ in 0..200 {
        if deliveries(&app, &admin, id).await["pending"] == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ns.sql()
        .await
        .execute(
            "UPDATE webhook_deliveries SET attempts = 11, due_at = now()
             WHERE webhook_id = $1::text::uuid",
            &[&dead["id"].as_str().unwrap()],
        )
        .await
        .unwrap();
    let mut listed = json!(null);
    for _ in 0..400 {
        listed = deliveries(&app, &admin, id).await;
        if listed["dead"] == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listed["dead"], 20, "{listed}");
    assert_eq!(listed["pending"], 0);
    let letter = &listed["deliveries"][0];
    assert_eq!(letter["state"], "dead");
    assert_eq!(letter["attempts"], 12);
    assert_eq!(letter["last_error"], "timed out");
    assert_eq!(letter["next_attempt_at"], Value::Null);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signature_of_a_crowd_is_delivered_once_no_faster_than_the_rate() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| {
        local_webhooks(c);
        c.webhook_rate = crate::support::limit("200/1s");
    })
    .await;
    let slug = app.petition("crowd").await;
    let admin = app.admin_token().await;
    let endpoint = Receiver::accepting().await;
    subscribe(
        &app,
        &admin,
        json!({"url": endpoint.url, "events": ["signature.counted"], "petition": slug}),
    )
    .await;
    // Many signatures a batch, so events of many signatures, read in pieces.
    let receipts: BTreeSet<String> = futures_util::stream::iter(0..600)
        .map(|i| {
            let (app, slug) = (&app, &slug);
            async move {
                receipt(app.sign(slug, &signer(i)).await)
                    .await
                    .unwrap()
                    .to_string()
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert_eq!(receipts.len(), 600);
    let delivered = endpoint.wait_delivered(600).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = endpoint.received();
    // 200 at once (the burst), then 200 a second: 400 more take 2 s.
    let spread = received.last().unwrap().at - received[0].at;
    assert!(spread >= Duration::from_millis(1900), "{spread:?}");
    assert_eq!(received.len(), 600, "each message once");
    let ids: BTreeSet<&str> = received.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 600);
    let heard: BTreeSet<String> = delivered
        .iter()
        .map(|r| r.body["data"]["receipt"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(heard, receipts);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_begun_before_a_webhook_was_made_is_heard_of() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, local_webhooks).await;
    let slug = app.petition("begun-before").await;
    let admin = app.admin_token().await;
    let endpoint = Receiver::accepting().await;
    // A change under way (its transaction has written already) …
    let mut sql = ns.sql().await;
    let tx = sql.transaction().await.unwrap();
    tx.execute(
        "UPDATE petitions SET updated_at = now() WHERE slug = $1",
        &[&slug],
    )
    .await
    .unwrap();
    // … when a webhook is made, which it then sees and writes an event for.
    subscribe(
        &app,
        &admin,
        json!({"url": endpoint.url, "events": ["petition.milestone"]}),
    )
    .await;
    tx.execute(
        "INSERT INTO webhook_events (kind, petition_id, data)
         SELECT 'petition.milestone', id, '{\"milestone\": 1, \"count\": 1}' FROM petitions
         WHERE slug = $1",
        &[&slug],
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    tx.commit().await.unwrap();
    let delivered = endpoint.wait_delivered(1).await;
    assert_eq!(delivered[0].kind(), "petition.milestone");
    app.stop().await;
    ns.clean().await;
}
