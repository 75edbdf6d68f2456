//! Deduplication and exact counts under concurrency.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use serde_json::{Value, json};
use unicode_normalization::UnicodeNormalization;

use crate::support::{COUNTRIES, NAMES, Namespace, TestApp, receipt, rows, signer, stored};

/// Signer `i`'s address: every fourth one on Gmail, to exercise its folding.
pub(crate) fn email(i: usize) -> String {
    if i.is_multiple_of(4) {
        format!("first.last{i}@gmail.com")
    } else {
        format!("signer.{i}@example.org")
    }
}

/// The same mailbox and person, written another way.
pub(crate) fn written_differently(i: usize, variant: usize) -> Value {
    let email = email(i);
    let (local, domain) = email.split_once('@').unwrap();
    let other = match variant % 5 {
        0 => email.to_uppercase(),
        1 => format!("  {local}@{}  ", domain.to_uppercase()),
        2 => format!("{local}+petition@{domain}"),
        3 if domain == "gmail.com" => format!("{}@googlemail.com", local.replace('.', "")),
        3 => format!("{}+x@{domain}", local.to_uppercase()),
        _ if domain == "gmail.com" => format!("{}@gmail.com", local.replace("first", "f.i.r.s.t")),
        _ => format!("{}@{domain}", local.to_uppercase()),
    };
    json!({
        "full_name": NAMES[i % NAMES.len()].nfd().collect::<String>(),
        "email": other,
        "country": COUNTRIES[i % COUNTRIES.len()].to_lowercase(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_concurrent_with_four_hundred_disguised_duplicates() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("declaration").await;

    let mut bodies: Vec<Value> = (0..1600)
        .map(|i| {
            let mut s = signer(i);
            s["email"] = json!(email(i));
            s
        })
        .collect();
    bodies.extend((0..400).map(|m| written_differently(m * 4 + m % 4, m)));
    // Interleave duplicates with originals so they race in the same batches.
    let order: Vec<usize> = (0..2000).map(|k| (k * 7919) % 2000).collect();
    let answers = join_all(order.iter().map(|&k| app.sign(&slug, &bodies[k]))).await;
    let mut receipts = Vec::new();
    for answer in answers {
        assert_eq!(answer.status(), 202);
        receipts.push(receipt(answer).await.expect("receipt"));
    }

    let sql = ns.sql().await;
    assert_eq!(rows(&sql).await, 1600);
    let count = app.count(&slug).await;
    assert_eq!(count["count"], 1600);
    assert_eq!(count["people"], 1600);
    assert_eq!(count["organizations"], 0);
    let expected: BTreeMap<String, Value> = COUNTRIES
        .iter()
        .map(|c| (c.to_string(), json!(200)))
        .collect();
    assert_eq!(count["by_country"], json!(expected));
    // The maintained counts agree with the rows themselves.
    let counted: i64 = sql
        .query_one("SELECT sum(count)::bigint FROM signature_counts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(counted, 1600);
    // Receipts of new signatures are stored; receipts of duplicates look alike but are not.
    assert_eq!(stored(&sql, &receipts).await, 1600);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizations_are_counted_apart_and_names_are_normalized() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("orgs").await;
    let org = json!({
        "full_name": "  Ana   Pérez ", "email": "contact@ngo.example", "country": "ES",
        "signer_kind": "organization", "organization": "Amigos de la Tierra",
        "consent_updates": true, "postal_code": "28001", "city": "Madrid", "locale": "es-es"
    });
    assert_eq!(app.sign(&slug, &org).await.status(), 202);
    assert_eq!(app.sign(&slug, &signer(1)).await.status(), 202);
    let count = app.count(&slug).await;
    assert_eq!(
        (
            count["count"].clone(),
            count["people"].clone(),
            count["organizations"].clone()
        ),
        (json!(2), json!(1), json!(1))
    );

    let row = ns
        .sql()
        .await
        .query_one(
            "SELECT full_name, organization, consent_updates, locale, signer_kind, channel
             FROM signatures WHERE signer_kind = 'organization'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "Ana Pérez");
    assert_eq!(row.get::<_, String>(1), "Amigos de la Tierra");
    assert!(row.get::<_, bool>(2));
    assert_eq!(row.get::<_, String>(3), "es-ES");
    assert_eq!(row.get::<_, String>(5), "web");
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_html_form_signs() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("form").await;
    let r = app.post_raw(&app.url(&format!("/v1/petitions/{slug}/signatures")), Some("application/x-www-form-urlencoded"), "full_name=Zo%C3%AB+%C3%98rsted&email=zoe%40example.dk&country=dk&consent_updates=on&city=").await;
    assert_eq!(r.status(), 202);
    assert!(receipt(r).await.is_some());
    let row = ns
        .sql()
        .await
        .query_one(
            "SELECT full_name, consent_updates, city FROM signatures",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "Zoë Ørsted");
    assert!(row.get::<_, bool>(1));
    assert_eq!(row.get::<_, Option<String>>(2), None);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_revalidates_with_its_etag() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("etag").await;
    let url = app.url(&format!("/v1/petitions/{slug}/count"));
    let first = app.http.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(
        first.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let etag = first.headers()["etag"].clone();
    let again = app
        .http
        .get(&url)
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag);
    assert_eq!(app.sign(&slug, &signer(0)).await.status(), 202);
    let changed = app
        .http
        .get(&url)
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"], etag);
    let body: Value = changed.json().await.unwrap();
    assert_eq!(body["count"], 1);
    assert_eq!(body["petition"], "etag");
    assert!(body["updated_at"].is_string());
    app.stop().await;
    ns.clean().await;
}
