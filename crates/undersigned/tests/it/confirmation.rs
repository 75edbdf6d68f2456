//! Email confirmation, against a real SMTP server on 127.0.0.1: a web
//! signature on a petition that confirms by email is pending until its signer
//! follows the emailed link; the link's GET changes nothing, its POST counts
//! the signature once.

use std::time::Duration;

use futures_util::future::join_all;
use mail_parser::MessageParser;
use serde_json::{Value, json};

use crate::smtp_sink::{Received, SmtpSink};
use crate::support::{Namespace, TestApp, outbox_empties, problem, signer};

const PUBLIC_URL: &str = "https://sign.example/campaign";

/// The app with a relay and links under [`PUBLIC_URL`], not its own address.
async fn app_with_relay(ns: &Namespace) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = TestApp::start(ns, |c| {
        c.smtp_url = Some(url.parse().unwrap());
        c.mail_rate = None;
        c.public_url = Some(PUBLIC_URL.parse().unwrap());
    })
    .await;
    (app, sink)
}

/// The token of the confirmation link in a message's text part.
fn token_in(message: &Received) -> String {
    let parsed = MessageParser::default()
        .parse(&message.data)
        .expect("a message");
    let text = parsed.body_text(0).expect("a text part");
    let start = text
        .find(&format!("{PUBLIC_URL}/confirm/"))
        .unwrap_or_else(|| panic!("a link under the public URL in\n{text}"));
    text[start + PUBLIC_URL.len() + "/confirm/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn count(app: &TestApp, slug: &str) -> Value {
    app.get_json(&format!("/v1/petitions/{slug}/count")).await
}

fn counted(c: &Value) -> (i64, i64) {
    (c["count"].as_i64().unwrap(), c["pending"].as_i64().unwrap())
}

/// Waits until the counter shows `expected` as (count, pending).
async fn counts_reach(app: &TestApp, slug: &str, expected: (i64, i64)) -> Value {
    for _ in 0..100 {
        let c = count(app, slug).await;
        if counted(&c) == expected {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "counts never reached {expected:?}: {}",
        count(app, slug).await
    );
}

fn confirmations(metrics: &str, outcome: &str) -> f64 {
    metrics
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "undersigned_confirmations_total{{outcome=\"{outcome}\"}}"
            ))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_signature_counts_once_its_signer_posts_the_emailed_link() {
    let ns = Namespace::new();
    let (app, sink) = app_with_relay(&ns).await;
    let slug = app.petition_with("peace", json!({})).await;
    let shown = app.get_json(&format!("/v1/petitions/{slug}")).await;
    assert_eq!(
        shown["verification"], "email",
        "the default for new petitions"
    );

    // Signed through a request that names another host: the link must not follow it.
    let r = app
        .http
        .post(app.url(&format!("/v1/petitions/{slug}/signatures")))
        .header("Host", "evil.example")
        .header("X-Forwarded-Host", "evil.example")
        .json(
            &json!({"full_name": "Leyla Məmmədova", "email": "leyla@example.az",
                      "country": "AZ", "locale": "fr"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["status"], "accepted");
    let receipt = answer["receipt"].as_str().unwrap().to_owned();
    let c = counts_reach(&app, &slug, (0, 1)).await;
    assert_eq!(
        (&c["people"], &c["by_country"]),
        (&json!(0), &json!({})),
        "pending is in no other figure"
    );

    let mail = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mail[0].to, ["leyla@example.az"]);
    let raw = String::from_utf8_lossy(&mail[0].data);
    assert!(!raw.contains("evil.example"), "{raw}");
    assert!(raw.contains(&receipt), "the receipt is in the message");
    let token = token_in(&mail[0]);
    assert_eq!(token.len(), 32, "{token}");
    let stored = ns
        .sql()
        .await
        .query_one(
            "SELECT count(*) FROM signatures WHERE confirm_hash IS NOT NULL
             AND position(convert_to($1, 'UTF8') IN confirm_hash) = 0",
            &[&token],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(stored, 1, "only a hash of the token is stored");

    // A mail scanner, a link preview: GET shows a page and changes nothing.
    for _ in 0..3 {
        let page = app
            .http
            .get(app.url(&format!("/confirm/{token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["referrer-policy"], "no-referrer");
        let html = page.text().await.unwrap();
        assert!(html.contains("<form method=\"post\""), "{html}");
        assert!(
            html.contains("lang=\"en\""),
            "the petition speaks no French: {html}"
        );
    }
    let state = app
        .http
        .get(app.url(&format!("/confirm/{token}")))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(state.json::<Value>().await.unwrap()["status"], "pending");
    assert_eq!(counted(&count(&app, &slug).await), (0, 1));

    // The button: counted, once however often it is pressed.
    let confirmed = app
        .http
        .post(app.url(&format!("/confirm/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    let c = counts_reach(&app, &slug, (1, 0)).await;
    assert_eq!(
        (&c["people"], &c["by_country"]),
        (&json!(1), &json!({"AZ": 1}))
    );
    let again = app
        .http
        .post(app.url(&format!("/confirm/{token}")))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        json!({"status": "confirmed", "receipt": receipt, "petition": slug})
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(counted(&count(&app, &slug).await), (1, 0));

    // A token nobody was sent, or not a token at all.
    for unknown in ["AAAAAAAAAAAAAAAAAAAAAA", "nonsense"] {
        let page = app
            .http
            .post(app.url(&format!("/confirm/{unknown}")))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 404);
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("This link is not valid")
        );
        let r = app
            .http
            .get(app.url(&format!("/confirm/{unknown}")))
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        problem(r, 404).await;
    }
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("undersigned_mail_queued_total{kind=\"confirmation\"} 1\n"),
        "{metrics}"
    );
    assert_eq!(confirmations(&metrics, "confirmed"), 1.0);
    assert_eq!(confirmations(&metrics, "again"), 1.0);
    assert_eq!(confirmations(&metrics, "unknown"), 2.0);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirming_lands_on_the_petitions_page_and_an_expired_link_counts_nothing() {
    let ns = Namespace::new();
    let (app, sink) = app_with_relay(&ns).await;
    let slug = app
        .petition_with(
            "welcome",
            json!({"confirmed_url": "https://campaign.example/welcome",
                   "translations": {"ar": {"title": "سلام", "text": "نص"}},
                   "confirmation_texts": {"ar": {"subject": "تأكيد: {title}",
                                                 "body": "اضغط هنا: {link}"}}}),
        )
        .await;
    for i in 0..2 {
        let mut body = signer(i);
        body["locale"] = json!("ar");
        assert_eq!(app.sign(&slug, &body).await.status(), 202);
    }
    let mail = sink.wait_for(2, Duration::from_secs(10)).await;
    let parsed = MessageParser::default().parse(&mail[0].data).unwrap();
    assert_eq!(
        parsed.subject(),
        Some("تأكيد: سلام"),
        "the petition's own words in the signer's language"
    );
    // Words without the link would leave signers nothing to follow.
    let admin = app.admin_token().await;
    let r = app
        .http
        .patch(app.url(&format!("/v1/petitions/{slug}")))
        .bearer_auth(&admin)
        .json(&json!({"confirmation_texts": {"fr": {"subject": "Merci", "body": "Merci !"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(r, 422).await["errors"],
        json!([{"field": "confirmation_texts.fr.body", "code": "no_link"}])
    );
    let tokens: Vec<String> = mail.iter().map(token_in).collect();

    // One link expires before it is followed: erased later, never counted.
    ns.sql()
        .await
        .execute(
            "UPDATE signatures SET pending_until = now() - interval '1 second'
             WHERE email = 'signer.1@example.org'",
            &[],
        )
        .await
        .unwrap();
    let expired = tokens
        .iter()
        .zip(&mail)
        .find(|(_, m)| m.to == ["signer.1@example.org"])
        .map(|(t, _)| t.clone())
        .unwrap();
    let live = tokens.iter().find(|t| **t != expired).unwrap();

    let page = app
        .http
        .get(app.url(&format!("/confirm/{live}")))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(
        html.contains("dir=\"rtl\"") && html.contains("lang=\"ar\""),
        "{html}"
    );
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects
        .post(app.url(&format!("/confirm/{live}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://campaign.example/welcome?receipt="),
        "{location}"
    );

    let gone = app
        .http
        .post(app.url(&format!("/confirm/{expired}")))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 410);
    let r = app
        .http
        .post(app.url(&format!("/confirm/{expired}")))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r, 410).await["type"], "/problems/link-expired");
    counts_reach(&app, &slug, (1, 1)).await;
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paper_counts_at_once_and_a_petition_without_verification_too() {
    let ns = Namespace::new();
    let (app, sink) = app_with_relay(&ns).await;
    let slug = app.petition_with("witnessed", json!({})).await;
    let admin = app.admin_token().await;
    let r = app
        .http
        .post(app.url(&format!("/v1/petitions/{slug}/signatures:import")))
        .bearer_auth(&admin)
        .header("content-type", "text/csv")
        .body("full_name,email,country\r\nAnna Jansen,anna@example.nl,NL\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    counts_reach(&app, &slug, (1, 0)).await;

    let open = app.petition("trusted").await;
    assert_eq!(app.sign(&open, &signer(3)).await.status(), 202);
    counts_reach(&app, &open, (1, 0)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sink.received().is_empty(), "nobody is asked to confirm");
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_again_while_pending_resends_the_link_three_times_a_day_at_most() {
    let ns = Namespace::new();
    let (app, sink) = app_with_relay(&ns).await;
    let slug = app.petition_with("again", json!({})).await;
    let spellings = [
        "ayse@example.org",
        "Ayse@Example.org",
        "AYSE@example.org",
        "ayse@EXAMPLE.org",
    ];
    for (i, email) in spellings.iter().chain(&spellings).enumerate() {
        let r = app
            .sign(
                &slug,
                &json!({"full_name": "Ayşe Kaya", "email": email, "country": "TR"}),
            )
            .await;
        assert_eq!(r.status(), 202, "signing {i}: answered like any other");
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["status"], "accepted");
        assert!(answer["receipt"].is_string());
        // Each one after the last message arrived, so the count below is exact.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // The first message and three more: the day's allowance.
    let mail = sink.wait_for(4, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(sink.received().len(), 4, "no more than three resends a day");
    assert_eq!(
        counted(&count(&app, &slug).await),
        (0, 1),
        "one signer, pending"
    );
    let tokens: Vec<String> = mail.iter().map(token_in).collect();
    // Each message carries the same link (its token is made again from the
    // signature, never stored): any of them confirms, once.
    assert!(tokens.iter().all(|t| t == &tokens[0]), "{tokens:?}");
    let r = app
        .http
        .post(app.url(&format!("/confirm/{}", tokens[3])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    counts_reach(&app, &slug, (1, 0)).await;
    // Signing again once confirmed sends nothing.
    let r = app
        .sign(
            &slug,
            &json!({"full_name": "Ayşe Kaya", "email": spellings[0], "country": "TR"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(sink.received().len(), 4);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_resent_while_the_signature_is_being_confirmed_is_not_sent() {
    let ns = Namespace::new();
    let (app, sink) = app_with_relay(&ns).await;
    let slug = app.petition_with("racing", json!({})).await;
    let body = json!({"full_name": "Eda Demir", "email": "eda@example.org", "country": "TR"});
    assert_eq!(app.sign(&slug, &body).await.status(), 202);
    let first = token_in(&sink.wait_for(1, Duration::from_secs(10)).await[0]);
    // A confirmation holds the signature's row while its signer signs again:
    // the writer's resend, which saw it pending, waits for the row.
    let mut sql = ns.sql().await;
    let confirming = sql.transaction().await.unwrap();
    confirming
        .execute("SELECT 1 FROM signatures FOR UPDATE", &[])
        .await
        .unwrap();
    assert_eq!(app.sign(&slug, &body).await.status(), 202);
    let watch = ns.sql().await;
    let mut waited = false;
    for _ in 0..200 {
        let waiting: i64 = watch
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            waited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(waited, "the resend waits for the confirmation's lock");
    confirming
        .execute("UPDATE signatures SET pending_until = NULL", &[])
        .await
        .unwrap();
    confirming.commit().await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        sink.received().len(),
        1,
        "no new link for a signature confirmed meanwhile"
    );
    let r = app
        .http
        .post(app.url(&format!("/confirm/{first}")))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the link it was sent still names it");
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_sent_in_the_first_form_still_confirms() {
    let ns = Namespace::new();
    let (app, sink) = app_with_relay(&ns).await;
    let slug = app.petition_with("first-form", json!({})).await;
    assert_eq!(app.sign(&slug, &signer(1)).await.status(), 202);
    sink.wait_for(1, Duration::from_secs(10)).await;
    // A signature stored before tokens carried their time: 22 characters,
    // stored as their SHA-256 alone.
    let old = undersigned_domain::SignerToken::from_random([9; 16]);
    ns.sql()
        .await
        .execute("UPDATE signatures SET confirm_hash = $1", &[&old.hash()])
        .await
        .unwrap();
    let link = format!("/confirm/{}", old.encoded());
    assert_eq!(link.len(), "/confirm/".len() + 22);
    let r = app
        .http
        .post(app.url(&link))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    counts_reach(&app, &slug, (1, 0)).await;
    app.stop().await;
    ns.clean().await;
}

/// A signature pending since before links were made from the signature
/// (its token drawn at random, only its hash stored) cannot be sent that
/// link again: signing again sends a new one, made now, and that confirms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_again_on_a_signature_of_the_first_form_sends_a_new_link() {
    let ns = Namespace::new();
    let (app, sink) = app_with_relay(&ns).await;
    let slug = app.petition_with("rekeyed", json!({})).await;
    let body = signer(1);
    assert_eq!(app.sign(&slug, &body).await.status(), 202);
    let made = token_in(&sink.wait_for(1, Duration::from_secs(10)).await[0]);
    let old = undersigned_domain::SignerToken::from_random([5; 16]);
    ns.sql()
        .await
        .execute("UPDATE signatures SET confirm_hash = $1", &[&old.hash()])
        .await
        .unwrap();
    assert_eq!(app.sign(&slug, &body).await.status(), 202);
    let new = token_in(&sink.wait_for(2, Duration::from_secs(10)).await[1]);
    assert_ne!(new, old.encoded());
    assert_ne!(new, made, "made at another time");
    assert_eq!(new.len(), 32);
    let post = |token: String| {
        app.http
            .post(app.url(&format!("/confirm/{token}")))
            .header("Accept", "application/json")
            .send()
    };
    assert_eq!(post(old.encoded()).await.unwrap().status(), 404, "replaced");
    assert_eq!(post(new).await.unwrap().status(), 200);
    counts_reach(&app, &slug, (1, 0)).await;
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_accepted_signer_confirms_like_anyone_and_counts_nothing() {
    let ns = Namespace::new();
    let (app, sink) = app_with_relay(&ns).await;
    let slug = app.petition_with("shadowed", json!({})).await;
    let admin = app.admin_token().await;
    let r = app
        .http
        .post(app.url("/v1/blocks"))
        .bearer_auth(&admin)
        .json(
            &json!({"kind": "email_domain", "pattern": "*.spam.test", "action": "shadow",
                      "reason": "a bot farm"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let bot = json!({"full_name": "Bot One", "email": "bot@farm.spam.test", "country": "NL"});
    assert_eq!(app.sign(&slug, &bot).await.status(), 202);
    assert_eq!(app.sign(&slug, &signer(2)).await.status(), 202);
    let mail = sink.wait_for(2, Duration::from_secs(10)).await;
    counts_reach(&app, &slug, (0, 1)).await;
    for message in &mail {
        let r = app
            .http
            .post(app.url(&format!("/confirm/{}", token_in(message))))
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the same answer for both");
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "confirmed");
    }
    let c = counts_reach(&app, &slug, (1, 0)).await;
    let country = signer(2)["country"].as_str().unwrap().to_uppercase();
    assert_eq!(c["by_country"][&country], 1, "only the other signer counts");
    assert_eq!(c["by_country"].as_object().unwrap().len(), 1);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_link_posted_twenty_times_at_once_counts_once() {
    let ns = Namespace::new();
    let (app, sink) = app_with_relay(&ns).await;
    let slug = app.petition_with("clicked", json!({})).await;
    assert_eq!(app.sign(&slug, &signer(3)).await.status(), 202);
    let link = format!(
        "/confirm/{}",
        token_in(&sink.wait_for(1, Duration::from_secs(10)).await[0])
    );
    let posts = join_all((0..20).map(|_| {
        app.http
            .post(app.url(&link))
            .header("Accept", "application/json")
            .send()
    }))
    .await;
    for r in posts {
        let r = r.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["status"], "confirmed");
    }
    counts_reach(&app, &slug, (1, 0)).await;
    let metrics = app.metrics_text().await;
    assert_eq!(confirmations(&metrics, "confirmed"), 1.0);
    assert_eq!(confirmations(&metrics, "again"), 19.0);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_concurrent_signers_with_four_hundred_duplicates_confirm_exactly() {
    let ns = Namespace::new();
    let (app, sink) = app_with_relay(&ns).await;
    let slug = app.petition_with("crowd", json!({})).await;
    let mut bodies: Vec<Value> = (0..1600)
        .map(|i| {
            let mut s = signer(i);
            s["email"] = json!(crate::counting::email(i));
            s
        })
        .collect();
    bodies.extend((0..400).map(|m| crate::counting::written_differently(m * 4 + m % 4, m)));
    let order: Vec<usize> = (0..2000).map(|k| (k * 7919) % 2000).collect();
    let answers = join_all(order.iter().map(|&k| app.sign(&slug, &bodies[k]))).await;
    assert!(answers.iter().all(|a| a.status() == 202));
    let c = counts_reach(&app, &slug, (0, 1600)).await;
    assert_eq!(c["by_country"], json!({}));

    // Every signer is sent a link; a duplicate may be sent it again.
    let mail = sink.wait_for(1600, Duration::from_secs(30)).await;
    outbox_empties(&ns, Duration::from_secs(10)).await;
    let mail = if sink.received().len() > mail.len() {
        sink.received()
    } else {
        mail
    };
    assert!(
        (1600..=2000).contains(&mail.len()),
        "{} messages",
        mail.len()
    );
    let mut mailboxes: Vec<String> = mail
        .iter()
        .map(|m| {
            let to = m.to[0].trim().to_lowercase();
            let (local, domain) = to.split_once('@').unwrap();
            let local = local.split('+').next().unwrap().replace('.', "");
            format!("{local}@{}", domain.replace("googlemail.com", "gmail.com"))
        })
        .collect();
    mailboxes.sort();
    mailboxes.dedup();
    assert_eq!(mailboxes.len(), 1600, "each signer is written to");

    // Each signature's link confirms it, once; the same link again (a
    // message resent) counts nothing more.
    let mut tokens: Vec<String> = mail.iter().map(token_in).collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 1600, "one link per signer");
    let again: Vec<String> = tokens.iter().step_by(8).cloned().collect();
    let mut confirmed = 0;
    for chunk in tokens.chunks(200).chain(again.chunks(200)) {
        let posts = join_all(
            chunk
                .iter()
                .map(|t| app.http.post(app.url(&format!("/confirm/{t}"))).send()),
        )
        .await;
        for r in posts {
            match r.unwrap().status().as_u16() {
                200 => confirmed += 1,
                other => panic!("confirming answered {other}"),
            }
        }
    }
    assert_eq!(confirmed, 1600 + again.len());
    let c = counts_reach(&app, &slug, (1600, 0)).await;
    let expected: serde_json::Map<String, Value> = crate::support::COUNTRIES
        .iter()
        .map(|c| (c.to_string(), json!(200)))
        .collect();
    assert_eq!(c["by_country"], Value::Object(expected));
    app.stop().await;
    ns.clean().await;
}
