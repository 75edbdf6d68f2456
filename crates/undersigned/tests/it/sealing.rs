//! Sealed petitions (issue 22): signers' personal fields sealed to the
//! campaign's `age` keys before they reach Postgres, counted and
//! deduplicated as any others, exported sealed and opened only with a
//! recipient's key, by `undersigned unseal`, into the same CSV, PDF and
//! signed bundle as a clear petition's.

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine;
use futures_util::future::join_all;
use serde_json::{Value, json};
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use crate::counting::{email, written_differently};
use crate::exports::{export, pdf_text};
use crate::petitions::patch;
use crate::rights::{app_with_relay, counts_reach, dump, link_in, sign_and_confirm};
use crate::support::{COUNTRIES, Namespace, TestApp, petition_id, problem, receipt, scoped};
use undersigned_store::Role;

/// A new identity written by `seal-key generate`, and its public recipient
/// (the last line it prints).
fn generate_key(ns: &Namespace, file: &Path) -> String {
    let out = ns.cli(&["seal-key", "generate", "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the identity is private to its owner");
    let printed = String::from_utf8(out.stdout).unwrap();
    let public = printed.lines().last().unwrap().to_owned();
    assert!(public.starts_with("age1"), "{printed}");
    assert!(
        std::fs::read_to_string(file)
            .unwrap()
            .contains("AGE-SECRET-KEY-1")
    );
    public
}

/// `undersigned unseal` into `out`; its output, whether it succeeded or not.
fn unseal(
    ns: &Namespace,
    key: &Path,
    input: &Path,
    format: &str,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "unseal",
        "--key",
        key.to_str().unwrap(),
        "--in",
        input.to_str().unwrap(),
        "--format",
        format,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    ns.cli(&args)
}

/// `unseal` that must succeed.
fn unsealed(ns: &Namespace, key: &Path, input: &Path, format: &str, out: &Path, extra: &[&str]) {
    let run = unseal(ns, key, input, format, out, extra);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

fn name(i: usize) -> String {
    format!("Sealed Signer {i:04}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_petition_counts_exactly_holds_nothing_in_clear_and_opens_only_with_its_key() {
    let ns = Namespace::new();
    let dir = tempfile::tempdir().unwrap();
    let campaign_key = dir.path().join("campaign.key");
    let public = generate_key(&ns, &campaign_key);
    let stranger_key = dir.path().join("stranger.key");
    generate_key(&ns, &stranger_key);
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app
        .petition_with(
            "sealed",
            json!({"verification": "none", "sealing_key": public}),
        )
        .await;
    let shown = app.get_json(&format!("/v1/petitions/{slug}")).await;
    assert_eq!(shown["sealing_key"], json!([public]));

    // 2,000 at once, 400 of them signers already among the others, their
    // addresses written differently.
    let mut bodies: Vec<Value> = (0..1600)
        .map(|i| {
            json!({"full_name": name(i), "email": email(i), "country": COUNTRIES[i % COUNTRIES.len()],
                   "city": format!("Sealtown {i}"), "postal_code": format!("S{i:04}")})
        })
        .collect();
    bodies.extend((0..400).map(|m| written_differently(m * 4 + m % 4, m)));
    let order: Vec<usize> = (0..2000).map(|k| (k * 7919) % 2000).collect();
    let answers = join_all(order.iter().map(|&k| app.sign(&slug, &bodies[k]))).await;
    for answer in answers {
        assert_eq!(answer.status(), 202);
        receipt(answer).await.expect("receipt");
    }
    let count = app.count(&slug).await;
    assert_eq!(count["count"], 1600);
    assert_eq!(count["people"], 1600);

    let sql = ns.sql().await;
    let stored: BTreeSet<String> = sql
        .query(
            "SELECT id::text FROM signatures WHERE sealed IS NOT NULL AND full_name = ''
               AND email IS NULL AND city IS NULL AND postal_code IS NULL",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored.len(), 1600, "every row sealed, none in clear");
    // What abuse handling keeps: the domain, and the address's /24.
    let (domain, address): (String, String) = {
        let r = sql
            .query_one(
                "SELECT email_domain, host(client_address) FROM signatures LIMIT 1",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(
        ["example.org", "gmail.com"].contains(&domain.as_str()),
        "{domain}"
    );
    assert_eq!(address, "127.0.0.0");

    let database = dump(&ns);
    for i in 0..1600 {
        assert!(!database.contains(&name(i)), "{} in pg_dump", name(i));
        assert!(!database.contains(&email(i)), "{} in pg_dump", email(i));
        assert!(
            !database.contains(&format!("Sealtown {i}\t")),
            "a city in pg_dump"
        );
    }

    // Only format=sealed leaves, and only its recipients open it.
    let admin = app.admin_token().await;
    for format in ["csv", "jsonl", "pdf", "bundle"] {
        let refused = problem(
            export(&app, &slug, &format!("format={format}"), &admin).await,
            409,
        )
        .await;
        assert_eq!(refused["errors"][0]["field"], "format", "{refused}");
        assert!(
            refused["detail"]
                .as_str()
                .unwrap()
                .contains("format=sealed"),
            "{refused}"
        );
    }
    // What stays in clear exports as from any petition.
    let clear = export(&app, &slug, "format=csv&columns=receipt,country", &admin).await;
    assert_eq!(clear.status(), 200);
    assert_eq!(clear.text().await.unwrap().lines().count(), 1601);
    let columns = "columns=receipt,full_name,email,city,postal_code,country";
    let sealed = export(&app, &slug, &format!("format=sealed&{columns}"), &admin).await;
    assert_eq!(sealed.status(), 200);
    let sealed_file = dir.path().join("sealed.jsonl");
    std::fs::write(&sealed_file, sealed.bytes().await.unwrap()).unwrap();
    assert!(
        !std::fs::read_to_string(&sealed_file)
            .unwrap()
            .contains("Sealed Signer")
    );

    let csv_file = dir.path().join("opened.csv");
    unsealed(&ns, &campaign_key, &sealed_file, "csv", &csv_file, &[]);
    // Each signer's row as they wrote it: the original, or the disguised
    // duplicate where that one came first.
    let written = |b: &Value, field: &str| {
        b[field]
            .as_str()
            .unwrap_or_default()
            .trim()
            .nfc()
            .collect::<String>()
    };
    let submitted: BTreeSet<(String, String)> = bodies
        .iter()
        .map(|b| (written(b, "full_name"), written(b, "email").to_lowercase()))
        .collect();
    let disguised: BTreeSet<usize> = (0..400).map(|m| m * 4 + m % 4).collect();
    let mut reader = csv::Reader::from_path(&csv_file).unwrap();
    let mut opened = BTreeSet::new();
    let mut originals = BTreeSet::new();
    for record in reader.records() {
        let record = record.unwrap();
        let row = (
            record[1].nfc().collect::<String>(),
            record[2].to_lowercase(),
        );
        assert!(submitted.contains(&row), "{record:?} was never sent");
        if let Some(i) = record[1]
            .strip_prefix("Sealed Signer ")
            .and_then(|i| i.parse::<usize>().ok())
        {
            assert_eq!(&record[2], email(i), "row {i}");
            assert_eq!(&record[3], format!("Sealtown {i}"));
            assert_eq!(&record[4], format!("S{i:04}"));
            originals.insert(i);
        }
        opened.insert(record[0].to_owned());
    }
    assert_eq!(opened, stored, "every stored receipt, once");
    assert!(
        (0..1600).all(|i| originals.contains(&i) || disguised.contains(&i)),
        "every signer not duplicated is there as they signed"
    );

    let pdf_file = dir.path().join("opened.pdf");
    unsealed(&ns, &campaign_key, &sealed_file, "pdf", &pdf_file, &[]);
    let (text, _) = pdf_text(&std::fs::read(&pdf_file).unwrap(), dir.path());
    for i in &originals {
        assert!(text.contains(&name(*i)), "{} not in the PDF", name(*i));
    }
    assert!(
        text.contains("1,600") || text.contains("1600"),
        "the PDF's total"
    );

    // A bundle signed with the key given, which `bundle verify --key` checks.
    let seed = [7u8; 32];
    let signing_key = dir.path().join("signing.key");
    std::fs::write(&signing_key, hex::encode(seed)).unwrap();
    let verifying = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    let public_key = base64::engine::general_purpose::STANDARD.encode(verifying.to_bytes());
    let bundle_file = dir.path().join("opened.zip");
    let signing = signing_key.to_str().unwrap();
    unsealed(
        &ns,
        &campaign_key,
        &sealed_file,
        "bundle",
        &bundle_file,
        &["--signing-key", signing],
    );
    let out = ns.cli(&[
        "bundle",
        "verify",
        bundle_file.to_str().unwrap(),
        "--key",
        &public_key,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = unseal(
        &ns,
        &campaign_key,
        &sealed_file,
        "bundle",
        &bundle_file,
        &[],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--signing-key"));

    // Another key opens nothing, and says so.
    let elsewhere = dir.path().join("stranger.csv");
    let out = unseal(&ns, &stranger_key, &sealed_file, "csv", &elsewhere, &[]);
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        error.contains("not the key the data was sealed to"),
        "{error}"
    );
    assert!(
        error.contains(&public),
        "names whose key is needed: {error}"
    );
    assert!(!elsewhere.exists() && !elsewhere.with_extension("partial").exists());

    // A sealed row altered in the database no longer opens, and the error
    // names its receipt.
    let altered: Uuid = sql
        .query_one(
            "UPDATE signatures SET sealed = set_byte(sealed, length(sealed) - 1,
                 get_byte(sealed, length(sealed) - 1) # 1)
             WHERE id = (SELECT id FROM signatures ORDER BY id LIMIT 1) RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let again = export(&app, &slug, &format!("format=sealed&{columns}"), &admin).await;
    std::fs::write(&sealed_file, again.bytes().await.unwrap()).unwrap();
    let out = unseal(
        &ns,
        &campaign_key,
        &sealed_file,
        "csv",
        &csv_file.with_extension("again"),
        &[],
    );
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        error.contains(&altered.to_string()) && error.contains("altered"),
        "{error}"
    );

    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_signature_is_confirmed_and_withdrawn_by_email_and_its_address_kept_only_to_send()
{
    let ns = Namespace::new();
    let dir = tempfile::tempdir().unwrap();
    let public = generate_key(&ns, &dir.path().join("campaign.key"));
    let (app, sink) = app_with_relay(&ns, None).await;
    let slug = app
        .petition_with("sealed", json!({"sealing_key": [public]}))
        .await;
    let jan = json!({"full_name": "Jan de Vries", "email": "Jan@Example.NL", "country": "NL",
                     "city": "Amsterdam"});
    sign_and_confirm(&app, &sink, &slug, jan.clone()).await;
    counts_reach(&app, &slug, (1, 0)).await;
    let sql = ns.sql().await;
    let row = sql
        .query_one(
            "SELECT email, full_name, city, email_domain, sealed IS NOT NULL FROM signatures",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, Option<String>>(0),
        None,
        "the address went with its message"
    );
    assert_eq!(row.get::<_, String>(1), "");
    assert_eq!(row.get::<_, Option<String>>(2), None);
    assert_eq!(
        row.get::<_, Option<String>>(3).as_deref(),
        Some("example.nl")
    );
    assert!(row.get::<_, bool>(4));
    assert!(!dump(&ns).contains("Jan@Example.NL") && !dump(&ns).contains("Jan de Vries"));

    // The same signer again is a duplicate, however the address is written.
    let mut again = jan.clone();
    again["email"] = json!("jan@example.nl");
    assert_eq!(app.sign(&slug, &again).await.status(), 202);
    counts_reach(&app, &slug, (1, 0)).await;

    // A withdrawal link goes to the address typed in the request (the row
    // holds none), and withdrawing erases the sealed fields too.
    let sent = sink.received().len();
    let r = app
        .http
        .post(app.url(&format!("/v1/petitions/{slug}/withdrawals")))
        .json(&json!({"email": "jan@example.nl"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mail = sink
        .wait_for(sent + 1, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(mail[sent].to, ["jan@example.nl"]);
    let link = link_in(&mail[sent], "withdraw");
    assert_eq!(
        app.http.post(app.url(&link)).send().await.unwrap().status(),
        200
    );
    counts_reach(&app, &slug, (0, 0)).await;
    let left: i64 = sql
        .query_one(
            "SELECT count(*) FROM signatures WHERE sealed IS NOT NULL OR email_domain IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test]
async fn sealing_is_chosen_when_a_petition_is_created() {
    let ns = Namespace::new();
    let dir = tempfile::tempdir().unwrap();
    let first = generate_key(&ns, &dir.path().join("first.key"));
    let second = generate_key(&ns, &dir.path().join("second.key"));
    let app = TestApp::start(&ns, |_| {}).await;
    let admin = app.admin_token().await;
    let create = |body: Value| {
        app.http
            .post(app.url("/v1/petitions"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let base = json!({"slug": "x", "title": "T", "text": "B", "goal": 10});
    for (key, code) in [
        (json!("ssh-ed25519 AAAAC3Nz"), "not_an_age_recipient"),
        (json!([]), "empty"),
        (json!(7), "not_a_key_or_list_of_keys"),
    ] {
        let mut body = base.clone();
        body["sealing_key"] = key;
        let answer = create(body.clone()).await.unwrap();
        assert_eq!(answer.status(), 422, "{body}");
        let refused = problem(answer, 422).await;
        assert_eq!(
            refused["errors"],
            json!([{"field": "sealing_key", "code": code}]),
            "{refused}"
        );
    }
    let clear = app.petition("clear").await;
    let sealed = app
        .petition_with("sealed", json!({"sealing_key": first}))
        .await;
    for (slug, key) in [(&clear, json!(first)), (&sealed, Value::Null)] {
        let refused = problem(
            patch(&app, slug, &admin, json!({"sealing_key": key})).await,
            422,
        )
        .await;
        assert_eq!(
            refused["errors"],
            json!([{"field": "sealing_key", "code": "chosen_at_creation"}])
        );
    }
    // Who may open it is an admin's call, not an organizer's.
    let organizer = app
        .token(scoped(
            Role::Organizer,
            petition_id(&ns, &sealed).await,
            &[],
        ))
        .await;
    let own_key = patch(&app, &sealed, &organizer, json!({"sealing_key": second})).await;
    assert_eq!(own_key.status(), 403);
    // Its recipients may change: a coordinator's key joins.
    let changed = patch(
        &app,
        &sealed,
        &admin,
        json!({"sealing_key": [first, second]}),
    )
    .await;
    assert_eq!(changed.status(), 200);
    assert_eq!(
        changed.json::<Value>().await.unwrap()["sealing_key"],
        json!([first, second])
    );
    let refused = problem(export(&app, &clear, "format=sealed", &admin).await, 409).await;
    assert_eq!(refused["errors"][0]["field"], "format");
    assert_eq!(refused["type"], "/problems/not-sealed");
    app.stop().await;
    ns.clean().await;
}
