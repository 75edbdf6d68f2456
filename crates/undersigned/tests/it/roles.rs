//! Roles and tokens: every role against every administrative route, scopes,
//! revocation and expiry taking effect at once on every instance, and the
//! audit trail of who did what from where.

use std::time::Duration;

use reqwest::{Method, Response};
use serde_json::{Value, json};
use undersigned_store::{NewToken, Role};
use uuid::Uuid;

use crate::support::{Namespace, TestApp, petition_id, problem, problem_fields, scoped};

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Response {
    let mut r = app.http.request(method, app.url(path));
    if let Some(token) = token {
        r = r.bearer_auth(token);
    }
    if let Some(body) = body {
        r = r.json(&body);
    }
    r.send().await.expect("request sent")
}

async fn status(
    app: &TestApp,
    method: &Method,
    path: &str,
    token: Option<&str>,
    body: &Option<Value>,
) -> u16 {
    let r = call(app, method.clone(), path, token, body.clone()).await;
    r.status().as_u16()
}

async fn patch_goal(app: &TestApp, slug: &str, token: &str, goal: i64) -> u16 {
    let path = format!("/v1/petitions/{slug}");
    call(
        app,
        Method::PATCH,
        &path,
        Some(token),
        Some(json!({"goal": goal})),
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_every_administrative_route() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let ours = app.petition("ours").await;
    let theirs = app.petition("theirs").await;
    let (ours_id, theirs_id) = (
        petition_id(&ns, &ours).await,
        petition_id(&ns, &theirs).await,
    );
    let admin = app.admin_token().await;
    let organizer = app.token(scoped(Role::Organizer, ours_id, &[])).await;
    let other_organizer = app.token(scoped(Role::Organizer, theirs_id, &[])).await;
    let coordinator = app.token(scoped(Role::Coordinator, ours_id, &["NL"])).await;
    let device = app.token(scoped(Role::Device, ours_id, &[])).await;

    // (method, path, body, whether an organizer of `ours` may)
    let routes: Vec<(Method, String, Option<Value>, bool)> = vec![
        (
            Method::POST,
            "/v1/petitions".into(),
            Some(json!({"slug": "new", "title": "T", "text": "B", "goal": 10})),
            false,
        ),
        (
            Method::PATCH,
            format!("/v1/petitions/{ours}"),
            Some(json!({"goal": 500})),
            true,
        ),
        (
            Method::GET,
            format!("/v1/petitions/{ours}/signals"),
            None,
            true,
        ),
        (
            Method::GET,
            format!("/v1/petitions/{ours}/invalidations"),
            None,
            true,
        ),
        (
            Method::POST,
            format!("/v1/petitions/{ours}/invalidations"),
            Some(json!({"country": "NL", "reason": "test"})),
            true,
        ),
        (Method::GET, "/v1/blocks".into(), None, false),
        (
            Method::POST,
            "/v1/blocks".into(),
            Some(
                json!({"kind": "email", "pattern": "x@example.org", "action": "reject", "reason": "r"}),
            ),
            false,
        ),
        (Method::GET, "/v1/tokens".into(), None, false),
        (
            Method::POST,
            "/v1/tokens".into(),
            Some(json!({"role": "admin"})),
            false,
        ),
        (Method::GET, "/v1/audit".into(), None, false),
    ];
    for (method, path, body, organizer_may) in &routes {
        let what = format!("{method} {path}");
        assert_eq!(
            status(&app, method, path, None, body).await,
            401,
            "{what} without a token"
        );
        assert_eq!(
            status(&app, method, path, Some("us_not_a_token"), body).await,
            401,
            "{what} with a bad token"
        );
        assert_eq!(
            status(&app, method, path, Some(&device), body).await,
            403,
            "{what} as a device"
        );
        assert_eq!(
            status(&app, method, path, Some(&coordinator), body).await,
            403,
            "{what} as a coordinator"
        );
        assert_eq!(
            status(&app, method, path, Some(&other_organizer), body).await,
            403,
            "{what} as another petition's organizer"
        );
        let as_organizer = status(&app, method, path, Some(&organizer), body).await;
        if *organizer_may {
            assert!(
                (200..300).contains(&as_organizer),
                "{what} as its organizer: {as_organizer}"
            );
        } else {
            assert_eq!(as_organizer, 403, "{what} as an organizer");
        }
        let as_admin = status(&app, method, path, Some(&admin), body).await;
        assert!(
            (200..300).contains(&as_admin),
            "{what} as admin: {as_admin}"
        );
    }
    // Deleting: a rule and a token.
    let rule: Value = call(&app, Method::GET, "/v1/blocks", Some(&admin), None)
        .await
        .json()
        .await
        .unwrap();
    let rule_id = &rule["rules"][0]["id"];
    for token in [&device, &coordinator, &organizer] {
        let r = call(
            &app,
            Method::DELETE,
            &format!("/v1/blocks/{rule_id}"),
            Some(token),
            None,
        )
        .await;
        assert_eq!(r.status(), 403);
    }
    let r = call(
        &app,
        Method::DELETE,
        &format!("/v1/blocks/{rule_id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    // Signing with a token: only with a right to the petition (no captcha then).
    let sign_with = |token: String, i: usize| {
        let path = format!("/v1/petitions/{ours}/signatures");
        let app = &app;
        async move {
            let body = crate::support::signer(100 + i);
            call(app, Method::POST, &path, Some(&token), Some(body))
                .await
                .status()
                .as_u16()
        }
    };
    assert_eq!(sign_with(device.clone(), 0).await, 202, "its own device");
    let foreign_device = app.token(scoped(Role::Device, theirs_id, &[])).await;
    assert_eq!(
        sign_with(foreign_device, 1).await,
        403,
        "another petition's device"
    );
    assert_eq!(
        sign_with(coordinator.clone(), 2).await,
        403,
        "a coordinator"
    );
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_issued_scoped_listed_and_revoked_at_once_on_every_instance() {
    let ns = Namespace::new();
    let a = TestApp::start(&ns, |c| {
        c.trusted_proxies = "127.0.0.1".parse().expect("proxies")
    })
    .await;
    let b = TestApp::start(&ns, |_| {}).await;
    let slug = a.petition("scoped").await;
    let admin = a.admin_token().await;

    let bad = problem(
        call(&a, Method::POST, "/v1/tokens", Some(&admin),
             Some(json!({"role": "coordinator", "petitions": [slug, "nope"], "expires_at": "2001-01-01T00:00:00Z"}))).await,
        422,
    )
    .await;
    let fields: Vec<&str> = bad["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"petitions")
            && fields.contains(&"expires_at")
            && fields.contains(&"countries"),
        "{bad}"
    );

    let r = a
        .http
        .post(a.url("/v1/tokens"))
        .bearer_auth(&admin)
        .header("x-forwarded-for", "192.0.2.44")
        .json(&json!({"role": "organizer", "petitions": [slug]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let issued: Value = r.json().await.unwrap();
    let token = issued["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("us_"));
    assert_eq!(patch_goal(&a, &slug, &token, 11).await, 200);
    assert_eq!(patch_goal(&b, &slug, &token, 12).await, 200);

    // Listed without the secret; stored only hashed.
    let listed: Value = call(&b, Method::GET, "/v1/tokens", Some(&admin), None)
        .await
        .json()
        .await
        .unwrap();
    let entry = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == issued["id"])
        .unwrap()
        .clone();
    assert_eq!(entry["petitions"], json!([slug]));
    assert!(entry["last_used_at"].is_string());
    assert!(!listed.to_string().contains(&token));
    let hashes: i64 = ns
        .sql()
        .await
        .query_one(
            "SELECT count(*) FROM api_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
            &[&token],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(hashes, 1);

    let r = a
        .http
        .delete(a.url(&format!("/v1/tokens/{}", issued["id"].as_str().unwrap())))
        .bearer_auth(&admin)
        .header("x-forwarded-for", "192.0.2.44")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // At once, on the other instance too.
    assert_eq!(patch_goal(&b, &slug, &token, 13).await, 401);
    assert_eq!(patch_goal(&a, &slug, &token, 13).await, 401);

    // The token in use cannot revoke itself: an admin going down the list
    // would lock themselves out.
    let own: Uuid = ns
        .sql()
        .await
        .query_one(
            "SELECT id FROM api_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
            &[&admin],
        )
        .await
        .unwrap()
        .get(0);
    let refused = call(
        &a,
        Method::DELETE,
        &format!("/v1/tokens/{own}"),
        Some(&admin),
        None,
    )
    .await;
    let body = problem(refused, 409).await;
    assert_eq!(
        problem_fields(&body),
        [("id".to_owned(), "the_token_in_use".to_owned())]
    );
    let listed = call(&a, Method::GET, "/v1/tokens", Some(&admin), None).await;
    assert_eq!(listed.status(), 200, "still valid");

    // An expired token is refused.
    let short = a
        .token(NewToken {
            expires_at: Some(chrono::Utc::now() + chrono::Duration::milliseconds(500)),
            ..NewToken::admin()
        })
        .await;
    assert_eq!(
        call(&b, Method::GET, "/v1/audit", Some(&short), None)
            .await
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        call(&b, Method::GET, "/v1/audit", Some(&short), None)
            .await
            .status(),
        401
    );

    // The audit trail: who, what, from where; newest first, a page at a time.
    let page: Value = call(
        &b,
        Method::GET,
        "/v1/audit?action=token.&limit=1",
        Some(&admin),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let newest = &page["entries"][0];
    assert_eq!(newest["action"], "token.revoke");
    assert_eq!(newest["from"], "192.0.2.44");
    let next = page["next"].as_str().unwrap().to_owned();
    let page: Value = call(&b, Method::GET, &next, Some(&admin), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["entries"][0]["action"], "token.create");
    assert_eq!(page["entries"][0]["detail"]["role"], "organizer");
    let updates: Value = call(
        &b,
        Method::GET,
        &format!("/v1/audit?petition={slug}&action=petition.update"),
        Some(&admin),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(updates["entries"].as_array().unwrap().len(), 2);
    // Append-only, even for the database's owner.
    let sql = ns.sql().await;
    assert!(sql.execute("DELETE FROM audit_log", &[]).await.is_err());
    assert!(
        sql.execute("UPDATE audit_log SET action = 'x'", &[])
            .await
            .is_err()
    );
    a.stop().await;
    b.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_issues_scoped_tokens() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("cli").await;
    let cli = |args: &[&str]| ns.cli(args);
    let out = cli(&[
        "token",
        "create",
        "--role",
        "coordinator",
        "--petition",
        &slug,
        "--country",
        "nl",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let r = call(
        &app,
        Method::PATCH,
        &format!("/v1/petitions/{slug}"),
        Some(&token),
        Some(json!({"goal": 3})),
    )
    .await;
    assert_eq!(r.status(), 403, "a coordinator changes nothing");
    let out = cli(&[
        "token",
        "create",
        "--role",
        "coordinator",
        "--petition",
        &slug,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--country"));
    let out = cli(&[
        "token",
        "create",
        "--role",
        "organizer",
        "--petition",
        "nowhere",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere"));
    let trail: i64 = ns.sql().await
        .query_one("SELECT count(*) FROM audit_log WHERE action = 'token.create' AND detail->>'via' = 'command line'", &[])
        .await.unwrap().get(0);
    assert_eq!(trail, 1);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinators_see_only_their_countries_and_every_page_is_audited() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("listing").await;
    let other = app.petition("elsewhere").await;
    for i in 0..6 {
        let mut s = crate::support::signer(i);
        s["country"] = json!(["NL", "BE", "DE"][i % 3]);
        assert_eq!(app.sign(&slug, &s).await.status(), 202);
    }
    let (id, other_id) = (
        petition_id(&ns, &slug).await,
        petition_id(&ns, &other).await,
    );
    let coordinator = app
        .token(scoped(Role::Coordinator, id, &["NL", "BE"]))
        .await;
    let organizer = app.token(scoped(Role::Organizer, id, &[])).await;
    let device = app.token(scoped(Role::Device, id, &[])).await;
    let elsewhere = app
        .token(scoped(Role::Coordinator, other_id, &["NL"]))
        .await;
    let list = |query: String, token: Option<String>| {
        let app = &app;
        let path = format!("/v1/petitions/{slug}/signatures{query}");
        async move { call(app, Method::GET, &path, token.as_deref(), None).await }
    };

    let seen: Value = list(String::new(), Some(coordinator.clone()))
        .await
        .json()
        .await
        .unwrap();
    let countries: Vec<&str> = seen["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["country"].as_str().unwrap())
        .collect();
    assert_eq!(countries.len(), 4);
    assert!(
        countries.iter().all(|c| *c == "NL" || *c == "BE"),
        "{countries:?}"
    );
    assert_eq!(seen["signatures"][0]["state"], "counted");
    problem(
        list("?country=DE".into(), Some(coordinator.clone())).await,
        403,
    )
    .await;
    let nl: Value = list("?country=nl".into(), Some(coordinator.clone()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(nl["signatures"].as_array().unwrap().len(), 2);
    problem(list(String::new(), Some(device)).await, 403).await;
    problem(list(String::new(), Some(elsewhere)).await, 403).await;
    problem(list(String::new(), None).await, 401).await;
    problem(
        list("?channel=fax".into(), Some(organizer.clone())).await,
        422,
    )
    .await;

    // The organizer pages through all six.
    let mut receipts = Vec::new();
    let mut page: Value = list("?limit=4".into(), Some(organizer.clone()))
        .await
        .json()
        .await
        .unwrap();
    loop {
        for s in page["signatures"].as_array().unwrap() {
            receipts.push(s["receipt"].as_str().unwrap().to_owned());
        }
        let Some(next) = page["next"].as_str() else {
            break;
        };
        page = call(&app, Method::GET, next, Some(&organizer), None)
            .await
            .json()
            .await
            .unwrap();
    }
    receipts.dedup();
    assert_eq!(receipts.len(), 6);

    let audited: i64 = ns
        .sql()
        .await
        .query_one(
            "SELECT count(*) FROM audit_log WHERE action = 'signatures.list'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audited, 4, "every page that showed signer data");
    // Public answers carry no signer data.
    for path in [
        format!("/v1/petitions/{slug}"),
        format!("/v1/petitions/{slug}/count"),
    ] {
        let text = call(&app, Method::GET, &path, None, None)
            .await
            .text()
            .await
            .unwrap();
        assert!(
            !text.contains('@') && !text.contains("signer."),
            "{path}: {text}"
        );
    }
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_without_the_organizers_right_reads_the_public_petition() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("open-letter").await;
    let id = petition_id(&ns, &slug).await;
    let admin = app.admin_token().await;
    let r = call(
        &app,
        Method::PATCH,
        &format!("/v1/petitions/{slug}"),
        Some(&admin),
        Some(
            json!({"targets": [{"name": "Parliament", "country": "NL", "contact": "Den Haag"}],
                    "translations": {"fr": {"title": "Une lettre", "text": "Nous déclarons."}}}),
        ),
    )
    .await;
    assert_eq!(r.status(), 200);
    let path = format!("/v1/petitions/{slug}");
    let view = |token: String| {
        let (app, path) = (&app, &path);
        async move {
            let r = call(app, Method::GET, path, Some(&token), None).await;
            assert_eq!(r.status(), 200);
            let cache = r.headers()["cache-control"].to_str().unwrap().to_owned();
            let body: Value = r.json().await.unwrap();
            (cache, body)
        }
    };

    let coordinator = app.token(scoped(Role::Coordinator, id, &["NL"])).await;
    let device = app.token(scoped(Role::Device, id, &[])).await;
    for (who, token) in [("a coordinator", coordinator), ("a device", device)] {
        let (cache, public) = view(token).await;
        assert_eq!(cache, "public, max-age=1", "{who}");
        assert!(public.get("translations").is_none(), "{who}: {public}");
        assert_eq!(
            public["targets"][0],
            json!({"name": "Parliament", "country": "NL"}),
            "{who}"
        );
    }
    let organizer = app.token(scoped(Role::Organizer, id, &[])).await;
    let (cache, own) = view(organizer).await;
    assert_eq!(cache, "private, no-store");
    assert_eq!(own["translations"]["fr"]["title"], "Une lettre");
    assert_eq!(own["targets"][0]["contact"], "Den Haag");

    // A token that is no token is still the client's mistake.
    let expired = app
        .token(NewToken {
            expires_at: Some(chrono::Utc::now() - chrono::Duration::minutes(1)),
            ..scoped(Role::Coordinator, id, &["NL"])
        })
        .await;
    for token in ["us_not_a_token", expired.as_str()] {
        let r = call(&app, Method::GET, &path, Some(token), None).await;
        problem(r, 401).await;
    }
    app.stop().await;
    ns.clean().await;
}
