//! Tablets at a street event: each enrolled with its own one-time code, each
//! sending batches of signatures as fast as they are answered, and now and
//! then sending its last batch again (as if the answer had been lost), whose
//! answer must be the very same.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::Full;
use tokio::time::Instant;
use uuid::Uuid;

use crate::client::{Conn, Error};
use crate::run::{Shared, Tally, XorShift};
use crate::signers;

/// The event and its enrolled tablets.
#[derive(Debug, Clone)]
pub struct TabletPlan {
    pub event: String,
    /// One device token per tablet.
    pub tokens: Vec<String>,
    /// Signatures per batch.
    pub batch_size: usize,
    /// Share of batches sent twice.
    pub resend: f64,
}

/// Creates an event under way on the petition and enrolls `n` tablets for it.
pub async fn enroll(
    target: SocketAddr,
    admin_token: &str,
    slug: &str,
    n: usize,
) -> Result<TabletPlan, Error> {
    let mut conn = Conn::new(target);
    let now = chrono::Utc::now();
    let event = json_post(
        &mut conn,
        &format!("/v1/petitions/{slug}/events"),
        Some(admin_token),
        serde_json::json!({"name": "Load test flash mob", "country": "NL",
                           "starts_at": now - chrono::Duration::hours(1),
                           "ends_at": now + chrono::Duration::hours(23)}),
    )
    .await?["id"]
        .as_str()
        .ok_or("no event id")?
        .to_owned();
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        let code = json_post(
            &mut conn,
            &format!("/v1/events/{event}/enrollment-codes"),
            Some(admin_token),
            serde_json::json!({}),
        )
        .await?["code"]
            .as_str()
            .ok_or("no code")?
            .to_owned();
        let enrolled = json_post(
            &mut conn,
            "/v1/devices",
            None,
            serde_json::json!({"code": code, "label": format!("Load tablet {i}")}),
        )
        .await?;
        tokens.push(enrolled["token"].as_str().ok_or("no token")?.to_owned());
    }
    Ok(TabletPlan {
        event,
        tokens,
        batch_size: 100,
        resend: 0.0,
    })
}

async fn json_post(
    conn: &mut Conn,
    path: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> Result<serde_json::Value, Error> {
    let mut request = Request::post(path)
        .header(header::HOST, "loadtest")
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let (status, answer) = conn
        .send(request.body(Full::new(Bytes::from(body.to_string())))?)
        .await?;
    if !status.is_success() {
        return Err(format!("{path}: {status} {}", String::from_utf8_lossy(&answer)).into());
    }
    Ok(serde_json::from_slice(&answer)?)
}

/// What the tablets met.
pub struct TabletOutcome {
    /// Per batch: latency and HTTP status.
    pub batches: Tally,
    /// Items by the status their batch's answer gave them.
    pub items: BTreeMap<String, u64>,
    /// Batches sent again whose answer differed from the first.
    pub resend_mismatches: u64,
    pub resent: u64,
    /// Signers accepted from a tablet, and their receipts.
    pub acked: Vec<u64>,
    pub receipts: Vec<Uuid>,
}

impl TabletOutcome {
    pub fn new() -> Self {
        Self {
            batches: Tally::new(),
            items: BTreeMap::new(),
            resend_mismatches: 0,
            resent: 0,
            acked: Vec::new(),
            receipts: Vec::new(),
        }
    }

    pub fn add(&mut self, other: TabletOutcome) {
        self.batches.add(&other.batches);
        for (s, n) in other.items {
            *self.items.entry(s).or_default() += n;
        }
        self.resend_mismatches += other.resend_mismatches;
        self.resent += other.resent;
        self.acked.extend(other.acked);
        self.receipts.extend(other.receipts);
    }
}

/// One tablet, sending until the run ends.
pub async fn drive(shared: &Shared, plan: &TabletPlan, tablet: usize) -> TabletOutcome {
    let mut conn = Conn::new(shared.plan.target);
    let mut rng = XorShift(0xD1B5_4A32_D192_ED03 ^ (tablet as u64 + 1).wrapping_mul(0x94D0_49BB));
    let mut out = TabletOutcome::new();
    let path = format!("/v1/events/{}/signatures:batch", plan.event);
    let token = format!("Bearer {}", plan.tokens[tablet]);
    let mut item = String::with_capacity(512);
    // The last batch sent: its body, its signers and receipts, and its answer.
    let mut last: Option<(String, Bytes)> = None;
    while Instant::now() < shared.deadline && !shared.stop.load(Ordering::Relaxed) {
        let resend = last.as_ref().filter(|_| rng.chance(plan.resend)).cloned();
        let (body, batch) = match &resend {
            Some((body, _)) => (body.clone(), Vec::new()),
            None => {
                let mut batch = Vec::with_capacity(plan.batch_size);
                let mut body = String::from("{\"signatures\":[");
                let signed_at =
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                for _ in 0..plan.batch_size {
                    let i = shared.next.fetch_add(1, Ordering::Relaxed);
                    if shared.plan.total.is_some_and(|t| i >= t) {
                        shared.stop.store(true, Ordering::Relaxed);
                        break;
                    }
                    let id = Uuid::new_v4();
                    signers::body(i, 0, &mut item);
                    item.pop();
                    if !batch.is_empty() {
                        body.push(',');
                    }
                    body.push_str(&item);
                    body.push_str(&format!(",\"id\":\"{id}\",\"signed_at\":\"{signed_at}\"}}"));
                    batch.push((i, id));
                }
                body.push_str("]}");
                if batch.is_empty() {
                    break;
                }
                (body, batch)
            }
        };
        let since = Instant::now();
        let request = Request::builder()
            .method(Method::POST)
            .uri(&path)
            .header(header::HOST, "loadtest")
            .header(header::AUTHORIZATION, &token)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.clone())))
            .expect("valid request");
        let answer = conn.send(request).await;
        out.batches.record_since(since);
        let Ok((status, answer)) = answer else {
            out.batches.io_errors += 1;
            continue;
        };
        *out.batches.statuses.entry(status.as_u16()).or_default() += 1;
        if status.as_u16() != 200 {
            // Refused whole (busy, limited): wait a little, as a tablet would.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        if let Some((_, first)) = resend {
            out.resent += 1;
            if first != answer {
                out.resend_mismatches += 1;
            }
            continue;
        }
        let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(&answer) else {
            out.batches.io_errors += 1;
            continue;
        };
        let results = parsed["results"].as_array().cloned().unwrap_or_default();
        for ((signer, id), result) in batch.iter().zip(&results) {
            let status = result["status"].as_str().unwrap_or("?").to_owned();
            if status == "accepted" {
                out.acked.push(*signer);
                out.receipts.push(*id);
            }
            *out.items.entry(status).or_default() += 1;
        }
        last = Some((body, answer));
    }
    out
}
