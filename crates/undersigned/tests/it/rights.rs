//! Signers' rights, against a real SMTP server: a signer withdraws through
//! the link a withdrawal request sends; an admin erases an address on the
//! signer's request; pending signatures nobody confirmed expire. Counts drop
//! exactly, exports leave the signature out, the signer may sign again, and a
//! `pg_dump` of the database holds none of their data.

use std::time::Duration;

use mail_parser::MessageParser;
use serde_json::{Value, json};
use undersigned::config::Lifetime;

use crate::smtp_sink::{Received, SmtpSink};
use crate::support::{Namespace, TestApp, outbox_empties, problem};

/// The app with a relay, links under its own address.
pub(crate) async fn app_with_relay(ns: &Namespace, ttl: Option<Duration>) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = TestApp::start(ns, |c| {
        c.smtp_url = Some(url.parse().unwrap());
        c.mail_rate = None;
        if let Some(ttl) = ttl {
            c.confirm_ttl = Lifetime(ttl);
        }
    })
    .await;
    (app, sink)
}

/// The link after `/{path}/` in a message's text part.
pub(crate) fn link_in(message: &Received, path: &str) -> String {
    let parsed = MessageParser::default()
        .parse(&message.data)
        .expect("a message");
    let text = parsed.body_text(0).expect("a text part");
    let marker = format!("/{path}/");
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("a {path} link in\n{text}"));
    let token: String = text[start + marker.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    format!("/{path}/{token}")
}

fn counted(c: &Value) -> (i64, i64) {
    (c["count"].as_i64().unwrap(), c["pending"].as_i64().unwrap())
}

pub(crate) async fn counts_reach(app: &TestApp, slug: &str, expected: (i64, i64)) -> Value {
    let path = format!("/v1/petitions/{slug}/count");
    for _ in 0..150 {
        let c = app.get_json(&path).await;
        if counted(&c) == expected {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "counts never reached {expected:?}: {}",
        app.get_json(&path).await
    );
}

/// Signs on the web and, on a petition that confirms, follows the link.
pub(crate) async fn sign_and_confirm(app: &TestApp, sink: &SmtpSink, slug: &str, body: Value) {
    let before = sink.received().len();
    assert_eq!(app.sign(slug, &body).await.status(), 202);
    let mail = sink.wait_for(before + 1, Duration::from_secs(10)).await;
    let link = link_in(&mail[before], "confirm");
    let r = app.http.post(app.url(&link)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// The whole database as `pg_dump` writes it.
pub(crate) fn dump(ns: &Namespace) -> String {
    let out = std::process::Command::new("pg_dump")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "--data-only",
            &ns.database,
        ])
        .output()
        .expect("pg_dump runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn erased_metric(metrics: &str, reason: &str) -> f64 {
    metrics
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "undersigned_erased_signatures_total{{reason=\"{reason}\"}}"
            ))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_and_an_erasure_uncount_and_leave_no_trace() {
    let ns = Namespace::new();
    let (app, sink) = app_with_relay(&ns, None).await;
    let confirmed = app.petition_with("rights", json!({})).await;
    let counted_at_once = app.petition("second").await;
    let jan = json!({"full_name": "Jan de Vries", "email": "jan@example.nl", "country": "NL",
                     "postal_code": "1012 AB", "city": "Amsterdam"});
    let leyla = json!({"full_name": "Leyla Məmmədova", "email": "leyla@example.az",
                       "country": "AZ", "signer_kind": "organization",
                       "organization": "Bakı Təmiz Hava"});
    sign_and_confirm(&app, &sink, &confirmed, jan.clone()).await;
    sign_and_confirm(&app, &sink, &confirmed, leyla.clone()).await;
    assert_eq!(app.sign(&counted_at_once, &leyla).await.status(), 202);
    counts_reach(&app, &confirmed, (2, 0)).await;
    counts_reach(&app, &counted_at_once, (1, 0)).await;
    let sent = sink.received().len();

    // An address that never signed hears the same, and nothing is sent.
    let withdrawals = app.url(&format!("/v1/petitions/{confirmed}/withdrawals"));
    for email in ["nobody@example.org", "JAN@example.nl"] {
        let r = app
            .http
            .post(&withdrawals)
            .json(&json!({"email": email}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"status": "accepted"})
        );
    }
    let mail = sink.wait_for(sent + 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.received().len(),
        sent + 1,
        "only the signer is sent a link"
    );
    assert_eq!(
        mail[sent].to,
        ["jan@example.nl"],
        "to the address that signed"
    );
    let link = link_in(&mail[sent], "withdraw");
    let r = problem(
        app.http
            .post(&withdrawals)
            .json(&json!({"email": "not an address"}))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(r["errors"][0]["field"], "email");

    // GET changes nothing; POST withdraws, once.
    let page = app.http.get(app.url(&link)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Withdraw my signature"));
    counts_reach(&app, &confirmed, (2, 0)).await;
    let done = app.http.post(app.url(&link)).send().await.unwrap();
    assert_eq!(done.status(), 200);
    assert!(
        done.text()
            .await
            .unwrap()
            .contains("Your signature is withdrawn")
    );
    let c = counts_reach(&app, &confirmed, (1, 0)).await;
    assert_eq!(c["by_country"], json!({"AZ": 1}));
    let again = app
        .http
        .post(app.url(&link))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "withdrawn");
    counts_reach(&app, &confirmed, (1, 0)).await;

    // Later exports leave it out.
    let admin = app.admin_token().await;
    let csv = app
        .http
        .get(app.url(&format!("/v1/petitions/{confirmed}/export?format=csv")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.contains("Leyla") && !csv.contains("Jan de Vries"),
        "{csv}"
    );

    // Erasure on request: every petition, written in another case.
    let r = app
        .http
        .post(app.url("/v1/erasures"))
        .bearer_auth(&admin)
        .json(&json!({"email": "Leyla@Example.AZ"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"erased": 2}));
    counts_reach(&app, &confirmed, (0, 0)).await;
    let c = counts_reach(&app, &counted_at_once, (0, 0)).await;
    assert_eq!(
        (&c["organizations"], &c["by_country"]),
        (&json!(0), &json!({}))
    );
    let audit = ns
        .sql()
        .await
        .query_one(
            "SELECT detail::text FROM audit_log WHERE action = 'signer.erase'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, String>(0);
    assert_eq!(audit, r#"{"erased": 2}"#);
    let organizer = json!({"email": "leyla@example.az"});
    let r = app
        .http
        .post(app.url("/v1/erasures"))
        .json(&organizer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "admins only");

    // Nothing of either signer is left anywhere in the database.
    outbox_empties(&ns, Duration::from_secs(10)).await;
    let everything = dump(&ns);
    for trace in [
        "Jan de Vries",
        "jan@example.nl",
        "1012 AB",
        "Amsterdam",
        "Leyla",
        "leyla@example.az",
        "Bakı Təmiz Hava",
    ] {
        assert!(
            !everything.contains(trace),
            "{trace} is still in the database"
        );
    }
    let tombstones: i64 = ns
        .sql()
        .await
        .query_one(
            "SELECT count(*) FROM signatures WHERE withdrawn_at IS NOT NULL
             AND full_name = '' AND email IS NULL AND identity_key IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tombstones, 3, "each receipt stays, marked withdrawn");
    let metrics = app.metrics_text().await;
    assert_eq!(erased_metric(&metrics, "withdrawal"), 1.0);
    assert_eq!(erased_metric(&metrics, "erasure"), 2.0);

    // The signer may sign again.
    assert_eq!(app.sign(&confirmed, &jan).await.status(), 202);
    counts_reach(&app, &confirmed, (0, 1)).await;
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawing_forgets_that_signatures_mail_and_no_other() {
    let ns = Namespace::new();
    let (app, sink) = app_with_relay(&ns, None).await;
    let leaving = app.petition_with("leaving", json!({})).await;
    let staying = app.petition_with("staying", json!({})).await;
    let mustafa = json!({"full_name": "Mustafa Aydın", "email": "mustafa@example.org",
                         "country": "TR"});
    sign_and_confirm(&app, &sink, &leaving, mustafa.clone()).await;
    let r = app
        .http
        .post(app.url(&format!("/v1/petitions/{leaving}/withdrawals")))
        .json(&json!({"email": "mustafa@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let link = link_in(
        &sink.wait_for(2, Duration::from_secs(10)).await[1],
        "withdraw",
    );
    // The same person signs another petition; the relay is busy, so its
    // confirmation waits (on its signature's row).
    sink.refuse_next(1000);
    assert_eq!(app.sign(&staying, &mustafa).await.status(), 202);
    for _ in 0..200 {
        if sink.refused() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(sink.refused() > 0, "the relay turned the message away");
    let r = app.http.post(app.url(&link)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    counts_reach(&app, &leaving, (0, 0)).await;
    let waiting: Vec<(String, String)> = ns
        .sql()
        .await
        .query(
            "SELECT o.kind, p.slug FROM outbox o
             JOIN signatures s ON s.id = o.signature_id JOIN petitions p ON p.id = s.petition_id
             UNION ALL
             SELECT 'confirmation', p.slug FROM signatures s JOIN petitions p ON p.id = s.petition_id
             WHERE s.mail_due IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        waiting,
        [("confirmation".to_owned(), staying.clone())],
        "the other petition's confirmation still waits"
    );
    sink.refuse_next(0);
    let mail = sink.wait_for(3, Duration::from_secs(30)).await;
    assert_eq!(mail[2].to, ["mustafa@example.org"]);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_request_is_answered_before_the_address_is_looked_up() {
    let ns = Namespace::new();
    let (app, sink) = app_with_relay(&ns, None).await;
    let slug = app.petition("answered").await;
    let body = json!({"full_name": "Ana Pop", "email": "ana@example.ro", "country": "RO"});
    assert_eq!(app.sign(&slug, &body).await.status(), 202);
    counts_reach(&app, &slug, (1, 0)).await;
    // While the signer's row is held (as a busy database would keep it), an
    // answer that waited for the lookup would come late for an address that
    // signed and at once for one that did not.
    let mut sql = ns.sql().await;
    let holding = sql.transaction().await.unwrap();
    holding
        .execute("SELECT 1 FROM signatures FOR UPDATE", &[])
        .await
        .unwrap();
    for email in ["ana@example.ro", "nobody@example.ro"] {
        let r = app
            .http
            .post(app.url(&format!("/v1/petitions/{slug}/withdrawals")))
            .json(&json!({"email": email}))
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .expect("answered without waiting for the signer's row");
        assert_eq!(r.status(), 202);
    }
    assert!(sink.received().is_empty());
    holding.commit().await.unwrap();
    let mail = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mail[0].to, ["ana@example.ro"], "the link still goes out");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.received().len(), 1);
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_signatures_nobody_confirms_expire_and_are_never_counted() {
    let ns = Namespace::new();
    let (app, sink) = app_with_relay(&ns, Some(Duration::from_secs(2))).await;
    let slug = app.petition_with("expiring", json!({})).await;
    let names = ["Ahmet Yılmaz", "Zoë Ørsted", "Nguyễn Thị Hương"];
    for (i, name) in names.iter().enumerate() {
        let body = json!({"full_name": name, "email": format!("expiring.{i}@example.org"),
                          "country": "TR"});
        assert_eq!(app.sign(&slug, &body).await.status(), 202);
    }
    counts_reach(&app, &slug, (0, 3)).await;
    let mail = sink.wait_for(3, Duration::from_secs(10)).await;
    let late = link_in(&mail[0], "confirm");
    // Past the time to live, the sweep erases them: never counted.
    counts_reach(&app, &slug, (0, 0)).await;
    let rows: i64 = ns
        .sql()
        .await
        .query_one("SELECT count(*) FROM signatures", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
    let r = app.http.post(app.url(&late)).send().await.unwrap();
    assert_eq!(r.status(), 404, "the link names nothing any more");
    assert_eq!(erased_metric(&app.metrics_text().await, "expiry"), 3.0);
    outbox_empties(&ns, Duration::from_secs(10)).await;
    let everything = dump(&ns);
    for trace in names.iter().copied().chain(["expiring.0@example.org"]) {
        assert!(
            !everything.contains(trace),
            "{trace} is still in the database"
        );
    }
    // And they may sign again.
    let body = json!({"full_name": names[0], "email": "expiring.0@example.org", "country": "TR"});
    assert_eq!(app.sign(&slug, &body).await.status(), 202);
    counts_reach(&app, &slug, (0, 1)).await;
    app.stop().await;
    ns.clean().await;
}
