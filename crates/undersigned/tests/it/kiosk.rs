//! The kiosk page in a real browser (headless Chromium, driven by
//! `tests/browser/kiosk.mjs`): a tablet enrolls, takes three signatures while
//! offline, keeps them, and once online again sends them; they are counted
//! exactly once.

use chrono::{Duration, Utc};

use crate::support::{Namespace, TestApp, count_reaches, event_code, event_tally, in_browser};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tablet_signs_offline_and_its_signatures_are_counted_once_back_online() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("kiosk").await;
    let now = Utc::now();
    let (event, code) = event_code(
        &app,
        &slug,
        now - Duration::hours(1),
        now + Duration::hours(3),
    )
    .await;

    // The page and its files come with a policy that keeps them to this origin.
    let page = app.http.get(app.url("/kiosk/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/kiosk"))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(
        app.http
            .get(app.url("/kiosk/nothing.js"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let outcome = in_browser(
        "kiosk.mjs",
        &[("KIOSK_URL", &app.url("/kiosk/")), ("ENROLL_CODE", &code)],
    )
    .await;
    assert_eq!(
        (&outcome["waiting"], &outcome["tally"]),
        (&serde_json::json!(0), &serde_json::json!(3))
    );

    // Counted once, as the event's, each stored once.
    count_reaches(&app, &slug, 3).await;
    assert_eq!(event_tally(&app, &slug, &event).await, 3);
    let stored: i64 = ns
        .sql()
        .await
        .query_one(
            "SELECT count(*) FROM signatures WHERE channel = 'event' AND event_id = $1::text::uuid",
            &[&event],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 3);
    app.stop().await;
    ns.clean().await;
}
