//! Petitions as organizers shape them: texts in several languages served by
//! the reader's choice, the targets they are addressed to, what signers must
//! give and whether organizations sign; from the API and the command line.

use reqwest::Response;
use serde_json::{Value, json};

use crate::support::{Namespace, TestApp, problem, problem_fields, signer};

async fn get(app: &TestApp, path: &str, accept_language: Option<&str>) -> Response {
    let mut r = app.http.get(app.url(path));
    if let Some(languages) = accept_language {
        r = r.header("accept-language", languages);
    }
    r.send().await.expect("request sent")
}

/// The locale served and the title in it.
async fn served(app: &TestApp, path: &str, accept_language: Option<&str>) -> (String, String) {
    let r = get(app, path, accept_language).await;
    assert_eq!(r.status(), 200);
    let language = r.headers()["content-language"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["locale"], language,
        "Content-Language names the locale served"
    );
    (language, body["title"].as_str().unwrap().to_owned())
}

fn wording(title: &str) -> Value {
    json!({"title": title, "text": format!("{title}: the text."), "ask": format!("{title}: sign!")})
}

async fn create(app: &TestApp, token: &str, body: Value) -> Response {
    app.http
        .post(app.url("/v1/petitions"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("create sent")
}

pub(crate) async fn patch(app: &TestApp, slug: &str, token: &str, body: Value) -> Response {
    app.http
        .patch(app.url(&format!("/v1/petitions/{slug}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("patch sent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_petition_speaks_its_readers_language_and_falls_back_to_its_own() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let admin = app.admin_token().await;
    let r = create(
        &app,
        &admin,
        json!({
            "slug": "peace", "locale": "en", "goal": 1_000_000,
            "title": "Peace", "text": "Peace: the text.", "ask": "Sign for peace",
            "translations": {
                "fr": wording("Paix"), "pt-br": wording("Paz"),
                "az-Latn": wording("Sülh"), "ru": wording("Мир"),
            },
            "targets": [
                {"name": "Tweede Kamer der Staten-Generaal", "country": "nl",
                 "contact": "Postbus 20018, 2500 EA Den Haag"},
                {"name": "United Nations General Assembly"},
            ],
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(
        created["locales"],
        json!(["en", "az-Latn", "fr", "pt-BR", "ru"])
    );
    assert_eq!(created["translations"]["pt-BR"]["title"], "Paz");

    let path = "/v1/petitions/peace";
    let pick = |query: &'static str, header: Option<&'static str>| {
        let app = &app;
        async move { served(app, &format!("{path}{query}"), header).await }
    };
    assert_eq!(pick("", None).await, ("en".into(), "Peace".into()));
    assert_eq!(pick("?locale=fr", None).await, ("fr".into(), "Paix".into()));
    assert_eq!(pick("?locale=fr-CA", None).await.0, "fr", "another region");
    assert_eq!(pick("?locale=pt", None).await.0, "pt-BR", "language only");
    assert_eq!(
        pick("?locale=ar", None).await.0,
        "en",
        "untranslated: the default"
    );
    assert_eq!(
        pick("", Some("de, az-AZ;q=0.9, ru;q=0.5")).await,
        ("az-Latn".into(), "Sülh".into()),
        "the best Accept-Language that matches"
    );
    assert_eq!(
        pick("", Some("ru;q=0.2, fr;q=0.8")).await.0,
        "fr",
        "by weight, not by order"
    );
    assert_eq!(pick("", Some("ru;q=0, de")).await.0, "en", "q=0 refuses");
    assert_eq!(
        pick("?locale=ru", Some("fr")).await.0,
        "ru",
        "the query beats the header"
    );
    assert_eq!(pick("?locale=ar", Some("fr")).await.0, "fr");

    let r = get(&app, "/v1/petitions/peace?locale=ru", None).await;
    assert_eq!(r.headers()["vary"], "Accept-Language, Authorization");
    assert_eq!(r.headers()["cache-control"], "public, max-age=1");
    let public: Value = r.json().await.unwrap();
    assert_eq!(public["text"], "Мир: the text.");
    assert_eq!(public["ask"], "Мир: sign!");
    assert_eq!(public["default_locale"], "en");
    assert!(public.get("translations").is_none(), "{public}");
    assert_eq!(
        public["targets"],
        json!([
            {"name": "Tweede Kamer der Staten-Generaal", "country": "NL"},
            {"name": "United Nations General Assembly", "country": null},
        ]),
        "the public sees whom, not how to reach them"
    );
    let bad = problem(get(&app, "/v1/petitions/peace?locale=e", None).await, 422).await;
    assert_eq!(problem_fields(&bad), [("locale".into(), "invalid".into())]);

    // Organizers change translations one by one: set, replace, remove.
    let r = patch(
        &app,
        "peace",
        &admin,
        json!({"translations": {"fr": null, "de": wording("Frieden"), "ru": wording("Мир!")},
               "ask": null}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let changed: Value = r.json().await.unwrap();
    assert_eq!(
        changed["locales"],
        json!(["en", "az-Latn", "de", "pt-BR", "ru"])
    );
    assert_eq!(changed["ask"], Value::Null);
    assert_eq!(pick("?locale=fr", None).await.0, "en", "removed");
    assert_eq!(pick("?locale=de-AT", None).await.1, "Frieden");
    assert_eq!(pick("?locale=ru", None).await.1, "Мир!");
    let sql = ns.sql().await;
    let locales: Value = sql
        .query_one(
            "SELECT detail->'locales' FROM audit_log WHERE action = 'petition.update'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(locales, json!(["de", "fr", "ru"]));

    // Their own view: every translation, and how to reach each target; never cached.
    let r = app
        .http
        .get(app.url("/v1/petitions/peace"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    let own: Value = r.json().await.unwrap();
    assert_eq!(own["translations"]["de"]["title"], "Frieden");
    assert_eq!(
        own["targets"][0]["contact"],
        "Postbus 20018, 2500 EA Den Haag"
    );
    let r = app
        .http
        .get(app.url("/v1/petitions/peace"))
        .bearer_auth("us_not-a-token")
        .send()
        .await
        .unwrap();
    problem(r, 401).await;

    // Every wrong translation or target is named by its path.
    let bad = problem(
        create(
            &app,
            &admin,
            json!({
                "slug": "wrong", "title": "T", "text": "x", "goal": 10,
                "translations": {"en": wording("Again"), "ru": {"title": ""},
                                 "tr": "Barış", "not a locale": wording("x")},
                "targets": [{"name": "ok"}, {"country": "XX", "contact": 7}, "Parliament"],
            }),
        )
        .await,
        422,
    )
    .await;
    let mut got = problem_fields(&bad);
    got.sort();
    let mut want: Vec<(String, String)> = [
        ("targets[1].contact", "not_a_string"),
        ("targets[2]", "not_an_object"),
        ("translations.tr", "not_an_object"),
        ("targets[1].name", "required"),
        ("targets[1].country", "unknown_country"),
        ("translations.en", "is_the_default_locale"),
        ("translations.ru.title", "required"),
        ("translations.ru.text", "required"),
        ("translations", "invalid_locale"),
    ]
    .into_iter()
    .map(|(f, c)| (f.to_owned(), c.to_owned()))
    .collect();
    want.sort();
    assert_eq!(got, want);
    let bad = problem(
        patch(
            &app,
            "peace",
            &admin,
            json!({"translations": {"en": wording("x")}}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        problem_fields(&bad),
        [("translations.en".into(), "is_the_default_locale".into())]
    );
    assert_eq!(
        pick("?locale=de", None).await.1,
        "Frieden",
        "nothing changed"
    );
    let bad = problem(
        patch(
            &app,
            "peace",
            &admin,
            json!({"title": 5, "translations": {"fr": "Paix"}}),
        )
        .await,
        422,
    )
    .await;
    let mut got = problem_fields(&bad);
    got.sort();
    assert_eq!(
        got,
        [
            ("title".into(), "not_a_string".into()),
            ("translations.fr".into(), "not_an_object".into())
        ],
        "a wrongly typed field once, nothing inside it"
    );
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_petition_sets_what_signers_give_and_whether_organizations_sign() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let admin = app.admin_token().await;
    let r = create(
        &app,
        &admin,
        json!({"slug": "citizens", "title": "Citizens", "text": "Of the country.", "goal": 100,
               "verification": "none",
               "required_fields": ["postal_code", "city"], "organizations_may_sign": false}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let shown = app.get_json("/v1/petitions/citizens").await;
    assert_eq!(shown["required_fields"], json!(["postal_code", "city"]));
    assert_eq!(shown["organizations_may_sign"], false);

    let mut person = signer(1);
    let bad = problem(app.sign("citizens", &person).await, 422).await;
    assert_eq!(
        problem_fields(&bad),
        [
            ("postal_code".into(), "required".into()),
            ("city".into(), "required".into())
        ]
    );
    person["postal_code"] = json!("1012 ab");
    person["city"] = json!("Amsterdam");
    assert_eq!(app.sign("citizens", &person).await.status(), 202);
    let mut organization = signer(2);
    organization["postal_code"] = json!("AZ1000");
    organization["city"] = json!("Bakı");
    organization["signer_kind"] = json!("organization");
    organization["organization"] = json!("Yaşıllar");
    let bad = problem(app.sign("citizens", &organization).await, 422).await;
    assert_eq!(
        problem_fields(&bad),
        [("signer_kind".into(), "not_accepted".into())]
    );

    // Opened to organizations, and postal codes no longer asked.
    let r = patch(
        &app,
        "citizens",
        &admin,
        json!({"organizations_may_sign": true, "required_fields": ["city"]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.sign("citizens", &organization).await.status(), 202);
    let mut no_postal_code = signer(3);
    no_postal_code["city"] = json!("Gəncə");
    assert_eq!(app.sign("citizens", &no_postal_code).await.status(), 202);
    let bad = problem(
        patch(
            &app,
            "citizens",
            &admin,
            json!({"required_fields": ["phone"]}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        problem_fields(&bad),
        [("required_fields".into(), "unknown_field".into())]
    );
    // What was accepted before stays: 2 people and 1 organization.
    let mut count = app.count("citizens").await;
    for _ in 0..100 {
        if count["count"] == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        count = app.count("citizens").await;
    }
    assert_eq!(
        (count["people"].clone(), count["organizations"].clone()),
        (json!(2), json!(1))
    );
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_creates_petitions_from_options_and_documents() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let cli = |args: &[&str]| ns.cli(args);
    let dir = std::env::temp_dir().join(format!("us-cli-{}", ns.database));
    std::fs::create_dir_all(&dir).unwrap();
    let document = dir.join("declaration.json");
    std::fs::write(
        &document,
        json!({
            "slug": "declaration", "title": "The declaration", "text": "We declare.",
            "goal": 1_000_000, "locale": "en",
            "translations": {"es": wording("La declaración"), "ar": wording("الإعلان")},
            "targets": [{"name": "Council of Europe", "contact": "Strasbourg"}],
        })
        .to_string(),
    )
    .unwrap();
    let out = cli(&[
        "petition",
        "create",
        "--from",
        document.to_str().unwrap(),
        "--status",
        "draft",
        "--require",
        "postal_code",
        "--no-organizations",
        "--ask",
        "Add your name",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "declaration");
    let shown = app.get_json("/v1/petitions/declaration?locale=ar").await;
    assert_eq!(shown["title"], "الإعلان");
    assert_eq!(shown["status"], "draft");
    assert_eq!(shown["required_fields"], json!(["postal_code"]));
    assert_eq!(shown["organizations_may_sign"], false);
    assert_eq!(shown["targets"][0]["name"], "Council of Europe");
    let shown = app.get_json("/v1/petitions/declaration").await;
    assert_eq!(
        shown["ask"], "Add your name",
        "options override the document"
    );

    let text = dir.join("text.txt");
    std::fs::write(&text, "Line one.\nLine two.\n").unwrap();
    let out = cli(&[
        "petition",
        "create",
        "--slug",
        "plain",
        "--title",
        "Plain",
        "--goal",
        "500",
        "--text-file",
        text.to_str().unwrap(),
        "--locale",
        "nl",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = app.get_json("/v1/petitions/plain").await;
    assert_eq!(
        (
            shown["text"].as_str(),
            shown["locale"].as_str(),
            shown["status"].as_str()
        ),
        (Some("Line one.\nLine two."), Some("nl"), Some("open"))
    );

    let out = cli(&[
        "petition",
        "create",
        "--slug",
        "Bad Slug",
        "--title",
        "x",
        "--goal",
        "0",
        "--require",
        "phone",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "slug: invalid",
        "goal: out_of_range",
        "required_fields: unknown_field",
    ] {
        assert!(err.contains(expected), "{expected} in {err}");
    }
    let out = cli(&["petition", "create", "--from", document.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    let sql = ns.sql().await;
    let created: Vec<String> = sql
        .query(
            "SELECT detail->>'slug' FROM audit_log
             WHERE action = 'petition.create' AND detail->>'via' = 'command line' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(created, ["declaration", "plain"]);
    std::fs::remove_dir_all(&dir).unwrap();
    app.stop().await;
    ns.clean().await;
}
