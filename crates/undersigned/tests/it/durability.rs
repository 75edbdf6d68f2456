//! Nothing acknowledged is lost: not on a graceful stop, not on SIGKILL.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Client;
use tokio::process::Command;
use uuid::Uuid;

use crate::smtp_sink::SmtpSink;
use crate::support::{
    NO_LIMITS, Namespace, PEPPER, REDIS, TestApp, outbox_empties, receipt, rows, signer, stored,
};

/// Signs with `workers` concurrent clients until their requests fail, keeping
/// every receipt the service acknowledged.
fn stream(
    http: Client,
    url: String,
    workers: usize,
    receipts: Arc<Mutex<Vec<Uuid>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|w| {
            let (http, url, receipts) = (http.clone(), url.clone(), receipts.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let body = signer(1_000_000 * (w + 1) + i);
                    let Ok(r) = http.post(&url).json(&body).send().await else {
                        return;
                    };
                    match r.status().as_u16() {
                        202 => {
                            let id = receipt(r).await.unwrap();
                            receipts.lock().unwrap().push(id);
                        }
                        503 => tokio::time::sleep(Duration::from_millis(5)).await,
                        _ => return,
                    }
                    if i > 20_000 {
                        return;
                    }
                }
            })
        })
        .collect()
}

async fn wait_for(receipts: &Arc<Mutex<Vec<Uuid>>>, n: usize) {
    for _ in 0..2000 {
        if receipts.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("fewer than {n} signatures were accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_mid_stream_keeps_every_acknowledged_signature() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let slug = app.petition("graceful").await;
    let receipts = Arc::new(Mutex::new(Vec::new()));
    let url = app.url(&format!("/v1/petitions/{slug}/signatures"));
    let workers = stream(app.http.clone(), url, 16, receipts.clone());
    wait_for(&receipts, 300).await;
    app.stop().await;
    for w in workers {
        w.await.unwrap();
    }
    let receipts = receipts.lock().unwrap().clone();
    let sql = ns.sql().await;
    assert_eq!(stored(&sql, &receipts).await, receipts.len() as i64);
    // Anything stored beyond the receipts was written but its answer never left.
    assert!(rows(&sql).await >= receipts.len() as i64);
    ns.clean().await;
}

/// The service binary serving `ns` on a free port, with a petition `slug`
/// (counting at once) created in its database; returns the child and the
/// base URL.
async fn served_binary(ns: &Namespace, slug: &str) -> (tokio::process::Child, String) {
    let (child, base) = binary(ns, &[]).await;
    create_petition(ns, slug, "none").await;
    (child, base)
}

/// The service binary serving `ns` on a free port, with `env` besides.
async fn binary(ns: &Namespace, env: &[(&str, &str)]) -> (tokio::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_undersigned"))
        .arg("serve")
        .env("UNDERSIGNED_LISTEN", format!("127.0.0.1:{port}"))
        .env("UNDERSIGNED_DATABASE_URL", ns.database_url())
        .env("UNDERSIGNED_REDIS_URL", REDIS)
        .env("UNDERSIGNED_REDIS_PREFIX", &ns.prefix)
        .env("UNDERSIGNED_IDENTITY_PEPPER", PEPPER)
        .env(
            "UNDERSIGNED_MAIL_DIR",
            std::env::temp_dir().join(format!("{}-mail", ns.database)),
        )
        .envs(NO_LIMITS)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("service binary starts");
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&Client::new(), &base).await;
    (child, base)
}

async fn create_petition(ns: &Namespace, slug: &str, verification: &str) {
    let store = undersigned_store::Store::connect(&ns.database_url(), 1).unwrap();
    let petition = undersigned_domain::NewPetition::parse(undersigned_domain::NewPetitionInput {
        slug: Some(slug.into()),
        wording: undersigned_domain::WordingInput {
            title: Some("Stopped".into()),
            text: Some("Mid-stream.".into()),
            ask: None,
        },
        goal: Some(1000),
        locale: None,
        web: undersigned_domain::WebSettingsInput {
            verification: Some(verification.into()),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let audit = undersigned_store::AuditEntry::new(
        &undersigned_store::Actor::default(),
        "petition.create",
        serde_json::json!({"slug": slug}),
    );
    store.create_petition(&petition, audit).await.unwrap();
}

/// Waits until the service at `base` answers `/readyz` with 200.
pub async fn wait_ready(http: &Client, base: &str) {
    for _ in 0..400 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("service did not start");
}

/// Every receipt is stored, and the counts were committed with their rows.
async fn all_kept(ns: &Namespace, receipts: &Arc<Mutex<Vec<Uuid>>>) {
    let receipts = receipts.lock().unwrap().clone();
    let sql = ns.sql().await;
    assert_eq!(stored(&sql, &receipts).await, receipts.len() as i64);
    let counted: i64 = sql
        .query_one(
            "SELECT coalesce(sum(count), 0)::bigint FROM signature_counts",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        counted,
        rows(&sql).await,
        "counts committed with their rows"
    );
}

/// The service binary taking signatures from 16 clients, 300 of them
/// acknowledged already: the moment to stop it.
async fn binary_mid_stream(
    ns: &Namespace,
    slug: &str,
) -> (
    tokio::process::Child,
    Arc<Mutex<Vec<Uuid>>>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let (child, base) = served_binary(ns, slug).await;
    let receipts = Arc::new(Mutex::new(Vec::new()));
    let workers = stream(
        Client::new(),
        format!("{base}/v1/petitions/{slug}/signatures"),
        16,
        receipts.clone(),
    );
    wait_for(&receipts, 300).await;
    (child, receipts, workers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_acknowledged_signature() {
    let ns = Namespace::new();
    let (mut child, receipts, workers) = binary_mid_stream(&ns, "killed").await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    for w in workers {
        w.await.unwrap();
    }
    all_kept(&ns, &receipts).await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_exits_zero_with_every_acknowledged_signature_written() {
    let ns = Namespace::new();
    let (mut child, receipts, workers) = binary_mid_stream(&ns, "terminated").await;
    let pid = child.id().expect("running").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops within its grace")
        .unwrap();
    assert_eq!(exit.code(), Some(0), "a stop asked for is a success");
    for w in workers {
        w.await.unwrap();
    }
    all_kept(&ns, &receipts).await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_leaves_no_acknowledged_signer_without_their_email() {
    let ns = Namespace::new();
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let env = [
        ("UNDERSIGNED_SMTP_URL", url.as_str()),
        ("UNDERSIGNED_MAIL_RATE", "off"),
    ];
    let (mut child, base) = binary(&ns, &env).await;
    create_petition(&ns, "mailed", "email").await;
    let receipts = Arc::new(Mutex::new(Vec::new()));
    let workers = stream(
        Client::new(),
        format!("{base}/v1/petitions/mailed/signatures"),
        16,
        receipts.clone(),
    );
    wait_for(&receipts, 300).await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    for w in workers {
        w.await.unwrap();
    }
    // Started again, it sends what the killed one had queued and not sent.
    let (_child, _) = binary(&ns, &env).await;
    outbox_empties(&ns, Duration::from_secs(20)).await;
    let texts: Vec<String> = sink
        .received()
        .iter()
        .map(|m| {
            let parsed = mail_parser::MessageParser::default()
                .parse(&m.data)
                .unwrap();
            parsed.body_text(0).unwrap().into_owned()
        })
        .collect();
    let receipts = receipts.lock().unwrap().clone();
    let unsent: Vec<&Uuid> = receipts
        .iter()
        .filter(|r| !texts.iter().any(|t| t.contains(&r.to_string())))
        .collect();
    assert!(
        unsent.is_empty(),
        "{} of {} acknowledged signers got no email",
        unsent.len(),
        receipts.len()
    );
    ns.clean().await;
}
