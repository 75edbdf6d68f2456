//! OSDI 1.1 (issue 23), held to the specification's own examples: the
//! entry point, petitions and signatures answer in the shapes the OSDI
//! documents show (`osdi/*.json`, their examples as published, trimmed of
//! the comments that made them invalid JSON), and the record signature
//! helper takes the documents' own request, signs through the normal path
//! (deduplicated, confirmed, limited alike) and answers as they show.

use serde_json::{Value, json};
use undersigned_store::Role;

use crate::support::{Namespace, TestApp, petition_id, scoped, signer};

fn example(name: &str) -> Value {
    let text = match name {
        "aep" => include_str!("osdi/aep.json"),
        "petitions" => include_str!("osdi/petitions.json"),
        "petition" => include_str!("osdi/petition.json"),
        "signatures" => include_str!("osdi/signatures.json"),
        "signature" => include_str!("osdi/signature.json"),
        "record_signature_request" => include_str!("osdi/record_signature_request.json"),
        "record_signature_response" => include_str!("osdi/record_signature_response.json"),
        "person" => include_str!("osdi/person.json"),
        _ => unreachable!("no example {name}"),
    };
    serde_json::from_str(text).expect("an example is JSON")
}

/// Every field of `ours` is one the example has, of the same JSON type (a
/// null stands for an absent optional value); objects are compared field by
/// field, arrays item by item against the example's first item.
/// `required` names the example's paths that `ours` must have.
fn has_the_shape_of(ours: &Value, example: &Value, path: &str) {
    match (ours, example) {
        (Value::Object(o), Value::Object(e)) => {
            for (k, v) in o {
                let inner = format!("{path}.{k}");
                let Some(ev) = e.get(k) else {
                    panic!("{inner} is not in the OSDI example");
                };
                has_the_shape_of(v, ev, &inner);
            }
        }
        (Value::Array(o), Value::Array(e)) => {
            if let Some(first) = e.first() {
                for (i, v) in o.iter().enumerate() {
                    has_the_shape_of(v, first, &format!("{path}[{i}]"));
                }
            }
        }
        (Value::Null, _) => {}
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_)) => {}
        (o, e) => panic!("{path}: {o} where the OSDI example has {e}"),
    }
}

/// The paths (`a.b.c`) that must be there, as the example has them.
fn has_fields(ours: &Value, paths: &[&str]) {
    for path in paths {
        let found = path
            .split('.')
            .try_fold(ours, |v, k| v.get(k))
            .filter(|v| !v.is_null());
        assert!(found.is_some(), "{path} is missing from {ours}");
    }
}

async fn osdi(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .header("OSDI-API-Token", token)
        .send()
        .await
        .unwrap()
}

async fn hal(app: &TestApp, path: &str, token: &str) -> Value {
    let r = osdi(app, path, token).await;
    assert_eq!(r.status(), 200, "{path}");
    assert_eq!(r.headers()["content-type"], "application/hal+json");
    r.json().await.unwrap()
}

async fn record(app: &TestApp, slug: &str, token: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/osdi/v1/petitions/{slug}/signatures")))
        .header("OSDI-API-Token", token)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entry_point_and_petitions_answer_in_the_shapes_of_the_specification() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app
        .petition_with(
            "acme",
            json!({"verification": "none", "ask": "Tell Acme to stop",
                   "targets": [{"name": "Jane Doe, CEO, Acme Co"}, {"name": "Congress"}]}),
        )
        .await;
    app.petition("other").await;
    for i in 0..3 {
        app.sign(&slug, &signer(i)).await;
    }
    let admin = app.admin_token().await;

    let aep = hal(&app, "/osdi/v1", &admin).await;
    has_the_shape_of(&aep, &example("aep"), "aep");
    has_fields(
        &aep,
        &[
            "osdi_version",
            "max_pagesize",
            "namespace",
            "_links.osdi:petitions.href",
            "_links.self.href",
        ],
    );
    assert_eq!(aep["osdi_version"], "1.1");
    assert_eq!(
        aep["_links"]["osdi:petitions"]["href"],
        "/osdi/v1/petitions"
    );

    let all = hal(&app, "/osdi/v1/petitions?per_page=1", &admin).await;
    has_the_shape_of(&all, &example("petitions"), "petitions");
    assert_eq!(
        (
            &all["total_records"],
            &all["total_pages"],
            &all["page"],
            &all["per_page"]
        ),
        (&json!(2), &json!(2), &json!(1), &json!(1))
    );
    assert_eq!(
        all["_links"]["next"]["href"],
        "/osdi/v1/petitions?page=2&per_page=1"
    );

    let one = hal(&app, &format!("/osdi/v1/petitions/{slug}"), &admin).await;
    has_the_shape_of(&one, &example("petition"), "petition");
    has_fields(
        &one,
        &[
            "identifiers",
            "origin_system",
            "created_date",
            "modified_date",
            "title",
            "description",
            "petition_text",
            "total_signatures",
            "target",
            "_links.self.href",
            "_links.osdi:signatures.href",
            "_links.osdi:record_signature_helper.href",
        ],
    );
    assert_eq!(one["identifiers"], json!(["undersigned:acme"]));
    assert_eq!(one["total_signatures"], 3);
    assert_eq!(one["summary"], "Tell Acme to stop");
    assert_eq!(
        one["target"],
        json!([{"name": "Jane Doe, CEO, Acme Co"}, {"name": "Congress"}])
    );

    // Who may see what: no token, a tablet's, another petition's organizer.
    let none = app.http.get(app.url("/osdi/v1")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let id = petition_id(&ns, &slug).await;
    let device = app.token(scoped(Role::Device, id, &[])).await;
    assert_eq!(
        osdi(&app, "/osdi/v1/petitions", &device).await.status(),
        403
    );
    let elsewhere = app
        .token(scoped(
            Role::Organizer,
            petition_id(&ns, "other").await,
            &[],
        ))
        .await;
    assert_eq!(
        osdi(&app, &format!("/osdi/v1/petitions/{slug}"), &elsewhere)
            .await
            .status(),
        403
    );
    let theirs = hal(&app, "/osdi/v1/petitions", &elsewhere).await;
    assert_eq!(theirs["total_records"], 1);
    assert_eq!(theirs["_embedded"]["osdi:petitions"][0]["name"], "other");
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_signature_helper_takes_the_specifications_request_once() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("helped").await;
    let id = petition_id(&ns, &slug).await;
    let organizer = app.token(scoped(Role::Organizer, id, &[])).await;
    let request = example("record_signature_request");

    let r = record(&app, &slug, &organizer, &request).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/hal+json");
    let answer: Value = r.json().await.unwrap();
    has_the_shape_of(&answer, &example("record_signature_response"), "response");
    has_fields(
        &answer,
        &[
            "identifiers",
            "created_date",
            "action_date",
            "_links.self.href",
            "_links.osdi:petition.href",
        ],
    );
    // The same person again: deduplicated, answered alike.
    let again = record(&app, &slug, &organizer, &request).await;
    assert_eq!(again.status(), 200);
    crate::support::count_reaches(&app, &slug, 1).await;
    let sql = ns.sql().await;
    let row = sql
        .query_one(
            "SELECT full_name, email, country, postal_code, city, channel, consent_updates
             FROM signatures",
            &[],
        )
        .await
        .unwrap();
    let stored: (String, String, String, String, String, String, bool) = (
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
        row.get(6),
    );
    assert_eq!(
        stored,
        (
            "Labadie Marques Edwin".into(),
            "test-3@example.com".into(),
            "RU".into(),
            "17678".into(),
            "New Dudley".into(),
            "web".into(),
            false
        )
    );
    let receipt = answer["identifiers"][0]
        .as_str()
        .unwrap()
        .strip_prefix("undersigned:")
        .unwrap()
        .to_owned();
    let stored_id: uuid::Uuid = sql
        .query_one("SELECT id FROM signatures", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(receipt, stored_id.to_string());

    // What the helper cannot take is OSDI's error, naming OSDI's fields.
    let mut nameless = request.clone();
    nameless["person"]["email_addresses"] = json!([]);
    let r = record(&app, &slug, &organizer, &nameless).await;
    assert_eq!(r.status(), 400);
    let error: Value = r.json().await.unwrap();
    assert_eq!(error["request_type"], "atomic");
    assert_eq!(error["response_code"], 400);
    let status = &error["resource_status"][0];
    assert_eq!(status["resource"], "osdi:signature");
    assert_eq!(
        status["error_descriptions"][0]["properties"],
        json!(["person.email_addresses.address"])
    );
    assert_eq!(status["error_descriptions"][0]["error_code"], "REQUIRED");
    let r = record(&app, &slug, &organizer, &json!({"comments": "no person"})).await;
    assert_eq!(r.status(), 400);
    // Only those who may sign it without a captcha: not a coordinator.
    let coordinator = app.token(scoped(Role::Coordinator, id, &["RU"])).await;
    assert_eq!(
        record(&app, &slug, &coordinator, &request).await.status(),
        403
    );
    let r = app
        .http
        .post(app.url(&format!(
            "/osdi/v1/petitions/{slug}/record_signature_helper"
        )))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_paged_as_the_specification_shows_and_coordinators_see_their_countries() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("paged").await;
    // Countries cycle ES, AZ, RU, …: signers 0 and 8 in ES.
    let mut informed = signer(0);
    informed["consent_updates"] = json!(true);
    informed["postal_code"] = json!("28001");
    app.sign(&slug, &informed).await;
    for i in 1..9 {
        app.sign(&slug, &signer(i)).await;
    }
    crate::support::count_reaches(&app, &slug, 9).await;
    let admin = app.admin_token().await;
    let page = hal(
        &app,
        &format!("/osdi/v1/petitions/{slug}/signatures?per_page=4&page=2"),
        &admin,
    )
    .await;
    // The collection as the example shows it (which has no `prev`: this
    // is a second page), its items apart.
    let mut shell = page.clone();
    shell["_links"].as_object_mut().unwrap().remove("prev");
    shell.as_object_mut().unwrap().remove("_embedded");
    has_the_shape_of(&shell, &example("signatures"), "signatures");
    assert_eq!(
        (&page["total_records"], &page["total_pages"], &page["page"]),
        (&json!(9), &json!(3), &json!(2))
    );
    assert!(page["_links"]["next"]["href"].is_string());
    assert!(page["_links"]["prev"]["href"].is_string());
    let items = page["_embedded"]["osdi:signatures"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(
        page["_links"]["osdi:signatures"].as_array().unwrap().len(),
        4
    );
    let signature_example = example("signature");
    for item in items {
        let mut without_person = item.clone();
        let person = without_person
            .as_object_mut()
            .unwrap()
            .remove("_embedded")
            .expect("a person in clear");
        has_the_shape_of(&without_person, &signature_example, "signature");
        has_fields(
            &without_person,
            &[
                "identifiers",
                "created_date",
                "action_date",
                "_links.self.href",
                "_links.osdi:petition.href",
            ],
        );
        has_the_shape_of(&person["osdi:person"], &example("person"), "person");
    }
    // One signature, its person as OSDI writes one.
    let coordinator = app
        .token(scoped(
            Role::Coordinator,
            petition_id(&ns, &slug).await,
            &["ES"],
        ))
        .await;
    let theirs = hal(
        &app,
        &format!("/osdi/v1/petitions/{slug}/signatures"),
        &coordinator,
    )
    .await;
    assert_eq!(theirs["total_records"], 2);
    let first = &theirs["_embedded"]["osdi:signatures"][0];
    let href = first["_links"]["self"]["href"].as_str().unwrap();
    let one = hal(&app, href, &coordinator).await;
    assert_eq!(&one, first);
    let person = &one["_embedded"]["osdi:person"];
    assert_eq!(person["given_name"], "José María");
    assert_eq!(person["family_name"], "Gómez");
    assert_eq!(person["email_addresses"][0]["address"], informed["email"]);
    assert_eq!(person["email_addresses"][0]["status"], "subscribed");
    assert_eq!(person["postal_addresses"][0]["country"], "ES");
    assert_eq!(person["postal_addresses"][0]["postal_code"], "28001");
    // Another country's signature is not theirs to read.
    let az = hal(
        &app,
        &format!("/osdi/v1/petitions/{slug}/signatures"),
        &admin,
    )
    .await["_embedded"]["osdi:signatures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["_embedded"]["osdi:person"]["postal_addresses"][0]["country"] == "AZ")
        .unwrap()["_links"]["self"]["href"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(osdi(&app, &az, &coordinator).await.status(), 404);
    let read: i64 = ns
        .sql()
        .await
        .query_one(
            "SELECT count(*) FROM audit_log WHERE action = 'signatures.list'
             AND detail->>'api' = 'osdi'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(read, 4);
    app.stop().await;
    ns.clean().await;
}
