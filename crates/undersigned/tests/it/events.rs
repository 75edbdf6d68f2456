//! Street events: an organizer creates one, hands out a one-time code, a
//! tablet enrolls with it and signs without a captcha; revoked, the tablet is
//! refused and what it sent stays counted.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use undersigned_store::Role;

use crate::support::{
    Namespace, TestApp, event_ran_hours_ago, petition_id, problem, problem_fields, scoped, signer,
};

fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(f, c)| ((*f).to_owned(), (*c).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tablet_enrolls_with_a_one_time_code_signs_and_is_refused_once_revoked() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("street").await;
    let other = app.petition("elsewhere").await;
    let admin = app.admin_token().await;
    let (ours, theirs) = (
        petition_id(&ns, &slug).await,
        petition_id(&ns, &other).await,
    );
    let organizer = app.token(scoped(Role::Organizer, ours, &[])).await;
    let stranger = app.token(scoped(Role::Organizer, theirs, &[])).await;
    let coordinator = app.token(scoped(Role::Coordinator, ours, &["AZ"])).await;
    let post = |path: String, token: Option<&str>, body: Value| {
        let mut r = app.http.post(app.url(&path)).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };

    // The organizer creates the event; others may not; bad fields are named.
    let now = Utc::now();
    let event = json!({"name": "Stand on Fountain Square", "place": "Baku", "country": "az",
                       "starts_at": now - Duration::hours(1), "ends_at": now + Duration::hours(4)});
    let path = format!("/v1/petitions/{slug}/events");
    problem(post(path.clone(), None, event.clone()).await.unwrap(), 401).await;
    for token in [&stranger, &coordinator] {
        problem(
            post(path.clone(), Some(token), event.clone())
                .await
                .unwrap(),
            403,
        )
        .await;
    }
    let bad = post(
        path.clone(),
        Some(&organizer),
        json!({"place": "Baku", "country": "ZZ", "starts_at": now, "ends_at": now - Duration::hours(1)}),
    )
    .await
    .unwrap();
    assert_eq!(
        problem_fields(&problem(bad, 422).await),
        fields(&[
            ("name", "required"),
            ("country", "unknown_country"),
            ("ends_at", "not_after_starts_at")
        ])
    );
    let r = post(path.clone(), Some(&organizer), event).await.unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let event_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (&created["petition"], &created["country"], &created["name"]),
        (
            &json!("street"),
            &json!("AZ"),
            &json!("Stand on Fountain Square")
        )
    );
    let listed: Value = app
        .http
        .get(app.url(&path))
        .bearer_auth(&organizer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["events"][0]["id"], created["id"]);

    // A code, from the organizer only; a tablet spends it once.
    let codes = format!("/v1/events/{event_id}/enrollment-codes");
    problem(
        post(codes.clone(), Some(&stranger), json!({}))
            .await
            .unwrap(),
        403,
    )
    .await;
    problem(
        post(
            "/v1/events/00000000-0000-0000-0000-000000000000/enrollment-codes".into(),
            Some(&admin),
            json!({}),
        )
        .await
        .unwrap(),
        404,
    )
    .await;
    // Nothing is said of an event to a caller without a token.
    problem(
        post(
            "/v1/events/00000000-0000-0000-0000-000000000000/enrollment-codes".into(),
            None,
            json!({}),
        )
        .await
        .unwrap(),
        401,
    )
    .await;
    let r = post(codes.clone(), Some(&organizer), json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    let code = r.json::<Value>().await.unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let missing = post("/v1/devices".into(), None, json!({"code": code}))
        .await
        .unwrap();
    assert_eq!(
        problem_fields(&problem(missing, 422).await),
        fields(&[("label", "required")])
    );
    let r = post(
        "/v1/devices".into(),
        None,
        json!({"code": code.to_lowercase(), "label": "Tablet 1"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    let enrolled: Value = r.json().await.unwrap();
    assert_eq!(enrolled["event_id"], created["id"]);
    let device_token = enrolled["token"].as_str().unwrap().to_owned();
    let device_id = enrolled["device_id"].as_str().unwrap().to_owned();
    for reused in [code.as_str(), "0000-0000-0000", "nonsense"] {
        let r = post(
            "/v1/devices".into(),
            None,
            json!({"code": reused, "label": "Tablet 2"}),
        )
        .await
        .unwrap();
        assert_eq!(
            problem_fields(&problem(r, 422).await),
            fields(&[("code", "invalid")]),
            "{reused}"
        );
    }

    // The tablet signs its petition without a captcha, not another one.
    let sign = |token: String, petition: String, i: usize| {
        post(
            format!("/v1/petitions/{petition}/signatures"),
            Some(&token),
            signer(i),
        )
    };
    let r = sign(device_token.clone(), slug.clone(), 1).await.unwrap();
    assert_eq!(r.status(), 202);
    let r = sign(device_token.clone(), other.clone(), 2).await.unwrap();
    assert_eq!(r.status(), 403);

    // Listed for the organizer; revoked by them (not by a stranger); refused after.
    let devices_path = format!("/v1/events/{event_id}/devices");
    let list = |token: String| {
        app.http
            .get(app.url(&devices_path))
            .bearer_auth(token)
            .send()
    };
    problem(list(stranger.clone()).await.unwrap(), 403).await;
    let devices: Value = list(organizer.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(devices["devices"][0]["id"], enrolled["device_id"]);
    assert_eq!(devices["devices"][0]["label"], "Tablet 1");
    assert!(devices["devices"][0]["revoked_at"].is_null());
    // Admins see the tablet among all tokens, with its event and label.
    let tokens: Value = app
        .http
        .get(app.url("/v1/tokens"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tablet = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == enrolled["device_id"])
        .expect("the tablet's token is listed");
    assert_eq!(
        (&tablet["role"], &tablet["event_id"], &tablet["label"]),
        (&json!("device"), &created["id"], &json!("Tablet 1"))
    );
    let revoke = |token: &str| {
        app.http
            .delete(app.url(&format!("/v1/devices/{device_id}")))
            .bearer_auth(token)
            .send()
    };
    problem(revoke(&stranger).await.unwrap(), 403).await;
    assert_eq!(revoke(&organizer).await.unwrap().status(), 204);
    problem(revoke(&organizer).await.unwrap(), 404).await;
    let r = sign(device_token.clone(), slug.clone(), 3).await.unwrap();
    problem(r, 401).await;
    let devices: Value = list(organizer.clone()).await.unwrap().json().await.unwrap();
    assert!(devices["devices"][0]["revoked_at"].is_string());
    // What it signed before stays counted.
    let mut counted = 0;
    for _ in 0..100 {
        counted = app.count(&slug).await["count"].as_i64().unwrap();
        if counted == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(counted, 1);

    // Every step is in the audit trail, the enrollment as the tablet's own.
    let sql = ns.sql().await;
    let rows = sql
        .query(
            "SELECT action, token_id::text FROM audit_log
             WHERE action LIKE 'event.%' OR action LIKE 'device.%' ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let actions: Vec<(String, Option<String>)> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        actions.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(),
        [
            "event.create",
            "event.enrollment_code",
            "device.enroll",
            "device.revoke"
        ]
    );
    assert_eq!(actions[2].1.as_deref(), Some(device_id.as_str()));
    app.stop().await;
    ns.clean().await;
}

/// The answer to creating an event as the admin.
async fn create_event(app: &TestApp, slug: &str, body: Value) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/v1/petitions/{slug}/events")))
        .bearer_auth(app.admin_token().await)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_has_already_ended_is_refused_at_creation() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("late").await;
    let now = Utc::now();
    let r = create_event(
        &app,
        &slug,
        json!({"name": "Last year's march", "starts_at": now - Duration::days(3),
               "ends_at": now - Duration::days(2)}),
    )
    .await;
    assert_eq!(
        problem_fields(&problem(r, 422).await),
        fields(&[("ends_at", "past")])
    );
    // One still under way is taken.
    let r = create_event(
        &app,
        &slug,
        json!({"name": "Today's stand", "starts_at": now - Duration::hours(2),
               "ends_at": now + Duration::hours(1)}),
    )
    .await;
    assert_eq!(r.status(), 201);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_over_for_a_day_gives_no_enrollment_code_and_says_it_is_over() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("over").await;
    let now = Utc::now();
    let r = create_event(
        &app,
        &slug,
        json!({"name": "March", "starts_at": now, "ends_at": now + Duration::hours(2)}),
    )
    .await;
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Time passes: the march ended two days ago.
    event_ran_hours_ago(&ns, &id, 72, 48).await;
    let r = app
        .http
        .post(app.url(&format!("/v1/events/{id}/enrollment-codes")))
        .bearer_auth(app.admin_token().await)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let body = problem(r, 409).await;
    assert_eq!(
        (&body["type"], &body["title"]),
        (&json!("/problems/event-over"), &json!("Event over"))
    );
    assert_ne!(body["detail"], "A value is already taken.");
    assert_eq!(problem_fields(&body), fields(&[("event", "over")]));
    app.stop().await;
    ns.clean().await;
}
