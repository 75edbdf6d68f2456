//! The kiosk page in a real browser (headless Chromium, driven by
//! `tests/browser/kiosk.mjs` and `street.mjs`): a tablet enrolls, takes
//! signatures while offline, keeps them through a reload and a restart, and
//! once online again sends them; they are counted exactly once. It speaks the
//! signer's language, shows the volunteer what was refused, enrolls from a
//! link (whose QR code the service draws) and locks when left alone.

use chrono::{Duration, Utc};
use serde_json::Value;

use crate::support::{
    Namespace, TestApp, count_reaches, event_code, event_enrollment, event_tally, in_browser,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tablet_signs_offline_and_its_signatures_are_counted_once_back_online() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("kiosk").await;
    let now = Utc::now();
    let (event, code) = event_code(
        &app,
        &slug,
        now - Duration::hours(1),
        now + Duration::hours(3),
    )
    .await;

    // The page and its files come with a policy that keeps them to this origin.
    let page = app.http.get(app.url("/kiosk/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/kiosk"))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(
        app.http
            .get(app.url("/kiosk/nothing.js"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let outcome = in_browser(
        "kiosk.mjs",
        &[("KIOSK_URL", &app.url("/kiosk/")), ("ENROLL_CODE", &code)],
    )
    .await;
    assert_eq!(
        (&outcome["waiting"], &outcome["tally"]),
        (&serde_json::json!(0), &serde_json::json!(3))
    );

    // Counted once, as the event's, each stored once.
    count_reaches(&app, &slug, 3).await;
    assert_eq!(event_tally(&app, &slug, &event).await, 3);
    let stored: i64 = ns
        .sql()
        .await
        .query_one(
            "SELECT count(*) FROM signatures WHERE channel = 'event' AND event_id = $1::text::uuid",
            &[&event],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 3);
    app.stop().await;
    ns.clean().await;
}

const ARABIC_TITLE: &str = "هواء نظيف لكل مدينة";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_street_kiosk_enrolls_by_link_restarts_offline_speaks_arabic_and_mends_refusals() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    // In English with an Arabic translation, counted at once, toward a goal.
    let slug = "street";
    app.petition_with(
        slug,
        serde_json::json!({
            "locale": "en", "goal": 1000, "verification": "none",
            "title": "Clean air for every city",
            "text": "Air pollution kills millions every year.",
            "translations": {"ar": {"title": ARABIC_TITLE, "text": "تلوث الهواء يقتل الملايين كل عام."}},
        }),
    )
    .await;
    let now = Utc::now();
    let (event, enrollment) = event_enrollment(
        &app,
        slug,
        now - Duration::hours(1),
        now + Duration::hours(3),
    )
    .await;
    let url = enrollment["url"].as_str().unwrap();
    let profile = tempfile::tempdir().unwrap();

    let outcome = in_browser(
        "street.mjs",
        &[
            ("ENROLL_URL", url),
            ("PROFILE_DIR", profile.path().to_str().unwrap()),
            ("ARABIC_TITLE", ARABIC_TITLE),
        ],
    )
    .await;
    // Three offline, through a reload and a restart, and a refused one mended.
    assert_eq!(
        (&outcome["waiting"], &outcome["tally"], &outcome["taken"]),
        (
            &serde_json::json!(0),
            &serde_json::json!(4),
            &serde_json::json!(4)
        ),
        "{outcome}"
    );
    assert_eq!(outcome["violations"], serde_json::json!([]), "axe-core");
    assert_eq!(outcome["arabic"]["dir"], "rtl");

    assert_eq!(outcome["progress"], "4 of 1,000 signatures");
    count_reaches(&app, slug, 4).await;
    assert_eq!(event_tally(&app, slug, &event).await, 4);
    // Each stored once, each in the language its signer chose.
    let rows = ns
        .sql()
        .await
        .query(
            "SELECT locale, count(*) FROM signatures \
             WHERE channel = 'event' AND event_id = $1::text::uuid GROUP BY locale ORDER BY locale",
            &[&event],
        )
        .await
        .unwrap();
    let locales: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(locales, [("ar".to_owned(), 1), ("en".to_owned(), 3)]);
    app.stop().await;
    ns.clean().await;
}

/// The squares of the QR code an SVG of the `qrcode` crate draws, read back
/// as an image by an independent decoder.
fn read_qr(svg: &str) -> String {
    let size = |name: &str| -> usize {
        let at = svg.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        svg[at..].split('"').next().unwrap().parse().unwrap()
    };
    let (width, height) = (size("width"), size("height"));
    let mut dark = vec![false; width * height];
    let path = svg
        .split(" d=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    for square in path.split('M').filter(|s| !s.is_empty()) {
        // `{left} {top}h{width}v{height}H{left}V{top}`
        let numbers: Vec<usize> = square
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        let (left, top, w, h) = (numbers[0], numbers[1], numbers[2], numbers[3]);
        for y in top..top + h {
            for x in left..left + w {
                dark[y * width + x] = true;
            }
        }
    }
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        if dark[y * width + x] { 0 } else { 255 }
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().expect("the QR code reads").1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrollment_code_comes_with_its_link_and_qr_code_and_the_kiosk_installs() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("install").await;
    let now = Utc::now();
    let (_, enrollment) = event_enrollment(
        &app,
        &slug,
        now - Duration::hours(1),
        now + Duration::hours(3),
    )
    .await;
    let code = enrollment["code"].as_str().unwrap();
    let url = enrollment["url"].as_str().unwrap();
    assert_eq!(url, format!("{}#enroll={code}", app.url("/kiosk/")));
    let svg = enrollment["qr_svg"].as_str().unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    assert_eq!(read_qr(svg), url);

    // Installable: a manifest whose icons are there, at the sizes it says.
    let get = |path: &str| app.http.get(app.url(path)).send();
    let manifest: Value = get("/kiosk/manifest.webmanifest")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(manifest["display"], "fullscreen");
    assert_eq!(manifest["start_url"], "/kiosk/");
    for icon in manifest["icons"].as_array().unwrap() {
        let r = get(&format!("/kiosk/{}", icon["src"].as_str().unwrap()))
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{icon}");
        assert_eq!(r.headers()["content-type"], icon["type"].as_str().unwrap());
        let body = r.bytes().await.unwrap();
        if let Some((w, h)) = icon["sizes"].as_str().unwrap().split_once('x') {
            // A PNG's width and height, in its header.
            let read = |at: usize| u32::from_be_bytes(body[at..at + 4].try_into().unwrap());
            assert_eq!(&body[1..4], b"PNG");
            assert_eq!(
                (read(16).to_string(), read(20).to_string()),
                (w.into(), h.into())
            );
        }
    }
    // The worker names its cache after what it keeps, and keeps every file.
    let worker = get("/kiosk/sw.js").await.unwrap().text().await.unwrap();
    assert!(!worker.contains("/*VERSION*/") && !worker.contains("/*FILES*/"));
    for file in [
        "\"./\"",
        "\"kiosk.js\"",
        "\"kiosk.css\"",
        "\"manifest.webmanifest\"",
    ] {
        assert!(worker.contains(file), "{file}");
    }
    // It fetches them as its own release's: another release's instance (a
    // rolling deployment) has none of them to give.
    let version = worker
        .split("const VERSION = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    assert_eq!(version.len(), 16, "{version}");
    for (asked, status) in [(version, 200), ("0123456789abcdef", 404)] {
        let r = get(&format!("/kiosk/kiosk.js?v={asked}")).await.unwrap();
        assert_eq!(r.status(), status, "{asked}");
    }
    app.stop().await;
    ns.clean().await;
}
