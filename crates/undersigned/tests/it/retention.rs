//! Retention (issue 22): a closed petition's signers' personal fields are
//! erased once its `retention_days` have passed, keeping its count, history
//! and receipts; client addresses are erased once older than their own
//! retention. (Pending signatures nobody confirmed are deleted when their
//! link expires: `rights::pending_signatures_nobody_confirms_expire_and_are_never_counted`
//! checks that a `pg_dump` holds nothing of them.)

use std::time::Duration;

use serde_json::{Value, json};
use undersigned_store::Role;

use crate::exports::export;
use crate::petitions::patch;
use crate::rights::dump;
use crate::support::{Namespace, TestApp, petition_id, problem, scoped};
use crate::timing::seen_reaches;

fn signer(i: usize) -> Value {
    json!({"full_name": format!("Retained Signer {i:03}"), "email": format!("retained.{i}@example.org"),
           "country": if i.is_multiple_of(2) { "NL" } else { "AZ" }, "city": format!("Keepsake {i:03}")})
}

async fn shown(app: &TestApp, slug: &str, token: &str) -> Value {
    app.get_json_as(&format!("/v1/petitions/{slug}"), token)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_petition_past_its_retention_keeps_its_count_and_history_and_nothing_of_its_signers()
 {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| c.retention_interval_secs = 1).await;
    let admin = app.admin_token().await;
    let closing = app
        .petition_with(
            "closing",
            json!({"verification": "none", "retention_days": 0}),
        )
        .await;
    let open = app
        .petition_with(
            "still-open",
            json!({"verification": "none", "retention_days": 0}),
        )
        .await;
    for i in 0..20 {
        assert_eq!(app.sign(&closing, &signer(i)).await.status(), 202);
        assert_eq!(app.sign(&open, &signer(100 + i)).await.status(), 202);
    }
    let before = shown(&app, &closing, &admin).await;
    assert_eq!(before["retention_days"], 0);
    assert_eq!(
        before["erasure_due_at"],
        Value::Null,
        "open, with no closing time"
    );
    let history = app
        .get_json(&format!("/v1/petitions/{closing}/history"))
        .await;

    let id = petition_id(&ns, &closing).await;
    seen_reaches(&ns, id, 20).await;
    let closed = patch(&app, &closing, &admin, json!({"status": "closed"})).await;
    assert_eq!(closed.status(), 200);
    assert!(closed.json::<Value>().await.unwrap()["erasure_due_at"].is_string());
    let mut erased = Value::Null;
    for _ in 0..200 {
        erased = shown(&app, &closing, &admin).await;
        if !erased["personal_data_erased_at"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(erased["personal_data_erased_at"].is_string(), "{erased}");

    // The count and its history stay.
    let count = app.count(&closing).await;
    assert_eq!(count["count"], 20);
    assert_eq!(count["by_country"], json!({"AZ": 10, "NL": 10}));
    assert_eq!(
        app.get_json(&format!("/v1/petitions/{closing}/history"))
            .await,
        history
    );
    // Nothing names its signers; the open petition's are untouched.
    let database = dump(&ns);
    for i in 0..20 {
        let s = signer(i);
        for field in ["full_name", "email", "city"] {
            let value = s[field].as_str().unwrap();
            assert!(!database.contains(value), "{value} in pg_dump");
        }
        assert!(database.contains(signer(100 + i)["full_name"].as_str().unwrap()));
    }
    assert!(shown(&app, &open, &admin).await["personal_data_erased_at"].is_null());

    // Exports of personal fields are gone, saying when and why; the rest stay.
    for query in [
        "format=csv",
        "format=pdf",
        "format=bundle",
        "columns=receipt,email",
    ] {
        let gone = problem(export(&app, &closing, query, &admin).await, 410).await;
        assert_eq!(gone["type"], "/problems/personal-data-erased", "{query}");
        let detail = gone["detail"].as_str().unwrap();
        assert!(
            detail.contains("erased on") && detail.contains("retention_days"),
            "{detail}"
        );
    }
    let kept = export(&app, &closing, "format=csv&columns=receipt,country", &admin).await;
    assert_eq!(kept.status(), 200);
    assert_eq!(kept.text().await.unwrap().lines().count(), 21);

    // Redis no longer knows its signers' keyed hashes.
    let client = redis::Client::open(crate::support::REDIS).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let seen: usize = redis::cmd("SCARD")
        .arg(format!("{{{}:p:{id}}}:seen", ns.prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(seen, 0);

    // The audit trail says how many rows were erased.
    let detail: Value = ns
        .sql()
        .await
        .query_one(
            "SELECT detail FROM audit_log WHERE action = 'retention.erase' AND petition_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(detail["rows"], 20);
    assert_eq!(detail["retention_days"], 0);

    // It cannot take signatures again: it could not tell their duplicates.
    let reopened = problem(
        patch(&app, &closing, &admin, json!({"status": "open"})).await,
        422,
    )
    .await;
    assert_eq!(
        reopened["errors"],
        json!([{"field": "status", "code": "personal_data_erased"}])
    );
    let by_cli = ns.cli(&["petition", "open", &closing]);
    assert!(
        !by_cli.status.success(),
        "the command line cannot open it either"
    );
    assert!(String::from_utf8_lossy(&by_cli.stderr).contains("stays closed"));
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_addresses_past_their_retention_are_erased_and_newer_ones_kept() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| {
        c.retention_interval_secs = 1;
        c.address_retention_days = 1;
    })
    .await;
    let slug = app.petition("addresses").await;
    for i in 0..2 {
        assert_eq!(app.sign(&slug, &signer(i)).await.status(), 202);
    }
    let sql = ns.sql().await;
    sql.execute(
        "UPDATE signatures SET signed_at = now() - interval '2 days'
         WHERE full_name = 'Retained Signer 000'",
        &[],
    )
    .await
    .unwrap();
    let addresses = || async {
        sql.query(
            "SELECT full_name, host(client_address) FROM signatures ORDER BY full_name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, Option<String>>(1)))
        .collect::<Vec<_>>()
    };
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = addresses().await;
        if seen[0].1.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen,
        [
            ("Retained Signer 000".to_owned(), None),
            (
                "Retained Signer 001".to_owned(),
                Some("127.0.0.1".to_owned())
            ),
        ]
    );
    app.stop().await;
    ns.clean().await;
}

#[tokio::test]
async fn keeping_signers_data_forever_is_an_admins_call() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let admin = app.admin_token().await;
    let slug = app.petition("forever").await;
    let organizer = app
        .token(scoped(Role::Organizer, petition_id(&ns, &slug).await, &[]))
        .await;
    assert_eq!(shown(&app, &slug, &admin).await["retention_days"], 180);
    let refused = patch(&app, &slug, &organizer, json!({"retention_days": null})).await;
    assert_eq!(refused.status(), 403);
    let out_of_range = problem(
        patch(&app, &slug, &organizer, json!({"retention_days": -1})).await,
        422,
    )
    .await;
    assert_eq!(
        out_of_range["errors"],
        json!([{"field": "retention_days", "code": "out_of_range"}])
    );
    assert_eq!(
        patch(&app, &slug, &organizer, json!({"retention_days": 30}))
            .await
            .status(),
        200
    );
    let kept = patch(&app, &slug, &admin, json!({"retention_days": null})).await;
    assert_eq!(kept.status(), 200);
    assert_eq!(
        kept.json::<Value>().await.unwrap()["retention_days"],
        Value::Null
    );
    app.stop().await;
    ns.clean().await;
}
