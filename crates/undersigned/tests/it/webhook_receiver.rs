//! A webhook endpoint on 127.0.0.1, as a campaign's CRM would run one: it
//! keeps every request it is sent (headers and the body as it came), and
//! answers each try of a message as its plan says.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use undersigned_webhooks::Secret;

/// How the endpoint answers one try.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Status(u16),
    /// Answers nothing for this long (the sender's timeout runs out first).
    Hang(Duration),
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub raw: Bytes,
    pub body: Value,
    /// What this try was answered.
    pub answered: Reply,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Received {
    pub fn kind(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }

    /// Whether Standard Webhooks' check passes with `secret`.
    pub fn verifies(&self, secret: &str) -> bool {
        Secret::parse(secret).expect("a whsec_ secret").verify(
            &self.id,
            self.timestamp,
            &self.raw,
            &self.signature,
        )
    }

    pub fn delivered(&self) -> bool {
        matches!(self.answered, Reply::Status(s) if (200..300).contains(&s))
    }
}

/// What to answer the `n`-th try (from 1) of a message.
pub type Plan = fn(usize) -> Reply;

pub struct Receiver {
    pub url: String,
    pub port: u16,
    seen: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// An endpoint that accepts every message at once.
    pub async fn accepting() -> Self {
        Self::start(|_| Reply::Status(204)).await
    }

    pub async fn start(plan: Plan) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(req, kept.clone(), plan));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}/hooks"),
            port,
            seen,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// The messages delivered (answered 2xx), each once.
    pub fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(Received::delivered)
            .collect()
    }

    /// Waits until `n` messages are delivered (10 s at most).
    pub async fn wait_delivered(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            let delivered = self.delivered();
            if delivered.len() >= n {
                return delivered;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{n} messages were not delivered: {:?}",
            self.received()
                .iter()
                .map(|r| (&r.id, r.answered))
                .collect::<Vec<_>>()
        );
    }
}

async fn answer(
    req: Request<Incoming>,
    seen: Arc<Mutex<Vec<Received>>>,
    plan: Plan,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp").parse().unwrap_or(0),
        header("webhook-signature"),
    );
    let raw = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let reply = {
        let mut seen = seen.lock().unwrap();
        let tries = seen.iter().filter(|r| r.id == id).count() + 1;
        let reply = plan(tries);
        seen.push(Received {
            body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
            id,
            timestamp,
            signature,
            raw,
            answered: reply,
            at: std::time::Instant::now(),
        });
        reply
    };
    let status = match reply {
        Reply::Status(status) => status,
        Reply::Hang(wait) => {
            tokio::time::sleep(wait).await;
            204
        }
    };
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    Ok(response)
}
