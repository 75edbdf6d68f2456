//! Tablets' uploads: item-by-item answers, the signing-time window, email-less
//! identities, and a batch sent again (even racing its first sending) that
//! changes nothing and is answered the same.

use chrono::{Duration, Utc};
use futures_util::future::join_all;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::limit;
use crate::support::{
    Namespace, TestApp, count_reaches, email_optional_offline, event_ran_hours_ago, event_tally,
    fate, problem, problem_fields, receipt, rows, signer, tablet,
};

fn item(i: usize, signed_at: chrono::DateTime<Utc>) -> Value {
    let mut s = signer(i);
    s["id"] = json!(Uuid::now_v7());
    s["signed_at"] = json!(signed_at);
    s
}

/// A tablet at an event under way (from an hour ago for five hours).
async fn ongoing_tablet(app: &TestApp, slug: &str) -> (String, String) {
    let now = Utc::now();
    tablet(
        app,
        slug,
        now - Duration::hours(1),
        now + Duration::hours(4),
    )
    .await
}

async fn upload(app: &TestApp, event: &str, token: &str, items: &[Value]) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/v1/events/{event}/signatures:batch")))
        .bearer_auth(token)
        .json(&json!({ "signatures": items }))
        .send()
        .await
        .expect("batch sent")
}

/// Each item's fate, as `status field:code…`.
fn outcomes(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(fate)
        .collect()
}

fn expect(status: &str, errors: &[(&str, &str)]) -> String {
    errors
        .iter()
        .fold(status.to_owned(), |text, (f, c)| format!("{text} {f}:{c}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tablet_batch_is_answered_item_by_item_and_sending_it_again_changes_nothing() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("street").await;
    // An afternoon's stand that ended three hours ago; its tablet, enrolled
    // while it ran, syncs late.
    let (event, token) = ongoing_tablet(&app, &slug).await;
    event_ran_hours_ago(&ns, &event, 6, 3).await;
    let now = Utc::now();

    // Someone signed on the web already; their receipt is taken.
    let web = receipt(app.sign(&slug, &signer(0)).await).await.unwrap();

    let during = now - Duration::hours(4);
    let accepted = item(1, during);
    let mut again = accepted.clone();
    again["city"] = json!(null);
    let mut no_id = item(5, during);
    no_id.as_object_mut().unwrap().remove("id");
    let mut bad_email = item(6, during);
    bad_email["email"] = json!("not an address");
    let mut no_email = item(7, during);
    no_email.as_object_mut().unwrap().remove("email");
    let mut reused = item(8, during);
    reused["id"] = json!(web);
    let mut unsigned = item(9, during);
    unsigned["signed_at"] = json!("yesterday");
    let batch = vec![
        accepted.clone(),
        item(0, during),                      // the web signer again
        item(2, now - Duration::days(1)),     // long before the event
        item(3, now + Duration::hours(1)),    // the tablet's clock runs ahead
        item(4, now - Duration::minutes(30)), // hours after the event
        no_id,
        bad_email,
        no_email, // this petition wants an address
        reused,   // another signature's receipt
        unsigned,
        json!("not an object"),
        again, // the same signature twice in one batch
    ];
    let r = upload(&app, &event, &token, &batch).await;
    assert_eq!(r.status(), 200);
    let first: Value = r.json().await.unwrap();
    assert_eq!(
        outcomes(&first),
        vec![
            expect("accepted", &[]),
            expect("duplicate", &[]),
            expect("invalid", &[("signed_at", "before_event")]),
            expect("invalid", &[("signed_at", "in_the_future")]),
            expect("invalid", &[("signed_at", "after_event")]),
            expect("invalid", &[("id", "required")]),
            expect("invalid", &[("email", "invalid")]),
            expect("invalid", &[("email", "required")]),
            expect("invalid", &[("id", "already_used")]),
            expect("invalid", &[("signed_at", "invalid")]),
            expect("invalid", &[("signature", "not_an_object")]),
            expect("accepted", &[]),
        ]
    );
    assert_eq!(first["results"][0]["id"], accepted["id"]);
    assert_eq!(first["results"][11]["id"], accepted["id"]);

    // The answer was lost: the tablet sends the very same batch, twice; the
    // second time after a rule came to block the first signer, which does not
    // change what their stored signature hears.
    let r = upload(&app, &event, &token, &batch).await;
    assert_eq!(r.json::<Value>().await.unwrap(), first);
    let admin = app.admin_token().await;
    let r = app
        .http
        .post(app.url("/v1/blocks"))
        .bearer_auth(&admin)
        .json(
            &json!({"kind": "email", "pattern": signer(1)["email"], "action": "reject",
                      "reason": "asked to be removed"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = upload(&app, &event, &token, &batch).await;
    assert_eq!(r.json::<Value>().await.unwrap(), first);
    // A new signature of theirs is refused.
    let blocked: Value = upload(&app, &event, &token, &[item(1, during)])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        outcomes(&blocked),
        [expect("invalid", &[("signature", "blocked")])]
    );
    count_reaches(&app, &slug, 2).await;
    assert_eq!(event_tally(&app, &slug, &event).await, 1);

    // Stored with the time it was given, the event and the tablet.
    let sql = ns.sql().await;
    let id = Uuid::parse_str(accepted["id"].as_str().unwrap()).unwrap();
    let row = sql
        .query_one(
            "SELECT channel, event_id::text, device_id IS NOT NULL, signed_at,
                    received_at > signed_at
             FROM signatures WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "event");
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some(event.as_str())
    );
    assert!(row.get::<_, bool>(2));
    let signed_at: chrono::DateTime<Utc> = row.get(3);
    assert!((signed_at - during).num_milliseconds().abs() < 1);
    assert!(row.get::<_, bool>(4));

    // An invalidated tablet signature leaves the event's tally too.
    let r = app
        .http
        .post(app.url(&format!("/v1/petitions/{slug}/invalidations")))
        .bearer_auth(&admin)
        .json(&json!({"receipts": [id], "reason": "signed twice on paper and tablet"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    count_reaches(&app, &slug, 1).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while event_tally(&app, &slug, &event).await != 0 {
        assert!(std::time::Instant::now() < deadline, "tally stays");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_for_their_own_tablet_bounded_and_refused_once_revoked() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| c.device_limit = limit("6/1h")).await;
    let slug = app.petition("bounded").await;
    let now = Utc::now();
    let (event, token) = ongoing_tablet(&app, &slug).await;
    let (other_event, other_token) = ongoing_tablet(&app, &slug).await;
    let admin = app.admin_token().await;

    // Only the event's own tablet may send to it.
    for (who, status) in [(Some(&other_token), 403), (Some(&admin), 403), (None, 401)] {
        let mut r = app
            .http
            .post(app.url(&format!("/v1/events/{event}/signatures:batch")))
            .json(&json!({"signatures": [item(1, now)]}));
        if let Some(t) = who {
            r = r.bearer_auth(t);
        }
        problem(r.send().await.unwrap(), status).await;
    }
    // Malformed batches are refused whole.
    let too_many: Vec<Value> = (0..501).map(|i| item(i, now)).collect();
    for (body, code) in [
        (json!({"signatures": too_many}), "too_many"),
        (json!({}), "required"),
        (json!({"signatures": {"a": 1}}), "not_a_list"),
    ] {
        let r = app
            .http
            .post(app.url(&format!("/v1/events/{event}/signatures:batch")))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            problem_fields(&problem(r, 422).await),
            [("signatures".to_owned(), code.to_owned())]
        );
    }

    // A tablet's own allowance: six signatures an hour here, a batch whole or not at all.
    let four: Vec<Value> = (10..14).map(|i| item(i, now)).collect();
    let first: Value = upload(&app, &event, &token, &four)
        .await
        .json()
        .await
        .unwrap();
    // Sent again (the answer was lost), they cost nothing more.
    let again: Value = upload(&app, &event, &token, &four)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, first);
    // More than the whole allowance never fits: too large, send fewer.
    let seven: Vec<Value> = (30..37).map(|i| item(i, now)).collect();
    problem(upload(&app, &event, &token, &seven).await, 413).await;
    let three: Vec<Value> = (20..23).map(|i| item(i, now)).collect();
    let r = upload(&app, &event, &token, &three).await;
    assert!(crate::support::retry_after(&r) > 60);
    let limited = problem(r, 429).await;
    assert!(limited["detail"].as_str().unwrap().contains("tablet"));
    // Another tablet has its own.
    assert_eq!(
        upload(&app, &other_event, &other_token, &three)
            .await
            .status(),
        200
    );
    count_reaches(&app, &slug, 7).await;
    assert_eq!(event_tally(&app, &slug, &event).await, 4);
    assert_eq!(event_tally(&app, &slug, &other_event).await, 3);

    // Revoked, the tablet is refused; what it sent stays counted.
    let device: String = ns
        .sql()
        .await
        .query_one(
            "SELECT id::text FROM api_tokens WHERE event_id = $1::text::uuid",
            &[&event],
        )
        .await
        .unwrap()
        .get(0);
    let r = app
        .http
        .delete(app.url(&format!("/v1/devices/{device}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    problem(upload(&app, &event, &token, &four[..1]).await, 401).await;
    count_reaches(&app, &slug, 7).await;
    assert_eq!(event_tally(&app, &slug, &event).await, 4);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sent_again_while_its_first_sending_is_written_is_counted_once() {
    let ns = Namespace::new();
    // Small writer batches, so the sendings interleave across writers and transactions.
    let app = TestApp::start(&ns, |c| {
        c.writers = 3;
        c.batch_max = 16;
        c.pool_size = 8;
    })
    .await;
    let slug = app.petition("race").await;
    let now = Utc::now();
    let (event, token) = ongoing_tablet(&app, &slug).await;
    // 250 signers, 50 of whom signed twice on the tablet (two ids each).
    let batch: Vec<Value> = (0..300).map(|i| item(i % 250, now)).collect();
    let answers = join_all((0..4).map(|_| upload(&app, &event, &token, &batch))).await;
    let mut bodies = Vec::new();
    for r in answers {
        assert_eq!(r.status(), 200);
        bodies.push(r.json::<Value>().await.unwrap());
    }
    for body in &bodies {
        assert_eq!(body, &bodies[0]);
    }
    let got = outcomes(&bodies[0]);
    assert!(got[50..250].iter().all(|o| o == &expect("accepted", &[])));
    // Of each twice-signing signer's two signatures, one is taken.
    for i in 0..50 {
        let mut pair = [got[i].as_str(), got[250 + i].as_str()];
        pair.sort_unstable();
        assert_eq!(pair, ["accepted", "duplicate"], "signer {i}");
    }
    count_reaches(&app, &slug, 250).await;
    assert_eq!(event_tally(&app, &slug, &event).await, 250);
    assert_eq!(rows(&ns.sql().await).await, 250);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_the_petition_allows_a_tablet_signer_is_known_by_name_postal_code_and_country() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("no-email").await;
    email_optional_offline(&app, &slug).await;
    let now = Utc::now();
    let (event, token) = ongoing_tablet(&app, &slug).await;
    let person = |name: &str, postal: Option<&str>, country: &str| {
        let mut s = json!({"id": Uuid::now_v7(), "signed_at": now, "full_name": name,
                           "country": country});
        if let Some(p) = postal {
            s["postal_code"] = json!(p);
        }
        s
    };
    let batch = vec![
        person("Zoë Ångström", Some("1012 AB"), "NL"),
        person("ZOE  angstrom", Some("1012ab"), "NL"), // the same person, typed in a hurry
        person("Zoë Ångström", Some("1012 AB"), "BE"), // another country, another person
        person("Işık Yılmaz", None, "TR"),
    ];
    let answer: Value = upload(&app, &event, &token, &batch)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        outcomes(&answer),
        vec![
            expect("accepted", &[]),
            expect("duplicate", &[]),
            expect("accepted", &[]),
            expect("invalid", &[("postal_code", "required_without_email")]),
        ]
    );
    count_reaches(&app, &slug, 2).await;
    // On the web, an address is still needed.
    let r = app
        .sign(
            &slug,
            &json!({"full_name": "Işık Yılmaz", "country": "TR", "postal_code": "34000"}),
        )
        .await;
    assert_eq!(
        problem_fields(&problem(r, 422).await),
        [("email".to_owned(), "required".to_owned())]
    );
    app.stop().await;
    ns.clean().await;
}
