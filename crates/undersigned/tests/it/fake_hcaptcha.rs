//! A stand-in for hCaptcha's `siteverify` on 127.0.0.1, answering by token:
//! `pass` succeeds, `slow` succeeds after two seconds, `misconfigured` fails as
//! for a wrong secret, anything else fails as hCaptcha does for a wrong or
//! reused token. It keeps every form it was sent.

use std::collections::HashMap;
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
use tokio::net::TcpListener;

pub const SECRET: &str = "0x0000000000000000000000000000000000000001";
pub const SITEKEY: &str = "10000000-ffff-ffff-ffff-000000000001";

pub struct FakeHcaptcha {
    pub url: String,
    pub seen: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

async fn answer(
    req: Request<Incoming>,
    seen: Arc<Mutex<Vec<HashMap<String, String>>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let token = form.get("response").cloned().unwrap_or_default();
    seen.lock().unwrap().push(form);
    let json = match token.as_str() {
        "pass" => r#"{"success":true,"hostname":"campaign.example"}"#,
        "slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            r#"{"success":true}"#
        }
        "misconfigured" => r#"{"success":false,"error-codes":["invalid-input-secret"]}"#,
        _ => r#"{"success":false,"error-codes":["invalid-input-response"]}"#,
    };
    let mut response = Response::new(Full::new(Bytes::from(json)));
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    Ok(response)
}

impl FakeHcaptcha {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/siteverify", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let forms = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let forms = forms.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(req, forms.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { url, seen }
    }
}
