//! Paper forms typed in later: a dry run says what an import would do, line
//! by line, and changes nothing; the import then does exactly that; importing
//! the same file again adds nothing.

use serde_json::{Value, json};
use undersigned_store::Role;

use crate::support::{
    Namespace, TestApp, count_reaches, email_optional_offline, fate, petition_id, problem,
    problem_fields, receipt, rows, scoped, signer,
};

/// Lines 2–12; line 7 is blank and skipped. The web signer (signer 0) signed
/// already.
const FORMS: &str = "\u{feff}Full_Name,Email,Country,Postal_Code,signed_at\r\n\
    Zoë Ångström,zoe@example.org,nl,1012 AB,2026-11-28\r\n\
    ZOË ÅNGSTRÖM,Zoe@Example.org,NL,,\r\n\
    \"Ní Bhriain, Siobhán\",,IE,D02 X285,\r\n\
    Işık Yılmaz,,TR,,\r\n\
    Nobody,nobody@example.org,ZZ,,\r\n\
    ,,,,\r\n\
    Too,many,cells,here,,x\r\n\
    Мария Иванова,maria@example.org,BG,1000,2099-01-01\r\n\
    Leyla Məmmədova,signer.0@example.org,AZ,,\r\n\
    Ahmed Hassan,ahmed@example.org,EG,11511,2026-11-28T09:30:00+02:00\r\n\
    ,anonymous@example.org,NL,,\r\n";

/// Each line's fate, as `line status field:code…`.
const EXPECTED: [&str; 10] = [
    "2 accepted",
    "3 duplicate",
    "4 accepted",
    "5 invalid postal_code:required_without_email",
    "6 invalid country:unknown_country",
    "8 invalid line:wrong_number_of_cells",
    "9 invalid signed_at:in_the_future",
    "10 duplicate",
    "11 accepted",
    "12 invalid full_name:required",
];

fn lines(report: &Value) -> Vec<String> {
    report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("{} {}", l["line"], fate(l)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_foretells_the_import_line_by_line_and_a_second_import_adds_nothing() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("paper").await;
    let admin = app.admin_token().await;
    let organizer = app
        .token(scoped(Role::Organizer, petition_id(&ns, &slug).await, &[]))
        .await;
    email_optional_offline(&app, &slug).await;
    assert!(receipt(app.sign(&slug, &signer(0)).await).await.is_some());
    count_reaches(&app, &slug, 1).await;
    let import = |token: &str, query: &str, content_type: &str, body: &'static str| {
        app.http
            .post(app.url(&format!("/v1/petitions/{slug}/signatures:import{query}")))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    // Admins only; a CSV only; a file with a column we do not know is refused whole.
    problem(
        import(&organizer, "", "text/csv", FORMS).await.unwrap(),
        403,
    )
    .await;
    problem(
        import(&admin, "", "application/json", "{}").await.unwrap(),
        415,
    )
    .await;
    let r = import(&admin, "", "text/csv", "full_name,email,country,phone\r\n")
        .await
        .unwrap();
    // The header's text is not repeated (a file without one would hold a signer there).
    assert_eq!(
        problem_fields(&problem(r, 422).await),
        [("columns[4]".to_owned(), "unknown_column".to_owned())]
    );

    // The dry run says what would happen, and nothing does.
    let r = import(&admin, "?dry_run=true", "text/csv; charset=utf-8", FORMS)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let dry: Value = r.json().await.unwrap();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(lines(&dry), EXPECTED);
    assert_eq!(
        (&dry["accepted"], &dry["duplicate"], &dry["invalid"]),
        (&json!(3), &json!(2), &json!(5))
    );
    let sql = ns.sql().await;
    assert_eq!(rows(&sql).await, 1);

    // The import does just that.
    let real: Value = import(&admin, "", "text/csv", FORMS)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(real["dry_run"], false);
    assert_eq!(lines(&real), EXPECTED);
    count_reaches(&app, &slug, 4).await;
    let paper = sql
        .query(
            "SELECT country, email IS NULL, client_address IS NULL, signed_at::text
             FROM signatures WHERE channel = 'paper' ORDER BY country",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, bool, bool, String)> = paper
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        got,
        [
            ("EG".into(), false, true, "2026-11-28 07:30:00+00".into()),
            ("IE".into(), true, true, got[1].3.clone()),
            ("NL".into(), false, true, "2026-11-28 12:00:00+00".into()),
        ]
    );

    // The same file again (its report was lost): the same report, and
    // nothing is added; a dry run now foretells the same too.
    for query in ["", "?dry_run=true"] {
        let again: Value = import(&admin, query, "text/csv", FORMS)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(lines(&again), EXPECTED);
    }
    assert_eq!(rows(&sql).await, 4);

    // Each import is in the audit trail, without anyone's data.
    let audit: Vec<Value> = sql
        .query(
            "SELECT detail FROM audit_log WHERE action = 'signatures.import' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(audit.len(), 4);
    assert_eq!(
        audit[0],
        json!({"dry_run": true, "lines": 10, "accepted": 3, "duplicate": 2, "invalid": 5})
    );
    assert!(!audit.iter().any(|d| d.to_string().contains("example.org")));

    // A closed petition takes no paper forms.
    app.http
        .patch(app.url(&format!("/v1/petitions/{slug}")))
        .bearer_auth(&admin)
        .json(&json!({"status": "closed"}))
        .send()
        .await
        .unwrap();
    problem(import(&admin, "", "text/csv", FORMS).await.unwrap(), 409).await;
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_imports_paper_forms_with_a_dry_run_first() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("paper-cli").await;
    let dir = std::env::temp_dir().join(format!("us-paper-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("forms.csv");
    // This petition wants an address from everyone.
    std::fs::write(&file, "full_name,country\nA,NL\n").unwrap();
    let path = file.to_str().unwrap();
    let out = ns.cli(&["import", "--petition", &slug, "--file", path]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"email\""));

    std::fs::write(
        &file,
        "full_name,email,country\nZoë Ångström,zoe@example.org,NL\nX,not-an-address,NL\n",
    )
    .unwrap();
    let out = ns.cli(&["import", "--petition", &slug, "--file", path, "--dry-run"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2\taccepted\t\n3\tinvalid\temail:invalid\ndry run: 1 accepted, 0 duplicate, 1 invalid\n"
    );
    let sql = ns.sql().await;
    assert_eq!(rows(&sql).await, 0);
    let out = ns.cli(&["import", "--petition", &slug, "--file", path]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2\taccepted\t\n3\tinvalid\temail:invalid\n1 accepted, 0 duplicate, 1 invalid\n"
    );
    assert_eq!(rows(&sql).await, 1);
    // The running service learns the count from Postgres.
    count_reaches(&app, &slug, 1).await;
    std::fs::remove_dir_all(&dir).unwrap();
    app.stop().await;
    ns.clean().await;
}
