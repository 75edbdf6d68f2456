//! The web channel and petitions' settings: PATCH, CORS for the campaign's own sites,
//! plain HTML forms landing on pages, and hCaptcha (against a fake siteverify).

use reqwest::Response;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION, ORIGIN};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fake_hcaptcha::{FakeHcaptcha, SECRET, SITEKEY};
use crate::support::limits;
use crate::support::{Namespace, TestApp, problem, receipt, retry_after, rows, signer, stored};

const SITE: &str = "https://campaign.example";

async fn patch(app: &TestApp, slug: &str, body: &Value) -> Response {
    app.http
        .patch(app.url(&format!("/v1/petitions/{slug}")))
        .bearer_auth(app.admin_token().await)
        .json(body)
        .send()
        .await
        .expect("patch sent")
}

fn sign_url(app: &TestApp, slug: &str) -> String {
    app.url(&format!("/v1/petitions/{slug}/signatures"))
}

async fn preflight(app: &TestApp, slug: &str, origin: &str, headers: &str) -> Response {
    app.http
        .request(reqwest::Method::OPTIONS, sign_url(app, slug))
        .header(ORIGIN, origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", headers)
        .send()
        .await
        .expect("preflight sent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn petitions_change_through_patch_with_every_bad_field_reported_and_audited() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("settings").await;
    let r = patch(
        &app,
        &slug,
        &json!({
            "allowed_origins": ["https://Campaign.Example/", "http://localhost:8081"],
            "thank_you_url": "https://campaign.example/thanks",
            "goal": 2_000_000,
            "captcha": "off",
        }),
    )
    .await;
    assert_eq!(r.status(), 200);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["allowed_origins"], json!([SITE, "http://localhost:8081"]));
    assert_eq!(p["thank_you_url"], "https://campaign.example/thanks");
    assert_eq!(
        (p["goal"].as_i64(), p["captcha"].as_str()),
        (Some(2_000_000), Some("off"))
    );
    assert_eq!(p["title"], "A declaration", "fields not sent stay");

    let bad = patch(
        &app,
        &slug,
        &json!({"allowed_origins": ["*"], "error_url": "javascript:x", "goal": 0, "status": "gone"}),
    )
    .await;
    let body = problem(bad, 422).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for field in ["allowed_origins", "error_url", "goal", "status"] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    let unknown = problem(patch(&app, &slug, &json!({"goals": 3})).await, 400).await;
    assert!(unknown["detail"].as_str().unwrap().contains("goals"));
    let anonymous = app
        .http
        .patch(app.url(&format!("/v1/petitions/{slug}")))
        .json(&json!({"goal": 5}))
        .send()
        .await
        .unwrap();
    problem(anonymous, 401).await;
    assert_eq!(
        app.get_json(&format!("/v1/petitions/{slug}")).await["goal"],
        2_000_000
    );

    // Closing a petition through the API stops signing.
    assert_eq!(
        patch(&app, &slug, &json!({"status": "closed"}))
            .await
            .status(),
        200
    );
    problem(app.sign(&slug, &signer(0)).await, 409).await;

    let audited: Vec<(String, Value)> = ns
        .sql()
        .await
        .query("SELECT action, detail FROM audit_log ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(audited.len(), 3, "{audited:?}");
    assert_eq!(audited[0].0, "petition.create");
    assert_eq!(audited[1].0, "petition.update");
    assert_eq!(
        audited[1].1["fields"],
        json!(["goal", "allowed_origins", "thank_you_url", "captcha"])
    );
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_lets_the_campaigns_sites_sign_and_refuses_others() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("cors").await;
    patch(&app, &slug, &json!({"allowed_origins": [SITE]})).await;

    let ok = preflight(&app, &slug, SITE, "Content-Type").await;
    assert_eq!(ok.status(), 204);
    let h = ok.headers();
    assert_eq!(h["access-control-allow-origin"], SITE);
    assert_eq!(h["access-control-allow-methods"], "POST");
    assert_eq!(h["access-control-allow-headers"], "content-type");
    assert!(h.contains_key("access-control-max-age"));
    assert!(!h.contains_key("access-control-allow-credentials"));

    for (origin, headers) in [
        ("https://evil.example", "content-type"),
        ("null", "content-type"),
        (SITE, "content-type, x-session"),
    ] {
        let refused = preflight(&app, &slug, origin, headers).await;
        assert!(
            !refused
                .headers()
                .contains_key("access-control-allow-origin")
        );
        problem(refused, 403).await;
    }

    let signed = app
        .http
        .post(sign_url(&app, &slug))
        .header(ORIGIN, SITE)
        .json(&signer(0))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.headers()["access-control-allow-origin"], SITE);
    assert!(
        signed.headers()["vary"]
            .to_str()
            .unwrap()
            .contains("Origin")
    );
    assert_eq!(signed.status(), 202);
    // A problem is readable by the page too.
    let invalid = app
        .http
        .post(sign_url(&app, &slug))
        .header(ORIGIN, SITE)
        .json(&json!({"full_name": "No Email"}))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.headers()["access-control-allow-origin"], SITE);
    problem(invalid, 422).await;
    // A page on another site cannot sign, by fetch or by form.
    let foreign = app
        .http
        .post(sign_url(&app, &slug))
        .header(ORIGIN, "https://evil.example")
        .form(&[
            ("full_name", "X"),
            ("email", "x@example.org"),
            ("country", "NL"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        !foreign
            .headers()
            .contains_key("access-control-allow-origin")
    );
    problem(foreign, 403).await;
    assert_eq!(rows(&ns.sql().await).await, 1);
    // The counter and the petition are public to any page.
    let count = app
        .http
        .get(app.url(&format!("/v1/petitions/{slug}/count")))
        .header(ORIGIN, "https://anyone.example")
        .send()
        .await
        .unwrap();
    assert_eq!(count.headers()["access-control-allow-origin"], "*");
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_html_form_lands_on_the_thank_you_or_the_error_page() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("forms").await;
    let browser = browser();
    let post_form = |form: Vec<(&'static str, String)>, accept: &'static str| {
        browser
            .post(sign_url(&app, &slug))
            .header(ACCEPT, accept)
            .form(&form)
            .send()
    };
    let good = |i: usize| {
        vec![
            ("full_name", format!("Signer {i}")),
            ("email", format!("form.{i}@example.org")),
            ("country", "NL".to_owned()),
        ]
    };
    // No pages configured: JSON, whatever the browser accepts.
    let r = post_form(good(0), HTML).await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()[CONTENT_TYPE], "application/json");

    patch(
        &app,
        &slug,
        &json!({"thank_you_url": "https://campaign.example/thanks?lang=nl",
                "error_url": "https://campaign.example/oops"}),
    )
    .await;
    let r = post_form(good(1), HTML).await.unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
    let thanked: Uuid = location
        .strip_prefix("https://campaign.example/thanks?lang=nl&receipt=")
        .expect(&location)
        .parse()
        .unwrap();
    assert_eq!(stored(&ns.sql().await, &[thanked]).await, 1);

    let r = post_form(
        vec![("full_name", "No Email".into()), ("country", "XX".into())],
        HTML,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()[LOCATION],
        "https://campaign.example/oops?problem=invalid-fields&fields=email%2Ccountry"
    );
    // A script asking for JSON gets JSON.
    let r = post_form(good(2), "application/json").await.unwrap();
    assert!(receipt(r).await.is_some());
    assert_eq!(rows(&ns.sql().await).await, 3);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_look_alike_address_signs_as_the_one_it_imitates() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("look-alikes").await;
    let signs_as = async |i: usize, email: &str| {
        let mut body = signer(i);
        body["email"] = json!(email);
        receipt(app.sign(&slug, &body).await).await.is_some()
    };
    assert!(signs_as(0, "admin@example.org").await);
    // Cyrillic а, then fullwidth ａ: answered like new signatures, counted never.
    assert!(signs_as(1, "\u{430}dmin@example.org").await);
    assert!(signs_as(2, "\u{FF41}dmin@example.org").await);
    assert_eq!(app.count(&slug).await["count"], 1);
    let sql = ns.sql().await;
    assert_eq!(rows(&sql).await, 1);

    // `б` looks like `6`, not `b`: Boris in Cyrillic is somebody else.
    assert!(signs_as(3, "boris@example.ru").await);
    assert!(signs_as(4, "борис@example.ru").await);
    assert_eq!(app.count(&slug).await["count"], 3);
    // Stored as typed: the first of the look-alikes, Boris in both scripts.
    let emails: Vec<String> = sql
        .query_one(
            "SELECT array_agg(email ORDER BY email) FROM signatures",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        emails,
        ["admin@example.org", "boris@example.ru", "борис@example.ru"]
    );
    app.stop().await;
    ns.clean().await;
}

fn with_captcha(i: usize, token: &str) -> Value {
    let mut s = signer(i);
    s["captcha"] = json!(token);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hcaptcha_passes_fails_and_times_out_closed_or_open() {
    let ns = Namespace::new();
    let fake = FakeHcaptcha::start().await;
    let app = TestApp::start(&ns, |c| {
        c.hcaptcha_secret = Some(SECRET.parse().expect("a secret"));
        c.hcaptcha_sitekey = Some(SITEKEY.parse().expect("a site key"));
        c.hcaptcha_verify_url = fake.url.parse().expect("a URL");
        c.hcaptcha_timeout_ms = 300;
    })
    .await;
    let slug = app.petition("captcha").await;
    assert_eq!(
        app.get_json(&format!("/v1/petitions/{slug}")).await["captcha_sitekey"],
        SITEKEY
    );
    // The hosted page renders hCaptcha's widget, and its policy lets it load.
    let page = app
        .http
        .get(app.url(&format!("/p/{slug}")))
        .send()
        .await
        .unwrap();
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("https://*.hcaptcha.com"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!(
        r#"<div class="h-captcha" data-sitekey="{SITEKEY}"></div>"#
    )));

    assert_eq!(
        app.sign(&slug, &with_captcha(0, "pass")).await.status(),
        202
    );
    let seen = fake.seen.lock().unwrap()[0].clone();
    assert_eq!(seen["secret"], SECRET);
    assert_eq!(seen["sitekey"], SITEKEY);
    assert_eq!(seen["remoteip"], "127.0.0.1");
    // hCaptcha's own form field works too.
    let form = app
        .http
        .post(sign_url(&app, &slug))
        .form(&[
            ("full_name", "Form Signer"),
            ("email", "form@example.org"),
            ("country", "DE"),
            ("h-captcha-response", "pass"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 202);

    let failed = problem(app.sign(&slug, &with_captcha(1, "forged")).await, 403).await;
    assert_eq!(
        failed["errors"],
        json!([{"field": "captcha", "code": "failed"}])
    );
    let missing = problem(app.sign(&slug, &signer(2)).await, 403).await;
    assert_eq!(
        missing["errors"],
        json!([{"field": "captcha", "code": "required"}])
    );

    // hCaptcha too slow: refused by default, with a Retry-After.
    let slow = app.sign(&slug, &with_captcha(3, "slow")).await;
    assert!(retry_after(&slow) >= 1);
    problem(slow, 503).await;
    // Authenticated callers never solve captchas.
    let device = app
        .http
        .post(sign_url(&app, &slug))
        .bearer_auth(app.admin_token().await)
        .json(&signer(4))
        .send()
        .await
        .unwrap();
    assert_eq!(device.status(), 202);
    assert_eq!(rows(&ns.sql().await).await, 3);

    // A petition may accept signatures while hCaptcha is unreachable, or need none.
    patch(&app, &slug, &json!({"captcha_fail_open": true})).await;
    let other = app.petition("no-captcha").await;
    patch(&app, &other, &json!({"captcha": "off"})).await;
    assert_eq!(
        app.sign(&slug, &with_captcha(3, "slow")).await.status(),
        202
    );
    problem(app.sign(&slug, &with_captcha(5, "forged")).await, 403).await;
    // A refused secret is never an outage to wave signatures through.
    problem(
        app.sign(&slug, &with_captcha(5, "misconfigured")).await,
        503,
    )
    .await;
    assert_eq!(app.sign(&other, &signer(6)).await.status(), 202);
    assert!(app.get_json(&format!("/v1/petitions/{other}")).await["captcha_sitekey"].is_null());
    assert_eq!(rows(&ns.sql().await).await, 5);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_hcaptcha_fails_closed() {
    let ns = Namespace::new();
    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/siteverify", closed.local_addr().unwrap());
    drop(closed);
    let app = TestApp::start(&ns, |c| {
        c.hcaptcha_secret = Some(SECRET.parse().expect("a secret"));
        c.hcaptcha_sitekey = Some(SITEKEY.parse().expect("a site key"));
        c.hcaptcha_verify_url = url.parse().expect("a URL");
    })
    .await;
    let slug = app.petition("unreachable").await;
    let body = problem(app.sign(&slug, &with_captcha(0, "pass")).await, 503).await;
    assert_eq!(body["type"], "/problems/captcha-unavailable");
    assert_eq!(rows(&ns.sql().await).await, 0);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_petition_takes_signatures_only_between_its_opening_and_closing_times() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let admin = app.admin_token().await;
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let create = |body: Value| {
        let (app, admin) = (&app, &admin);
        async move {
            app.http
                .post(app.url("/v1/petitions"))
                .bearer_auth(admin)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let bad = problem(
        create(json!({"slug": "w", "title": "T", "text": "B", "goal": 5, "opens_at": "soon"}))
            .await,
        422,
    )
    .await;
    assert_eq!(
        bad["errors"],
        json!([{"field": "opens_at", "code": "invalid"}])
    );
    let r =
        create(json!({"slug": "window", "title": "T", "text": "B", "goal": 5, "opens_at": later}))
            .await;
    assert_eq!(r.status(), 201);
    let early = problem(app.sign("window", &signer(0)).await, 409).await;
    assert_eq!(early["title"], "Petition not open yet");

    let closing = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let r = patch(
        &app,
        "window",
        &json!({"opens_at": null, "closes_at": closing}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let p: Value = r.json().await.unwrap();
    assert!(p["opens_at"].is_null() && p["closes_at"].is_string());
    assert_eq!(app.sign("window", &signer(1)).await.status(), 202);
    let reversed = patch(&app, "window", &json!({"opens_at": later})).await;
    assert_eq!(
        problem(reversed, 422).await["errors"],
        json!([{"field": "closes_at", "code": "before_opening"}])
    );
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let late = problem(app.sign("window", &signer(2)).await, 409).await;
    assert_eq!(late["title"], "Petition closed");
    assert_eq!(rows(&ns.sql().await).await, 1);
    app.stop().await;
    ns.clean().await;
}

/// A browser that shows what it is sent rather than following redirects.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

/// A plain form post for the i-th signer, from a page at `origin`.
async fn form_from(app: &TestApp, slug: &str, origin: &str, i: usize) -> Response {
    browser()
        .post(sign_url(app, slug))
        .header(ORIGIN, origin)
        .header(ACCEPT, HTML)
        .form(&[
            ("full_name", format!("Signer {i}")),
            ("email", format!("form.{i}@example.org")),
            ("country", "NL".to_owned()),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_from_a_site_not_listed_lands_on_the_error_page() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("strangers").await;
    patch(
        &app,
        &slug,
        &json!({"allowed_origins": [SITE], "error_url": "https://campaign.example/oops"}),
    )
    .await;
    let r = form_from(&app, &slug, "https://evil.example", 0).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()[LOCATION],
        "https://campaign.example/oops?problem=origin-not-allowed"
    );
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    // A script on that site still reads nothing but the refusal.
    let fetched = app
        .http
        .post(sign_url(&app, &slug))
        .header(ORIGIN, "https://evil.example")
        .json(&signer(1))
        .send()
        .await
        .unwrap();
    problem(fetched, 403).await;
    assert_eq!(rows(&ns.sql().await).await, 0);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_form_lands_on_the_error_page_told_how_long_to_wait() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| c.ip_limit = limits("1/60s")).await;
    let slug = app.petition("patience").await;
    patch(
        &app,
        &slug,
        &json!({"allowed_origins": [SITE], "thank_you_url": "https://campaign.example/thanks",
                "error_url": "https://campaign.example/oops"}),
    )
    .await;
    let r = form_from(&app, &slug, SITE, 0).await;
    assert_eq!(r.status(), 303);
    let r = form_from(&app, &slug, SITE, 1).await;
    assert_eq!(r.status(), 303);
    let wait = retry_after(&r);
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(
        r.headers()[LOCATION],
        format!("https://campaign.example/oops?problem=rate-limited&retry_after={wait}").as_str()
    );
    app.stop().await;
    ns.clean().await;
}
