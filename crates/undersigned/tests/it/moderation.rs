//! Block and allow rules, shadow-accepted signatures, and bulk invalidation
//! with its undoing: the count stays exact through all of them.

use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use reqwest::Response;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::limits;
use crate::support::{
    Namespace, TestApp, count_reaches, email_optional_offline, problem, receipt, rows, signer,
};

async fn admin_post(app: &TestApp, path: &str, body: &Value) -> Response {
    app.http
        .post(app.url(path))
        .bearer_auth(app.admin_token().await)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

async fn admin_get(app: &TestApp, path: &str) -> Value {
    let r = app
        .http
        .get(app.url(path))
        .bearer_auth(app.admin_token().await)
        .send()
        .await
        .expect("request sent");
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn at(i: usize, email: &str) -> Value {
    let mut s = signer(i);
    s["email"] = json!(email);
    s
}

async fn stored_count(ns: &Namespace) -> i64 {
    ns.sql()
        .await
        .query_one(
            "SELECT coalesce(sum(count - removed + restored), 0)::bigint FROM signature_counts",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_accepted_signatures_get_202_and_are_stored_but_never_counted() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("shadowed").await;
    let r = admin_post(
        &app,
        "/v1/blocks",
        &json!({"kind": "email_domain", "pattern": "*.Spam.Test", "action": "shadow",
                "reason": "a bot farm's domains"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let rule: Value = r.json().await.unwrap();
    assert_eq!(rule["pattern"], "*.spam.test");

    let mut shadowed = Vec::new();
    for i in 0..5 {
        let r = app
            .sign(&slug, &at(i, &format!("bot{i}@farm{i}.spam.test")))
            .await;
        shadowed.push(receipt(r).await.expect("answered like any signature"));
    }
    for i in 5..8 {
        assert_eq!(app.sign(&slug, &signer(i)).await.status(), 202);
    }
    let sql = ns.sql().await;
    assert_eq!(rows(&sql).await, 8);
    let stamped: i64 = sql
        .query_one(
            "SELECT count(*) FROM signatures WHERE id = ANY($1) AND shadowed_by = $2",
            &[&shadowed, &rule["id"].as_i64().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stamped, 5);
    count_reaches(&app, &slug, 3).await;
    assert_eq!(stored_count(&ns).await, 3);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_rules_refuse_allow_rules_exempt_and_rules_can_be_lifted() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| {
        c.ip_limit = limits("1/60s");
        c.trusted_proxies = "127.0.0.1".parse().expect("proxies");
    })
    .await;
    let slug = app.petition("rules").await;
    let bad = problem(
        admin_post(
            &app,
            "/v1/blocks",
            &json!({"kind": "address", "pattern": "10.0.0.0/33", "action": "ban"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(bad["errors"].as_array().unwrap().len(), 3, "{bad}"); // action, reason, pattern

    let r = admin_post(
        &app,
        "/v1/blocks",
        &json!({"kind": "email", "pattern": " Blocked+x@Example.org ", "action": "reject",
                "reason": "asked to be removed", "petition": slug}),
    )
    .await;
    let rule: Value = r.json().await.unwrap();
    assert_eq!(rule["pattern"], "blocked@example.org");
    let refused = problem(
        app.sign_from(&slug, &at(0, "blocked@example.org"), "198.51.100.1")
            .await,
        403,
    )
    .await;
    assert_eq!(refused["type"], "/problems/refused");

    // An allow rule lifts the address limit for a campaign office's range.
    admin_post(
        &app,
        "/v1/blocks",
        &json!({"kind": "address", "pattern": "192.0.2.0/24", "action": "allow",
                "reason": "campaign office"}),
    )
    .await;
    for i in 1..4 {
        assert_eq!(
            app.sign_from(&slug, &signer(i), "192.0.2.8").await.status(),
            202
        );
    }
    assert_eq!(
        app.sign_from(&slug, &signer(4), "198.51.100.9")
            .await
            .status(),
        202
    );
    problem(app.sign_from(&slug, &signer(5), "198.51.100.9").await, 429).await;

    let listed = admin_get(&app, "/v1/blocks").await;
    assert_eq!(listed["rules"].as_array().unwrap().len(), 2);
    assert_eq!(listed["rules"][0]["petition"], slug.as_str());
    let lifted = app
        .http
        .delete(app.url(&format!("/v1/blocks/{}", rule["id"])))
        .bearer_auth(app.admin_token().await)
        .send()
        .await
        .unwrap();
    assert_eq!(lifted.status(), 204);
    assert_eq!(
        app.sign_from(&slug, &at(0, "blocked@example.org"), "198.51.100.2")
            .await
            .status(),
        202
    );
    let actions: Vec<String> = ns
        .sql()
        .await
        .query(
            "SELECT action FROM audit_log WHERE action LIKE 'block.%' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(actions, ["block.create", "block.create", "block.remove"]);
    app.stop().await;
    ns.clean().await;
}

async fn wait_for_state(app: &TestApp, location: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = admin_get(app, location).await;
        if job["state"] == state {
            return job;
        }
        assert!(Instant::now() < deadline, "still {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidating_ten_thousand_signatures_keeps_the_count_exact_and_can_be_undone() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| {
        c.trusted_proxies = "127.0.0.1".parse().expect("proxies")
    })
    .await;
    let slug = app.petition("invalidated").await;
    // 10,000 from a range a bot used, 2,000 from elsewhere.
    let statuses: Vec<u16> = stream::iter(0..12_000usize)
        .map(|i| {
            let (app, slug) = (&app, &slug);
            async move {
                let client = if i < 10_000 {
                    format!("10.9.{}.{}", i / 250, i % 250)
                } else {
                    format!("198.51.100.{}", i % 250)
                };
                app.sign_from(slug, &signer(i), &client)
                    .await
                    .status()
                    .as_u16()
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(statuses.iter().all(|&s| s == 202));
    count_reaches(&app, &slug, 12_000).await;

    let bad = problem(
        admin_post(
            &app,
            &format!("/v1/petitions/{slug}/invalidations"),
            &json!({"reason": "x"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        bad["errors"],
        json!([{"field": "criteria", "code": "required"}])
    );
    let r = admin_post(
        &app,
        &format!("/v1/petitions/{slug}/invalidations"),
        &json!({"address_range": "10.9.0.0/16", "reason": "one bot, many signatures"}),
    )
    .await;
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let job = wait_for_state(&app, &location, "done").await;
    assert_eq!(job["affected"], 10_000);
    count_reaches(&app, &slug, 2_000).await;
    assert_eq!(stored_count(&ns).await, 2_000);
    let sql = ns.sql().await;
    let stamped: i64 = sql
        .query_one(
            "SELECT count(*) FROM signatures WHERE invalidated_by = $1",
            &[&job["id"].as_i64().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stamped, 10_000);
    assert_eq!(rows(&sql).await, 12_000, "invalidated, not deleted");

    let r = admin_post(&app, &format!("{location}/undo"), &json!({})).await;
    assert_eq!(r.status(), 202);
    let job = wait_for_state(&app, &location, "undone").await;
    assert_eq!(job["affected"], 0);
    count_reaches(&app, &slug, 12_000).await;
    assert_eq!(stored_count(&ns).await, 12_000);
    problem(
        admin_post(&app, &format!("{location}/undo"), &json!({})).await,
        409,
    )
    .await;
    let trail: Vec<String> = sql
        .query(
            "SELECT action FROM audit_log WHERE action LIKE 'invalidation.%' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(trail, ["invalidation.create", "invalidation.undo"]);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidations_by_receipts_domain_and_country_touch_only_their_match() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("narrow").await;
    let mut receipts: Vec<Uuid> = Vec::new();
    for i in 0..12 {
        let mut s = at(
            i,
            &format!("s{i}@{}", if i < 4 { "fake.test" } else { "example.org" }),
        );
        s["country"] = json!(if i % 2 == 0 { "AZ" } else { "NL" });
        receipts.push(receipt(app.sign(&slug, &s).await).await.unwrap());
    }
    let start = |body: Value| {
        let (app, slug) = (&app, &slug);
        async move {
            let r = admin_post(app, &format!("/v1/petitions/{slug}/invalidations"), &body).await;
            assert_eq!(r.status(), 202);
            let location = r.headers()["location"].to_str().unwrap().to_owned();
            wait_for_state(app, &location, "done").await["affected"]
                .as_i64()
                .unwrap()
        }
    };
    // fake.test and AZ: signers 0 and 2.
    assert_eq!(
        start(json!({"email_domain": "*.test", "country": "az", "reason": "r"})).await,
        2
    );
    // Receipts 4..7, of which none is invalid yet.
    let some: Vec<String> = receipts[4..7].iter().map(Uuid::to_string).collect();
    assert_eq!(start(json!({"receipts": some, "reason": "r"})).await, 3);
    // Already invalid ones are not taken twice.
    let again: Vec<String> = receipts[0..5].iter().map(Uuid::to_string).collect();
    assert_eq!(start(json!({"receipts": again, "reason": "r"})).await, 2);
    // A long list (over the 16 KiB other bodies may take) matching nothing.
    let strangers: Vec<String> = (0..2_000).map(|_| Uuid::new_v4().to_string()).collect();
    assert_eq!(
        start(json!({"receipts": strangers, "reason": "r"})).await,
        0
    );
    count_reaches(&app, &slug, 5).await;
    let listed = admin_get(&app, &format!("/v1/petitions/{slug}/invalidations")).await;
    assert_eq!(listed["invalidations"].as_array().unwrap().len(), 4);
    // The audit trail keeps how many receipts, not which.
    let detail: Value = ns
        .sql()
        .await
        .query_one(
            "SELECT detail FROM audit_log WHERE action = 'invalidation.create' ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(detail["criteria"]["receipts"], 2_000);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_name_the_fastest_addresses_and_domains_and_feed_metrics() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| {
        c.trusted_proxies = "127.0.0.1".parse().expect("proxies");
        c.signals_refresh_secs = 1;
    })
    .await;
    let slug = app.petition("signals").await;
    // 22 signers at one domain, 6 of them from one address; two from one IPv6 /64.
    for i in 0..28 {
        let client = match i {
            0..6 => "203.0.113.5".to_owned(),
            26 => "2001:db8:1:2::a".to_owned(),
            27 => "2001:db8:1:2::b".to_owned(),
            _ => format!("198.51.100.{i}"),
        };
        let domain = if i < 22 { "burst.test" } else { "example.org" };
        let r = app
            .sign_from(&slug, &at(i, &format!("s{i}@{domain}")), &client)
            .await;
        assert_eq!(r.status(), 202);
    }
    let anonymous = app
        .http
        .get(app.url(&format!("/v1/petitions/{slug}/signals")))
        .send()
        .await
        .unwrap();
    problem(anonymous, 401).await;
    let signals = admin_get(&app, &format!("/v1/petitions/{slug}/signals")).await;
    assert_eq!(
        signals["addresses"][0],
        json!({"address": "203.0.113.5", "signatures": 6})
    );
    assert_eq!(
        signals["addresses"][1],
        json!({"address": "2001:db8:1:2::/64", "signatures": 2})
    );
    assert_eq!(
        signals["email_domains"],
        json!([{"email_domain": "burst.test", "signatures": 22}, {"email_domain": "example.org", "signatures": 6}])
    );

    let metrics = signal_metrics(
        &app,
        &[
            r#"undersigned_signal_email_domain_signatures{domain="burst.test",petition="signals"} 22"#,
            r#"undersigned_signal_address_signatures{petition="signals",rank="1"} 6"#,
        ],
    )
    .await;
    assert!(
        !metrics.contains("203.0.113.5"),
        "addresses stay out of metrics"
    );
    app.stop().await;
    ns.clean().await;
}

/// The metrics text once it holds every one of `lines` (the signals' gauges
/// are refreshed in the background).
async fn signal_metrics(app: &TestApp, lines: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = app.metrics_text().await;
        if lines.iter().all(|line| metrics.contains(line)) {
            return metrics;
        }
        assert!(
            Instant::now() < deadline,
            "signals never reached the metrics: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_without_an_email_count_toward_no_domain_and_signals_keep_working() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| c.signals_refresh_secs = 1).await;
    let slug = app.petition("offline").await;
    let admin = app.admin_token().await;
    email_optional_offline(&app, &slug).await;
    // Two signers on the web, three paper forms without an email.
    for i in 0..2 {
        assert!(receipt(app.sign(&slug, &signer(i)).await).await.is_some());
    }
    let r = app
        .http
        .post(app.url(&format!("/v1/petitions/{slug}/signatures:import")))
        .bearer_auth(&admin)
        .header("content-type", "text/csv")
        .body(
            "full_name,email,country,postal_code\r\n\
             Anna Jansen,,NL,1012 AB\r\n\
             Siobhán Ní Bhriain,,IE,D02 X285\r\n\
             Işık Yılmaz,,TR,34000\r\n",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["accepted"], 3);
    count_reaches(&app, &slug, 5).await;

    let signals = admin_get(&app, &format!("/v1/petitions/{slug}/signals")).await;
    assert_eq!(
        signals["email_domains"],
        json!([{"email_domain": "example.org", "signatures": 2}])
    );
    assert_eq!(
        signals["addresses"],
        json!([{"address": "127.0.0.1", "signatures": 2}])
    );
    signal_metrics(
        &app,
        &[r#"undersigned_signal_address_signatures{petition="offline",rank="1"} 2"#],
    )
    .await;
    app.stop().await;
    ns.clean().await;
}

/// The last point of the petition's history by `interval`, and the sum of
/// its changes.
async fn history_end(app: &TestApp, slug: &str, interval: &str) -> (Value, i64) {
    let history = app
        .get_json(&format!("/v1/petitions/{slug}/history?interval={interval}"))
        .await;
    assert_eq!(history["interval"], interval);
    let points = history["points"].as_array().unwrap();
    let signed = points.iter().map(|p| p["signed"].as_i64().unwrap()).sum();
    (points.last().cloned().unwrap_or(Value::Null), signed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_follows_the_count_through_invalidation_undo_erasure_and_a_restart() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("history").await;
    let mut receipts = Vec::new();
    for i in 0..8 {
        let mut s = signer(i);
        if i >= 6 {
            s["signer_kind"] = json!("organization");
            s["organization"] = json!(format!("Union {i}"));
        }
        receipts.push(receipt(app.sign(&slug, &s).await).await.unwrap());
    }
    count_reaches(&app, &slug, 8).await;
    // Each step's count is the running total at the history's end, by every
    // interval, and the changes add up to it.
    let ends_at = |people: i64, organizations: i64| {
        let (app, slug) = (&app, &slug);
        async move {
            for interval in ["minute", "hour", "day"] {
                let (last, signed) = history_end(app, slug, interval).await;
                assert_eq!(
                    (&last["people"], &last["organizations"], &last["total"]),
                    (
                        &json!(people),
                        &json!(organizations),
                        &json!(people + organizations)
                    ),
                    "{interval}: {last}"
                );
                assert_eq!(signed, people + organizations, "{interval}");
            }
        }
    };
    ends_at(6, 2).await;

    // Three people and an organization invalidated: the history goes down
    // when it happened; undone, up again.
    let some: Vec<String> = [0, 1, 2, 7]
        .iter()
        .map(|&i| receipts[i].to_string())
        .collect();
    let r = admin_post(
        &app,
        &format!("/v1/petitions/{slug}/invalidations"),
        &json!({"receipts": some, "reason": "a bot"}),
    )
    .await;
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    wait_for_state(&app, &location, "done").await;
    count_reaches(&app, &slug, 4).await;
    ends_at(3, 1).await;
    let r = admin_post(&app, &format!("{location}/undo"), &json!({})).await;
    assert_eq!(r.status(), 202);
    wait_for_state(&app, &location, "undone").await;
    count_reaches(&app, &slug, 8).await;
    ends_at(6, 2).await;

    // An erasure on the signer's request takes their signature off.
    let r = admin_post(
        &app,
        "/v1/erasures",
        &json!({"email": "signer.3@example.org"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    count_reaches(&app, &slug, 7).await;
    ends_at(5, 2).await;

    // The gauge an operator's Grafana charts; a draft is not named there.
    app.petition_with(
        "unannounced",
        json!({"status": "draft", "verification": "none"}),
    )
    .await;
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains(&format!(
            "undersigned_petition_signatures{{petition=\"{slug}\"}} 7"
        )),
        "{metrics}"
    );
    assert!(!metrics.contains("unannounced"), "{metrics}");

    // Kept in Postgres: a restarted service reads the same.
    let before = app
        .get_json(&format!("/v1/petitions/{slug}/history?interval=minute"))
        .await;
    app.stop().await;
    let app = TestApp::start(&ns, |_| {}).await;
    let after = app
        .get_json(&format!("/v1/petitions/{slug}/history?interval=minute"))
        .await;
    assert_eq!(before["points"], after["points"]);

    // A range before the petition has no points; bad ranges say why.
    let empty = app
        .get_json(&format!(
            "/v1/petitions/{slug}/history?since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z"
        ))
        .await;
    assert_eq!(empty["points"], json!([]));
    assert_eq!(empty["interval"], "hour");
    assert_eq!(
        empty["start"],
        json!({"total": 0, "people": 0, "organizations": 0})
    );
    // A range after the last change starts from the count then, and is
    // whole intervals: `since` down, `until` up.
    use chrono::SecondsFormat::Millis;
    let now = chrono::Utc::now();
    let later = app
        .get_json(&format!(
            "/v1/petitions/{slug}/history?interval=minute&since={}&until={}",
            (now + chrono::TimeDelta::seconds(90)).to_rfc3339_opts(Millis, true),
            (now + chrono::TimeDelta::seconds(150)).to_rfc3339_opts(Millis, true),
        ))
        .await;
    assert_eq!(later["points"], json!([]));
    assert_eq!(
        later["start"],
        json!({"total": 7, "people": 5, "organizations": 2})
    );
    let minute = |at: &Value| chrono::DateTime::parse_from_rfc3339(at.as_str().unwrap()).unwrap();
    let (since, until) = (minute(&later["since"]), minute(&later["until"]));
    assert_eq!(since.timestamp() % 60, 0, "{later}");
    assert_eq!(until.timestamp() % 60, 0, "{later}");
    assert!((1..=3).contains(&(until - since).num_minutes()), "{later}");
    for (query, field, code) in [
        ("interval=week", "interval", "not_an_interval"),
        ("since=yesterday", "since", "invalid"),
        (
            "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            "since",
            "not_before_until",
        ),
        (
            "interval=minute&since=2026-01-01T00:00:00Z&until=2026-01-09T00:00:00Z",
            "since",
            "range_too_long",
        ),
        // A week of minutes, but rounded out to whole minutes one more.
        (
            "interval=minute&since=2026-01-01T00:00:30Z&until=2026-01-08T00:00:30Z",
            "since",
            "range_too_long",
        ),
    ] {
        let r = app
            .http
            .get(app.url(&format!("/v1/petitions/{slug}/history?{query}")))
            .send()
            .await
            .unwrap();
        let p = problem(r, 422).await;
        assert_eq!(
            p["errors"],
            json!([{"field": field, "code": code}]),
            "{query}"
        );
    }
    let week = app
        .get_json(&format!(
            "/v1/petitions/{slug}/history?interval=minute&since=2026-01-01T00:00:00Z&until=2026-01-08T00:00:00Z"
        ))
        .await;
    assert_eq!(week["until"], "2026-01-08T00:00:00Z");
    let r = app
        .http
        .get(app.url("/v1/petitions/nobody/history"))
        .send()
        .await
        .unwrap();
    problem(r, 404).await;
    app.stop().await;
    ns.clean().await;
}
