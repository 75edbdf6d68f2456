//! The hosted signing page, `/p/{slug}`: over HTTP (headers, relative
//! addresses, the form's landing), and in a real browser
//! (`tests/browser/page.mjs`: without and with JavaScript, inline errors,
//! right to left, the live count, axe-core).

use serde_json::{Value, json};

use crate::support::{Namespace, TestApp, count_reaches, in_browser, rows};

/// A petition counting at once, in English with an Arabic translation,
/// addressed to a parliament.
async fn petition(app: &TestApp, slug: &str) {
    app.petition_with(
        slug,
        json!({
            "locale": "en", "goal": 1000, "verification": "none",
            "title": "Clean air for every city",
            "text": "Air pollution kills millions every year.\n\nWe ask our parliaments to act.",
            "ask": "Pass a clean air law this year.",
            "translations": {"ar": {"title": "هواء نظيف لكل مدينة", "text": "تلوث الهواء يقتل الملايين كل عام."}},
            "targets": [{"name": "Tweede Kamer der Staten-Generaal", "country": "NL"}]
        }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_whole_with_relative_addresses_and_short_public_caching() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    petition(&app, "clean-air").await;

    let r = app
        .http
        .get(app.url("/p/clean-air"))
        .header("accept-language", "fr-CH, ar;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["cache-control"], "public, max-age=10");
    assert!(h.get_all("vary").iter().any(|v| v == "Accept-Language"));
    let policy = h["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'") && policy.contains("form-action 'self'"));
    let html = r.text().await.unwrap();
    // No French wording: Arabic, the reader's next choice, right to left.
    assert!(html.contains(r#"<html lang="ar" dir="rtl">"#), "{html}");
    assert!(html.contains("هواء نظيف لكل مدينة"));

    let html = app
        .http
        .get(app.url("/p/clean-air"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"<html lang="en" dir="ltr">"#));
    for tag in [
        r#"<meta property="og:title" content="Clean air for every city">"#,
        r#"<meta property="og:description" content="Air pollution kills millions every year. We ask our parliaments to act.">"#,
        r#"<meta name="twitter:card" content="summary">"#,
        r#"<form id="sign" method="post" action="../v1/petitions/clean-air/signatures""#,
        r#"<link rel="stylesheet" href="../assets/page.css">"#,
        r#"<script src="../assets/page.js" defer></script>"#,
        "Tweede Kamer der Staten-Generaal (NL)",
        "Pass a clean air law this year.",
        r#"<label for="full_name">Full name</label>"#,
        r#"<option value="NL">🇳🇱 NL</option>"#,
    ] {
        assert!(html.contains(tag), "{tag} missing from\n{html}");
    }
    // No captcha configured: no widget, and nothing loads from elsewhere.
    assert!(!html.contains("hcaptcha"));
    // Every address the page uses is relative: any host or mirror serves it.
    for attribute in ["href=\"", "src=\"", "action=\"", "data-api=\""] {
        for value in html.split(attribute).skip(1) {
            assert!(
                !value.starts_with("http") && !value.starts_with('/'),
                "{attribute}{}",
                &value[..value.len().min(40)]
            );
        }
    }
    for (asset, kind) in [("page.js", "text/javascript"), ("page.css", "text/css")] {
        let r = app
            .http
            .get(app.url(&format!("/assets/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
    assert_eq!(
        app.http
            .get(app.url("/assets/none.js"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let unknown = app.http.get(app.url("/p/nobody")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_form_from_the_page_lands_on_its_thanks_or_back_with_its_faults() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    petition(&app, "landing").await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let origin = app.base.clone();
    let post = |body: &'static str, origin: String| {
        plain
            .post(app.url("/v1/petitions/landing/signatures"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "text/html")
            .header("origin", origin)
            .body(body)
            .send()
    };
    // A fault: back to the page, the fault's codes only in the address.
    let r = post(
        "landing=page&full_name=&email=x%40example.org&country=NL",
        origin.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        "../../../p/landing?problem=invalid-fields&errors=full_name.required#sign"
    );
    let back = app
        .http
        .get(app.url(&format!(
                "/p/landing?{}",
                location
                    .split_once('?')
                    .unwrap()
                    .1
                    .trim_end_matches("#sign")
            )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(back.contains(r#"aria-invalid="true""#) && back.contains("Please fill this in."));
    assert!(!back.contains("x@example.org"), "nothing typed comes back");

    // Signed: the thanks page, with the receipt, kept by no cache.
    let r = post(
        "landing=page&full_name=Ada+Page&email=ada%40example.org&country=NL",
        origin.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("../../../p/landing/thanks?receipt="),
        "{location}"
    );
    let thanks = app
        .http
        .get(app.url(&location.replacen("../../..", "", 1)))
        .send()
        .await
        .unwrap();
    assert_eq!(thanks.headers()["cache-control"], "no-store");
    let receipt = location.rsplit('=').next().unwrap();
    assert!(thanks.text().await.unwrap().contains(receipt));

    // Another site's page may not post, whatever it claims to land on.
    let r = post(
        "landing=page&full_name=Eve&email=eve%40example.org&country=NL",
        "https://elsewhere.example".into(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    count_reaches(&app, "landing", 1).await;
    assert_eq!(rows(&ns.sql().await).await, 1);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_the_page_signs_with_and_without_script_live_and_accessible() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    petition(&app, "browser").await;
    let outcome = in_browser("page.mjs", &[("BASE", &app.base), ("SLUG", "browser")]).await;
    assert_eq!(outcome["ok"], true);
    assert_eq!(outcome["axe"], json!([]));
    assert_eq!(outcome["arabic"]["lang"], "ar");
    assert_eq!(outcome["arabic"]["title"], "هواء نظيف لكل مدينة");
    assert_eq!(outcome["arabic"]["button"], "وقّع");
    assert!(outcome["liveMs"].as_u64().unwrap() <= 2000);
    // The page's two signers and the one elsewhere, each stored once.
    count_reaches(&app, "browser", 3).await;
    let sql = ns.sql().await;
    for receipt in [&outcome["noScriptReceipt"], &outcome["scriptReceipt"]] {
        let id = uuid::Uuid::parse_str(receipt.as_str().unwrap()).unwrap();
        let n: i64 = sql
            .query_one("SELECT count(*) FROM signatures WHERE id = $1", &[&id])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "{receipt}");
    }
    app.stop().await;
    ns.clean().await;
}

/// A campaign's site on its own origin: an HTTP server on 127.0.0.1 that
/// answers every request with `html`, until dropped.
struct Site {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Site {
    async fn start(html: String) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let html = html.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{html}",
                        html.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        Self { url, task }
    }

    fn origin(&self) -> &str {
        self.url.trim_end_matches('/')
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_signs_from_an_allowed_site_and_not_from_a_strangers() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let page = |service: &str| {
        format!(
            "<!doctype html><html lang=\"en\"><head><title>A campaign</title>\
             <style>h2 {{ color: rgb(255, 0, 0); }} * {{ font-family: serif; }}</style></head>\
             <body><h2>Our campaign</h2>\
             <script src=\"{service}/widget.js\" data-petition=\"embedded\" async></script>\
             </body></html>"
        )
    };
    let allowed = Site::start(page(&app.base)).await;
    let stranger = Site::start(page(&app.base)).await;
    // A site whose own tag is written the way some CMSes do.
    let french = Site::start(
        page(&app.base)
            .replace("lang=\"en\"", "lang=\"fr_FR\"")
            .replace("data-petition=\"embedded\"", "data-petition=\"postal\""),
    )
    .await;
    app.petition_with(
        "postal",
        json!({
            "goal": 100, "verification": "none",
            "title": "Asks for a postal code", "text": "Signed where a postal code is asked.",
            "translations": {"fr": {"title": "Demande un code postal", "text": "Signée où l'on demande un code postal."}},
            "required_fields": ["postal_code"],
            "allowed_origins": [french.origin()]
        }),
    )
    .await;
    app.petition_with(
        "embedded",
        json!({
            "goal": 100, "verification": "none",
            "title": "Embedded everywhere", "text": "Signed on the campaign's own site.",
            "allowed_origins": [allowed.origin()]
        }),
    )
    .await;

    let outcome = in_browser(
        "widget.mjs",
        &[
            ("ALLOWED_URL", &allowed.url),
            ("STRANGER_URL", &stranger.url),
            ("FRENCH_URL", &french.url),
        ],
    )
    .await;
    assert_eq!(outcome["title"], "Embedded everywhere");
    let french = &outcome["french"];
    assert_eq!(french["title"], "Demande un code postal");
    assert_eq!(french["link"], "Signer sur la page de la pétition");
    assert_eq!(
        french["href"],
        format!("{}/p/postal?locale=fr-FR", app.base).as_str()
    );
    assert_eq!(french["form"], false);
    // Only the allowed site's signer is stored.
    count_reaches(&app, "embedded", 1).await;
    assert_eq!(rows(&ns.sql().await).await, 1);

    // The script itself: the countries and words written in, cached briefly.
    let r = app.http.get(app.url("/widget.js")).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    let source = r.text().await.unwrap();
    assert!(
        source.contains(r#""NL""#) && source.contains("وقّع") && !source.contains("/*COUNTRIES*/")
    );
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_an_organizer_their_petition_live_and_keeps_their_data_uncached() {
    use crate::support::{petition_id, scoped, signer, tablet};
    use undersigned_store::Role;

    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("dashboard").await;
    for i in 0..6 {
        assert_eq!(app.sign(&slug, &signer(i)).await.status(), 202);
    }
    let now = chrono::Utc::now();
    let (event, device) = tablet(
        &app,
        &slug,
        now - chrono::Duration::hours(1),
        now + chrono::Duration::hours(2),
    )
    .await;
    let r = app
        .http
        .post(app.url(&format!("/v1/events/{event}/signatures:batch")))
        .bearer_auth(&device)
        .json(&json!({"signatures": [{
            "id": uuid::Uuid::new_v4(), "signed_at": now, "full_name": "Tablet Signer",
            "email": "tablet@example.org", "country": "NL"
        }]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    count_reaches(&app, &slug, 7).await;
    let organizer = app
        .token(scoped(Role::Organizer, petition_id(&ns, &slug).await, &[]))
        .await;

    // The dashboard's data is never cached; the page and the libraries are.
    let listed = app
        .http
        .get(app.url("/v1/petitions"))
        .bearer_auth(&organizer)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.headers()["cache-control"], "private, no-store");
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["petitions"].as_array().unwrap().len(), 1);
    assert_eq!(listed["petitions"][0]["count"], 7);
    assert_eq!(listed["next"], Value::Null);
    // An admin sees every petition, a page at a time.
    app.petition("dashboard-two").await;
    let admin = app.admin_token().await;
    let page = |path: String| {
        let (app, admin) = (&app, &admin);
        async move {
            let r = app
                .http
                .get(app.url(&path))
                .bearer_auth(admin)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let first = page("/v1/petitions?limit=1".into()).await;
    assert_eq!(first["petitions"][0]["slug"], "dashboard");
    let second = page(first["next"].as_str().unwrap().to_owned()).await;
    assert_eq!(second["petitions"][0]["slug"], "dashboard-two");
    // What names no petition (a NUL byte among others) gives an empty page.
    for odd in ["nobody", "y%C3%9B%00%5C"] {
        let empty = page(format!("/v1/petitions?after={odd}")).await;
        assert_eq!(empty["petitions"], json!([]), "{odd}");
    }
    let third = page(second["next"].as_str().unwrap().to_owned()).await;
    assert_eq!(
        (third["petitions"].as_array().unwrap().len(), &third["next"]),
        (0, &Value::Null)
    );
    let signals = app
        .http
        .get(app.url(&format!("/v1/petitions/{slug}/signals")))
        .bearer_auth(&organizer)
        .send()
        .await
        .unwrap();
    assert_eq!(signals.headers()["cache-control"], "private, no-store");
    assert_eq!(
        app.http
            .get(app.url("/v1/petitions"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let index = app.http.get(app.url("/dashboard/")).send().await.unwrap();
    assert_eq!(index.headers()["cache-control"], "no-cache");
    assert!(
        index.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("connect-src 'self'")
    );
    let vendor = app
        .http
        .get(app.url("/dashboard/vendor/uPlot.iife.min.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(vendor.status(), 200);
    assert_eq!(vendor.headers()["cache-control"], "public, max-age=86400");

    let outcome = in_browser(
        "dashboard.mjs",
        &[
            ("BASE", &app.base),
            ("SLUG", &slug),
            ("TOKEN", &organizer),
            ("EVENT_NAME", "Flash mob"),
        ],
    )
    .await;
    assert_eq!(outcome["axe"], json!([]));
    assert_eq!(outcome["inAddress"], false);
    assert_eq!(outcome["kept"], json!({"session": true, "local": 0}));
    assert!(outcome["mapPaths"].as_u64().unwrap() > 150);
    // Spain, Azerbaijan, Russia, Egypt, Turkey, Denmark and the Netherlands
    // (the tablet's): each shaded.
    assert!(outcome["shaded"].as_u64().unwrap() >= 6, "{outcome}");
    assert!(
        outcome["snippet"]
            .as_str()
            .unwrap()
            .contains("data-petition=\"dashboard\"")
    );
    assert_eq!(outcome["countAfter"], 8);
    assert!(outcome["liveMs"].as_u64().unwrap() <= 2000);
    app.stop().await;
    ns.clean().await;
}
