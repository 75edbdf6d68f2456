//! Exports for delivery: filters that pick exactly the right rows, roles that
//! limit what leaves, CSV that spreadsheets read right and cannot be turned
//! into formulas, signed bundles that verify and prove a signer's row, and the
//! command line that does the same.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use undersigned_store::{NewToken, Role};
use uuid::Uuid;

use crate::support::{Namespace, TestApp, problem, problem_fields};

/// A stored signature of the fixture.
struct Fixture {
    id: Uuid,
    name: &'static str,
    country: &'static str,
    organization: bool,
    channel: &'static str,
    day: i64,
    /// `counted`, `invalidated` or `shadowed`.
    state: &'static str,
}

fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 1, 12, 0, 0).unwrap() + Duration::days(n)
}

const ROWS: [(&str, &str, bool, &str, &str); 10] = [
    ("Jan de Vries", "NL", false, "web", "counted"),
    ("Marie Dubois", "BE", false, "web", "counted"),
    ("Greenpeace Nederland", "NL", true, "event", "counted"),
    ("Hans Müller", "DE", false, "paper", "counted"),
    ("Anna Jansen", "NL", false, "paper", "counted"),
    ("Pieter Bakker", "NL", false, "web", "invalidated"),
    ("Sophie Peeters", "BE", false, "event", "shadowed"),
    ("Lukas Schmidt", "DE", false, "web", "counted"),
    ("Emma Visser", "NL", false, "web", "counted"),
    ("Oxfam België", "BE", true, "web", "counted"),
];

/// Stores the fixture's signatures with the times, channels and states that
/// the web channel cannot set, in the order of their `day`, shuffled in id.
async fn fixture(ns: &Namespace, slug: &str) -> Vec<Fixture> {
    let sql = ns.sql().await;
    let petition: i64 = sql
        .query_one("SELECT id FROM petitions WHERE slug = $1", &[&slug])
        .await
        .unwrap()
        .get(0);
    let mut rows = Vec::new();
    for (i, (name, country, organization, channel, state)) in ROWS.into_iter().enumerate() {
        let f = Fixture {
            id: Uuid::new_v4(),
            name,
            country,
            organization,
            channel,
            day: i as i64 + 1,
            state,
        };
        let key = Sha256::digest(format!("{slug}{i}")).to_vec();
        sql.execute(
            "INSERT INTO signatures (id, petition_id, identity_key, full_name, email, country,
                                     city, signer_kind, organization, consent_updates, channel,
                                     signed_at, invalidated_by, shadowed_by)
             VALUES ($1, $2, $3, $4, $5, $6, 'Den Haag', $7, $8, false, $9, $10, $11, $12)",
            &[
                &f.id,
                &petition,
                &key,
                &f.name,
                &format!("signer{i}@example.org"),
                &f.country,
                &if organization {
                    "organization"
                } else {
                    "person"
                },
                &organization.then_some(f.name),
                &f.channel,
                &day(f.day),
                &(state == "invalidated").then_some(1i64),
                &(state == "shadowed").then_some(1i64),
            ],
        )
        .await
        .unwrap();
        rows.push(f);
    }
    rows
}

/// Which fixture rows a filter should give.
type Wanted = Box<dyn Fn(&Fixture) -> bool>;

pub(crate) async fn export(
    app: &TestApp,
    slug: &str,
    query: &str,
    token: &str,
) -> reqwest::Response {
    app.http
        .get(app.url(&format!("/v1/petitions/{slug}/export?{query}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("export sent")
}

/// The receipts of a JSON-lines export, in its order.
pub(crate) async fn receipts(app: &TestApp, slug: &str, query: &str, token: &str) -> Vec<Uuid> {
    let r = export(
        app,
        slug,
        &format!("format=jsonl&columns=receipt,country&{query}"),
        token,
    )
    .await;
    assert_eq!(r.status(), 200, "{query}");
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let body = r.text().await.unwrap();
    body.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["receipt"].as_str().unwrap().parse().unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_pick_exactly_the_right_rows_and_roles_limit_what_leaves() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("delivery").await;
    let rows = fixture(&ns, &slug).await;
    let admin = app.admin_token().await;
    let cases: Vec<(&str, Wanted)> = vec![
        ("", Box::new(|f| f.state == "counted")),
        (
            "country=NL",
            Box::new(|f| f.state == "counted" && f.country == "NL"),
        ),
        (
            "country=NL&country=be",
            Box::new(|f| f.state == "counted" && f.country != "DE"),
        ),
        (
            "country=NL,BE&signer_kind=organization",
            Box::new(|f| f.state == "counted" && f.organization),
        ),
        (
            "channel=paper",
            Box::new(|f| f.state == "counted" && f.channel == "paper"),
        ),
        (
            "since=2026-10-04T12:00:00Z&until=2026-10-09T12:00:00Z",
            Box::new(|f| f.state == "counted" && (3..8).contains(&f.day)),
        ),
        ("status=invalidated", Box::new(|f| f.state == "invalidated")),
        ("status=shadowed", Box::new(|f| f.state == "shadowed")),
        ("status=all", Box::new(|_| true)),
        (
            "status=all&country=NL&channel=web&signer_kind=person&since=2026-10-03T00:00:00Z",
            Box::new(|f| f.country == "NL" && f.channel == "web" && !f.organization && f.day >= 2),
        ),
    ];
    for (query, wanted) in &cases {
        let expected: Vec<Uuid> = rows.iter().filter(|f| wanted(f)).map(|f| f.id).collect();
        assert_eq!(
            receipts(&app, &slug, query, &admin).await,
            expected,
            "{query:?}: exactly these rows, in signing order"
        );
    }

    // A coordinator exports their countries only.
    let petition_id: i64 = ns
        .sql()
        .await
        .query_one("SELECT id FROM petitions WHERE slug = $1", &[&slug])
        .await
        .unwrap()
        .get(0);
    let coordinator = app
        .token(NewToken {
            role: Role::Coordinator,
            petition_ids: vec![petition_id],
            countries: vec!["NL".into()],
            expires_at: None,
        })
        .await;
    let theirs: Vec<Uuid> = rows
        .iter()
        .filter(|f| f.state == "counted" && f.country == "NL")
        .map(|f| f.id)
        .collect();
    assert_eq!(receipts(&app, &slug, "", &coordinator).await, theirs);
    assert_eq!(
        receipts(&app, &slug, "country=NL", &coordinator).await,
        theirs
    );
    problem(export(&app, &slug, "country=BE", &coordinator).await, 403).await;
    problem(
        export(&app, &slug, "country=NL,DE", &coordinator).await,
        403,
    )
    .await;
    // E-mail addresses: never by default, only for admins who ask.
    problem(
        export(&app, &slug, "columns=full_name,email", &coordinator).await,
        403,
    )
    .await;
    let organizer = app
        .token(NewToken {
            role: Role::Organizer,
            petition_ids: vec![petition_id],
            countries: vec![],
            expires_at: None,
        })
        .await;
    problem(export(&app, &slug, "columns=email", &organizer).await, 403).await;
    let csv = export(&app, &slug, "", &organizer)
        .await
        .text()
        .await
        .unwrap();
    assert!(!csv.contains("@example.org"), "{csv}");
    assert!(
        csv.starts_with("\u{feff}full_name,organization,city,postal_code,country,signed_at\r\n")
    );
    let with_email = export(&app, &slug, "format=jsonl&columns=full_name,email", &admin)
        .await
        .text()
        .await
        .unwrap();
    assert!(with_email.contains("\"email\":\"signer0@example.org\""));
    problem(export(&app, &slug, "", "us_nope").await, 401).await;
    let typo = problem(export(&app, &slug, "countrys=NL", &admin).await, 422).await;
    assert_eq!(
        typo["errors"][0]["field"], "countrys",
        "a typo never widens an export"
    );
    let head = app
        .http
        .head(app.url(&format!("/v1/petitions/{slug}/export")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.status(),
        405,
        "HEAD would run and audit a whole export"
    );
    let bad = problem(
        export(&app, &slug, "format=docx&status=gone", &admin).await,
        422,
    )
    .await;
    assert_eq!(bad["errors"].as_array().unwrap().len(), 2);
    let other = app
        .token(NewToken {
            role: Role::Device,
            petition_ids: vec![petition_id],
            countries: vec![],
            expires_at: None,
        })
        .await;
    problem(export(&app, &slug, "", &other).await, 403).await;

    // Each export is in the audit trail twice: what was asked, and what left.
    let body = export(&app, &slug, "country=BE", &admin).await;
    let export_id = body.headers()["export-id"].to_str().unwrap().to_owned();
    let bytes = body.bytes().await.unwrap();
    let sql = ns.sql().await;
    let mut finished: Option<Value> = None;
    for _ in 0..100 {
        finished = sql
            .query_opt(
                "SELECT detail FROM audit_log WHERE action = 'export.finish'
                 AND detail->>'export_id' = $1",
                &[&export_id],
            )
            .await
            .unwrap()
            .map(|r| r.get(0));
        if finished.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let finished = finished.expect("the export's end is recorded");
    assert_eq!(finished["rows"], 2);
    assert_eq!(finished["complete"], true);
    assert_eq!(finished["sha256"], hex::encode(Sha256::digest(&bytes)));
    let asked: Value = sql
        .query_one(
            "SELECT detail FROM audit_log WHERE action = 'export' AND detail->>'export_id' = $1",
            &[&export_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(asked["filters"]["country"], json!(["BE"]));
    assert_eq!(asked["format"], "csv");
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_keeps_every_script_and_defuses_formulas() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("scripts").await;
    let names = [
        "Łukasz Żółć-Ñúñez",  // Latin with diacritics
        "Анна Кузнецова",     // Cyrillic
        "محمد عبد الله",      // Arabic
        "Ləman Əliyeva",      // Azerbaijani
        "Ελένη Παπαδοπούλου", // Greek
        "王小明",             // Han
        "İlkay Işıkçı",       // Turkish dotted and dotless i
        "=HYPERLINK(\"http://evil.example\",\"x\")",
        "+31 6 1234 Jansen", // a name says something: at least one letter
        "-2+3 Piet",
        "@SUM(A1:A9)",
        "Smith, \"Jr\"",
    ];
    for (i, name) in names.iter().enumerate() {
        let r = app
            .sign(
                &slug,
                &json!({"full_name": name, "email": format!("s{i}@example.org"), "country": "NL",
                        "city": if i == 0 { "=1+1" } else { "Utrecht" }}),
            )
            .await;
        assert_eq!(r.status(), 202, "{name}");
    }
    let admin = app.admin_token().await;
    let mut csv = Vec::new();
    for _ in 0..100 {
        let r = export(&app, &slug, "columns=full_name,city", &admin).await;
        assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
        assert!(
            r.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment; filename=\"scripts-")
        );
        csv = r.bytes().await.unwrap().to_vec();
        if csv.iter().filter(|&&b| b == b'\n').count() == names.len() + 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        csv.starts_with("\u{feff}".as_bytes()),
        "a BOM for spreadsheets"
    );
    let text = String::from_utf8(csv.clone()).unwrap();
    assert_eq!(
        text.matches("\r\n").count(),
        names.len() + 1,
        "CRLF line ends"
    );
    let mut reader = csv::Reader::from_reader(&csv[3..]);
    assert_eq!(reader.headers().unwrap(), vec!["full_name", "city"]);
    let mut got: Vec<(String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_owned(), r[1].to_owned())
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let defused = if n.starts_with(['=', '+', '-', '@']) {
                format!("'{n}")
            } else {
                n.to_string()
            };
            (
                defused,
                if i == 0 {
                    "'=1+1".into()
                } else {
                    "Utrecht".into()
                },
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_bundle_verifies_proves_a_receipt_and_fails_when_changed() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("bundle").await;
    let rows = fixture(&ns, &slug).await;
    let admin = app.admin_token().await;
    let key = app.get_json("/v1/export-key").await;
    assert_eq!(key["algorithm"], "ed25519");
    let public_key = key["public_key"].as_str().unwrap().to_owned();

    let r = export(&app, &slug, "format=bundle&country=NL", &admin).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let bytes = r.bytes().await.unwrap().to_vec();
    use base64::Engine;
    let trusted = ed25519_dalek::VerifyingKey::from_bytes(
        &base64::engine::general_purpose::STANDARD
            .decode(&public_key)
            .unwrap()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    let check = undersigned_export::verify_bundle(&bytes, Some(&trusted)).unwrap();
    let nl: Vec<&Fixture> = rows
        .iter()
        .filter(|f| f.state == "counted" && f.country == "NL")
        .collect();
    assert_eq!(check.row_count, nl.len() as u64);

    // The same checks from the command line, offline, as a recipient runs them.
    let dir = std::env::temp_dir().join(format!("us-bundle-{}", ns.database));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bundle.zip");
    std::fs::write(&file, &bytes).unwrap();
    let path = file.to_str().unwrap();
    let out = ns.cli(&["bundle", "verify", path, "--key", &public_key]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("the trusted key"));
    let receipt = nl[1].id.to_string();
    let out = ns.cli(&["bundle", "prove", path, "--receipt", &receipt]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let proof_file = dir.join("proof.json");
    std::fs::write(&proof_file, &out.stdout).unwrap();
    let proof = proof_file.to_str().unwrap();
    let out = ns.cli(&[
        "bundle",
        "check-proof",
        proof,
        "--receipt",
        &receipt,
        "--root",
        &check.merkle_root,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let someone_else = nl[0].id.to_string();
    let out = ns.cli(&[
        "bundle",
        "check-proof",
        proof,
        "--receipt",
        &someone_else,
        "--root",
        &check.merkle_root,
    ]);
    assert!(!out.status.success());

    // One byte of the members' data changed, at the start, the middle or the
    // end (in manifest.sig, the last member, just before the zip's directory
    // that the last 22 bytes locate): it no longer verifies. The directory's
    // own facts, such as the members' dates, are no member's content and no
    // check reads them.
    let directory = u32::from_le_bytes(bytes[bytes.len() - 6..bytes.len() - 2].try_into().unwrap());
    for at in [bytes.len() / 5, bytes.len() / 2, directory as usize - 30] {
        let mut changed = bytes.clone();
        changed[at] ^= 0x20;
        std::fs::write(&file, &changed).unwrap();
        let out = ns.cli(&["bundle", "verify", path, "--key", &public_key]);
        assert!(!out.status.success(), "byte {at} changed");
        assert!(String::from_utf8_lossy(&out.stderr).contains("not intact"));
    }
    // A manifest that says it inflates to 4 GiB is refused before anything
    // is inflated, the member and the bound named.
    let mut bomb = bytes.clone();
    let record = (0..bomb.len() - 59)
        .find(|&at| {
            bomb[at..].starts_with(b"PK\x01\x02") && bomb[at + 46..].starts_with(b"manifest.json")
        })
        .expect("manifest.json's central directory record");
    bomb[record + 24..record + 28].copy_from_slice(&0xffff_fff0_u32.to_le_bytes());
    std::fs::write(&file, &bomb).unwrap();
    let out = ns.cli(&["bundle", "verify", path, "--key", &public_key]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "manifest.json is refused: it inflates to 4294967280 bytes, over the bound of 1 MiB"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The command line exports what the API does, and is audited as such.
    let csv_file = dir.join("nl.csv");
    let out = ns.cli(&[
        "export",
        "--petition",
        &slug,
        "--format",
        "csv",
        "--country",
        "NL",
        "--out",
        csv_file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["rows"], nl.len());
    let by_api = export(&app, &slug, "country=NL", &admin)
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(std::fs::read(&csv_file).unwrap(), by_api.to_vec());
    let out = ns.cli(&[
        "export",
        "--petition",
        &slug,
        "--format",
        "pdfx",
        "--out",
        "/dev/null",
    ]);
    // A format the command line does not know is bad usage, named with the
    // ones it knows.
    assert_eq!(out.status.code(), Some(2));
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        error.contains("'pdfx' for '--format <FORMAT>': one of csv, jsonl, pdf, bundle"),
        "{error}"
    );
    let sql = ns.sql().await;
    let by_cli: i64 = sql
        .query_one(
            "SELECT count(*) FROM audit_log WHERE action = 'export.finish'
             AND detail->>'complete' = 'true' AND detail->>'rows' = $1",
            &[&nl.len().to_string()],
        )
        .await
        .unwrap()
        .get(0);
    assert!(by_cli >= 2, "the bundle and the command line's export");
    std::fs::remove_dir_all(&dir).unwrap();
    app.stop().await;
    ns.clean().await;
}

/// The text of a PDF as poppler's `pdftotext` reads it (an independent
/// reader), without the bidirectional marks it puts around right-to-left
/// runs; and its page count from `pdfinfo`. Either complaining fails the test.
pub(crate) fn pdf_text(pdf: &[u8], dir: &std::path::Path) -> (String, usize) {
    let file = dir.join("export.pdf");
    std::fs::write(&file, pdf).unwrap();
    let text = std::process::Command::new("pdftotext")
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils; deploy/test installs it)");
    assert!(text.status.success() && text.stderr.is_empty(), "{text:?}");
    let info = std::process::Command::new("pdfinfo")
        .arg(&file)
        .output()
        .unwrap();
    assert!(info.status.success() && info.stderr.is_empty(), "{info:?}");
    let pages = String::from_utf8(info.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap().replace(
        ['\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}'],
        "",
    );
    (text, pages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_printable_export_has_a_cover_in_the_chosen_language_and_numbered_pages_of_signatories() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let admin = app.admin_token().await;
    let r = app
        .http
        .post(app.url("/v1/petitions"))
        .bearer_auth(&admin)
        .json(&json!({
            "slug": "printed", "locale": "en", "goal": 1000, "verification": "none",
            "title": "Stop the war", "text": "We call for peace.\nNow.",
            "translations": {
                "fr": {"title": "Arrêtez la guerre", "text": "Nous appelons à la paix."},
                "ar": {"title": "أوقفوا الحرب", "text": "ندعو إلى السلام."}
            },
            "targets": [
                {"name": "Tweede Kamer der Staten-Generaal", "country": "NL",
                 "contact": "postbus@tweedekamer.example"},
                {"name": "United Nations"}
            ]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let signers = [
        ("Łukasz Żółć-Ñúñez", "NL"),
        ("Анна Кузнецова", "RU"),
        ("محمد عبد الله", "EG"),
        ("Ləman Əliyeva", "AZ"),
        ("İlkay Işıkçı", "TR"),
        ("=HYPERLINK(\"x\")", "NL"),
    ];
    for (i, (name, country)) in signers.iter().enumerate() {
        let r = app
            .sign(
                "printed",
                &json!({"full_name": name, "email": format!("p{i}@example.org"),
                        "country": country, "city": "Bakı"}),
            )
            .await;
        assert_eq!(r.status(), 202, "{name}");
    }
    // Enough more, stored directly, for the table to run over several pages.
    let sql = ns.sql().await;
    sql.execute(
        "INSERT INTO signatures (id, petition_id, identity_key, full_name, email, country,
                                 signer_kind, consent_updates, channel, signed_at)
         SELECT gen_random_uuid(), p.id, sha256(('bulk' || n)::bytea), 'Signer ' || n,
                'bulk' || n || '@example.org', 'DE', 'person', false, 'paper',
                now() + n * interval '1 second'
         FROM petitions p, generate_series(1, 150) n WHERE p.slug = 'printed'",
        &[],
    )
    .await
    .unwrap();
    let total = signers.len() + 150;
    for _ in 0..100 {
        if receipts(&app, "printed", "", &admin).await.len() == total {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let dir = std::env::temp_dir().join(format!("us-pdf-{}", ns.database));
    std::fs::create_dir_all(&dir).unwrap();
    let r = export(&app, "printed", "format=pdf&locale=fr-FR", &admin).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .ends_with(".pdf\"")
    );
    let pdf = r.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-1.7") && pdf.ends_with(b"%%EOF\n"));
    let (text, pages) = pdf_text(&pdf, &dir);
    // The cover: the French text, whom it addresses, what was exported.
    for expected in [
        "Arrêtez la guerre",
        "Nous appelons à la paix.",
        "Tweede Kamer der Staten-Generaal (NL)",
        "United Nations",
        "Signatures by country",
        "Text shown in",
        "fr",
        "156",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    assert!(!text.contains("Stop the war") && !text.contains("postbus@"));
    // Every signatory, in every script, once, and numbered.
    for (name, _) in signers {
        assert_eq!(text.matches(name).count(), 1, "{name} in:\n{text}");
    }
    for n in [1, 75, 150] {
        assert_eq!(
            text.matches(&format!("Signer {n}\n")).count(),
            1,
            "Signer {n}"
        );
    }
    // Numbered, paginated tables: each page says which signatures it holds,
    // and together they hold all of them, in order, once.
    assert!(pages >= 4, "{pages} pages");
    let mut next = 1;
    for footer in text
        .lines()
        .filter(|l| l.starts_with("Signatures ") && l.contains(" · page "))
    {
        let range = footer.strip_prefix("Signatures ").unwrap();
        let (first, rest) = range.split_once('–').unwrap();
        let (last, of) = rest.split_once(" of ").unwrap();
        assert_eq!(first.parse::<usize>().unwrap(), next, "{footer}");
        assert!(of.starts_with(&total.to_string()), "{footer}");
        next = last.parse::<usize>().unwrap() + 1;
    }
    assert_eq!(next, total + 1, "the pages list every signature once");

    // Another language, right to left; one the petition does not have.
    let r = export(&app, "printed", "format=pdf&locale=ar&country=EG", &admin).await;
    assert_eq!(r.status(), 200);
    let (text, _) = pdf_text(&r.bytes().await.unwrap(), &dir);
    assert!(
        text.contains("أوقفوا الحرب") && text.contains("ندعو إلى السلام"),
        "{text}"
    );
    assert!(
        text.contains("محمد عبد الله") && !text.contains("Signer 1"),
        "{text}"
    );
    let r = export(&app, "printed", "format=pdf&locale=de", &admin).await;
    assert_eq!(
        problem_fields(&problem(r, 422).await),
        [("locale".to_owned(), "not_available".to_owned())]
    );
    // A bundle carries the same PDF, listed and hashed in its manifest.
    let r = export(&app, "printed", "format=bundle&locale=fr", &admin).await;
    let bundle = r.bytes().await.unwrap();
    let check = undersigned_export::verify_bundle(&bundle, None).unwrap();
    assert_eq!(check.row_count, total as u64);
    let file = dir.join("bundle.zip");
    std::fs::write(&file, &bundle).unwrap();
    let out = ns.cli(&["bundle", "verify", file.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("signatures.pdf"));
    std::fs::remove_dir_all(&dir).unwrap();
    app.stop().await;
    ns.clean().await;
}
